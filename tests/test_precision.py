"""Precision choice on pretend hardware (the probes are replaced, bypassing their cache), and
training in mixed precision."""

from __future__ import annotations

import warnings
from unittest import mock

import keras
import numpy as np
import pytest

from facetl.core.errors import FacetlError
from facetl.keypoints.heads import HEAD_BF16_WINS_WITH
from facetl.models import precision, training
from facetl.models.heads import chapter_head
from facetl.models.precision import loss_scaled, resolve_precision
from facetl.models.training import fit

BF16_CPU = frozenset({"avx512f", "avx512_bf16"})
AMX_CPU = frozenset({"avx512f", "avx512_bf16", "amx_bf16"})  # AMX CPUs have both
OLD_CPU = frozenset({"sse4_2", "avx2"})


@pytest.fixture
def hardware(monkeypatch):
    """Pretend to run on a given CPU and GPU."""

    def pretend(flags: frozenset[str] = OLD_CPU, gpu: tuple[int, int] | None = None) -> None:
        monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
        monkeypatch.setattr(precision, "gpu_capability", lambda: gpu)

    return pretend


def test_unknown_precision_names_the_choices(hardware):
    hardware()
    with pytest.raises(FacetlError, match="auto.*float32.*bfloat16.*float16.*'half'"):
        resolve_precision("half", "avx512_bf16")


@pytest.mark.parametrize(("flags", "prefers", "expected"), [
    (BF16_CPU, "avx512_bf16", "bfloat16"),  # VGG: ~2x with AVX512-BF16 alone
    (AMX_CPU, "avx512_bf16", "bfloat16"),
    (AMX_CPU, "amx_bf16", "bfloat16"),  # ResNet50: faster only with AMX
    (BF16_CPU, "amx_bf16", "float32"),
    (BF16_CPU, None, "float32"),  # e.g. MobileNetV2: slower in bf16 on CPU
    (OLD_CPU, "avx512_bf16", "float32"),
])
def test_auto_on_cpu(hardware, flags, prefers, expected):
    hardware(flags)
    assert resolve_precision("auto", prefers) == expected


@pytest.mark.parametrize(("gpu", "expected"), [
    ((9, 0), "bfloat16"),
    ((8, 0), "bfloat16"),
    ((7, 5), "float16"),
    ((6, 1), "float32"),
])
def test_auto_on_gpu_whatever_the_backbone_prefers_on_cpu(hardware, gpu, expected):
    hardware(OLD_CPU, gpu)
    assert resolve_precision("auto", None) == expected


@pytest.mark.parametrize(("flags", "gpu", "requested"), [
    (BF16_CPU, None, "bfloat16"),
    (OLD_CPU, (8, 0), "float16"),
    (OLD_CPU, (7, 0), "float16"),
    (OLD_CPU, None, "float32"),
])
def test_supported_requests_are_kept_silently(hardware, flags, gpu, requested):
    hardware(flags, gpu)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision(requested, None) == requested


@pytest.mark.parametrize(("flags", "gpu", "requested"), [
    (OLD_CPU, None, "bfloat16"),
    (BF16_CPU, None, "float16"),  # no CPU path for float16
    (OLD_CPU, (7, 5), "bfloat16"),
    (OLD_CPU, (6, 1), "float16"),
])
def test_unsupported_request_falls_back_with_one_warning(hardware, flags, gpu, requested):
    hardware(flags, gpu)
    with pytest.warns(UserWarning) as caught:
        assert resolve_precision(requested, "avx512_bf16") == "float32"
    assert len(caught) == 1
    assert requested in str(caught[0].message) and "float32" in str(caught[0].message)


# --- the networks trained on cached features or from scratch --------------------------------


@pytest.mark.parametrize(("flags", "bf16_wins_with", "expected"), [
    (BF16_CPU, precision.TRAINED_BF16_WINS_WITH["chapter_head"], "bfloat16"),  # ~1.8x, measured
    (BF16_CPU, precision.TRAINED_BF16_WINS_WITH["scratch_cnn"], "bfloat16"),
    (BF16_CPU, HEAD_BF16_WINS_WITH, "float32"),  # measured: slower in bf16 (too little work)
    (OLD_CPU, precision.TRAINED_BF16_WINS_WITH["chapter_head"], "float32"),
])
def test_auto_for_trained_networks_follows_the_measured_table(hardware, flags, bf16_wins_with,
                                                              expected):
    hardware(flags)
    assert precision.trained_precision("auto", bf16_wins_with, "train.precision") == expected


class ComputeDtypes(keras.callbacks.Callback):
    """Each layer's compute dtype while a training batch runs."""

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self.seen = {layer.name: layer.compute_dtype for layer in self.model.layers}


@pytest.mark.backend
def test_a_head_trains_in_bfloat16_and_is_saved_in_float32(tmp_path):
    """During fit every layer but the output computes in bf16; the trained head is float32
    again, and it has learned the separable task (bf16 did not break training)."""
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 2
    features = rng.normal(0, 1, (200, 4, 4, 8)).astype("float32")
    features[:, :2, :, :] += 2.0 * labels[:, None, None, None]  # class 1: bright top half
    head = chapter_head((4, 4, 8), 1, 1, "sigmoid", float(features.max()), 0.0)
    dtypes = ComputeDtypes()
    # fit's one callback is the curve logger: it stands in for it here
    with mock.patch.object(training, "LiveCurves", lambda folder: dtypes):
        fit(head, features, labels.astype("float32"), np.arange(160), np.arange(160, 200),
            {"learning_rate": 0.01, "batch_size": 16, "epochs": 8,
             "loss": "binary_crossentropy", "metrics": ["accuracy"]}, 0, tmp_path,
            precision="bfloat16")
    assert dtypes.seen["output"] == "float32"
    assert {dtypes.seen[name] for name in dtypes.seen if name not in ("output", "features")} \
        == {"bfloat16"}
    assert {layer.compute_dtype for layer in head.layers} == {"float32"}
    p = keras.ops.convert_to_numpy(head(features[160:], training=False))[:, 0]
    assert np.mean((p > 0.5) == labels[160:]) >= 0.9
    head.save(tmp_path / "head.keras")
    reloaded = keras.saving.load_model(tmp_path / "head.keras")
    assert {layer.compute_dtype for layer in reloaded.layers} == {"float32"}


@pytest.mark.parametrize("precision,scaled", [("float16", True), ("bfloat16", False),
                                              ("float32", False)])
def test_only_float16_training_scales_its_loss(precision, scaled):
    adam = keras.optimizers.Adam(1e-3)
    wrapped = loss_scaled(adam, precision)
    assert isinstance(wrapped, keras.optimizers.LossScaleOptimizer) == scaled
    assert (wrapped.inner_optimizer if scaled else wrapped) is adam
