"""The combination matrix's cells: a model and its data for one row of levels.

A row maps each option of `keras_vae.compatibility.LEVELS` (or a subset:
the export cells take `GRAPH_OPTIONS` only) to a level; an option a row
leaves out takes its default. `tests/test_matrix_model.py` trains,
evaluates and reloads these models, `tests/test_matrix_export.py` exports
them, and `tests/test_journeys.py` runs a few through the command line's
jobs.
"""

import keras
import numpy as np

import keras_vae
from keras_vae import objectives, priors
from keras_vae.distributions.standardized import Standardized
from keras_vae.runs import config as config_lib

IMAGE = (8, 8, 1)
#: The autoregressive mixture's images: its mean and draws go pass after
#: pass (2H + W - 2 of them), each unrolled in the LiteRT exports, whose
#: conversion took most of such a cell at 8x8 (a throwaway timing: 25 of 34 s);
#: 10 passes at 4x4, not 22.
AUTOREGRESSIVE_IMAGE = (4, 4, 1)
#: A table's row: 8 columns in their own units (input="table").
TABLE = (8,)
LATENT = 2
CLASSES = 3
SAMPLES = 3  # num_samples "> 1", so that MIWAE and PIWAE make 3 groups of 1

#: Each objective level's objective (a plain name: `objectives.get(name)`).
OBJECTIVES = {"elbo(free_bits>0)": objectives.Elbo(free_bits=0.1),
              "miwae(groups>1)": objectives.Miwae(groups=SAMPLES),
              "piwae(groups>1)": objectives.Piwae(groups=SAMPLES),
              "ciwae": objectives.Ciwae(beta=0.25)}


def objective_of(level):
    return OBJECTIVES[level] if level in OBJECTIVES else objectives.get(level)


def prior_of(level):
    """Mixtures with three components (their defaults are larger)."""
    if level in ("mixture_of_gaussians", "vamp"):
        return type(priors.get(level))(num_components=3)
    return level


def image_shape(levels):
    """The cell's image shape."""
    autoregressive = levels.get("likelihood") == "autoregressive_logistic_mixture"
    return AUTOREGRESSIVE_IMAGE if autoregressive else IMAGE


def images(n, seed=0, shape=IMAGE):
    """`n` 8-bit images of `shape` with a bright band whose row the label
    sets (rows 2·label to 2·label + 2 of an 8×8 image, row label of a
    4×4 one), and the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    x = rng.integers(0, 60, (n,) + shape[:2])
    height, width = shape[:2]
    for i, label in enumerate(labels):
        row = label * height // 4
        x[i, row: row + (3 * height) // 8, 1:width - 1] += 180
    return x.astype("uint8")[..., None], labels.astype("int32")


def table(n, seed=0):
    """`n` rows of 8 correlated columns around 100 (scales 1 to 8), shifted
    by their label, and the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    common = rng.normal(size=(n, 1))
    x = 100.0 + 30.0 * common + rng.normal(0.0, np.arange(1, 9), (n, 8)) + 5.0 * labels[:, None]
    return x.astype("float32"), labels.astype("int32")


def data(levels, n=32, seed=0):
    """`(x, labels)` for the cell's likelihood: binary images for the
    Bernoulli, grey levels k/255 for the others; a table's rows in their
    units for input="table"."""
    if levels.get("input") == "table":
        return table(n, seed)
    x, labels = images(n, seed, image_shape(levels))
    if levels.get("likelihood", "bernoulli") == "bernoulli":
        return (x > 127).astype("float32"), labels
    return (x / 255.0).astype("float32"), labels


