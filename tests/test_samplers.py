"""Samplers fitted after training (keras_vae.samplers): the fit against
scikit-learn on the same codes, the draws against NumPy, saving without
pickle, export with builtin ops, and the command line."""

import json
import math
import os
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_edge_sample

import keras_vae
from keras_vae import cli, edge, evaluation, samplers

LATENT = 3


@pytest.fixture(scope="module")
def trained(mnist):
    (x_train, y_train), _ = mnist
    keras.utils.set_random_seed(0)
    vae = keras_vae.VAE((28, 28, 1), latent_dim=LATENT, hidden_units=(64,), seed=0)
    vae.compile(optimizer="adam")
    vae.fit(x_train[:1000], epochs=2, batch_size=100, verbose=0)
    return vae, x_train[:1000]


def test_the_fit_is_scikit_learns_on_the_posterior_means(trained):
    from sklearn.mixture import GaussianMixture

    vae, x = trained
    sampler = samplers.GaussianMixtureSampler(4).fit(vae, x, seed=3)
    codes = evaluation.posterior_means(vae, x).astype("float64")
    reference = GaussianMixture(4, covariance_type="full", random_state=3, max_iter=200,
                                reg_covar=1e-5).fit(codes)
    np.testing.assert_allclose(sampler.means, reference.means_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sampler.scale_trils @ np.transpose(sampler.scale_trils, (0, 2, 1)),
                               reference.covariances_, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(np.exp(sampler.logits), reference.weights_, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(sampler.log_prob(codes[:50].astype("float32"))),
                               reference.score_samples(codes[:50]), rtol=1e-4, atol=1e-4)


def test_auto_keeps_the_components_with_the_best_held_out_density(trained):
    vae, x = trained
    sampler, scores = samplers.fit_gaussian_mixture(vae, x, num_components="auto")
    assert sorted(scores) == [k for k in samplers.AUTO_COMPONENTS if k <= 900]
    assert sampler.num_components == max(scores, key=scores.get)


def _two_far_components():
    sampler = samplers.GaussianMixtureSampler(2)
    means = np.array([[-10.0, 0.0, 0.0], [10.0, 5.0, -5.0]])
    trils = np.stack([np.eye(3), np.array([[2.0, 0, 0], [1.0, 0.5, 0], [0, 0, 1.0]])])
    sampler.assign(means, trils, np.log([0.3, 0.7]))
    return sampler, means, trils


@pytest.mark.parametrize("seed", [None, np.array([5, 6], "int32")])
def test_draws_have_the_mixtures_weights_means_and_covariances(seed):
    sampler, means, trils = _two_far_components()
    z = np.asarray(sampler.sample(40000, seed=seed), "float64")
    right = z[:, 0] > 0
    assert right.mean() == pytest.approx(0.7, abs=0.01)
    np.testing.assert_allclose(z[right].mean(0), means[1], atol=0.05)
    np.testing.assert_allclose(np.cov(z[right].T), trils[1] @ trils[1].T, atol=0.1)
    np.testing.assert_allclose(np.cov(z[~right].T), np.eye(3), atol=0.06)


@pytest.mark.parametrize("prior", ["standard_normal", "learnable_gaussian",
                                   "mixture_of_gaussians", "vamp", "gmm"])
def test_temperature_scales_each_draws_noise_about_its_component(prior):
    """With the component and ε fixed by the seed, z_T = z_0 + T (z_1 − z_0):
    T = 0 gives the means, T = 1 the prior or sampler itself."""
    vae = keras_vae.VAE((4, 4, 1), latent_dim=LATENT, hidden_units=(8,), seed=0,
                        prior="standard_normal" if prior == "gmm" else prior)
    if prior == "gmm":
        sampler = _two_far_components()[0]
    else:
        sampler = vae.prior
        for weight in sampler.trainable_weights:  # away from the standard normal
            weight.assign(np.random.default_rng(1).normal(0.3, 0.5, weight.shape))
    seed = np.array([3, 4], "int32")
    z = {t: np.asarray(sampler.sample(500, seed=seed, temperature=t), "float64")
         for t in (0.0, 0.5, 1.0)}
    np.testing.assert_allclose(z[0.5], z[0.0] + 0.5 * (z[1.0] - z[0.0]), atol=1e-5)
    np.testing.assert_allclose(z[1.0], np.asarray(sampler.sample(500, seed=seed)), atol=1e-6)
    assert np.std(z[1.0] - z[0.0]) > 0.1  # the noise is there to scale
    if prior == "standard_normal":
        np.testing.assert_allclose(z[0.0], 0.0)
    images = vae.sample(4, seed=1, temperature=0.0, sampler=sampler)
    assert np.all(np.isfinite(images))
    with pytest.raises(ValueError, match=r"Expected a finite number >= 0 for temperature"):
        vae.sample(4, temperature=-1.0)


def test_a_users_sampler_without_temperature_works_at_one_and_is_refused_otherwise():
    class Corner(samplers.Sampler):  # written before samplers took a temperature
        latent_dim = LATENT

        def sample(self, num_samples, seed=None):
            return tf.ones((num_samples, LATENT))

    vae = keras_vae.VAE((4, 4, 1), latent_dim=LATENT, hidden_units=(8,), seed=0)
    np.testing.assert_allclose(vae.sample(2, sampler=Corner()),
                               vae.decode(np.ones((2, LATENT), "float32")), atol=1e-6)
    with pytest.raises(ValueError, match=r"Corner.sample has no temperature argument.*Add "
                                         r"`temperature=1.0` to its sample method"):
        vae.sample(2, sampler=Corner(), temperature=0.5)

    class Generic(keras_vae.priors.Prior):  # a user's prior: the TFP distribution's draw
        def distribution(self):
            import tensorflow_probability as tfp

            normal = tfp.distributions.Normal(tf.zeros([self.latent_dim]), 1.0)
            return tfp.distributions.Independent(normal, reinterpreted_batch_ndims=1)

    user = keras_vae.VAE((4, 4, 1), latent_dim=LATENT, hidden_units=(8,), seed=0,
                         prior=Generic())
    assert np.all(np.isfinite(user.sample(2, seed=1)))
    with pytest.raises(ValueError, match=r"Generic.sample has no temperature argument"):
        user.sample(2, temperature=0.5)


def test_seeded_draws_repeat_and_log_prob_is_the_mixture_density():
    sampler, means, trils = _two_far_components()
    seed = np.array([1, 2], "int32")
    np.testing.assert_array_equal(np.asarray(sampler.sample(7, seed=seed)),
                                  np.asarray(sampler.sample(7, seed=seed)))
    z = np.array([[-9.0, 0.5, 0.2], [11.0, 4.0, -5.5]])
    densities = []
    for k, weight in enumerate((0.3, 0.7)):
        cov = trils[k] @ trils[k].T
        diff = z - means[k]
        quad = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        densities.append(math.log(weight) - 0.5 * quad
                         - 0.5 * np.log(np.linalg.det(2 * math.pi * cov)))
    expected = np.logaddexp(*densities)
    np.testing.assert_allclose(np.asarray(sampler.log_prob(z.astype("float32"))), expected,
                               rtol=1e-5)


def test_a_fitted_sampler_is_saved_in_the_keras_file_without_pickle(trained, tmp_path):
    vae, x = trained
    sampler = samplers.GaussianMixtureSampler(3).fit(vae, x)
    vae.add_sampler("gmm", sampler)
    path = tmp_path / "with_sampler.keras"
    vae.save(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        config = json.loads(archive.read("config.json"))
    assert not any(name.endswith((".pkl", ".pickle")) for name in names)
    saved = config["config"]["samplers"]["gmm"]
    assert saved["class_name"] == "GaussianMixtureSampler"
    np.testing.assert_allclose(saved["config"]["means"], sampler.means, rtol=1e-6)
    again = keras.models.load_model(path)
    assert list(again.samplers) == ["gmm"]
    np.testing.assert_array_equal(np.asarray(again.sample(6, seed=4, sampler="gmm")),
                                  np.asarray(vae.sample(6, seed=4, sampler="gmm")))
    with pytest.raises(ValueError, match="No sampler named 'vamp'"):
        vae.sample(2, sampler="vamp")
    with pytest.raises(ValueError, match="codes of size 2; this model's latent_dim is 3"):
        bad = samplers.GaussianMixtureSampler(1)
        bad.assign(np.zeros((1, 2)), np.eye(2)[None], [0.0])
        vae.add_sampler("small", bad)


@pytest.mark.long  # 10-15 s; the matrix and journeys cover the common path
def test_exports_sample_from_the_fitted_sampler_with_builtin_ops(trained, tmp_path):
    vae, x = trained
    vae.add_sampler("gmm", samplers.GaussianMixtureSampler(3).fit(vae, x))
    saved = keras_vae.export.export_saved_model(vae, str(tmp_path))
    signatures = tf.saved_model.load(saved).signatures
    assert {"sample_gmm", "sample_seeded_gmm"} <= set(signatures)
    def seeded(seed):
        return signatures["sample_seeded_gmm"](
            n=tf.constant(5), seed=tf.constant(seed, tf.int64))["images"].numpy()

    np.testing.assert_array_equal(seeded(9), seeded(9))  # reproducible
    assert not np.allclose(seeded(9), seeded(10))
    # LiteRT converts with builtin ops only (the converter refuses others).
    paths = keras_vae.export.export_litert(vae, str(tmp_path), quantize=("none", "int8"))
    for path in paths.values():
        generator = edge.LiteRTGenerator(path)
        assert generator.samplers == ["gmm"]
        first, second = generator.sample(8, sampler="gmm"), generator.sample(8, sampler="gmm")
        assert first.shape == (8, 28, 28, 1) and 0 <= first.min() and first.max() <= 1
        assert not np.allclose(first, second)
        with pytest.raises(ValueError, match="has no sampler 'vamp'"):
            generator.sample(2, sampler="vamp")
    metadata = json.loads(open(os.path.join(tmp_path, "vae_metadata.json")).read())
    assert metadata["samplers"] == {"gmm": "GaussianMixtureSampler"}
    # On the device path: export/edge_sample.py with TensorFlow and Keras blocked.
    png = tmp_path / "gmm.png"
    result = run_edge_sample(paths["int8"], "--num", "6", "--sampler", "gmm", "--out", png)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["images"] == 6
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.long  # 10-15 s; the matrix and journeys cover the common path
def test_fit_sampler_and_sample_from_the_command_line(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert cli.main(["train", "--limit", "600", "--epochs", "1", "--hidden-units", "32",
                     "--latent-dim", "2", "--run-dir", run]) == 0
    assert cli.main(["fit-sampler", run, "--components", "3"]) == 0
    report = json.loads(open(os.path.join(run, "sampler_gmm.json")).read())
    assert report["components"] == 3
    assert os.path.getsize(os.path.join(run, "samples_gmm.png")) > 1000
    assert list(keras.models.load_model(os.path.join(run, "model.keras")).samplers) == ["gmm"]
    os.remove(os.path.join(run, "samples_gmm.png"))
    assert cli.main(["sample", run, "--sampler", "gmm"]) == 0
    assert os.path.exists(os.path.join(run, "samples_gmm.png"))
    capsys.readouterr()
    assert cli.main(["fit-sampler", run, "--components", "0"]) == 2
    assert "Invalid components: 0" in capsys.readouterr().err
    assert cli.main(["fit-sampler", run, "--sampler", "flow"]) == 2
    assert "Unknown sampler: 'flow'" in capsys.readouterr().err
    # A run with fitted samplers can still be overwritten: its files are a run's.
    assert cli.main(["train", "--limit", "600", "--epochs", "1", "--hidden-units", "32",
                     "--latent-dim", "2", "--run-dir", run, "--overwrite"]) == 0
