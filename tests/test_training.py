"""The stage trainer (`fit`) takes several steps per call into the graph: it must still take
every step, on the same batches in the same order, as one step per call does."""

from __future__ import annotations

import keras
import numpy as np

from facetl.models.heads import chapter_head
from facetl.models.training import STEPS_PER_CALL, FeatureBatches, fit


def test_several_steps_per_call_train_exactly_as_one_step_at_a_time():
    batch, epochs = 16, 2
    rows = batch * (STEPS_PER_CALL + 5) + 7  # a partial call, and a partial batch, per epoch
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 5, (rows + 20, 5, 5, 24)).astype("float32")
    targets = (rng.random(rows + 20) > 0.5).astype("float32")
    train, val = np.arange(rows), np.arange(rows, rows + 20)

    def head() -> keras.Model:
        keras.utils.set_random_seed(1)
        return chapter_head((5, 5, 24), 1, 1, "sigmoid", 5.0, dropout=0.0, patches=True)

    trained = head()
    fit(trained, features, targets, train, val, {"learning_rate": 1e-3, "batch_size": batch,
        "epochs": epochs, "loss": "binary_crossentropy"}, seed=3, live_dir=None)

    oracle = head()  # Keras' own fit, one step per call, on the same batches
    oracle.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                   steps_per_execution=1)
    oracle.fit(FeatureBatches(features, targets, train, batch, shuffle=True, seed=3),
               epochs=epochs, verbose=0)

    for ours, theirs in zip(trained.get_weights(), oracle.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
