"""Generation: batched generation (shared with training-time evaluation) and ``distil infer``."""
