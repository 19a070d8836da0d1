"""Which options combine: the one source of truth for refusals and the table.

Every documented option of the model has a few *levels* (a likelihood's
name, free bits off or on, ...). A pair of levels is either supported or
refused by one `Rule` below; `VAE.__init__` calls `check` and raises the
rule's `ValueError` before anything is built, the combination tests take
their matrix from `LEVELS`, and `docs/compatibility.md` is written by
`python -m keras_vae.compatibility` from the same rules.

A pair is refused only when it cannot work. A parameter that the chosen
object would ignore cannot be expressed at all: it belongs to that object
(`Elbo(free_bits=...)`, `Miwae(groups=...)`, `Ciwae(beta=...)`), and a
`HierarchicalVAE` takes no prior or posterior (`REPLACES`).
"""

import collections
import functools
import itertools
import random
import sys

from keras_vae.distributions import likelihoods, posteriors, priors
from keras_vae.models import networks, objectives, scores

#: The levels of each option in the combination matrix.
LEVELS = {
    # The registries' names: a new likelihood, prior, ... joins when registered.
    "likelihood": likelihoods.names(),
    "prior": priors.names(),
    "posterior": posteriors.names(),
    # An objective's levels: its parameters where they change what combines
    # (`Objective.level`: free bits on or off, MIWAE's and PIWAE's groups).
    "objective": tuple(level for name in objectives.names()
                       for level in objectives.REGISTRY[name].levels or (name,)),
    "network": networks.names(),
    "conditional": ("no", "yes"),
    "num_samples": ("1", "> 1"),
    "use_exact_kl": ("True", "False"),
    # Where `sample` draws z from: the prior, or a Gaussian mixture fitted
    # after training (`keras_vae.samplers`, `keras-vae fit-sampler`).
    "sampler": ("prior", "gmm"),
    # The detector's score (`models.scores`); latent with gmm: the fitted mixture's.
    "score": scores.names(),
    # An image, or a table's row in its units (`distributions.standardized`).
    "input": ("image", "table"),
    # Several stochastic layers (`keras_vae.HierarchicalVAE`) and how their
    # posterior is inferred; "none": one layer.
    "hierarchy": ("none", "bottom_up", "ladder"),
    # How the importance-sampled likelihood decodes (`keras-vae evaluate
    # --iw-precision`), refused where the evaluation starts (not a model option).
    "precision": ("float32", "bfloat16"),
}

#: The options that shape an exported graph (SavedModel, LiteRT): the
#: others act in training or evaluation only.
GRAPH_OPTIONS = ("likelihood", "prior", "posterior", "network", "conditional", "sampler",
                 "hierarchy", "score", "input")

#: Options that a level of another option replaces, so they have no level
#: there (None): a hierarchy's prior and posterior are its own chains, and
#: `HierarchicalVAE` takes neither.
REPLACES = {("hierarchy", "bottom_up"): ("prior", "posterior"),
            ("hierarchy", "ladder"): ("prior", "posterior")}

Rule = collections.namedtuple("Rule", "first second reason instead")

_FREE_BITS = ("objective", "elbo(free_bits>0)")

