"""Metadata database: models, engine and repository functions."""
