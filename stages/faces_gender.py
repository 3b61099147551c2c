"""DVC stage faces_gender: runs `facetl.gender.faces.main()` (see dvc.yaml)."""

if __name__ == "__main__":  # imports here: spawned worker processes re-run this file's top
    from facetl.core.stage import run_stage
    from facetl.gender.faces import main

    run_stage(main)
