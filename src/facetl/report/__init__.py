"""Comparison of runs across DVC experiments (`facetl report`)."""