def build(levels):
    """The untrained model of a row, with fixed initial weights."""
    keras.utils.set_random_seed(1)
    network = levels.get("network", "mlp")
    filters = (4, 8)
    if network == "resnet":  # one stage of one block: the cells test combinations, not depth
        network, filters = keras_vae.networks.ResNet(blocks=1), (4,)
    likelihood, shape = levels.get("likelihood", "bernoulli"), image_shape(levels)
    if levels.get("input") == "table":  # the columns standardised by the likelihood
        likelihood, shape = Standardized.fit(likelihood, table(32)[0]), TABLE
    kwargs = dict(
        likelihood=likelihood,
        objective=objective_of(levels.get("objective", "elbo")),
        encoder=network, decoder=network, hidden_units=(16,), conv_filters=filters,
        num_samples=SAMPLES if levels.get("num_samples") == "> 1" else 1,
        use_exact_kl=levels.get("use_exact_kl", "True") == "True", seed=1)
    hierarchy = levels.get("hierarchy", "none")
    if hierarchy != "none":
        return keras_vae.HierarchicalVAE(shape, latent_dims=(LATENT, 1), inference=hierarchy,
                                         hierarchy_units=(4,), **kwargs)
    kwargs.update(latent_dim=LATENT, prior=prior_of(levels.get("prior", "standard_normal")),
                  posterior=levels.get("posterior", "diagonal"))
    if levels.get("conditional", "no") == "yes":
        return keras_vae.ConditionalVAE(shape, num_classes=CLASSES, **kwargs)
    return keras_vae.VAE(shape, **kwargs)


def inputs(vae, x, labels):
    """What `fit` takes: the images, with their labels for a conditional model."""
    return vae.join_inputs(x, labels if vae.num_classes else None)


def fit_sampler(vae, levels, x, labels):
    """Fit and add the row's sampler; its name for `sample`, or None."""
    if levels.get("sampler", "prior") == "prior":
        return None
    fitted = keras_vae.samplers.GaussianMixtureSampler(2).fit(vae, inputs(vae, x, labels))
    vae.add_sampler("gmm", fitted)
    return "gmm"


def fit_detector(vae, levels, x, labels, sampler=None):
    """Fit and keep the row's anomaly detector (3 fixed samples, 10% of the
    32 images flagged); the detector. The latent score of a row with a
    fitted sampler is the code's density under that sampler."""
    score = levels.get("score", "elbo")
    if score == "latent" and sampler is not None:
        score = keras_vae.scores.LatentDensity(sampler)
    return vae.fit_detector(inputs(vae, x, labels), score=score,
                            false_positive_rate=0.1, num_samples=3)


def cell_id(levels):
    return "-".join(str(v).replace(" ", "").replace(">", "gt").replace("(", "_")
                    .replace(")", "") for v in levels.values())


def config_of(levels, dataset):
    """A run config for a row, as flags and config files give it (the
    objectives' parameters as `free_bits`, `importance_groups` and
    `ciwae_beta`)."""
    # Binary data for the Bernoulli, 8-bit grey levels for the others.
    binarize = ("static" if levels["likelihood"] == "bernoulli"
                and levels.get("input") != "table" else "none")
    return config_lib.resolve({
        "dataset": dataset, "binarize": binarize, "epochs": 1, "batch_size": 32,
        "hidden_units": [16], "conv_filters": [4] if levels["network"] == "resnet" else [4, 8],
        "likelihood": levels["likelihood"], "prior": levels["prior"] or "standard_normal",
        "prior_components": 3 if levels["prior"] in ("mixture_of_gaussians", "vamp")
        else None,
        "posterior": levels["posterior"] or "diagonal",
        "objective": levels["objective"].split("(")[0],
        "encoder": levels["network"], "decoder": levels["network"],
        **({"resnet_blocks": 1} if levels["network"] == "resnet" else {}),
        "conditional": levels["conditional"] == "yes",
        "num_samples": 3 if levels["num_samples"] == "> 1" else 1,
        "use_exact_kl": levels["use_exact_kl"] == "True",
        # The objectives' parameters, as flags and config keys name them.
        **{"elbo(free_bits>0)": {"free_bits": 0.1}, "miwae(groups>1)": {"importance_groups": 3},
           "piwae(groups>1)": {"importance_groups": 3}, "ciwae": {"ciwae_beta": 0.25},
           }.get(levels["objective"], {}),
        "seed": 1,
        # One latent layer of LATENT, or a hierarchy of LATENT and 1.
        **({"latent_dim": LATENT} if levels["hierarchy"] == "none" else {
            "latent_dims": [LATENT, 1], "inference": levels["hierarchy"],
            "hierarchy_units": [4]}),
    })
