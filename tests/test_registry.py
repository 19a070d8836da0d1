"""keras_vae.registry: each family's public registry (names, register, get),
and the lists of names elsewhere read from it."""

import pytest

import keras_vae
from keras_vae import registry


class Shape(registry.Configurable):
    def __init__(self, size=1):
        self.size = size

    def get_config(self):
        return {"size": size} if (size := self.size) != 1 else {}


def test_a_registry_names_its_classes_in_order_and_makes_them_by_name():
    shapes = registry.Registry("shape", Shape)

    @shapes.register("square")
    class Square(Shape):
        pass

    @shapes.register("circle")
    class Circle(Shape):
        pass

    assert shapes.names() == ("square", "circle")
    assert type(shapes.get("circle")) is Circle and "circle" in shapes
    assert shapes["square"] is Square and shapes.name_of(Square()) == "square"
    assert shapes.name_of(type("Sub", (Square,), {})()) is None  # a subclass has no name
    given = Square(3)
    assert shapes.get(given) is given
    with pytest.raises(ValueError, match=r"Unknown shape: 'star'. Expected one of "
                                         r"\['circle', 'square'\], or a .*Shape instance"):
        shapes.get("star")
    with pytest.raises(ValueError, match="The shape name 'square' is taken by Square"):
        shapes.register("square")(Circle)
    assert shapes.register("square")(Square) is Square  # the same class again: kept
    with pytest.raises(TypeError, match="Only Shape subclasses can be registered as a shape"):
        shapes.register("number")(int)


def test_configurable_objects_rebuild_from_their_config_and_show_it():
    shape = Shape(4)
    assert repr(shape) == "Shape(size=4)" and repr(Shape()) == "Shape()"
    assert Shape.from_config(shape.get_config()).size == 4


def test_every_family_has_a_public_registry():
    from keras_vae.distributions import likelihoods, posteriors, priors
    from keras_vae.models import networks, samplers

    assert likelihoods.names() == ("bernoulli", "gaussian", "gaussian_learned_scale",
                                   "continuous_bernoulli", "discretized_logistic",
                                   "discretized_logistic_mixture",
                                   "autoregressive_logistic_mixture")
    assert priors.names() == ("standard_normal", "learnable_gaussian",
                              "mixture_of_gaussians", "vamp")
    assert posteriors.names() == ("diagonal", "full_covariance", "iaf")  # iaf: flows.py
    assert keras_vae.objectives.names() == ("elbo", "iwae", "miwae", "ciwae", "piwae")
    assert samplers.names() == ("gmm",) and keras_vae.samplers is samplers
    assert networks.names() == ("mlp", "conv", "resnet")
    for family in (likelihoods, priors, posteriors, keras_vae.objectives, samplers, networks):
        assert family.register == family.REGISTRY.register
        for name in family.names():
            assert family.REGISTRY.name_of(family.REGISTRY[name].__new__(
                family.REGISTRY[name])) == name


def test_the_sampler_job_and_the_run_options_read_the_registries():
    from keras_vae import runs
    from keras_vae.distributions import likelihoods, priors
    from keras_vae.runs import config

    assert runs.SAMPLERS == keras_vae.samplers.names()
    helps = {name: text for name, (_, _, text) in config.options().items()}
    assert all(name in helps["likelihood"] for name in likelihoods.names())
    assert all(name in helps["prior"] for name in priors.names())
    assert all(name in helps["objective"] for name in keras_vae.objectives.names())


def test_a_registered_network_family_is_built_by_name_and_joins_the_options():
    import keras
    import numpy as np

    from keras_vae.models import networks
    from keras_vae.runs import config

    @networks.register("tiny_dense")
    class TinyDense(networks.Network):
        def encoder(self, input_shape, output_size, hidden_units, conv_filters, activation):
            return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                     keras.layers.Dense(output_size)], name="tiny_encoder")

        def decoder(self, latent_dim, output_shape, hidden_units, conv_filters, activation):
            return keras.Sequential([keras.Input((latent_dim,)),
                                     keras.layers.Dense(int(np.prod(output_shape))),
                                     keras.layers.Reshape(output_shape)], name="tiny_decoder")

    try:
        vae = keras_vae.VAE((4, 4, 1), latent_dim=2, encoder="tiny_dense", decoder="tiny_dense")
        assert vae.encoder.name == "tiny_encoder" and vae.decoder.name == "tiny_decoder"
        assert len(vae.encoder.layers) == 2 and vae.encoder.layers[-1].units == 4
        assert np.asarray(vae.decode(np.zeros((3, 2), "float32"))).shape == (3, 4, 4, 1)
        assert "tiny_dense" in config.options()["encoder"][2]
    finally:
        networks.REGISTRY._classes.pop("tiny_dense")  # other tests see the built-in ones
    with pytest.raises(TypeError, match="abstract method.* decoder"):
        type("EncoderOnly", (networks.Network,), {"encoder": TinyDense.encoder})()
    with pytest.raises(ValueError, match=r"Unknown encoder: 'tiny_dense'. Expected one of "
                                         r"\['mlp', 'conv', 'resnet'\], a keras_vae"):
        keras_vae.VAE((4, 4, 1), latent_dim=2, encoder="tiny_dense")
