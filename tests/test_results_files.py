"""Results files are committed: they carry provenance and no machine's own paths."""

from __future__ import annotations

import json

import pytest

from benchmarks.results import ABSOLUTE_PATH, RESULTS, plain

FILES = sorted(RESULTS.glob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_entry_has_its_provenance_and_no_machine_path(path):
    entries = json.loads(path.read_text())["entries"]
    assert entries
    for key, entry in entries.items():
        assert {"command", "machine", "commit", "date"} <= entry["provenance"].keys(), key
        assert not ABSOLUTE_PATH.findall(json.dumps(entry)), key


def test_paths_are_made_portable_before_they_are_recorded():
    shared = RESULTS.parents[1].parent / "shared" / "data/gender_web/images"
    recorded = plain({"command": f"python x.py --models /scratch/run7/models {shared}",
                      "urls": ["https://host/a.csv"], "rows": ("1/2", float("nan"))})
    assert recorded == {"command": "python x.py --models <tmp>/models "
                                   "../shared/data/gender_web/images",
                        "urls": ["https://host/a.csv"], "rows": ["1/2", None]}
