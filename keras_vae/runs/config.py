"""Run configuration: one table of options, read from files and flags.

The model's options take their defaults from `keras_vae.VAE`'s signature (the
objectives' parameters from `keras_vae.objectives.OPTIONS`) and their valid
names from the registries of likelihoods, priors, posteriors, objectives and
networks; the data and training options are listed here.
`keras_vae.runs.model_options.model_kwargs` builds the objects (an objective
with its parameters, a Gaussian with its scale, a mixture prior with its
components, resnet networks with their blocks) from the flat options.
The command line's flags and help, and the checks of config files, are
derived from `options()`, so nothing is written twice.
"""

import inspect
import math

from keras_vae.runs.config_files import read_file  # noqa: F401  (config.read_file)

# name: (type, default, help). Lists are written "512,256" on the command line.
_DATA = {
    "dataset": (str, "mnist",
                "mnist, tfds:<name>, npz:<path>, images:<dir> or tfrecord:<dir>"),
    "data_dir": (str, None, "MNIST folder, or the TFDS data directory"),
    "image_size": (str, None, "resize images:<dir> sources to HEIGHTxWIDTH"),
    "binarize": (str, "dynamic", "dynamic, static or none"),
    "limit": (int, None, "train on the first LIMIT training images only"),
    "shuffle_buffer": (int, None, "examples in the shuffle buffer of a file source "
                                  "(default: 10000, at most 512 MiB of images)"),
    "cache_dir": (str, None, "cache decoded images (uint8) on disk here (default: in "
                             "memory up to 512 MiB a split, else none)"),
    "label_column": (str, None, "the column of a table (csv:<path>, parquet:<path>) that "
                     "holds its labels (a normal/anomaly flag or a class)"),
    "augment": (str, "none", "none, or transforms of the training images joined by '+': "
                "flip (half of them mirrored), channel_order (each image's channels in a "
                "random order), e.g. flip+channel_order"),
    "skip_bad_files": (bool, False, "skip image files that cannot be decoded (listed "
                                    "in skipped_files.txt) instead of stopping"),
}

# The VAE's arguments that runs set, and what each means; defaults and valid
# names come from the model and its registries (`options()`).
_MODEL_HELP = {
    "encoder": "the encoder network",
    "decoder": "the decoder network",
    "latent_dim": "size of the latent code z",
    "hidden_units": "Dense widths of the mlp networks",
    "conv_filters": "channels of the conv networks; widths of the resnet stages",
    "activation": "activation of the hidden layers",
    "likelihood": "the likelihood p(x|z)",
    "prior": "the prior p(z)",
    "posterior": "the posterior q(z|x)",
    "kl_weight": "weight λ (β) on the KL term",
    "free_bits": "elbo: nats per latent dimension not penalised (Elbo(free_bits))",
    "objective": "the training objective (iwae uses num_samples = k)",
    "num_samples": "samples of z per example (V, or k for iwae)",
    "importance_groups": "miwae and piwae: groups M of num_samples / M samples "
                         "(Miwae(groups), Piwae(groups))",
    "ciwae_beta": "ciwae: the weight β on the ELBO, 1 − β on the IWAE bound (Ciwae(beta))",
    "use_exact_kl": "closed-form KL where one exists",
}
MODEL_KEYS = tuple(_MODEL_HELP)