RULES = (
    *(Rule(_FREE_BITS, ("prior", prior),
           f"free bits floor a closed-form KL per latent dimension, and {name} has none",
           "prior='standard_normal' or 'learnable_gaussian', or Elbo() without free bits")
      for prior, name in (("mixture_of_gaussians", "a mixture prior"),
                          ("vamp", "the VampPrior"))),
    *(Rule(_FREE_BITS, ("posterior", posterior),
           f"the KL of {name} posterior does not split into one term per latent dimension",
           "posterior='diagonal', or Elbo() without free bits")
      for posterior, name in (("full_covariance", "a full-covariance"),
                              ("iaf", "an inverse autoregressive flow"))),
    *(Rule(_FREE_BITS, ("hierarchy", inference),
           "the KL of a hierarchy does not split into one closed-form term per latent "
           "dimension", "Elbo() without free bits, or KL warm-up (kl_warmup_epochs)")
      for inference in ("bottom_up", "ladder")),
    *(Rule(("objective", f"{name}(groups>1)"), ("num_samples", "1"),
           "one sample cannot be split into several groups",
           "num_samples = groups × samples per group, for example num_samples=64 "
           f"with {name.capitalize()}(groups=8)")
      for name in ("miwae", "piwae")),
    Rule(("prior", "vamp"), ("posterior", "iaf"),
         "the VampPrior's density is a mixture of the posteriors at its pseudo-inputs, "
         "and a flow's density at a code it did not draw needs its sequential inverse "
         "(latent_dim passes per component, unstable in the tails)",
         "posterior='diagonal' with the VampPrior, or prior='mixture_of_gaussians' "
         "with the flow"),
    *(Rule(("hierarchy", inference), ("conditional", "yes"),
           "a ConditionalVAE has one latent layer",
           "an unconditional HierarchicalVAE, or a one-layer ConditionalVAE")
      for inference in ("bottom_up", "ladder")),
    *(Rule(("precision", "bfloat16"), ("network", network),
           f"the bfloat16 path multiplies a decoder made of Dense layers, and the {network} "
           "decoder's are convolutions",
           f"precision='float32' with the {network} decoder, or network='mlp'")
      for network in ("conv", "resnet")),
    *(Rule(("input", "table"), ("network", network),
           f"a table's row has no spatial layout for the {network} network's convolutions",
           "network='mlp' for tables")
      for network in ("conv", "resnet")),
    *(Rule(("input", "table"), ("likelihood", name),
           f"a table's standardised columns lie on the whole real line, and the {name} "
           "likelihood needs data in [0, 1] or 8-bit levels",
           "likelihood='gaussian_learned_scale' (a learnt scale per column) or 'gaussian'")
      for name in ("bernoulli", "continuous_bernoulli", "discretized_logistic",
                   "discretized_logistic_mixture", "autoregressive_logistic_mixture")),
    Rule(("conditional", "yes"), ("prior", "vamp"),
         "the VampPrior's pseudo-inputs have no labels to condition on",
         "prior='mixture_of_gaussians' for a learnt multimodal prior, or an "
         "unconditional VAE"),
)


_RULES_BY_PAIR = {frozenset((tuple(rule.first), tuple(rule.second))): rule for rule in RULES}


def rule_for(first, second):
    """The `Rule` refusing two `(option, level)` pairs, or None."""
    return _RULES_BY_PAIR.get(frozenset((tuple(first), tuple(second))))


def _describe(level):
    option, value = level
    if option == "conditional":
        return "a ConditionalVAE" if value == "yes" else "an unconditional VAE"
    if option == "objective" and "(" in value:  # a level with a parameter
        name, parameter = value.split("(", 1)
        return f"objective={name.capitalize()}({parameter.replace('>', ' > ')}"
    if value.startswith((">", "!=")):
        return f"{option} {value}"
    if value in ("True", "False") or value.isdigit():
        return f"{option}={value}"
    return f"{option}={value!r}"


def check(levels):
    """Raise `ValueError` if two of `levels` ({option: level}) are refused.

    Options missing from `levels`, or whose level is None (a user's own
    likelihood, prior or network), are not checked.
    """
    known = [(option, level) for option, level in levels.items() if level is not None]
    for first, second in itertools.combinations(known, 2):
        rule = rule_for(first, second)
        if rule:  # named in the rule's order, so the message is stable
            raise ValueError(
                f"{_describe(rule.first)} cannot be combined with "
                f"{_describe(rule.second)}: "
                f"{rule.reason}. Use {rule.instead}."
            )


def supported(levels):
    """Whether no pair of `levels` ({option: level}) is refused, and no
    option has a level where another option's level replaces it."""
    try:
        check(levels)
    except ValueError:
        return False
    return all(levels.get(option) is None for option in replaced(levels))


def replaced(levels):
    """The options that the levels of `levels` replace (`REPLACES`)."""
    return {option for level in levels.items() for option in REPLACES.get(level, ())}


def applies(first, second):
    """Whether two `(option, level)` pairs can meet: neither option is
    replaced by the other's level."""
    return (first[0] not in REPLACES.get(second, ())
            and second[0] not in REPLACES.get(first, ()))


@functools.cache
def all_pairs(options=tuple(LEVELS), tries=40):
    """A list of supported combinations ({option: level} of `options`) in
    which every supported pair of levels of two of them appears at least once.

    Greedy all-pairs constructions, the levels tried in `tries` orders
    shuffled from fixed seeds; the smallest is kept (a few more rows than
    the largest product of two options' level counts). Deterministic.
    """
    return min((_greedy_pairs(list(options), random.Random(seed)) for seed in range(tries)),
               key=len)


