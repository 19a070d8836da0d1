"""Training objectives: objects that turn the per-example terms of a batch
(`ElboTerms`) into the scalar loss that the model adds with `add_loss`.

Each objective owns its parameters, as likelihoods and priors do:
`Elbo(free_bits=0.1)`, `Iwae()`, `Miwae(groups=8)`, `Ciwae(beta=0.25)`,
`Piwae(groups=8)`. A name (`"miwae"`) gives the defaults; `configure(name,
**options)` builds one from a run's options and refuses an option the
objective does not take. The maths is in `keras_vae.models.bounds`, shared
with the evaluation, so training and evaluation cannot drift apart.
"""

import abc
import os
import sys
import warnings

import keras
from keras import ops

from keras_vae import registry, validation
from keras_vae.models.bounds import (  # noqa: F401  (the bounds, as before)
    ElboTerms,
    combined_bound,
    free_bits_kl,
    importance_weighted_bound,
    log_importance_weights,
    multi_sample_bound,
    negative_elbo,
    partially_importance_weighted,
)


class Objective(registry.Configurable, abc.ABC):
    """The loss of a batch from the model and the batch's `ElboTerms`.

    Subclasses implement `loss(vae, terms)` and `describe(vae)` (a subclass
    without them cannot be made: TypeError at construction), keep their
    parameters as attributes returned by `get_config`, and may check the
    model they train with `check(vae)`.
    """

    @property
    def name(self):
        """The registered name of this objective's class, or None."""
        return REGISTRY.name_of(self)

    @property
    def level(self):
        """This objective's level in `keras_vae.compatibility.LEVELS`."""
        return self.name

    #: Whether `loss` reads `vae.kl_share_and_mean` (the per-dimension KL).
    uses_kl_per_dimension = False

    #: The levels (`level`) that instances of the class can have, for the
    #: combination matrix; None: the registered name alone.
    levels = None

    @abc.abstractmethod
    def loss(self, vae, terms):
        """The scalar loss of a batch."""

    @abc.abstractmethod
    def describe(self, vae):
        """What the loss is, in words, for reports."""

    def details(self):
        """Its parameters that reports name after `describe`, in words."""
        return []

    def check(self, vae):  # noqa: B027  (most objectives train any model)
        """Raise `ValueError` if this objective cannot train `vae`."""

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self), tuple(sorted(self.get_config().items()))))


#: The named objectives: `names()`, `register(name)` (a class decorator) and `get`.
REGISTRY = registry.Registry("objective", Objective)
register = REGISTRY.register
names = REGISTRY.names


@keras.saving.register_keras_serializable(package="keras_vae")
@register("elbo")
class Elbo(Objective):
    """The negative ELBO, the KL weighted by `vae.kl_weight`.

    Args:
        free_bits: float ≥ 0, nats per latent dimension below which the KL
            of that dimension (averaged over the batch) is not penalised
            (Kingma et al., 2016); needs a closed-form KL per dimension.
    """

    levels = ("elbo", "elbo(free_bits>0)")

    def __init__(self, free_bits=0.0):  # pragma: no mutate block
        self.free_bits = validation.non_negative("free_bits", free_bits)

    @property
    def level(self):
        return "elbo(free_bits>0)" if self.free_bits > 0 else "elbo"

    @property
    def uses_kl_per_dimension(self):
        return self.free_bits > 0

    def loss(self, vae, terms):
        if self.free_bits > 0:
            share, mean = vae.kl_share_and_mean(terms)
            kl = free_bits_kl(share, mean, self.free_bits)
            return ops.mean(terms.reconstruction) + vae.kl_weight * kl
        return negative_elbo(terms.reconstruction, terms.kl, vae.kl_weight)

    def describe(self, vae):
        return "negative ELBO"

    def details(self):
        return [f"free bits {self.free_bits:g} nats per dimension"] if self.free_bits else []

    def get_config(self):
        return {"free_bits": self.free_bits}


def _log_weights(vae, terms):
    return log_importance_weights(terms.log_px, vae.prior.log_prob(terms.z),
                                  terms.posterior.log_prob(terms.z), vae.kl_weight)


@keras.saving.register_keras_serializable(package="keras_vae")
@register("iwae")
class Iwae(Objective):
    """The negative importance-weighted bound with k = `vae.num_samples`."""

    def loss(self, vae, terms):
        return -ops.mean(importance_weighted_bound(_log_weights(vae, terms)))

    def describe(self, vae):
        return f"negative IWAE bound (k={vae.num_samples})"


class _Grouped(Objective):
    """An objective over M groups of K = k/M of the k = `vae.num_samples`
    samples. With one group it is the IWAE bound (its compatibility level
    is then "iwae").

    Args:
        groups: M, a positive int dividing the model's `num_samples`.
    """

    def __init__(self, groups=1):  # pragma: no mutate block
        self.groups = validation.positive_int("groups", groups)

    @property
    def level(self):
        return f"{self.name}(groups>1)" if self.groups > 1 else "iwae"

    def check(self, vae):
        validation.divisor("groups", self.groups, "num_samples", vae.num_samples)

    def get_config(self):
        return {"groups": self.groups}

    def _groups(self, vae):
        return f"M={self.groups}, K={vae.num_samples // self.groups}"


