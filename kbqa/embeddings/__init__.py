"""Embedders: a narrow seam, the bundled defaults, and any local sentence-transformers folder."""
