"""Which options combine: the one source of truth for refusals and the table.

Every documented option of the model has a few *levels* (a likelihood's
name, free bits off or on, ...). A pair of levels is either supported or
refused by one `Rule` below; `VAE.__init__` calls `check` and raises the
rule's `ValueError` before anything is built, the combination tests take
their matrix from `LEVELS`, and `docs/compatibility.md` is written by
`python -m keras_vae.compatibility` from the same rules.

A pair is refused when it cannot work, or when one option would be
silently ignored (an accepted option always changes the result).
"""

import collections
import functools
import itertools
import random
import sys

from keras_vae.distributions import likelihoods, posteriors, priors

#: The levels of each option in the combination matrix.
LEVELS = {
    # The registries' names, so a new likelihood, prior or posterior joins
    # the matrix (and its tests) the moment it is registered.
    "likelihood": tuple(likelihoods._REGISTRY),
    "prior": tuple(priors._REGISTRY),
    "posterior": tuple(posteriors._REGISTRY),
    "objective": ("elbo", "iwae", "miwae", "ciwae", "piwae"),
    "network": ("mlp", "conv"),
    "conditional": ("no", "yes"),
    "free_bits": ("0", "> 0"),
    "num_samples": ("1", "> 1"),
    "use_exact_kl": ("True", "False"),
    # The parameters of the tighter-bound family (Rainforth et al., 2018).
    "importance_groups": ("1", "> 1"),
    "ciwae_beta": ("0.5", "!= 0.5"),
    # Where `sample` draws z from: the prior, or a Gaussian mixture fitted
    # after training (`keras_vae.samplers`, `keras-vae fit-sampler`).
    "sampler": ("prior", "gmm"),
    # Several stochastic layers (`keras_vae.HierarchicalVAE`) and how their
    # posterior is inferred; "none": one layer.
    "hierarchy": ("none", "bottom_up", "ladder"),
    # How the importance-sampled likelihood decodes (`evaluation.log_likelihood`'s
    # precision, `keras-vae evaluate --iw-precision`; `keras_vae.decoding`).
    # Refused where the evaluation starts, as the model itself takes no precision.
    "precision": ("float32", "bfloat16"),
}

Rule = collections.namedtuple("Rule", "first second reason instead")

# The priors whose KL has no closed form, as messages name them.
_MIXTURES = (("mixture_of_gaussians", "a mixture prior"), ("vamp", "the VampPrior"))

# The importance-weighted objectives, and those that use each parameter.
_WEIGHTED = ("iwae", "miwae", "ciwae", "piwae")
_GROUPED = ("miwae", "piwae")

# What a hierarchy (its prior and posterior its own Gaussian chains, its KL
# a Monte-Carlo estimate) cannot take.
_HIERARCHY_REFUSES = (
    *((("prior", prior), f"the hierarchy's prior is its own chain p(z_L) p(z_(L-1)|z_L) "
       f"… with p(z_L) = N(0, I), so prior={prior!r} would be ignored",
       "prior='standard_normal' (the default), or a one-layer VAE with this prior")
      for prior in LEVELS["prior"] if prior != "standard_normal"),
    *((("posterior", posterior), "the hierarchy's posterior is its own chain of "
       f"diagonal Gaussians, so posterior={posterior!r} would be ignored",
       "posterior='diagonal' (the default), or a one-layer VAE with this posterior")
      for posterior in LEVELS["posterior"] if posterior != "diagonal"),
    (("free_bits", "> 0"), "the KL of a hierarchy does not split into one closed-form "
     "term per latent dimension", "free_bits=0, or KL warm-up (kl_warmup_epochs)"),
    (("use_exact_kl", "False"), "the KL of a hierarchy is always a Monte-Carlo "
     "estimate, so use_exact_kl=False would change nothing", "use_exact_kl=True (the default)"),
    (("conditional", "yes"), "a ConditionalVAE has one latent layer",
     "an unconditional HierarchicalVAE, or a one-layer ConditionalVAE"),
)

