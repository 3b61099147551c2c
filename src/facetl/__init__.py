"""facetl: a reproducible transfer-learning pipeline for face photos."""

import os
from importlib.util import find_spec

# TensorFlow's C++ start-up chatter hides the pipeline's own messages; users can still override.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Keras defaults to TensorFlow; where it is not installed (`pip install '.[jax]'` or
# '.[torch]'), the installed backend runs without KERAS_BACKEND having to name it.
if "KERAS_BACKEND" not in os.environ and find_spec("tensorflow") is None:
    for _installed in ("jax", "torch"):
        if find_spec(_installed) is not None:
            os.environ["KERAS_BACKEND"] = _installed
            break

__version__ = "0.1.0"