def required_pairs(options=tuple(LEVELS)):
    """Every pair of levels of two of `options` that can meet and is not
    refused: what `all_pairs(options)` must cover."""
    return {
        ((a, x), (b, y))
        for a, b in itertools.combinations(options, 2)
        for x in LEVELS[a] for y in LEVELS[b]
        if rule_for((a, x), (b, y)) is None and applies((a, x), (b, y))
    }


def _greedy_pairs(options, shuffler):
    uncovered = required_pairs(tuple(options))
    rows = []
    while uncovered:
        # Start from the uncovered pair, then fill each option greedily.
        (a, x), (b, y) = min(uncovered, key=lambda p: (options.index(p[0][0]), p))
        row = {a: x, b: y}
        for option in options:
            if option in row:
                continue
            best = None
            values = shuffler.sample(LEVELS[option], len(LEVELS[option]))
            for value in [None] + values if option in replaced(row) else values:
                candidate = {**row, option: value}
                if not supported(candidate) or (value is None) != (option in replaced(
                        candidate)):
                    continue
                gain = sum(((o, row[o]), (option, value)) in uncovered
                           or ((option, value), (o, row[o])) in uncovered for o in row)
                if best is None or gain > best[0]:
                    best = (gain, value)
            if best is None:  # two rules together refuse the pair: name it in a rule
                raise AssertionError(f"No supported combination holds {(a, x)} and "
                                     f"{(b, y)}; add a Rule refusing the pair.")
            row[option] = best[1]
        row = {option: row[option] for option in options}
        uncovered -= {(p, q) for p, q in uncovered if row[p[0]] == p[1] and row[q[0]] == q[1]}
        rows.append(row)
    return rows


def markdown():
    """The compatibility table of every pair of options, as Markdown."""
    lines = [
        "# Which options combine",
        "",
        "Written by `python -m keras_vae.compatibility > docs/compatibility.md` from",
        "`keras_vae/compatibility.py`, the rules the model itself applies: a refused",
        "pair raises `ValueError` when the `VAE` is built (the evaluator's `precision`:",
        "when the evaluation starts), naming both options and what to use instead.",
        "Only pairs that cannot work are refused: a parameter that an object would",
        "ignore belongs to that object (`Elbo(free_bits=...)`, `Miwae(groups=...)`,",
        "`Ciwae(beta=...)`), and a `HierarchicalVAE` takes no prior or posterior",
        "(its own chains: n/a below).",
        "Every pair not listed below is supported and is run by the model cells of",
        "`tests/test_matrix_model.py` (a training step, evaluation, the",
        "importance-sampled likelihood, a `.keras` round trip); the pairs of the",
        "options that shape the exported graph also by its export cells",
        "(`tests/test_matrix_export.py`: SavedModel and LiteRT parity). A cell of",
        "`score: latent` with `sampler: gmm` scores under the fitted mixture.",
        "",
        "## Refused pairs",
        "",
        "| option | option | why | use instead |",
        "|---|---|---|---|",
    ]
    for rule in RULES:
        lines.append(f"| `{_describe(rule.first)}` | `{_describe(rule.second)}` | "
                     f"{rule.reason} | {rule.instead} |")
    lines += ["", "## Every pair", "",
              "✓ supported, ✗ refused (see above), n/a: the option is replaced by the",
              "other (a hierarchy's prior and posterior). Rows and columns are the levels",
              "of each option.", "", *_pair_table()]
    lines += ["", "Every supported combination exports to SavedModel (TF Serving) and to",
              "LiteRT with builtin ops only, `sample` included: the mixture priors draw",
              "their component with `tf.random.categorical`, a LiteRT builtin."]
    return "\n".join(lines) + "\n"


def _pair_table():
    """The Markdown rows of the table of every pair of levels."""
    columns = [(o, v) for o in LEVELS for v in LEVELS[o]]
    header = "| | " + " | ".join(f"{o}: {v}" for o, v in columns) + " |"
    rows = [header, "|---" * (len(columns) + 1) + "|"]
    for row_level in columns:
        cells = []
        for column_level in columns:
            if row_level[0] == column_level[0]:
                cells.append("·")
            elif not applies(row_level, column_level):
                cells.append("n/a")
            else:
                cells.append("✗" if rule_for(row_level, column_level) else "✓")
        rows.append(f"| **{row_level[0]}: {row_level[1]}** | " + " | ".join(cells) + " |")
    return rows


if __name__ == "__main__":
    sys.stdout.write(markdown())
