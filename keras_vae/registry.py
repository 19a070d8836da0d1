"""Resolving options given by name, config dict or instance, as `keras.*.get` do."""

import keras


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
