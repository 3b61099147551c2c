"""DVC stage evaluate_gender_ood: runs `facetl.gender.ood.main()`
(see pipelines/gender_ood/dvc.yaml)."""

if __name__ == "__main__":  # imports here: spawned worker processes re-run this file's top
    from facetl.core.stage import run_stage
    from facetl.gender.ood import main

    run_stage(main)
