"""DVC stage: train (see dvc.yaml); usage: python stages/train.py TASK."""

from facetl.cli import run_stage
from facetl.pipeline import train_stage

if __name__ == "__main__":
    run_stage(train_stage)
