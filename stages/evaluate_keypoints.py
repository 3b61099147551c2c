"""DVC stage evaluate_keypoints: runs `facetl.keypoints.evaluate.main()` (see dvc.yaml)."""

if __name__ == "__main__":  # imports here: spawned worker processes re-run this file's top
    from facetl.core.stage import run_stage
    from facetl.keypoints.evaluate import main

    run_stage(main)
