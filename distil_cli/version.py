"""distil's version (a leaf module: everything may read it)."""

__version__ = "0.1.0"
