"""Layer 0: errors, params, paths, atomic writes, figures, settings (imports no other layer)."""
