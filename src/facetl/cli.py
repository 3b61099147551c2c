"""Command line: `facetl predict ...`, `facetl export`, `facetl serve` and `facetl report`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facetl.core.errors import FacetlError, exit_with
from facetl.core.tasks import default_task, task_names, task_options

TASKS = tuple(task_names())  # the registered tasks, found without importing them


def predict_command(args: argparse.Namespace) -> None:
    """Print every file's prediction; files that could not be read are error entries, and the
    exit status is then 1 (after all other files got their predictions)."""
    from facetl import predict

    asked = list(TASKS) if args.task == "all" else [args.task]
    options = {option.name: getattr(args, option.name) for _, option in task_options()}
    if found := predict.misplaced(asked, options):
        owner, option = found
        raise FacetlError(f"{option.flag} applies to {owner}: use it with --task {owner} "
                          "(or all)")
    models = args.models or ("models" if args.runtime == "keras" else f"exported/{args.runtime}")
    results = predict.predict(asked, args.images, Path(models), options, runtime=args.runtime)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print(" ".join(f"{key}={value}" for key, value in result.items()))
    failed = [r for r in results if "error" in r]
    for result in failed:
        print(f"error: {predict.naming(result['error'], result['image'])}", file=sys.stderr)
    if failed:
        sys.exit(1)


def serve_command(args: argparse.Namespace) -> None:
    from facetl.serve import serve

    serve(Path(args.models), args.host, args.port, args.max_mb)


def export_command(args: argparse.Namespace) -> None:
    from facetl.ship.export import export

    folder = export(args.task, args.format, Path(args.out or f"exported/{args.format}"),
                    Path(args.models))
    print(f"wrote {folder}: the network, manifest.json and MODEL_CARD.md (docs/export.md)")


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
    predict.add_argument("--task", choices=[*TASKS, "all"], default=default_task())
    predict.add_argument("--json", action="store_true", help="print JSON")
    for owner, option in task_options():
        predict.add_argument(option.flag, help=f"{owner}: {option.help}",
                             **({"action": "store_true"} if option.value_type is bool else
                                {"type": option.value_type, "metavar": option.metavar}))
    predict.add_argument("--runtime", choices=["keras", "onnx"], default="keras",
                         help="run the network with Keras (models/) or ONNX Runtime (the "
                              "files of `facetl export --format onnx`)")
    predict.add_argument("--models", help="folder of trained models (default: models), or "
                                          "with --runtime onnx of exports (exported/onnx)")
    predict.set_defaults(func=predict_command)
    export = commands.add_parser("export", help="write the trained network as ONNX, SavedModel "
                                                "or LiteRT, with a manifest (docs/export.md)")
    export.add_argument("--task", choices=TASKS, default=default_task())
    export.add_argument("--format", choices=["onnx", "saved_model", "litert"], required=True)
    export.add_argument("--out", metavar="DIR",
                        help="folder that gets <task>/ (default: exported/<format>)")
    export.add_argument("--models", default="models", help="folder of trained models")
    export.set_defaults(func=export_command)
    serve = commands.add_parser("serve", help="answer predictions over HTTP, with a page to "
                                              "try them (docs/serve.md)")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--models", default="models", help="folder of trained models")
    serve.add_argument("--max-mb", type=float, default=20,
                       help="largest upload in one request, in MB of 1,048,576 bytes "
                            "(MiB; default 20)")
    serve.set_defaults(func=serve_command)
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
