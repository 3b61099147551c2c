"""Do the exported files give the Keras model's answers on real photos? (issue 24)

The workspace's trained gender model is exported in each format (`facetl export`, into a
temporary folder); N photos of a source it never trained on (gender_web by default, a seeded
sample) go once through facetl's face front end, as `facetl predict` runs it, and the crops
through the Keras model in float32 and through each exported file with its own runtime. The
promise for float32 files: the same label on every photo and p_male within 1e-4. Where the
Keras model computes in reduced precision (a bfloat16 backbone), its answers as trained are
compared too, as they differ by more than float32's.

    PYTHONPATH=. python benchmarks/export_parity.py [--models models] [--photos DIR] [--n 300]
        [--formats onnx saved_model litert]

Writes benchmarks/results/export_parity.json, one entry per backbone and format.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.results import record
from benchmarks.shared_data import GENDER_WEB
from benchmarks.tables_format import Results, per_route_table
from facetl.core.errors import FacetlError
from facetl.data.images import resize_square
from facetl.faces.detect import face_crop
from facetl.gender.predict import load_gender
from facetl.models.inference import read_input
from facetl.predict import expand_inputs
from facetl.ship.export import TOLERANCE, export, in_float32, policies
from facetl.ship.runtime import FILES, load_exported


def network_inputs(files: list[str], meta: dict) -> tuple[np.ndarray, int]:
    """Each readable photo's largest-face crop at the model's input size, and how many photos
    could not be read."""
    faces, crops, unreadable = meta.get("faces", {"align": False}), [], 0
    for file in files:
        try:
            image = read_input(file)
        except FacetlError:
            unreadable += 1
            continue
        crops.append(resize_square(face_crop(image, faces).image, meta["input_size"]))
    return np.stack(crops).astype("float32"), unreadable


def agreement(p: np.ndarray, reference: np.ndarray) -> dict:
    difference = np.abs(p - reference)
    same = int(((p >= 0.5) == (reference >= 0.5)).sum())
    return {"same_label": same, "all_same_label": same == len(p),
            "max_abs_dp": float(difference.max()),
            "p99_abs_dp": float(np.quantile(difference, 0.99)),
            "within_tolerance": bool(difference.max() <= TOLERANCE)}


def folder_mb(folder: Path) -> float:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="models", help="the workspace's trained models")
    parser.add_argument("--photos", default=str(GENDER_WEB / "images"))
    parser.add_argument("--n", type=int, default=300, help="photos, a seeded sample")
    parser.add_argument("--formats", nargs="+", default=list(FILES), choices=list(FILES))
    args = parser.parse_args()
    models_root = Path(args.models)

    model, meta = load_gender(models_root)
    trained = policies(model)
    files = expand_inputs([args.photos])
    files = sorted(np.random.default_rng(0).choice(files, min(args.n, len(files)),
                                                   replace=False).tolist())
    x, unreadable = network_inputs(files, meta)
    as_trained = model.predict(x, verbose=0)[:, 0] if trained != ["float32"] else None
    # a fresh copy: `predict` keeps the graph it traced first, whatever the policies now
    reference = in_float32(load_gender(models_root)[0]).predict(x, verbose=0)[:, 0]
    print(f"{len(x)} photos ({unreadable} unreadable) of {args.photos}; Keras model computes "
          f"in {trained}")

    for fmt in args.formats:
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            folder = export("gender", fmt, Path(out), models_root)
            seconds = time.perf_counter() - started
            network, _ = load_exported("gender", Path(out), fmt)
            p = network.predict(x)[:, 0]
            figures = {"photos": len(x), "unreadable": unreadable, "source": args.photos,
                       "keras_policies": trained, "export_seconds": round(seconds, 1),
                       "file_mb": folder_mb(folder), "tolerance": TOLERANCE,
                       **agreement(p, reference)}
            if as_trained is not None:
                figures["vs_keras_as_trained"] = agreement(p, as_trained)
        path = record("export_parity", f"{meta['backbone']}/{fmt}", figures)
        print(f"{fmt}: same label on {figures['same_label']}/{len(x)} photos, max |dp| "
              f"{figures['max_abs_dp']:.2g} (tolerance {TOLERANCE:g}) -> {path}")


COMMAND = "PYTHONPATH=. python benchmarks/export_parity.py --n 300"


def table(results: Results) -> str:
    """docs/export.md's table: each exported file against the float32 Keras model."""
    def rows(name: str, f: dict) -> list[str]:
        return [f"| {name} | {f['photos']} | {f['same_label']} | {f['max_abs_dp']:.1e} | "
                f"{f['p99_abs_dp']:.1e} | {'yes' if f['within_tolerance'] else 'no'} | "
                f"{f['file_mb']:.1f} |"]

    return per_route_table(
        results, "export_parity", COMMAND,
        ["model / format", "photos", "same label", "largest \\|Δp\\|",
         "99th percentile \\|Δp\\|", "within 1e-4", "file MB"], rows,
        lambda _: "Δp: the exported file's `p_male` minus the float32 Keras model's, on the "
                  "same crops.")

if __name__ == "__main__":
    main()
