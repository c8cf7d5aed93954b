"""Local LLM serving (controller, batching model worker, OpenAI-compatible server) and the client kbqa uses.

Submodules import torch and FastAPI lazily where they can; importing this package is cheap.
"""
