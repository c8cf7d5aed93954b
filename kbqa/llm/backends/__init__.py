"""Model backends behind the worker's routes: transformers (chat, batched) and sentence-transformers (embeddings)."""
