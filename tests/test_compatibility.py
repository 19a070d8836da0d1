"""keras_vae.compatibility: each refused pair is refused up front with its
fix, the rules describe real incompatibilities only, and the table in docs/
is generated from them."""

import os
import types

import numpy as np
import pytest
from cells import CLASSES, IMAGE, TABLE, config_of, table

import keras_vae
from keras_vae import compatibility, evaluation, objectives, runs


def _refused_only_by(rule):
    """Levels holding the rule's pair and otherwise no refused pair."""
    levels = dict([rule.first, rule.second])
    for option, values in compatibility.LEVELS.items():
        if option in levels:
            continue
        if option in compatibility.replaced(levels):
            levels[option] = None
            continue
        levels[option] = next(v for v in values if not any(
            compatibility.rule_for((option, v), (o, w)) for o, w in levels.items()))
    return levels


def _build_and_evaluate(levels):
    """Build the cell's model; where the evaluator's precision is part of the
    rule, start its evaluation too (the model takes no precision)."""
    config = config_of(levels, "mnist")
    shape, splits = IMAGE, None
    if levels["input"] == "table":  # a table's splits: its columns and training rows
        shape = TABLE
        splits = types.SimpleNamespace(columns=[f"c{i}" for i in range(8)],
                                       x_train=table(16)[0])
    vae = runs.build_model({**config, "num_classes": CLASSES}, shape, splits)
    x = np.zeros((2,) + vae.data_shape, "float32")
    evaluation.log_likelihood(vae, vae.join_inputs(x, [0, 1] if vae.num_classes else None),
                              num_samples=1, verbose=False, precision=levels["precision"])


@pytest.mark.parametrize("rule", compatibility.RULES,
                         ids=lambda r: f"{r.first[0]}-{r.first[1]}-{r.second[0]}-{r.second[1]}")
def test_each_refused_pair_is_refused_up_front(rule):
    """At construction, or, for the evaluator's precision, before the
    evaluation computes anything; the message names both and the fix."""
    levels = _refused_only_by(rule)
    with pytest.raises(ValueError) as error:
        _build_and_evaluate(levels)
    message = str(error.value)
    for option, _ in (rule.first, rule.second):
        assert option in message or (option == "conditional" and "ConditionalVAE"
                                     in message), message
    assert rule.instead in message and "cannot be combined" in message


def test_a_refused_pair_names_the_objects_parameter():
    with pytest.raises(ValueError, match=r"objective=Elbo\(free_bits > 0\) cannot be "
                                         r"combined with prior='vamp'.*Elbo\(\) without free"):
        keras_vae.VAE((4, 4, 1), latent_dim=2, objective=objectives.Elbo(free_bits=0.5),
                      prior="vamp")


def test_the_rules_are_the_real_incompatibilities_only():
    """Issue 35: 41 rules became 13 when the objectives took their parameters
    and the hierarchy stopped taking a prior and a posterior. No rule names
    an option that no longer exists, and each pair is refused once."""
    assert len(compatibility.RULES) == 21  # tables refuse 7 levels (issue 33: the autoregressive)
    pairs = [frozenset((rule.first, rule.second)) for rule in compatibility.RULES]
    assert len(set(pairs)) == len(pairs)
    for rule in compatibility.RULES:
        for option, level in (rule.first, rule.second):
            assert level in compatibility.LEVELS[option], (option, level)
        assert compatibility.applies(rule.first, rule.second), rule


def test_the_levels_come_from_the_registries():
    from keras_vae.distributions import likelihoods, posteriors, priors
    from keras_vae.models import networks

    levels = compatibility.LEVELS
    assert levels["likelihood"] == likelihoods.names()
    assert levels["prior"] == priors.names()
    assert levels["posterior"] == posteriors.names()
    assert levels["network"] == networks.names()
    assert {level.split("(")[0] for level in levels["objective"]} == set(objectives.names())


def test_a_hierarchy_replaces_the_prior_and_the_posterior():
    row = {"hierarchy": "ladder", "prior": "vamp"}
    assert compatibility.replaced(row) == {"prior", "posterior"}
    assert not compatibility.supported(row)
    assert compatibility.supported({"hierarchy": "ladder", "prior": None})
    assert not compatibility.applies(("hierarchy", "bottom_up"), ("posterior", "iaf"))
    assert compatibility.applies(("hierarchy", "none"), ("posterior", "iaf"))


def test_the_table_in_docs_is_generated_from_the_rules():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "compatibility.md"), encoding="utf-8") as f:
        assert f.read() == compatibility.markdown(), (
            "docs/compatibility.md is stale: run "
            "`python -m keras_vae.compatibility > docs/compatibility.md`")
