"""DVC stage train_gender: runs `facetl.gender.train.main()` (see dvc.yaml)."""

if __name__ == "__main__":  # imports here: spawned worker processes re-run this file's top
    from facetl.core.stage import run_stage
    from facetl.gender.train import main

    run_stage(main)
