"""DVC stage: evaluate (see dvc.yaml); usage: python stages/evaluate.py TASK."""

from facetl.cli import run_stage
from facetl.pipeline import evaluate_stage

if __name__ == "__main__":
    run_stage(evaluate_stage)