_EXTRA = {
    "gaussian_scale": ("fixed scale of the gaussian likelihood", "likelihood", "scale"),
    "mixture_components": (int, None, "components K of discretized_logistic_mixture or "
                           "autoregressive_logistic_mixture (default: the likelihood's own, 5)"),
    "mixture_neighbours": (int, None, "causal neighbours N (1 to 12) that predict each pixel "
                           "in autoregressive_logistic_mixture (default: 4)"),
    "mixture_cross_channel": (bool, None, "autoregressive_logistic_mixture: shift each "
                              "channel by every channel of the neighbours (default: true)"),
    "mixture_local_scales": (bool, None, "autoregressive_logistic_mixture: widen each "
                             "logistic by the local gradients (default: true)"),
    "kl_warmup_epochs": (int, 0, "raise the KL weight linearly over this many epochs"),
    "kl_cycle_epochs": (int, 0, "cyclical KL annealing with cycles of this many epochs"),
    "prior_components": (int, None, "components of mixture_of_gaussians or vamp "
                         "(default: the prior's own)"),
    "resnet_blocks": (int, 2, "residual blocks in each stage of the resnet networks "
                      "(one stage per width of conv_filters)"),
    "conditional": (bool, False, "a ConditionalVAE fed the dataset's labels"),
    "num_classes": (int, None, "labels of a conditional model (default: from the data)"),
    "latent_dims": (list, None, "sizes of several stochastic layers, bottom first, e.g. "
                    "100,50: a HierarchicalVAE (instead of latent_dim)"),
    "inference": (str, "bottom_up", "a hierarchy's inference: bottom_up or ladder"),
    "hierarchy_units": (list, [100, 100], "Dense widths of the links between layers"),
}

_TRAINING = {
    "optimizer": (str, "adam", "any Keras optimizer name (adam, rmsprop, adagrad, ...)"),
    "learning_rate": (float, 1e-3, "the optimizer's learning rate"),
    "clipnorm": (float, None, "scale each step's gradient down to this global norm when it "
                 "is larger (Keras' global_clipnorm; default: no clipping)"),
    "epochs": (int, 10, "training epochs"),
    "batch_size": (int, 128, "global batch size, split across replicas"),
    "seed": (int, 0, "seeds weights, noise, shuffling and binarization"),
    "strategy": (str, "auto", "auto, default, mirrored, multi_worker or tpu"),
    "jit_compile": (bool, False, "compile the training step with XLA"),
    "steps_per_execution": (int, 1, "training steps per compiled call (10 is faster)"),
    "minutes": (float, None, "stop after MINUTES of training (epochs is then a maximum)"),
    "lr_schedule": (str, "constant", "constant, or cosine: a half cosine over --minutes "
                    "(or over the epochs) down to 5% of learning_rate"),
    "mixed_precision": (str, "none", "none, mixed_float16 or mixed_bfloat16"),
    "drop_remainder": (bool, False, "drop the last partial batch (static shapes)"),
    "max_minutes": (float, None, "refuse training estimated to take longer (the estimate "
                    "of time and memory is printed before training; default: no limit)"),
    "max_memory": (float, None, "GiB that training may plan to use: a model estimated "
                   "to need more is refused before it is built (default: 80% of this "
                   "machine's memory)"),
}


def options():
    """`{name: (type, default, help)}` of every run option, in order, the
    names of each family from its registry as it is now (a family a user
    registers joins them).

    Imports the model (and so TensorFlow) on first use.
    """
    from keras_vae.distributions import likelihoods
    from keras_vae.models import objectives
    from keras_vae.models.vae import VAE

    signature = inspect.signature(VAE.__init__).parameters
    names = _registered_names()
    model = {}
    for name, text in _MODEL_HELP.items():
        if name in objectives.OPTIONS:  # a parameter of an objective
            default = objectives.OPTIONS[name][1]
        else:
            default = signature[name].default
        kind = list if isinstance(default, tuple) else type(default)
        default = list(default) if isinstance(default, tuple) else default
        if name in names:
            text = f"{text}: {_or_list(names[name])}"
        model[name] = (kind, default, text)
    scale = inspect.signature(likelihoods.Gaussian.__init__).parameters["scale"].default
    extra = {"gaussian_scale": (float, scale, _EXTRA["gaussian_scale"][0]),
             **{k: v for k, v in _EXTRA.items() if k != "gaussian_scale"}}
    return {**_DATA, **model, **extra, **_TRAINING}


def _registered_names():
    from keras_vae.distributions import likelihoods, posteriors, priors
    from keras_vae.models import networks, objectives

    return {
        "likelihood": list(likelihoods.names()), "prior": list(priors.names()),
        "posterior": list(posteriors.names()), "objective": list(objectives.names()),
        "encoder": list(networks.names()), "decoder": list(networks.names()),
    }


