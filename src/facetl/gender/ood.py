"""Stage evaluate_gender_ood: the final gender model on a labelled source from elsewhere
(`ood.gender`), through the same path as `facetl predict`, face front end included.

It only reports: photos unlike the training set say whether the model travels, so they must
never be used for training or model selection. Accuracy is given overall and per face
front-end group (found / fallback / none), each with its Wilson interval.
"""

from __future__ import annotations

import pandas as pd

from facetl.core import paths
from facetl.core.atomic import write_csv, write_json
from facetl.core.errors import FacetlError
from facetl.core.metrics import binary_report, by_group_report
from facetl.core.params import load_params, lookup
from facetl.core.plots import calibration_plots
from facetl.data.sources import is_url, load_rows
from facetl.gender.predict import predict_gender

TASK = "gender"
NAME = "gender_ood"


def no_download(url: str) -> bytes:
    raise FacetlError(f"{url}: ood.gender takes a local source (a CSV of paths or a folder per "
                      "class); download a URL source first")


def main() -> None:
    params = load_params()
    cfg = lookup(params, f"ood.{TASK}")
    classes = [str(c).lower() for c in lookup(params, f"data.{TASK}.classes")]
    if is_url(str(cfg["source"])):
        no_download(str(cfg["source"]))
    rows = load_rows(cfg | {"classes": classes, "per_class": None}, no_download)

    results = pd.DataFrame(predict_gender(list(rows["source"])))
    positive = classes[1]
    scored = rows.reset_index(drop=True).join(results.drop(columns="image"))
    unreadable = scored["error"].notna() if "error" in scored else pd.Series(False, scored.index)
    readable = scored[~unreadable]
    if readable.empty:
        raise FacetlError(f"ood.gender: none of the {len(rows)} photos could be read; see "
                          f"{paths.plots_dir(NAME) / 'predictions.csv'}")

    labels = (readable["label"] == positive).astype(int).to_numpy()
    p_positive = readable[f"p_{positive}"].to_numpy(dtype=float)
    report = binary_report(labels, p_positive)
    write_json(paths.metrics_path(NAME), {
        "source": str(cfg["source"]), "photos": len(rows), "unreadable": int(unreadable.sum()),
    } | report | {"by_face": by_group_report(labels, p_positive, readable["face"].to_numpy())})
    calibration_plots(labels, p_positive, paths.plots_dir(NAME))
    write_csv(paths.plots_dir(NAME) / "predictions.csv",
              scored.drop(columns=["row"], errors="ignore"))
    low, high = report["accuracy_ci95"]
    print(f"evaluate {NAME}: accuracy {report['accuracy']:.4f} CI95 [{low:.4f}, {high:.4f}] "
          f"ECE {report['ece']:.4f} on {report['n_test']} photos "
          f"({int(unreadable.sum())} unreadable)")
