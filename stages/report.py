"""DVC stage: report (see dvc.yaml); the same as `facetl report`."""

from facetl.cli import main

if __name__ == "__main__":
    main(["report"])
