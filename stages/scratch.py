"""DVC stage scratch@SCENARIO: runs `facetl.gender.scratch.main(SCENARIO)` (see dvc.yaml)."""

if __name__ == "__main__":
    import sys

    from facetl.core.stage import check_params, run_stage
    from facetl.gender.schema import SCHEMA

    check_params(SCHEMA)  # before the task's imports (TensorFlow): a wrong setting fails at once
    from facetl.gender.scratch import main

    if len(sys.argv) != 2:
        sys.exit("usage: python stages/scratch.py SCENARIO")
    run_stage(main, sys.argv[1])
