"""Where benchmarks find the research data: `../shared` beside the repository, never committed."""

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
CELEBA = SHARED / "data/gender_celeba"
KEYPOINTS = SHARED / "data/keypoints"
GENDER_WEB = SHARED / "data/gender_web"
MOBILENET = SHARED / "weights/mobilenet_v2_torchvision_imagenet_notop.weights.h5"
VGG16_HED = SHARED / "weights/vgg16_hed_bsds500_notop.weights.h5"
