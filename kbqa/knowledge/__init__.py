"""Knowledge bases: the one coordinator of content files, metadata DB and vector index."""
