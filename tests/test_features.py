"""extract_to_npy: batched, streamed into a .npy, equal to calling the model directly."""

from __future__ import annotations

import importlib.util
import json
import textwrap

import keras
import numpy as np
import pytest

from facetl.core.errors import FacetlError
from facetl.models.backbones import build_extractor
from facetl.models.backend import replica_strategy
from facetl.models.extraction import NpyRows, extract_to_npy
from tests.test_backend import run_child

N_IMAGES, BATCH = 10, 4  # batches of 4, 4 and a partial 2

pytestmark = pytest.mark.backend  # the core model code: runs under every Keras backend


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (N_IMAGES, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_extractor("vgg16", "none", 32)


@pytest.fixture(scope="module")
def direct(model, images) -> np.ndarray:
    """The features of a plain call of the model on all images at once."""
    return keras.ops.convert_to_numpy(model(images, training=False))


def test_float32_features_equal_a_plain_call(tmp_path, model, images, direct):
    out = tmp_path / "vgg16.npy"
    seconds = extract_to_npy(model, images, out, batch_size=BATCH)
    features = np.load(out)
    assert features.shape == (N_IMAGES, 1, 1, 512) and features.dtype == np.float32
    # Every row, the partial last batch too. Not bit-equal: oneDNN picks kernels per batch
    # shape, and a different summation order moves the last float32 bit.
    np.testing.assert_allclose(features, direct, rtol=1e-5, atol=1e-7)
    assert seconds > 0
    assert [p.name for p in tmp_path.iterdir()] == ["vgg16.npy"]


def test_float16_storage_is_the_float32_features_rounded(tmp_path, model, images, direct):
    extract_to_npy(model, images, tmp_path / "f.npy", batch_size=BATCH, storage="float16")
    features = np.load(tmp_path / "f.npy")
    assert features.dtype == np.float16
    np.testing.assert_allclose(features, direct.astype(np.float16), rtol=1e-3)


def test_bfloat16_features_are_close_to_float32(tmp_path, model, images, direct):
    bf16 = build_extractor("vgg16", "none", 32, precision="bfloat16")
    bf16.set_weights(model.get_weights())
    assert bf16.get_layer("vgg16").dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    extract_to_npy(bf16, images, tmp_path / "bf16.npy", batch_size=BATCH)
    features = np.load(tmp_path / "bf16.npy")
    assert features.dtype == np.float32
    assert not np.array_equal(features, direct)  # it really ran in bfloat16
    # bfloat16 keeps 8 significant bits (relative step 2**-8 = 0.4%); through 13 conv layers the
    # error stays within 2% of the largest feature (measured: 0.65%).
    np.testing.assert_allclose(features, direct, rtol=0, atol=0.02 * np.abs(direct).max())


@pytest.mark.parametrize("batch_size", [1, N_IMAGES, 64])
def test_any_batch_size_gives_every_row(tmp_path, model, images, direct, batch_size):
    extract_to_npy(model, images, tmp_path / "f.npy", batch_size=batch_size)
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), direct, rtol=1e-5, atol=1e-6)


class FailingReads:
    """Images whose reads fail from row `fail_at` on, like a memmap on a disk that went away."""

    def __init__(self, images: np.ndarray, fail_at: int) -> None:
        self.images, self.fail_at = images, fail_at

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, rows: slice) -> np.ndarray:
        if rows.start >= self.fail_at:
            raise OSError("input/output error")
        return self.images[rows]


def test_a_failure_half_way_leaves_no_output(tmp_path, model, images):
    with pytest.raises(OSError, match="input/output error"):
        extract_to_npy(model, FailingReads(images, BATCH), tmp_path / "f.npy", batch_size=BATCH)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("option", "value", "message"), [
    ("storage", "int8", "features.storage"),
    ("batch_size", 0, "features.batch_size"),
])
def test_bad_options_are_errors(tmp_path, model, images, option, value, message):
    with pytest.raises(FacetlError, match=message):
        extract_to_npy(model, images, tmp_path / "f.npy", **{option: value})


