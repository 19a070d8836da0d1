"""Run configuration: one table of options, read from files and flags.

Every option has a type, a default and a help line in `OPTIONS`; the command
line's flags and the checks of config files are derived from it, so adding
an option is one line.
"""

import json
import os

# name: (type, default, help). Lists are written "512,256" on the command line.
OPTIONS = {
    # --- data ---
    "dataset": (str, "mnist", "mnist, tfds:<name>, npz:<path> or images:<dir>"),
    "data_dir": (str, None, "MNIST folder, or the TFDS data directory"),
    "image_size": (str, None, "resize images:<dir> sources to HEIGHTxWIDTH"),
    "binarize": (str, "dynamic", "dynamic, static or none"),
    "limit": (int, None, "train on the first LIMIT training images only"),
    # --- model ---
    "encoder": (str, "mlp", "mlp or conv"),
    "decoder": (str, "mlp", "mlp or conv"),
    "latent_dim": (int, 16, "size of the latent code z"),
    "hidden_units": (list, [512, 256], "Dense widths of the mlp networks"),
    "conv_filters": (list, [32, 64], "channels of the conv networks"),
    "activation": (str, "relu", "activation of the hidden layers"),
    "likelihood": (str, "bernoulli", "bernoulli, continuous_bernoulli, discretized_logistic, "
                   "gaussian or gaussian_learned_scale"),
    "gaussian_scale": (float, 0.1, "fixed scale of the gaussian likelihood"),
    "prior": (str, "standard_normal",
              "standard_normal, learnable_gaussian, mixture_of_gaussians or vamp"),
    "prior_components": (int, None, "components of mixture_of_gaussians or vamp"),
    "posterior": (str, "diagonal", "diagonal or full_covariance"),
    "kl_weight": (float, 1.0, "weight λ (β) on the KL term"),
    "kl_warmup_epochs": (int, 0, "raise the KL weight linearly over this many epochs"),
    "kl_cycle_epochs": (int, 0, "cyclical KL annealing with cycles of this many epochs"),
    "free_bits": (float, 0.0, "nats per latent dimension not penalised"),
    "objective": (str, "elbo", "elbo, or iwae (with num_samples = k)"),
    "conditional": (bool, False, "a ConditionalVAE fed the dataset's labels"),
    "num_classes": (int, None, "labels of a conditional model (default: from the data)"),
    "num_samples": (int, 1, "samples of z per example (V, or k for iwae)"),
    "use_exact_kl": (bool, True, "closed-form KL where one exists"),
    # --- training ---
    "optimizer": (str, "adam", "any Keras optimizer name (adam, rmsprop, adagrad, ...)"),
    "learning_rate": (float, 1e-3, "the optimizer's learning rate"),
    "epochs": (int, 10, "training epochs"),
    "batch_size": (int, 128, "global batch size, split across replicas"),
    "seed": (int, 0, "seeds weights, noise, shuffling and binarization"),
    "strategy": (str, "auto", "auto, default, mirrored, multi_worker or tpu"),
    "jit_compile": (bool, False, "compile the training step with XLA"),
    "steps_per_execution": (int, 1, "training steps per compiled call (10 is faster)"),
    "mixed_precision": (str, "none", "none, mixed_float16 or mixed_bfloat16"),
    "drop_remainder": (bool, False, "drop the last partial batch (static shapes)"),
}

MODEL_KEYS = (
    "encoder", "decoder", "latent_dim", "hidden_units", "conv_filters",
    "activation", "prior", "kl_weight", "num_samples", "use_exact_kl",
    "objective", "free_bits", "posterior",
)


def defaults():
    return {name: default for name, (_, default, _) in OPTIONS.items()}


def parse_value(name, value):
    """Convert a flag or file value to the option's type, or raise."""
    kind = OPTIONS[name][0]
    if value is None:
        return None
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
            f"Invalid value for {name}: {value!r}. Expected "
            f"{'a list of integers' if kind is list else kind.__name__}."
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
        unknown = sorted(set(source) - set(OPTIONS))
        if unknown:
            raise ValueError(
                f"Unknown config key(s): {', '.join(unknown)}. Valid keys: "
                f"{', '.join(OPTIONS)}."
            )
        config.update({k: parse_value(k, v) for k, v in source.items()})
    return config


def read_file(path):
    """Read a YAML or JSON config file into a dict."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No config file at {path}.")
    with open(path) as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        import yaml

        values = yaml.safe_load(text)
    else:
        values = json.loads(text)
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} must hold a mapping of option names to values. "
            f"Received a {type(values).__name__}."
        )
    return values


def model_kwargs(config):
    """The `keras_vae.VAE` arguments of a resolved config (without shapes)."""
    kwargs = {key: config[key] for key in MODEL_KEYS}
    kwargs["likelihood"] = config["likelihood"]
    if config["likelihood"] == "gaussian":
        from keras_vae import likelihoods

        kwargs["likelihood"] = likelihoods.Gaussian(scale=config["gaussian_scale"])
    if config["prior_components"]:
        from keras_vae import priors

        prior_class = type(priors.get(config["prior"]))
        if prior_class not in (priors.MixtureOfGaussians, priors.VampPrior):
            raise ValueError(
                "prior_components applies to mixture_of_gaussians and vamp, "
                f"not to {config['prior']!r}."
            )
        kwargs["prior"] = prior_class(num_components=config["prior_components"])
    kwargs["seed"] = config["seed"]
    return kwargs


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
