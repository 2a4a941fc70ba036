"""Data: corpus readers, ``distil prepare`` (splits, manifest) and file helpers (jsonl, hashing)."""
