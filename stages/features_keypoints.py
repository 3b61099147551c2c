"""DVC stage features_keypoints: runs `facetl.keypoints.features.main()` (see dvc.yaml)."""

if __name__ == "__main__":  # imports here: spawned worker processes re-run this file's top
    from facetl.core.stage import run_stage
    from facetl.keypoints.features import main

    run_stage(main)
