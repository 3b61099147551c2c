"""DVC stage finetune_gender: runs `facetl.gender.finetune.main()` (see dvc.yaml)."""

if __name__ == "__main__":  # imports here: spawned worker processes re-run this file's top
    from facetl.core.stage import run_stage
    from facetl.gender.finetune import main

    run_stage(main)
