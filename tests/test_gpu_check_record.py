"""A gpu_check.json brought back from a GPU machine is recorded like every results file: the
GPU's name as the machine, the gpu_check command rebuilt from the arguments it keeps, one entry
per figure set; and record() keeps its plain signature and writes strict JSON."""

from __future__ import annotations

import json
import math
import shlex

import numpy as np
import pytest

from benchmarks import gpu_check_record
from benchmarks.gpu_check import command_line
from benchmarks.results import load, record

GPU = "NVIDIA H100 80GB HBM3"
FLAGS = ["--out", "/device/out", "--backend", "torch", "--count", "64", "--sizes", "224",
         "--precisions", "float32", "float16", "--no-reference",
         "--files", "/device/repo/build/gpu_check"]


def report(gpu: str | None = GPU) -> dict:
    """A report shaped as gpu_check.check writes it (json.dumps with default=str)."""
    args = vars(command_line().parse_args(FLAGS))
    rows = [{"backbone": "mobilenet_v2", "size": 224, "precision": precision, "images": 64,
             "batch": 128, "images_per_s": rate, "build_s": 1.2, "compile_s": 3.4,
             "agreement": "no reference"}
            for precision, rate in (("float32", 2100.5), ("float16", 5200.0))]
    return json.loads(json.dumps({
        "gpu": gpu, "gpu_capability": (9, 0) if gpu else None,
        "versions": {"python": "3.12.3", "keras": "3.15.0", "keras_from": "/tmp/site",
                     "backend": "torch", "numpy": "2.1.0", "torch": "2.5.0"},
        "installed_from_wheels": ["keras"], "photos": "512 CelebA photos",
        "mobilenet_weights": "seeded random", "reference": None, "args": args,
        "extraction": rows,
        "training": {"head": {"train": 448, "seconds": 2.5, "epochs": [{"images_per_s": 9e3}]},
                     "finetune": {"train": 2048, "epoch_seconds": 30.1,
                                  "epochs": [{"images_per_s": 700.0}]}},
        "seconds": 80.0}, default=str))


def test_a_gpu_report_is_recorded_per_figure_set_with_the_gpu_as_machine(tmp_path):
    source = tmp_path / "gpu_check.json"
    source.write_text(json.dumps(report()))
    gpu_check_record.main([str(source), "--results-dir", str(tmp_path / "results")])
    entries = load("gpu_check", tmp_path / "results")
    prefix = "nvidia-h100-80gb-hbm3/torch/"
    assert sorted(entries) == sorted(prefix + name for name in (
        "mobilenet_v2-224-float32", "mobilenet_v2-224-float16", "head", "finetune"))
    assert {e["provenance"]["machine"] for e in entries.values()} == {GPU}
    fp16 = entries[prefix + "mobilenet_v2-224-float16"]["figures"]
    assert fp16["images_per_s"] == 5200.0 and fp16["gpu_capability"] == [9, 0]
    assert fp16["versions"]["torch"] == "2.5.0" and "keras_from" not in fp16["versions"]
    assert entries[prefix + "finetune"]["figures"]["epoch_seconds"] == 30.1


def test_the_recorded_command_reruns_the_same_check(tmp_path):
    source = tmp_path / "gpu_check.json"
    source.write_text(json.dumps(report()))
    gpu_check_record.main([str(source), "--results-dir", str(tmp_path / "results")])
    command = next(iter(load("gpu_check", tmp_path / "results").values()))["provenance"][
        "command"]
    words = shlex.split(command)
    assert words[:2] == ["python3", "benchmarks/gpu_check.py"]
    # Only what differs from the defaults is written, and it parses back to the run's settings;
    # --files named the default folder under that machine's checkout, so it is left out.
    assert "--files" not in words and "--batch" not in words
    # The device's own output folder is a machine path: recorded as a placeholder.
    again = vars(command_line().parse_args(words[2:]))
    expected = vars(command_line().parse_args(FLAGS))
    assert str(again["out"]) == "<tmp>/out"
    assert {k: v for k, v in again.items() if k not in ("files", "out")} == {
        k: v for k, v in expected.items() if k not in ("files", "out")}


def test_a_report_without_a_gpu_needs_a_machine_name(tmp_path):
    source = tmp_path / "gpu_check.json"
    source.write_text(json.dumps(report(gpu=None)))
    results = tmp_path / "results"
    with pytest.raises(SystemExit, match="no GPU in this report"):
        gpu_check_record.main([str(source), "--results-dir", str(results)])
    assert not results.exists()
    gpu_check_record.main([str(source), "--results-dir", str(results), "--machine", "a CPU"])
    entries = load("gpu_check", results)
    assert entries and all(key.startswith("a-cpu/torch/") for key in entries)
    assert {e["provenance"]["machine"] for e in entries.values()} == {"a CPU"}


def test_record_keeps_its_signature_and_writes_strict_json(tmp_path):
    record("bench", "one", {"acc": math.nan, "n": np.int64(3), "rate": np.float32(0.5),
                            "box": (1, 2)}, tmp_path)
    record("bench", "two", {}, tmp_path, machine="GPU X", command="python3 elsewhere.py")
    text = (tmp_path / "bench.json").read_text()
    entries = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the file"))
    one, two = entries["entries"]["one"], entries["entries"]["two"]
    assert one["figures"] == {"acc": None, "n": 3, "rate": 0.5, "box": [1, 2]}
    assert one["provenance"]["command"].startswith("python ")
    assert one["provenance"]["machine"] not in ("", "GPU X")
    assert two["provenance"]["machine"] == "GPU X"
    assert two["provenance"]["command"] == "python3 elsewhere.py"
    assert two["provenance"]["commit"] == one["provenance"]["commit"] != ""
