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


# Saved by main c960ba7, before the objectives held their parameters and the
# hierarchy stopped taking a prior and a posterior (issue 35;
# tests/fixtures/make_fixtures_objectives.py).
OBJECTIVES = np.load(FIXTURES / "saved_before_objects.npz")


@pytest.mark.parametrize("name, cls, objective", [
    ("elbo_free_bits", keras_vae.VAE, keras_vae.objectives.Elbo(free_bits=0.1)),
    ("miwae_groups", keras_vae.VAE, keras_vae.objectives.Miwae(groups=2)),
    ("ciwae_beta", keras_vae.VAE, keras_vae.objectives.Ciwae(beta=0.25)),
    ("ladder_piwae", keras_vae.HierarchicalVAE, keras_vae.objectives.Piwae(groups=2)),
])
def test_a_file_saved_with_the_objectives_keywords_loads_into_objects(name, cls, objective,
                                                                      recwarn):
    vae = keras.saving.load_model(FIXTURES / f"{name}_before_objects.keras")
    assert type(vae) is cls and vae.objective == objective
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)
                and "deprecated" in str(w.message)]  # the user cannot change an old file
    z = OBJECTIVES["z"]
    np.testing.assert_allclose(np.asarray(vae.decode(z)), OBJECTIVES[f"{name}_decode"],
                               atol=1e-6)
    x = (np.random.default_rng(0).random((64, 8, 8, 1)) > 0.5).astype("float32")[:4]
    np.testing.assert_allclose(np.asarray(vae.encode(x)[0]),
                               OBJECTIVES[f"{name}_encode_loc"], atol=1e-6)
    assert "free_bits" not in vae.get_config() and "importance_groups" not in vae.get_config()
    if cls is keras_vae.HierarchicalVAE:
        assert "prior" not in vae.get_config() and vae.inference == "ladder"
