"""distil: distil a large teacher LLM into a small causal LM with distilling step-by-step."""

__version__ = "0.1.0"