RULES = (
    *(Rule(("free_bits", "> 0"), ("objective", objective),
           f"the {objective.upper()} bound has no separate KL term for free bits to floor",
           f"objective='elbo' with free bits, or free_bits=0 with {objective.upper()}")
      for objective in _WEIGHTED),
    *(Rule(("importance_groups", "> 1"), ("objective", objective),
           f"only MIWAE and PIWAE split the samples into groups, so the "
           f"{objective.upper()} objective would ignore them",
           "objective='miwae' or 'piwae', or importance_groups=1")
      for objective in LEVELS["objective"] if objective not in _GROUPED),
    Rule(("importance_groups", "> 1"), ("num_samples", "1"),
         "one sample cannot be split into several groups",
         "num_samples = groups × samples per group, for example num_samples=64 "
         "with importance_groups=8"),
    *(Rule(("ciwae_beta", "!= 0.5"), ("objective", objective),
           f"only CIWAE weighs the ELBO against the IWAE bound, so the "
           f"{objective.upper()} objective would ignore ciwae_beta",
           "objective='ciwae', or leave ciwae_beta at 0.5")
      for objective in LEVELS["objective"] if objective != "ciwae"),
    *(Rule(("free_bits", "> 0"), (option, level),
           f"free bits need objective='elbo', and {option} is a parameter of "
           f"{objective}, an importance-weighted bound",
           f"free_bits=0 with {objective}, or the default {option} with free bits")
      for option, level, objective in (("importance_groups", "> 1", "MIWAE and PIWAE"),
                                       ("ciwae_beta", "!= 0.5", "CIWAE"))),
    Rule(("importance_groups", "> 1"), ("ciwae_beta", "!= 0.5"),
         "the groups are MIWAE's and PIWAE's, β is CIWAE's: no objective uses both",
         "importance_groups with objective='miwae' or 'piwae', or ciwae_beta with "
         "objective='ciwae'"),
    *(Rule(("free_bits", "> 0"), ("prior", prior),
           f"free bits floor a closed-form KL per latent dimension, and {name} has none",
           "prior='standard_normal' or 'learnable_gaussian', or free_bits=0")
      for prior, name in _MIXTURES),
    *(Rule(("free_bits", "> 0"), ("posterior", posterior),
           f"the KL of {name} posterior does not split into one term per latent dimension",
           "posterior='diagonal', or free_bits=0")
      for posterior, name in (("full_covariance", "a full-covariance"),
                              ("iaf", "an inverse autoregressive flow"))),
    Rule(("prior", "vamp"), ("posterior", "iaf"),
         "the VampPrior's density is a mixture of the posteriors at its pseudo-inputs, "
         "and a flow's density at a code it did not draw needs its sequential inverse "
         "(latent_dim passes per component, unstable in the tails)",
         "posterior='diagonal' with the VampPrior, or prior='mixture_of_gaussians' "
         "with the flow"),
    Rule(("use_exact_kl", "False"), ("posterior", "iaf"),
         "the KL of an inverse autoregressive flow is always a Monte-Carlo estimate, so "
         "use_exact_kl=False would change nothing",
         "use_exact_kl=True (the default)"),
    *(Rule(("use_exact_kl", "False"), ("prior", prior),
           f"the KL to {name} is always a Monte-Carlo estimate, so "
           "use_exact_kl=False would change nothing",
           "use_exact_kl=True (the default)")
      for prior, name in _MIXTURES),
    *(Rule(("hierarchy", inference), refused, reason, instead)
      for inference in ("bottom_up", "ladder")
      for refused, reason, instead in _HIERARCHY_REFUSES),
    Rule(("precision", "bfloat16"), ("network", "conv"),
         "the bfloat16 path multiplies a decoder made of Dense layers, and the conv "
         "decoder's are convolutions",
         "precision='float32' with the conv decoder, or network='mlp'"),
    Rule(("conditional", "yes"), ("prior", "vamp"),
         "the VampPrior's pseudo-inputs have no labels to condition on",
         "prior='mixture_of_gaussians' for a learnt multimodal prior, or an "
         "unconditional VAE"),
)

def _key(level):
    return tuple(level)


_RULES_BY_PAIR = {}
for _rule in RULES:
    _RULES_BY_PAIR[frozenset((_key(_rule.first), _key(_rule.second)))] = _rule


def rule_for(first, second):
    """The `Rule` refusing two `(option, level)` pairs, or None."""
    return _RULES_BY_PAIR.get(frozenset((_key(first), _key(second))))


def _describe(level):
    option, value = level
    if option == "conditional":
        return "a ConditionalVAE" if value == "yes" else "an unconditional VAE"
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
    """Whether no pair of `levels` ({option: level}) is refused."""
    try:
        check(levels)
    except ValueError:
        return False
    return True


@functools.cache
def all_pairs(tries=40):
    """A list of supported combinations ({option: level}) in which every
    supported pair of levels of two options appears at least once.

    Greedy all-pairs constructions, the levels tried in `tries` orders
    shuffled from fixed seeds; the smallest is kept (a few more rows than
    the largest product of two options' level counts). Deterministic.
    """
    return min((_greedy_pairs(random.Random(seed)) for seed in range(tries)), key=len)


def _greedy_pairs(shuffler):
    options = list(LEVELS)
    uncovered = {
        ((a, x), (b, y))
        for a, b in itertools.combinations(options, 2)
        for x in LEVELS[a] for y in LEVELS[b]
        if rule_for((a, x), (b, y)) is None
    }
    rows = []
    while uncovered:
        # Start from the uncovered pair, then fill each option greedily.
        (a, x), (b, y) = min(uncovered, key=lambda p: (options.index(p[0][0]), p))
        row = {a: x, b: y}
        for option in options:
            if option in row:
                continue
            best = None
            for value in shuffler.sample(LEVELS[option], len(LEVELS[option])):
                candidate = {**row, option: value}
                if not supported(candidate):
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
        "Every pair not listed below is supported and is run",
        "by `tests/test_combinations.py` (fit, evaluate, predict, save and load,",
        "decode, sample, reconstruct, `keras-vae evaluate`, SavedModel and LiteRT",
        "export).",
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
              "✓ supported, ✗ refused (see above). Rows and columns are the levels of",
              "each option.", ""]
    columns = [(o, v) for o in LEVELS for v in LEVELS[o]]
    header = "| | " + " | ".join(f"{o}: {v}" for o, v in columns) + " |"
    lines += [header, "|---" * (len(columns) + 1) + "|"]
    for row_level in columns:
        cells = []
        for column_level in columns:
            if row_level[0] == column_level[0]:
                cells.append("·")
            else:
                cells.append("✗" if rule_for(row_level, column_level) else "✓")
        lines.append(f"| **{row_level[0]}: {row_level[1]}** | " + " | ".join(cells) + " |")
    lines += ["", "Every supported combination exports to SavedModel (TF Serving) and to",
              "LiteRT with builtin ops only, `sample` included: the mixture priors draw",
              "their component with `tf.random.categorical`, a LiteRT builtin."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
