"""Registries of named options, and resolving an option given by name, config
dict or instance, as `keras.*.get` do.

Each family (likelihoods, priors, posteriors, objectives, samplers) holds one
`Registry`; its module exposes `names()`, `register(name)` and `get(...)`, and
every list of names elsewhere (the compatibility matrix, the command line,
config files) is read from it, so a new option is known everywhere the
moment it is registered.
"""

import keras


class Configurable:
    """A plain object (not a layer) made from its config: `get_config` gives
    the constructor's arguments, `from_config` calls it with them, and the
    repr shows them. Likelihoods and objectives are such objects."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Registry:
    """The named classes of one family of options.

    Args:
        kind: what is registered, for messages ("prior", ...).
        base_class: the class every registered class derives from.
    """

    def __init__(self, kind, base_class):
        self.kind = kind
        self.base_class = base_class
        self._classes = {}

    def register(self, name):
        """A class decorator: the class is known by `name`. Refuses a name
        taken by another class, and a class that is not a `base_class`."""

        def decorate(cls):
            if not (isinstance(cls, type) and issubclass(cls, self.base_class)):
                raise TypeError(f"Only {self.base_class.__name__} subclasses can be "
                                f"registered as a {self.kind}. Received: {cls!r}")
            if self._classes.get(name, cls) is not cls:
                raise ValueError(f"The {self.kind} name {name!r} is taken by "
                                 f"{self._classes[name].__name__}; choose another name.")
            self._classes[name] = cls
            return cls

        return decorate

    def names(self):
        """The registered names, in the order they were registered."""
        return tuple(self._classes)

    def __getitem__(self, name):
        return self._classes[name]

    def __contains__(self, name):
        return name in self._classes

    def get(self, identifier):
        """An instance for a name (its class's defaults), a config dict or an
        instance."""
        return resolve(identifier, self.base_class, self._classes, self.kind)

    def name_of(self, instance):
        """The name of `instance`'s exact class, or None (a subclass or a
        user's own class has no name)."""
        return name_of(instance, self._classes)


def resolve(identifier, base_class, names, kind):
    """Return an instance of `base_class` for `identifier`.

    Args:
        identifier: an instance, a serialized config dict, or a name in `names`.
        base_class: the class instances must derive from.
        names: `{name: class}` of the built-in options.
        kind: what is resolved, for the error message ("prior", ...).
    """
    if isinstance(identifier, base_class):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str) and identifier in names:
        return names[identifier]()
    raise ValueError(
        f"Unknown {kind}: {identifier!r}. Expected one of {sorted(names)}, or a "
        f"{base_class.__module__}.{base_class.__name__} instance."
    )


def name_of(instance, names):
    """The name in `names` ({name: class}) of `instance`'s exact class, or None
    (a subclass or a user's own class has no name)."""
    for name, cls in names.items():
        if type(instance) is cls:
            return name
    return None
