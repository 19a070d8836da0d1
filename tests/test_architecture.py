"""The shape of the house: layers with no arrow running back up, small
modules and functions, the library free of the application, no side effects
on the user's process, and ruff clean."""

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_vae"

# Lower layers never import higher ones. The library is layers 0-4; the
# application (run directories and the command line) is 5-6. Each folder
# (package) sits in one layer; only the model's pure parts (the bounds,
# objectives, networks, activations and anomaly scores) sit below the rest of
# models/.
LAYERS = {
    0: ("version", "registry", "validation", "files", "edge", "_quiet"),
    1: ("distributions", "models.bounds", "models.objectives", "models.networks",
        "models.resnet", "models.activations", "models.scores", "data", "plotting"),
    2: ("compatibility", "training"),
    3: ("models",),
    4: ("evaluation", "export"),
    5: ("runs",),
    6: ("cli", "__main__"),
}
APPLICATION = ("runs", "cli", "__main__")
#: Modules that are no folder: the package root holds only these.
ROOT_MODULES = {"__init__", "__main__", "version", "registry", "validation", "files", "edge",
                "_quiet", "plotting", "compatibility"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        yield ".".join(parts), path


def _layer(module):
    """The layer of `module` ("models.vae"): the longest prefix listed."""
    best, best_length = None, -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = layer, len(prefix)
    return best


def _imports(path):
    """The keras_vae modules `path` imports (module paths without the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras_vae"):
            base = node.module[len("keras_vae"):].lstrip(".")
            for alias in node.names:
                target = f"{base}.{alias.name}" if base else alias.name
                found.add(target if _layer(target) is not None else base)
        elif isinstance(node, ast.Import):
            found.update(a.name[len("keras_vae."):] for a in node.names
                         if a.name.startswith("keras_vae."))
    return {name for name in found if name}


def test_every_module_has_a_layer():
    missing = [module for module, _ in _modules() if module and _layer(module) is None]
    assert not missing, f"Give these modules a layer in LAYERS: {missing}"


def test_the_layers_match_the_folders():
    """Every folder of the package is one entry of a layer, and the package
    root holds only the small modules listed in ROOT_MODULES."""
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    listed = {prefix for prefixes in LAYERS.values() for prefix in prefixes}
    assert folders == {prefix for prefix in listed if "." not in prefix} - {
        *ROOT_MODULES}, (folders, listed)
    root = {p.stem for p in PACKAGE.glob("*.py")}
    assert root == ROOT_MODULES, root ^ ROOT_MODULES


def test_no_import_runs_back_up():
    upward = []
    for module, path in _modules():
        if not module or path.name == "__init__.py":  # packages re-export their parts
            continue
        for target in _imports(path):
            if _layer(target) is not None and _layer(target) > _layer(module):
                upward.append(f"{module} (layer {_layer(module)}) imports {target} "
                              f"(layer {_layer(target)})")
    assert not upward, "\n".join(upward)


def test_the_library_never_imports_the_application():
    # The package root counts too: `import keras_vae` must not capture stderr.
    library = [(m, p) for m, p in _modules() if not m.startswith(APPLICATION)]
    offenders = [f"{m} imports {t}" for m, p in library for t in _imports(p)
                 if t.startswith(APPLICATION)]
    assert not offenders, offenders


def test_modules_and_functions_are_small():
    long_modules = [f"{m}: {n}" for m, p in _modules()
                    if (n := len(p.read_text().splitlines())) > 300]
    long_functions = []
    for module, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                body = node.body[1:] if ast.get_docstring(node) else node.body
                code = (body[-1].end_lineno - body[0].lineno + 1) if body else 0
                if code > 40:
                    long_functions.append(f"{module}.{node.name}: {length} lines")
    assert not long_modules, f"modules over 300 lines: {long_modules}"
    assert not long_functions, f"functions over 40 lines of code: {long_functions}"


def test_importing_the_library_has_no_side_effects(tmp_path):
    code = (
        "import os, sys, matplotlib\n"
        "matplotlib.use('svg')\n"
        "def refuse(*args): raise AssertionError('stderr was redirected')\n"
        "os.dup2 = refuse\n"
        "import keras, keras_vae\n"
        "policy = keras.mixed_precision.global_policy().name\n"
        "import numpy as np\n"
        "keras_vae.plotting.image_grid(np.zeros((4, 8, 8, 1)), sys.argv[1])\n"
        "print(matplotlib.get_backend(), policy)\n"
    )
    picture = tmp_path / "grid.png"
    out = subprocess.run([sys.executable, "-c", code, str(picture)], capture_output=True,
                         text=True, timeout=300)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
    # The notebook's backend is kept, and the picture was still drawn.
    assert line == "svg float32", line
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(shutil.which("ruff") is None and not (
    pathlib.Path(sys.executable).parent / "ruff").exists(), reason="ruff is not installed")
def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).parent / "ruff")
    out = subprocess.run([ruff, "check", "."], cwd=PACKAGE.parent, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-3000:]


def test_run_options_take_defaults_and_names_from_the_model():
    import inspect

    import keras_vae
    from keras_vae.distributions import likelihoods, posteriors, priors
    from keras_vae.models import networks, objectives
    from keras_vae.runs import config

    signature = inspect.signature(keras_vae.VAE.__init__).parameters
    defaults = config.defaults()
    for key in config.MODEL_KEYS:
        # The objectives' parameters take their defaults from the objectives.
        default = (objectives.OPTIONS[key][1] if key in objectives.OPTIONS
                   else signature[key].default)
        assert defaults[key] == (list(default) if isinstance(default, tuple) else default), key
    scale = inspect.signature(likelihoods.Gaussian.__init__).parameters["scale"].default
    assert defaults["gaussian_scale"] == scale
    helps = {name: text for name, (_, _, text) in config.options().items()}
    for option, names in (("likelihood", likelihoods.names()), ("prior", priors.names()),
                          ("posterior", posteriors.names()),
                          ("objective", objectives.names()), ("encoder", networks.names())):
        missing = [name for name in names if name not in helps[option]]
        assert not missing, (option, missing)


def test_no_private_registry_is_read_across_modules():
    """Issue 35: families are read through their public registries."""
    offenders = [str(p.relative_to(PACKAGE)) for _, p in _modules()
                 if "_REGISTRY" in p.read_text() or "hasattr(vae" in p.read_text()
                 or "getattr(vae" in p.read_text()]
    assert not offenders, offenders


def test_no_source_file_is_ignored_by_git():
    """A .gitignore rule once hid keras_vae/runs/*.py from commits."""
    root = PACKAGE.parent
    if not (root / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard",
                          "keras_vae", "tests", "export", "benchmarks", "examples"],
                         cwd=root, capture_output=True, text=True, check=True)
    hidden = [p for p in out.stdout.split() if p.endswith((".py", ".md", ".yaml", ".json"))
              and "__pycache__" not in p and "/node_modules/" not in p]  # npm's own
    assert not hidden, hidden


def test_a_run_puts_the_global_policy_and_random_states_back(tmp_path):
    import random

    import keras
    import numpy as np

    from keras_vae import runs
    from keras_vae.runs import config

    np.random.seed(123)
    random.seed(5)
    before = (np.random.get_state()[1].copy(), random.getstate(),
              keras.mixed_precision.global_policy().name)
    values = {"limit": 64, "epochs": 1, "hidden_units": [8], "latent_dim": 2,
              "batch_size": 32, "mixed_precision": "mixed_bfloat16", "seed": 9}
    runs.train(config.resolve(values), str(tmp_path / "run"), verbose=0)
    assert keras.mixed_precision.global_policy().name == before[2] == "float32"
    np.testing.assert_array_equal(np.random.get_state()[1], before[0])
    assert random.getstate() == before[1]
