"""Layer 1: data sources, download, image decoding, preparation, splits."""
