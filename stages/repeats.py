"""DVC stage: repeats (see dvc.yaml); usage: python stages/repeats.py TASK."""

from facetl.cli import run_stage
from facetl.repeats import repeats_stage

if __name__ == "__main__":
    run_stage(repeats_stage)
