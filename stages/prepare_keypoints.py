"""DVC stage prepare_keypoints: runs `facetl.keypoints.prepare.main()` (see dvc.yaml)."""

if __name__ == "__main__":  # imports here: spawned worker processes re-run this file's top
    from facetl.core.stage import check_params, run_stage
    from facetl.keypoints.schema import SCHEMA

    check_params(SCHEMA)  # before the task's imports (TensorFlow): a wrong setting fails at once
    from facetl.keypoints.prepare import main

    run_stage(main)
