"""Command line: `facetl predict ...` and `facetl report`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facetl.core.errors import FacetlError, exit_with

TASKS = ("gender", "keypoints")


def predict_command(args: argparse.Namespace) -> None:
    """Print every file's prediction; files that could not be read are error entries, and the
    exit status is then 1 (after all other files got their predictions)."""
    from facetl import predict

    tasks = list(TASKS) if args.task == "all" else [args.task]
    if args.overlay and "keypoints" not in tasks:
        raise FacetlError("--overlay draws keypoints: use it with --task keypoints (or all)")
    for flag, value in (("--min-confidence", args.min_confidence), ("--all-faces",
                                                                     args.all_faces)):
        if value not in (None, False) and "gender" not in tasks:
            raise FacetlError(f"{flag} applies to gender: use it with --task gender (or all)")
    results = predict.predict(tasks, args.images, Path(args.models), args.min_confidence,
                              args.all_faces)
    if args.overlay:
        predict.write_overlays(results, Path(args.overlay))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print(" ".join(f"{key}={value}" for key, value in result.items()))
    failed = [r for r in results if "error" in r]
    for result in failed:
        print(f"error: {result['error']}", file=sys.stderr)
    if failed:
        sys.exit(1)


def report_command(args: argparse.Namespace) -> None:
    from facetl.report.report import build_report

    table = build_report(Path("."), Path(args.out))
    print(f"wrote {args.out}/comparison.md ({len(table)} rows)")


def parser() -> argparse.ArgumentParser:
    """The whole command line, subcommands and flags (the docs' commands are checked on it)."""
    parser = argparse.ArgumentParser(prog="facetl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="run the trained models on image files")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="image files, folders of images, or glob patterns ('*.jpg')")
    predict.add_argument("--task", choices=[*TASKS, "all"], default="gender")
    predict.add_argument("--overlay", metavar="DIR",
                         help="also write each image with its predicted keypoints drawn")
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.add_argument("--min-confidence", type=float, metavar="P",
                         help="gender: answer 'uncertain' where the calibrated probability of "
                              "the answer is below P (0.5-1; the probability is still printed)")
    predict.add_argument("--all-faces", action="store_true",
                         help="gender: also answer for every face found, each with its box "
                              "(the largest face still gives the photo's answer)")
    predict.add_argument("--models", default="models", help="folder of trained models")
    predict.set_defaults(func=predict_command)
    report = commands.add_parser("report", help="compare the workspace and DVC experiments")
    report.add_argument("--out", default="reports", help="folder for comparison.md and plots")
    report.set_defaults(func=report_command)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except FacetlError as exc:
        exit_with(exc)
