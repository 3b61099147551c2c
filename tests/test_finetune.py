"""Fine-tuning: which layers unfreeze, frozen BatchNorm, the batch loader, and the trainer."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from facetl.core.errors import FacetlError
from facetl.models import finetune as trainer
from facetl.models.finetune import ImageBatches, finetune, optimizer, unfreeze_top

CFG = {"learning_rate": 1e-2, "epochs": 6, "batch_size": 16, "patience": 10,
       "loss": "binary_crossentropy", "optimizer": "adamw", "weight_decay": 0.004}


def small_backbone(size: int = 16) -> keras.Model:
    """Three conv + BatchNorm + ReLU blocks: a backbone small enough to train in a test."""
    inputs = keras.Input((size, size, 3))
    x = inputs
    for i, filters in enumerate((8, 8, 16)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    return keras.Model(inputs, x, name="small")


def mobilenet() -> keras.Model:
    return keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                          input_shape=(32, 32, 3))


def end_to_end(backbone: keras.Model, units: int = 1, activation: str = "sigmoid") -> keras.Model:
    """image -> `<name>_extractor` (preprocess, frozen backbone in inference mode, features)
    -> head: the pipeline's saved model, in miniature."""
    backbone.trainable = False
    shape = backbone.input_shape[1:]
    image = keras.Input(shape, name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(image)
    features = keras.layers.Activation("linear", name="features")(backbone(x, training=False))
    extractor = keras.Model(image, features, name=f"{backbone.name}_extractor")
    head_in = keras.Input(features.shape[1:])
    pooled = keras.layers.GlobalAveragePooling2D()(head_in)
    head = keras.Model(head_in, keras.layers.Dense(units, activation)(pooled), name="head")
    outer = keras.Input(shape, name="image")
    return keras.Model(outer, head(extractor(outer)), name="end_to_end")


def brightness_task(count: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy flat images and whether each is brighter than mid-grey: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0, 255, count)
    noise = rng.normal(0, 20, (count, size, size, 3))
    images = np.clip(levels[:, None, None, None] + noise, 0, 255).astype(np.uint8)
    return images, (levels > 127.5).astype("float32")[:, None]


def weights_by_name(layer: keras.layers.Layer) -> dict[str, np.ndarray]:
    return {weight.path: keras.ops.convert_to_numpy(weight).copy() for weight in layer.weights}


def batchnorms(backbone: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in backbone.layers
            if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.mark.backend
def test_unfreeze_top_counts_weight_layers_from_the_output() -> None:
    backbone = mobilenet()
    model = end_to_end(backbone)
    assert unfreeze_top(model, 4) == ["block_16_expand", "block_16_depthwise", "block_16_project",
                                      "Conv_1"]
    trainable = [layer.name for layer in backbone.layers if layer.trainable_weights]
    assert trainable == ["block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1"]
    assert not any(layer.trainable for layer in batchnorms(backbone))
    assert len(model.trainable_weights) == 4 + 2  # four bias-free kernels, the head's Dense
    convs = [layer.name for layer in backbone.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    assert unfreeze_top(model, "all") == unfreeze_top(model, -1) == convs
    assert not any(layer.trainable for layer in batchnorms(backbone))
    assert unfreeze_top(model, 0) == [] and not backbone.trainable_weights


@pytest.mark.backend
def test_unfreeze_top_needs_a_backbone() -> None:
    inputs = keras.Input((8,))
    no_extractor = keras.Model(inputs, keras.layers.Dense(2)(inputs), name="plain")
    with pytest.raises(ValueError, match="_extractor"):
        unfreeze_top(no_extractor, 1)
    dense = keras.Model(inputs, keras.layers.Dense(4)(inputs), name="descriptor")
    no_convs = keras.Model(inputs, dense(inputs), name="vector_extractor")
    with pytest.raises(ValueError, match="no Keras backbone"):
        unfreeze_top(no_convs, 1)
    with pytest.raises(ValueError, match="count"):
        unfreeze_top(end_to_end(small_backbone()), -2)


def test_image_batches_read_the_rows_asked_for(tmp_path: Path) -> None:
    rows = np.arange(20, dtype=np.uint8)
    np.save(tmp_path / "images.npy", np.broadcast_to(rows[:, None, None, None], (20, 4, 4, 3)))
    images = np.load(tmp_path / "images.npy", mmap_mode="r")
    targets = rows.astype("float32") * 10
    seen = []

    def augment(batch, batch_targets, rng):
        seen.append(rng)
        return batch + 1, batch_targets

    indices = np.array([3, 17, 5, 8, 11, 2, 14])
    batches = ImageBatches(images, targets, indices, 3, shuffle=True, seed=1, augment=augment)
    epochs = []
    for _ in range(2):
        got = [batches[i] for i in range(len(batches))]
        assert len(got) == 3 and all(x.dtype == np.float32 for x, _ in got)
        for x, y in got:
            np.testing.assert_array_equal(x[:, 0, 0, 0] - 1, y / 10)  # augmented rows, in order
        epochs.append(np.concatenate([y for _, y in got]) / 10)
        batches.on_epoch_end()
    assert all(sorted(epoch) == sorted(indices) for epoch in epochs)
    assert list(epochs[0]) != list(epochs[1])  # reshuffled
    assert len(seen) == 6
    plain = ImageBatches(images, targets, indices, 4)
    np.testing.assert_array_equal(plain[0][0][:, 0, 0, 0], [3, 5, 8, 17])  # sorted reads


@pytest.mark.backend
def test_finetune_keeps_batchnorm_and_lower_layers(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    backbone = mobilenet()
    model = end_to_end(backbone)
    unfreeze_top(model, 3)
    before = weights_by_name(backbone)
    images, labels = brightness_task(32, size=32)
    cfg = CFG | {"epochs": 1, "batch_size": 8}
    finetune(model, images, labels, np.arange(24), np.arange(24, 32), cfg, seed=0,
             live_dir=tmp_path / "live")
    after = weights_by_name(backbone)
    for layer in batchnorms(backbone):
        for weight in layer.weights:
            np.testing.assert_array_equal(after[weight.path], before[weight.path])
    top, bottom = backbone.get_layer("Conv_1").kernel, backbone.get_layer("Conv1").kernel
    assert not np.array_equal(after[top.path], before[top.path])
    np.testing.assert_array_equal(after[bottom.path], before[bottom.path])
    assert (tmp_path / "live" / "metrics.json").is_file()


@pytest.mark.backend
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_finetune_learns_a_small_task(task: str) -> None:
    keras.utils.set_random_seed(0)
    images, labels = brightness_task(96)
    if task == "classification":
        model, cfg, targets = end_to_end(small_backbone()), CFG, labels
    else:  # keypoint-like: continuous targets, linear outputs
        model = end_to_end(small_backbone(), units=2, activation="linear")
        cfg = CFG | {"loss": "mse", "metrics": ["mae"], "warmup_epochs": 1, "learning_rate": 3e-3}
        targets = np.concatenate([labels, images.mean(axis=(1, 2, 3))[:, None] / 255], axis=1)
    unfreeze_top(model, -1)
    history = finetune(model, images, targets, np.arange(64), np.arange(64, 96), cfg, seed=0)
    losses = history.history["val_loss"]
    assert len(losses) == cfg["epochs"] and losses[-1] < 0.5 * losses[0]


def test_the_optimizer_is_the_one_the_params_name() -> None:
    """optimizer and weight_decay are params (DVC sees them): no default of the code's own."""
    adamw = optimizer(CFG | {"weight_decay": 0.01}, steps_per_epoch=4)
    assert isinstance(adamw, keras.optimizers.AdamW)
    assert float(adamw.weight_decay) == pytest.approx(0.01)
    assert type(optimizer(CFG | {"optimizer": "adam"}, 4)) is keras.optimizers.Adam
    for key in ("optimizer", "weight_decay"):
        with pytest.raises(KeyError, match=key):
            optimizer({k: v for k, v in CFG.items() if k != key}, 4)


def test_loader_threads_come_from_facetl_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads cannot change a result, so they are an environment variable, not a param."""
    seen = []

    class Recording(ImageBatches):
        def __init__(self, *args, **kwargs) -> None:
            seen.append(kwargs["workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(trainer, "ImageBatches", Recording)
    monkeypatch.setenv("FACETL_WORKERS", "3")
    images, labels = brightness_task(16)
    finetune(end_to_end(small_backbone()), images, labels, np.arange(8), np.arange(8, 16),
             CFG | {"epochs": 1}, seed=0)
    assert seen == [3, 3]  # the train and the validation loader
    monkeypatch.setenv("FACETL_WORKERS", "0")
    with pytest.raises(FacetlError, match="FACETL_WORKERS"):
        finetune(end_to_end(small_backbone()), images, labels, np.arange(8), np.arange(8, 16),
                 CFG | {"epochs": 1}, seed=0)


@pytest.mark.backend
def test_early_stopping_restores_the_best_epoch() -> None:
    """Validation labels are the opposite of the training labels: the more the model learns,
    the worse validation gets, so training stops early and the final weights must be the best
    epoch's (the model evaluates to the best val_loss, not the last)."""
    keras.utils.set_random_seed(0)
    images, labels = brightness_task(96)
    targets = np.concatenate([labels[:64], 1 - labels[64:]])
    model = end_to_end(small_backbone())
    unfreeze_top(model, -1)
    cfg = CFG | {"epochs": 20, "patience": 2}
    history = finetune(model, images, targets, np.arange(64), np.arange(64, 96), cfg, seed=0)
    losses = history.history["val_loss"]
    assert len(losses) < cfg["epochs"] and losses[-1] > 1.1 * min(losses)
    final = model.evaluate(ImageBatches(images, targets, np.arange(64, 96), 16), verbose=0,
                           return_dict=True)["loss"]
    assert final == pytest.approx(min(losses), rel=1e-4)


class DtypeProbe(keras.layers.Layer):
    """Passes its input on and records the dtype it computes in (at trace time too)."""

    def __init__(self, seen: list[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.record = seen.append  # not the list: Keras would track a copy of it

    def call(self, x):
        self.record(keras.backend.standardize_dtype(x.dtype))
        return x


@pytest.mark.backend
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains_the_backbone_in_it_then_restores_float32(precision: str) -> None:
    keras.utils.set_random_seed(0)
    seen: list[str] = []
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv0")(inputs)
    x = DtypeProbe(seen, name="probe")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="conv1")(x)
    model = end_to_end(keras.Model(inputs, keras.layers.ReLU()(x), name="small"))
    unfreeze_top(model, -1)
    images, labels = brightness_task(96)
    history = finetune(model, images, labels, np.arange(64), np.arange(64, 96),
                       CFG | {"learning_rate": 3e-3}, seed=0, precision=precision)
    assert precision in seen  # the backbone computed in the mixed precision while training
    losses = history.history["val_loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0]
    seen.clear()
    prediction = model.predict(images[:4], verbose=0)
    assert seen == ["float32"] and prediction.dtype == np.float32  # its own policy again
    assert all(weight.dtype == "float32" for weight in model.weights)
