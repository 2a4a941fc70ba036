"""Training: examples, batching, the loss, the trainer and its configuration, kernels, the run."""