def test_without_gpus_the_replica_strategy_is_one_device():
    assert replica_strategy(multi_gpu=True).num_replicas_in_sync == 1


TWO_REPLICAS = textwrap.dedent("""
    import json
    import os
    import sys
    import numpy as np

    rows = []  # the rows each replica computed, batch after batch
    if os.environ["KERAS_BACKEND"] == "tensorflow":  # two logical CPUs, before TF starts
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        replicas = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    import keras
    from facetl.models import backend
    from facetl.models.extraction import extract_to_npy

    if backend.NAME == "jax":  # two host devices (XLA_FLAGS)
        import jax

        replicas = backend.DataParallel(["cpu:0", "cpu:1"])
        plain_jit = jax.jit

        def noting_jit(function, **options):
            compiled = plain_jit(function, **options)

            def call(*args):  # the rows of each device's shard of the output
                out = compiled(*args)
                rows.extend(len(shard.data) for shard in out.addressable_shards)
                return out
            return call

        jax.jit = noting_jit
        Note = keras.layers.Identity
    else:
        import tensorflow as tf

        class Note(keras.layers.Layer):  # the identity, noting each replica's rows as it runs
            def call(self, x):
                note = lambda a: rows.append(len(a)) or a  # noqa: E731
                return tf.ensure_shape(tf.numpy_function(note, [x], tf.float32, stateful=False),
                                       x.shape)

    with replicas.scope():  # a small network: what is checked is how batches are split
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(8, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(inputs))
        model = keras.Model(inputs, keras.layers.Conv2D(4, 3)(Note()(x)))
    images = np.random.default_rng(0).integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    out = sys.argv[1]
    extract_to_npy(model, images, out + "/two.npy", batch_size=4, distributed=True)
    json.dump(rows, open(out + "/rows.json", "w"))
    extract_to_npy(model, images, out + "/one.npy", batch_size=4)
""")


@pytest.mark.parametrize("name", ["tensorflow", "jax"])
def test_two_replicas_each_compute_half_of_every_batch_and_agree_with_one(tmp_path, name):
    """Two (simulated) devices: tf.distribute over two logical CPUs, keras.distribution over
    two XLA host devices. 7 images in batches of 4 (the last padded): each replica computes
    2 rows of each batch, and the features equal those computed on one device."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    run_child(TWO_REPLICAS, name, str(tmp_path),
              XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert json.loads((tmp_path / "rows.json").read_text()) == [2, 2, 2, 2]
    two, one = np.load(tmp_path / "two.npy"), np.load(tmp_path / "one.npy")
    assert two.shape == (7, 12, 12, 4) and np.abs(one).max() > 0
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["uint8", "float16"])
def test_npy_rows_reads_the_same_rows_as_numpy(tmp_path, dtype):
    array = np.arange(7 * 3 * 2 * 2).reshape(7, 3, 2, 2).astype(dtype)
    np.save(tmp_path / "a.npy", array)
    with NpyRows(tmp_path / "a.npy") as rows:
        assert len(rows) == 7 and rows.shape == array.shape
        np.testing.assert_array_equal(rows[2:5], array[2:5])
        np.testing.assert_array_equal(rows[5:100], array[5:])  # clipped like a slice
        assert rows[7:9].shape == (0, 3, 2, 2)


def test_extraction_from_npy_rows_equals_from_an_array(tmp_path, model, images, direct):
    np.save(tmp_path / "images.npy", images)
    with NpyRows(tmp_path / "images.npy") as rows:
        extract_to_npy(model, rows, tmp_path / "f.npy", batch_size=BATCH)
    np.testing.assert_allclose(np.load(tmp_path / "f.npy"), direct, rtol=1e-5, atol=1e-7)
