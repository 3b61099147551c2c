"""DVC stage features_gender: runs `facetl.models.features.main("gender")` (see dvc.yaml)."""

if __name__ == "__main__":  # imports here: spawned worker processes re-run this file's top
    from facetl.core.stage import run_stage
    from facetl.models.features import main

    run_stage(main, "gender")
