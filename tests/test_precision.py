"""resolve_precision on pretend hardware (the probes are replaced, bypassing their cache)."""

from __future__ import annotations

import warnings

import pytest

from facetl.core.errors import FacetlError
from facetl.models import precision
from facetl.models.precision import resolve_precision

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
