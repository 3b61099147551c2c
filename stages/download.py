"""DVC stage: download (see dvc.yaml); usage: python stages/download.py TASK."""

from facetl.cli import run_stage
from facetl.pipeline import download_stage

if __name__ == "__main__":
    run_stage(download_stage)
