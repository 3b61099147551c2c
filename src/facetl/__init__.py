"""facetl: a reproducible transfer-learning pipeline for face photos."""

import os

# TensorFlow's C++ start-up chatter hides the pipeline's own messages; users can still override.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
