"""DVC stage: features (see dvc.yaml); usage: python stages/features.py TASK."""

from facetl.cli import run_stage
from facetl.pipeline import features_stage

if __name__ == "__main__":
    run_stage(features_stage)
