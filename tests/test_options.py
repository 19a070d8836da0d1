"""Every accepted option changes the result: each level of the combination
matrix against the default model, the objectives' parameters, a fitted
sampler and a conditional model's labels."""

import itertools

import keras
import numpy as np
import pytest
from conftest import small_vae

import keras_vae
from keras_vae import objectives

_DEFAULT_LEVELS = {"likelihood": "bernoulli", "prior": "standard_normal",
                   "posterior": "diagonal", "objective": "elbo", "network": "mlp",
                   "conditional": "no", "num_samples": "1", "use_exact_kl": "True",
                   "sampler": "prior", "hierarchy": "none", "precision": "float32",
                   "score": "elbo", "input": "image"}


_BASE = {"objective": {"num_samples": 3}}


_OBJECTIVES = {"elbo(free_bits>0)": objectives.Elbo(free_bits=5.0),
               "miwae(groups>1)": objectives.Miwae(groups=3),
               "piwae(groups>1)": objectives.Piwae(groups=3)}


def _model_kwargs(option, level):
    return {
        "likelihood": {"likelihood": level},
        "prior": {"prior": level},
        "posterior": {"posterior": level},
        "objective": {"objective": _OBJECTIVES.get(level, level), "num_samples": 3},
        "network": {"encoder": level, "decoder": level, "conv_filters": (4,)},
        "num_samples": {"num_samples": 3},
        "use_exact_kl": {"use_exact_kl": False},
        "hierarchy": {"latent_dims": (3, 2), "inference": level},
    }[option]


def test_each_objectives_parameter_changes_the_loss(small_data):
    """Ciwae's β, at other than its default (the matrix has one CIWAE level)."""
    x = small_data[:16]
    losses = []
    for objective in (objectives.Ciwae(beta=0.5), objectives.Ciwae(beta=0.1)):
        vae = small_vae(objective=objective, num_samples=3)
        vae.compile(optimizer=keras.optimizers.Adam(0.05))
        vae.fit(x, epochs=3, batch_size=16, shuffle=False, verbose=0)
        losses.append(vae.evaluate(x, batch_size=16, verbose=0, return_dict=True)["loss"])
    assert abs(losses[0] - losses[1]) > 1e-3 * abs(losses[0]), losses


@pytest.mark.parametrize("option, level", [
    (option, level) for option, levels in keras_vae.compatibility.LEVELS.items()
    for level in levels if level != _DEFAULT_LEVELS[option]
    and option not in ("conditional", "sampler", "precision", "score", "input")])
def test_each_accepted_option_changes_the_loss(small_data, option, level):
    base = _trained_loss(small_data[:16], **_BASE.get(option, {}))
    varied = _trained_loss(small_data[:16], **_model_kwargs(option, level))
    assert np.isfinite(varied) and abs(varied - base) > 1e-3 * abs(base), (base, varied)


_LOSSES = {}


def _trained_loss(x, **kwargs):
    """The loss after a few steps (a learnable prior starts as the standard
    normal), computed once per model: the base models serve many tests."""
    key = repr(sorted(kwargs.items()))
    if key not in _LOSSES:
        vae = small_vae(**kwargs)
        vae.compile(optimizer=keras.optimizers.Adam(0.05))
        vae.fit(x, epochs=3, batch_size=16, shuffle=False, verbose=0)
        _LOSSES[key] = vae.evaluate(x, batch_size=16, verbose=0, return_dict=True)["loss"]
    return _LOSSES[key]


def test_a_fitted_sampler_changes_the_samples(small_data):
    # The sampler acts after training: it changes what `sample` draws.
    vae = small_vae()
    vae.add_sampler("gmm", keras_vae.samplers.GaussianMixtureSampler(2).fit(vae, small_data))
    prior, fitted = (np.asarray(vae.sample(8, seed=1, sampler=s)) for s in (None, "gmm"))
    assert np.abs(prior - fitted).max() > 1e-3


def test_a_conditional_model_uses_its_labels(small_data):
    vae = keras_vae.ConditionalVAE(input_shape=(6, 6, 1), num_classes=3, latent_dim=3,
                                   hidden_units=(8,), seed=7)
    z = np.zeros((2, 3), "float32")
    a, b = (np.asarray(vae.decode(z, labels=[c, c])) for c in (0, 2))
    assert np.abs(a - b).max() > 1e-4



def test_each_score_ranks_the_examples_its_own_way(small_data):
    """The detector's score acts after training: each gives other scores."""
    vae = small_vae()
    values = {name: vae.fit_detector(small_data, score=name, false_positive_rate=0.1,
                                     num_samples=3).scores(vae, small_data)
              for name in keras_vae.compatibility.LEVELS["score"]}
    for a, b in itertools.combinations(values, 2):
        assert np.abs(values[a] - values[b]).max() > 1e-3, (a, b)
