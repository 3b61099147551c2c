"""Layer 4: views inside networks (layer taps, Grad-CAM)."""
