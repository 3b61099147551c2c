"""Issue 5's benchmark: the chapter's per-image `predict` loop vs our batched extraction.

For each backbone and input size, in ONE run and on the same images, it times
(a) `preprocess_input` + `model.predict` one image at a time (the chapter),
(b) our stage's extraction (`extract_to_npy`: batched, prefetched, streamed to a .npy on disk)
    in float32, and (c) the same in bfloat16 (`--reduced float16` on a GPU),
each in its own subprocess so peak RSS is per method. Prints images/s, the ratio to (a),
effective GFLOP/s (from the model's multiply-adds) and peak RSS. Weights are random
(`none`): speed does not depend on their values.

    PYTHONPATH=. python benchmarks/extraction_speed.py [--backbones ...] [--sizes 224 300]
        [--results-dir DIR]

Records benchmarks/results/extraction_speed.json, one entry per row,
`<backbone>-<size>-<method>` (method: chapter_loop, stage_float32, stage_bfloat16).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.results import add_results_dir, record


def model_flops(model) -> float:
    """Multiply-adds x 2 of the convolutions and dense layers, per image."""
    from keras import layers

    total = 0
    for layer in _walk(model):
        if isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            _, h, w, c = layer.output.shape
            total += h * w * kh * kw * c
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            _, h, w, c_out = layer.output.shape
            total += h * w * kh * kw * layer.input.shape[-1] * c_out
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return 2.0 * total


def _walk(model):
    for layer in model.layers:
        yield from _walk(layer) if hasattr(layer, "layers") else [layer]


def images_for(size: int, count: int) -> np.ndarray:
    """Real face photos when ../shared is present (any photo would do), else random pixels."""
    from benchmarks.shared_data import CELEBA
    from facetl.data.images import read_image, resize_square

    folder = CELEBA / "images"
    files = sorted(folder.glob("*.jpg"))[:count] if folder.is_dir() else []
    if len(files) == count:
        return np.stack([resize_square(read_image(f), size) for f in files])
    return np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def measure(method: str, backbone: str, size: int, count: int, batch: int) -> dict:
    """Runs inside the child process: returns images/s for one method."""
    import keras

    from facetl.models.backbones import build_extractor, get_spec
    from facetl.models.extraction import extract_to_npy
    from facetl.models.precision import resolve_precision

    images = images_for(size, count)
    precision = "float32"
    if method == "chapter_loop":
        model = get_spec(backbone).constructor(include_top=False, weights=None,
                                               input_shape=(size, size, 3))
        module = {"vgg16": keras.applications.vgg16, "vgg19": keras.applications.vgg19,
                  "resnet50": keras.applications.resnet50,
                  "inception_v3": keras.applications.inception_v3,
                  "mobilenet_v2": keras.applications.mobilenet_v2}[backbone]
        one = lambda x: model.predict(module.preprocess_input(x[None].astype("float32")),  # noqa: E731
                                      verbose=0)
        one(images[0])  # warm-up
        start = time.perf_counter()
        for image in images:
            one(image)
        seconds = time.perf_counter() - start
    else:
        # As the stage does: a precision the hardware lacks falls back to float32.
        precision = resolve_precision(method.split("_")[1], get_spec(backbone).bf16_wins_with)
        model = build_extractor(backbone, "none", size, precision=precision)
        with tempfile.TemporaryDirectory() as tmp:
            extract_to_npy(model, images[:batch], Path(tmp) / "warm.npy", batch)  # warm-up
            seconds = extract_to_npy(model, images, Path(tmp) / "f.npy", batch)
    flops = model_flops(model)
    return {"backbone": backbone, "size": size, "method": method, "ran_in": precision,
            "images": count,
            "img_per_s": count / seconds, "gflop_per_s": flops * count / seconds / 1e9,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbones", nargs="+",
                        default=["vgg16", "vgg19", "resnet50", "inception_v3", "mobilenet_v2"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 300])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--loop-images", type=int, default=16,
                        help="images for the slow per-image loop")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reduced", choices=["bfloat16", "float16"], default="bfloat16",
                        help="the reduced precision to time (float16: GPUs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    add_results_dir(parser)
    args = parser.parse_args()
    if args.child:
        method, backbone, size, count = args.child.split(",")
        print(json.dumps(measure(method, backbone, int(size), int(count), args.batch)))
        return
    print("| backbone @ size | method | ran in | img/s | x chapter loop | GFLOP/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for backbone in args.backbones:
        for size in args.sizes:
            baseline = None
            for method in ("chapter_loop", "stage_float32", f"stage_{args.reduced}"):
                count = args.loop_images if method == "chapter_loop" else args.images
                child = subprocess.run(
                    [sys.executable, __file__, "--batch", str(args.batch), "--child",
                     f"{method},{backbone},{size},{count}"],
                    capture_output=True, text=True, check=True)
                row = json.loads(child.stdout.strip().splitlines()[-1])
                baseline = baseline or row["img_per_s"]
                row |= {"batch": args.batch, "x_chapter_loop": row["img_per_s"] / baseline}
                print(f"| {backbone} @ {size} | {method} | {row['ran_in']} | "
                      f"{row['img_per_s']:.1f} | "
                      f"{row['x_chapter_loop']:.1f}x | {row['gflop_per_s']:.0f} | "
                      f"{row['peak_rss_mb']:.0f} |", flush=True)
                path = record("extraction_speed", f"{backbone}-{size}-{method}", row,
                              args.results_dir)
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
