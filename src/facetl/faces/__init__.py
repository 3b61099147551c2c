"""Layer 2: the face front end (detection, alignment, dlib model files)."""
