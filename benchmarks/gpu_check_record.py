"""Records the figures of a gpu_check.json brought back from a GPU machine (issue 21).

`gpu_check.py` runs where the repository is no git checkout and writes its figures to
`OUT_DIR/gpu_check.json`; back here, this stores them in benchmarks/results/gpu_check.json like
every other benchmark's, with the GPU's name as the machine, the gpu_check command that made
them (rebuilt from the arguments the file keeps), and this checkout's commit, the code that was
carried to the GPU machine:

    PYTHONPATH=. python benchmarks/gpu_check_record.py FILES_AT/gpu_check.json [...]
        [--machine NAME] [--results-dir DIR]

Entries, one per figure set, `<gpu>/<backend>/<backbone>-<size>-<precision>` for extraction and
`<gpu>/<backend>/head`, `<gpu>/<backend>/finetune` for the training checks (`<gpu>`: the GPU's
name in lower case, words joined by `-`), so two cards or two backends keep their own entries.
A report made without a GPU (a trial on a CPU) needs --machine.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any

from benchmarks.gpu_check import FILES, REPO, command_line
from benchmarks.results import add_results_dir, record

PREPARED = FILES.relative_to(REPO).as_posix()  # build/gpu_check, under whichever checkout


def gpu_check_command(args: dict[str, Any]) -> str:
    """The gpu_check.py command line of a run: the options whose value is not the default."""
    defaults = vars(command_line().parse_args([]))
    words = ["python3", "benchmarks/gpu_check.py"]
    for name, value in args.items():
        if value is None or value is False or value == defaults.get(name):
            continue
        if name == "files" and str(value).endswith(PREPARED):  # the default, on that machine
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            words.append(flag)
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def entries(report: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """The report's figure sets by entry key, each with the versions and photos it ran with."""
    versions = {k: v for k, v in report["versions"].items() if k != "keras_from"}
    context = {"versions": versions, "photos": report["photos"],
               "gpu_capability": report.get("gpu_capability")}
    found = {f"{prefix}/{row['backbone']}-{row['size']}-{row['precision']}": row | context
             for row in report.get("extraction", [])}
    for part, figures in report.get("training", {}).items():
        found[f"{prefix}/{part}"] = figures | context
    return found


def slug(name: str) -> str:
    """A GPU's name as a key part: "NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def record_report(path: Path, folder: Path, machine: str | None = None) -> list[str]:
    """Records one gpu_check.json; returns the entry keys written."""
    report = json.loads(path.read_text())
    machine = machine or report.get("gpu")
    if not machine:
        raise SystemExit(f"{path}: no GPU in this report (a trial on a CPU?): pass --machine NAME "
                         "to record it anyway")
    command = gpu_check_command(report["args"])
    found = entries(report, f"{slug(machine)}/{report['versions']['backend']}")
    for key, figures in found.items():
        record("gpu_check", key, figures, folder, machine=machine, command=command)
    return list(found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="gpu_check.json files")
    parser.add_argument("--machine", help="the machine's name (default: the report's GPU)")
    add_results_dir(parser)
    args = parser.parse_args(argv)
    for path in args.reports:
        keys = record_report(path, args.results_dir, args.machine)
        print(f"{path}: recorded {len(keys)} entries in {args.results_dir / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
