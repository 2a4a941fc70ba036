"""Evaluation: per-text metrics (``metrics``) and run statistics (``runs``: bootstrap, paired comparison)."""