def _or_list(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def defaults():
    return {name: default for name, (_, default, _) in options().items()}


# The smallest and largest value of each numeric option (None: no bound).
# The upper bounds refuse sizes that could never be meant (and would exhaust
# memory); `keras_vae.runs.build` also estimates the memory of a model.
RANGES = {
    "limit": (1, None), "shuffle_buffer": (1, 10_000_000), "latent_dim": (1, 65536),
    "hidden_units": (1, 65536),
    "conv_filters": (1, 4096), "resnet_blocks": (1, 64), "gaussian_scale": (1e-6, None),
    "kl_weight": (0.0, None),
    "free_bits": (0.0, None), "num_samples": (1, 100_000), "importance_groups": (1, 100_000),
    "ciwae_beta": (0.0, 1.0), "prior_components": (1, 100_000),
    "mixture_components": (1, 1000), "latent_dims": (1, 65536),
    "hierarchy_units": (1, 65536),
    "num_classes": (1, 100_000), "kl_warmup_epochs": (0, None), "kl_cycle_epochs": (0, None),
    "learning_rate": (1e-12, 100.0), "clipnorm": (1e-12, None), "epochs": (1, 1_000_000),
    "batch_size": (1, 10_000_000),
    "seed": (0, 2**31 - 1), "steps_per_execution": (1, 100_000), "minutes": (1e-6, 1e6),
    "max_memory": (1e-3, 1e9), "max_minutes": (1e-6, 1e9),
}


def parse_value(name, value):
    """Convert a flag or file value to the option's type and range, or raise."""
    kind, default, _ = options()[name]
    if value is None:
        if default is None:
            return None
        raise ValueError(
            f"{name} is null; expected {_expected(kind)} (the default is {default!r}). "
            "Give a value or remove the key.")
    return _in_range(name, _converted(name, kind, value))


def _expected(kind):
    return "a list of integers" if kind is list else kind.__name__


def _in_range(name, value):
    low, high = RANGES.get(name, (None, None))
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"Invalid value for {name}: {item!r}. Expected a finite number.")
        if (low is not None and item < low) or (high is not None and item > high):
            bounds = f"at least {low:g}" if high is None else f"from {low:g} to {high:g}"
            raise ValueError(f"Invalid value for {name}: {item!r}. Expected {bounds}.")
    if isinstance(value, list) and not value:
        raise ValueError(f"Invalid value for {name}: an empty list. Expected widths, e.g. 512,256.")
    return value


def _converted(name, kind, value):
    try:
        if kind is list:
            items = value.split(",") if isinstance(value, str) else value
            return [int(item) for item in items]
        if kind is bool:
            return _parse_bool(value)
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"Invalid value for {name}: {value!r}. Expected {_expected(kind)}."
        ) from None


def _parse_bool(value):
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise ValueError


def resolve(file_values=None, overrides=None):
    """Defaults, then a config file's values, then flags; all checked."""
    config = defaults()
    for source in (file_values or {}, overrides or {}):
        if not isinstance(source, dict):
            raise ValueError("A run configuration is a mapping of option names to values. "
                             f"Received a {type(source).__name__}.")
        odd = [key for key in source if not isinstance(key, str)]
        if odd:
            raise ValueError(f"Config keys are option names (text). Received the key "
                             f"{odd[0]!r} ({type(odd[0]).__name__}); valid keys: "
                             f"{', '.join(options())}.")
        unknown = sorted(set(source) - set(options()))
        if unknown:
            raise ValueError(
                f"Unknown config key(s): {', '.join(unknown)}. Valid keys: "
                f"{', '.join(options())}."
            )
        config.update({k: parse_value(k, v) for k, v in source.items()})
    return config


def image_size(config):
    """`image_size` as a (height, width) tuple, or None."""
    value = config["image_size"]
    if not value:
        return None
    try:
        height, width = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise ValueError(
            f"Invalid image_size {value!r}: expected HEIGHTxWIDTH, e.g. 28x28."
        ) from None
    return height, width
