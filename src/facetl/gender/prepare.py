"""Stage prepare_gender: the face crops decoded, resized, balanced and split (grouped by
person when the source names people) into one uint8 array and an index."""

from __future__ import annotations

from facetl.core import paths
from facetl.core.params import load_params, lookup
from facetl.data.download import read_manifest
from facetl.data.prepare import prepare

TASK = "gender"


def main() -> None:
    params = load_params()
    cfg = lookup(params, f"prepare.{TASK}")
    classes = [str(c).lower() for c in lookup(params, f"data.{TASK}.classes")]
    manifest = read_manifest(paths.faces_dir(TASK))
    index = prepare(manifest, paths.faces_dir(TASK), paths.prepared_dir(TASK), classes,
                    cfg["input_size"], cfg["test_size"], lookup(params, "seed"), cfg["balance"])
    print(f"prepare {TASK}: {index.groupby(['split', 'label']).size().to_dict()}")
