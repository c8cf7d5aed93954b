"""Vector store seam: a narrow interface, FAISS by default, other backends loaded lazily."""
