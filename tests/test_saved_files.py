"""`.keras` files saved by an earlier version of the package still load.

The files in tests/fixtures/ were written by main at 1a3cd0c, before the
library was split into packages (tests/fixtures/make_fixtures.py).
"""

import pathlib

import keras
import numpy as np
import pytest

import keras_vae

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
EXPECTED = np.load(FIXTURES / "saved_before_move.npz")
LABELS = np.array([0, 1, 2, 0])


@pytest.mark.parametrize("name, cls, prior", [
    ("vae_mog_gaussian", keras_vae.VAE, "MixtureOfGaussians"),
    ("vae_vamp_conv_fullcov", keras_vae.VAE, "VampPrior"),
    ("cvae_learnable_freebits", keras_vae.ConditionalVAE, "LearnableGaussian"),
])
def test_old_keras_file_loads_and_decodes_the_same(name, cls, prior):
    vae = keras.saving.load_model(FIXTURES / f"{name}.keras")
    assert type(vae) is cls
    assert type(vae.prior).__name__ == prior
    z = EXPECTED["z"]
    decoded = vae.decode(z, LABELS) if vae.num_classes else vae.decode(z)
    np.testing.assert_allclose(np.asarray(decoded), EXPECTED[f"{name}_decode"], atol=1e-6)
