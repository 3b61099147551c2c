"""Task: gender classification, one module per DVC stage."""
