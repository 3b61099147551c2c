"""DVC stage: prepare (see dvc.yaml); usage: python stages/prepare.py TASK."""

from facetl.cli import run_stage
from facetl.pipeline import prepare_stage

if __name__ == "__main__":
    run_stage(prepare_stage)
