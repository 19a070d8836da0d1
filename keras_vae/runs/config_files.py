"""Reading a run's config file (YAML or JSON) into a mapping, with a message
that names the file for anything that is not one mapping of names to values:
unreadable text, a parse error, a key given twice (YAML and JSON parsers
would silently keep the last), nesting too deep for the parser, or a list.
YAML is read with a SafeLoader: no Python tags."""

import json
import os


def read_file(path):
    """Read a YAML or JSON config file into a dict."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No config file at {path}" + (
            " (it is a directory)." if os.path.isdir(path) else "."))
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"Could not read the config file {path}: {error}") from None
    import yaml

    try:
        values = (yaml.load(text, Loader=_yaml_loader())  # a SafeLoader: no Python tags
                  if path.endswith((".yaml", ".yml"))
                  else json.loads(text, object_pairs_hook=_unique_pairs))
    except (yaml.YAMLError, ValueError) as error:
        raise ValueError(f"Could not parse the config file {path}: {error}") from None
    except RecursionError:
        raise ValueError(f"Could not parse the config file {path}: it is nested too "
                         "deeply. A config is one mapping of option names to values.") from None
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} must hold a mapping of option names to values. "
            f"Received a {type(values).__name__}."
        )
    return values


def _unique_pairs(pairs):
    """A JSON object's pairs as a dict, refusing a key given twice."""
    message = _repeated([key for key, _ in pairs])
    if message:
        raise ValueError(message)
    return dict(pairs)


def _repeated(keys):
    """The message for the first key given twice (keys of any type), or None."""
    twice = [key for i, key in enumerate(keys) if key in keys[:i]]
    return f"the key {twice[0]!r} is given twice; keep one" if twice else None


def _yaml_loader():
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """yaml.SafeLoader that refuses a key given twice in a mapping."""

        def construct_mapping(self, node, deep=False):
            pairs = [(self.construct_object(k, deep=deep), v) for k, v in node.value]
            message = _repeated([key for key, _ in pairs])
            if message:
                raise yaml.constructor.ConstructorError(None, None, message, node.start_mark)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader
