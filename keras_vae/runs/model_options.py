"""From a resolved run config (`keras_vae.runs.config`) to the arguments of
`keras_vae.VAE`: the objects its flat options describe (an objective with its
parameters, a Gaussian with its scale, a logistic mixture with its
components, a mixture prior with its components, resnet networks with their
blocks per stage)."""

from keras_vae.runs import config as config_lib


def model_kwargs(config):
    """The `keras_vae.VAE` arguments of a resolved config (without shapes)."""
    from keras_vae.models import objectives

    kwargs = {key: config[key] for key in config_lib.MODEL_KEYS if key not in objectives.OPTIONS}
    kwargs["objective"] = objectives.configure(
        config["objective"], **{key: config[key] for key in objectives.OPTIONS})
    kwargs["likelihood"] = config["likelihood"]
    if config["likelihood"] == "gaussian":
        from keras_vae.distributions import likelihoods

        kwargs["likelihood"] = likelihoods.Gaussian(scale=config["gaussian_scale"])
    _mixture(config, kwargs)
    if config["prior_components"]:
        from keras_vae.distributions import priors

        prior_class = type(priors.get(config["prior"]))
        if prior_class not in (priors.MixtureOfGaussians, priors.VampPrior):
            raise ValueError(
                "prior_components applies to mixture_of_gaussians and vamp, "
                f"not to {config['prior']!r}."
            )
        kwargs["prior"] = prior_class(num_components=config["prior_components"])
    _networks(config, kwargs)
    kwargs["seed"] = config["seed"]
    return kwargs


def _mixture(config, kwargs):
    """The logistic mixtures' components K, neighbours N and context
    switches, where set."""
    from keras_vae.distributions import logistic_mixture, neighbour_mixture

    name, classes = config["likelihood"], {
        "discretized_logistic_mixture": logistic_mixture.DiscretizedLogisticMixture,
        "autoregressive_logistic_mixture": neighbour_mixture.AutoregressiveLogisticMixture}
    set_options = {option: config[f"mixture_{option}"]
                   for option in ("components", "neighbours", "cross_channel", "local_scales")
                   if config[f"mixture_{option}"] is not None}
    for option in set_options:
        applies_to = list(classes)[1:] if option != "components" else list(classes)
        if name not in applies_to:
            raise ValueError(
                f"mixture_{option} applies to the {' and '.join(applies_to)} "
                f"likelihood{'s' if len(applies_to) > 1 else ''}, not to {name!r}.")
    if set_options:
        kwargs["likelihood"] = classes[name](**set_options)


def for_table(config, kwargs, splits):
    """A table's model: MLP networks, no binarization, and the likelihood on
    the columns standardised with the training split's mean and deviation."""
    from keras_vae.distributions import standardized

    if config["binarize"] != "none":  # the networks and likelihood: the model's rules
        raise ValueError(
            f"binarize={config['binarize']!r} is for grey-level images; "
            f"{config['dataset']!r} is a table of {len(splits.columns)} columns. Use "
            "binarize: none.")
    kwargs["likelihood"] = standardized.Standardized.fit(
        kwargs["likelihood"], splits.x_train, splits.columns)


def _networks(config, kwargs):
    """A resnet encoder or decoder with `resnet_blocks` blocks per stage."""
    from keras_vae.models import networks

    roles = [role for role in ("encoder", "decoder") if config[role] == "resnet"]
    if not roles and config["resnet_blocks"] != config_lib.defaults()["resnet_blocks"]:
        raise ValueError(f"resnet_blocks applies to the resnet networks, and this run's are "
                         f"{config['encoder']!r} and {config['decoder']!r}. Use encoder: "
                         "resnet and decoder: resnet, or leave resnet_blocks out.")
    kwargs.update({role: networks.ResNet(blocks=config["resnet_blocks"]) for role in roles})
