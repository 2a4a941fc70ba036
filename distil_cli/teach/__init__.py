"""Teaching: teacher backends (protocols, OpenAI-compatible API, local model) and ``distil annotate``."""