@keras.saving.register_keras_serializable(package="keras_vae")
@register("miwae")
class Miwae(_Grouped):
    """The negative MIWAE bound: `vae.num_samples` samples in `groups`
    groups (`_Grouped`)."""

    levels = ("miwae(groups>1)",)  # one group: the IWAE bound

    def loss(self, vae, terms):
        return -ops.mean(multi_sample_bound(_log_weights(vae, terms), self.groups))

    def describe(self, vae):
        return f"negative MIWAE bound ({self._groups(vae)})"


@keras.saving.register_keras_serializable(package="keras_vae")
@register("ciwae")
class Ciwae(Objective):
    """The negative CIWAE bound.

    Args:
        beta: float in [0, 1], the weight β on the ELBO (1 − β on the
            importance-weighted bound).
    """

    def __init__(self, beta=0.5):  # pragma: no mutate block
        self.beta = validation.fraction("beta", beta)

    def loss(self, vae, terms):
        return -ops.mean(combined_bound(_log_weights(vae, terms), self.beta))

    def describe(self, vae):
        return f"negative CIWAE bound (β={self.beta:g}, k={vae.num_samples})"

    def get_config(self):
        return {"beta": self.beta}


@keras.saving.register_keras_serializable(package="keras_vae")
@register("piwae")
class Piwae(_Grouped):
    """The negative PIWAE surrogate: the decoder and prior learn from
    IWAE_{M·K}, the encoder from MIWAE(M, K), M = `groups` (`_Grouped`).
    Decodes the samples twice (the second time held constant)."""

    levels = ("piwae(groups>1)",)  # one group: the IWAE bound

    def loss(self, vae, terms):
        x, labels = vae.split_inputs(terms.inputs)
        held_z = ops.stop_gradient(terms.z)
        held_log_px = vae.likelihood.log_prob(vae.likelihood_distribution(held_z, labels), x)
        held = log_importance_weights(
            held_log_px, vae.prior.log_prob(held_z),
            ops.stop_gradient(terms.posterior.log_prob(terms.z)), vae.kl_weight)
        return -ops.mean(partially_importance_weighted(
            _log_weights(vae, terms), held, self.groups))

    def describe(self, vae):
        return (f"negative IWAE bound (k={vae.num_samples}); PIWAE trains the encoder "
                f"on MIWAE ({self._groups(vae)})")


def get(identifier):
    """An `Objective` from its name (the defaults), a config dict or an
    instance."""
    return REGISTRY.get(identifier)


#: The run options (config keys, command-line flags) that are objectives'
#: parameters, and the parameter each is: {option: (parameter, default)}.
OPTIONS = {"free_bits": ("free_bits", 0.0), "importance_groups": ("groups", 1),
           "ciwae_beta": ("beta", 0.5)}


def configure(name, **options):
    """The objective `name` with the run options of `OPTIONS` (`free_bits`,
    `importance_groups`, `ciwae_beta`) given as its parameters.

    An option left at its default is not passed; an option the objective
    does not take is refused, naming the objectives that do.
    """
    cls = type(get(name))  # an unknown name: get's error
    parameters = {}
    for option, value in options.items():
        parameter, default = OPTIONS[option]
        if value is None or value == default:
            continue
        if parameter not in cls().get_config():
            takers = [n for n in names() if parameter in REGISTRY[n]().get_config()]
            raise ValueError(
                f"{option}={value!r} is a parameter of the objective "
                f"{' and '.join(map(repr, takers))}; objective={name!r} takes no "
                f"{option}. Use objective={takers[0]!r}, or leave {option} at its "
                f"default ({default!r}).")
        parameters[parameter] = value
    return cls(**parameters)


def from_model_keywords(objective, **keywords):
    """The model's objective from `VAE(objective=...)` and the deprecated
    keywords `free_bits`, `importance_groups` and `ciwae_beta` (None: not
    given). Given with a name, they are passed on with a `DeprecationWarning`;
    given with an objective object, they are refused (the object holds its
    own parameters)."""
    given = {key: value for key, value in keywords.items() if value is not None}
    if not given:
        return get(objective)
    listed = ", ".join(f"{key}={value!r}" for key, value in given.items())
    if not isinstance(objective, str):
        raise ValueError(
            f"{listed} cannot be given to the model beside the objective {objective!r}: "
            "an objective object holds its own parameters. Give them to it, for "
            "example keras_vae.objectives.Elbo(free_bits=0.1).")
    built = configure(objective, **given)
    warnings.warn(
        f"The model's keywords {listed} are deprecated and will be removed in the next "
        f"release: use objective=keras_vae.objectives.{built!r}.",
        DeprecationWarning, stacklevel=_outside_the_package())
    return built


def _outside_the_package():
    """The stacklevel, for `warnings.warn` in this module's caller, of the
    first frame outside keras_vae: the user's line that built the model."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level
