"""DVC stage prepare_keypoints: runs `facetl.keypoints.prepare.main()` (see dvc.yaml)."""

if __name__ == "__main__":  # imports here: spawned worker processes re-run this file's top
    from facetl.core.stage import run_stage
    from facetl.keypoints.prepare import main

    run_stage(main)
