"""Layer 3: backbones, precision, feature extraction, heads, training and fine-tuning."""
