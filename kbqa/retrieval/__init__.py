"""Hybrid retrieval, query rewriting and retrieval evaluation."""
