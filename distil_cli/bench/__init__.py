"""Benchmarks (``distil bench``): the seed-style baseline vs distil's real code paths, in one process."""
