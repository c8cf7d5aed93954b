"""Offline OCR behind a small seam: ``engine.py`` is the interface, one module per engine implements it."""
