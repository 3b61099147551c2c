"""DVC stage: activations (see dvc.yaml); usage: python stages/activations.py TASK."""

from facetl.activations import activations_stage
from facetl.cli import run_stage

if __name__ == "__main__":
    run_stage(activations_stage)
