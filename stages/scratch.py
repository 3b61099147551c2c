"""DVC stage: scratch@SCENARIO (see dvc.yaml); usage: python stages/scratch.py SCENARIO."""

from facetl.cli import run_stage
from facetl.scratch import scratch_stage

if __name__ == "__main__":
    run_stage(scratch_stage)
