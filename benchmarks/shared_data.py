"""Where benchmarks find the research data: `../shared` beside the repository, never committed."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from facetl.data.images import read_image, resize_square
from facetl.faces.detect import face_crop

SHARED = Path(__file__).resolve().parents[2] / "shared"
CELEBA = SHARED / "data/gender_celeba"
KEYPOINTS = SHARED / "data/keypoints"
GENDER_WEB = SHARED / "data/gender_web"
MOBILENET = SHARED / "weights/mobilenet_v2_torchvision_imagenet_notop.weights.h5"
VGG16_HED = SHARED / "weights/vgg16_hed_bsds500_notop.weights.h5"


def web_crops(faces: Mapping[str, Any], size: int) -> tuple[np.ndarray, np.ndarray]:
    """gender_web's photos through the face front end (`faces` settings), resized to `size`,
    and whether each is male (the positive class)."""
    rows = pd.read_csv(GENDER_WEB / "labels.csv")
    crops = [resize_square(face_crop(read_image(GENDER_WEB / "images" / name), faces).image,
                           size)
             for name in tqdm(rows["filename"], desc="gender_web faces", unit="photo")]
    return np.stack(crops), (rows["gender"] == "male").to_numpy()
