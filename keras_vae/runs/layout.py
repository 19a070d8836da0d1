"""The run directory: where each file of a run lives, and whether a run can
be started, resumed or read.

    RUN/config.json          the resolved configuration
    RUN/model.keras          the model after the last finished epoch (atomic)
    RUN/history.csv          one row of metrics per finished epoch
    RUN/tensorboard/         scalars, and images of samples and reconstructions
    RUN/samples.png          16 samples from the prior
    RUN/reconstructions.png  test images above their reconstructions
    RUN/interpolation.png    decoded straight line between two test images
    RUN/latent_map.png       posterior means of the test set, by label
    RUN/training_curves.png  loss, reconstruction and KL per epoch
    RUN/evaluation.json      written by `evaluate`
    RUN/backup/              the last epoch's state while training runs
    RUN/export/              written by `export`
    RUN/.keras-vae-run       the marker that makes the folder a run (package, version)
"""

import hashlib
import json
import os
import re
import tempfile

import keras

from keras_vae import files
from keras_vae.models.vae import VAE
from keras_vae.runs import config as config_lib
from keras_vae.version import __version__

PICTURES = ("samples", "reconstructions", "interpolation", "latent_map",
            "training_curves")
MARKER = ".keras-vae-run"


class Run:
    """One run directory, e.g. `Run("runs/demo").path("model")`."""

    FILES = {"config": "config.json", "model": "model.keras",
             "history": "history.csv", "evaluation": "evaluation.json",
             "tensorboard": "tensorboard", "backup": "backup",
             "skipped_files": "skipped_files.txt", "files_read": "files_read.txt",
             "detector": "detector.json", "detect": "detect"}

    def __init__(self, directory):
        self.directory = directory

    def path(self, name):
        """The path of a run file (`FILES`), or of the picture `<name>.png`."""
        return os.path.join(self.directory, self.FILES.get(name, f"{name}.png"))

    def read_config(self):
        config_path = self.path("config")
        if not os.path.exists(config_path):
            raise FileNotFoundError(
                f"No run at {self.directory}: {config_path} is missing. Train one with "
                "`keras-vae train --run-dir DIR`."
            )
        values = config_lib.read_file(config_path)  # a mapping, or a message naming it
        try:
            return config_lib.resolve(values)
        except ValueError as error:
            raise ValueError(f"{config_path}: {error}") from None

    def create(self, config):
        """Make the directory with its marker and config.json."""
        os.makedirs(self.directory)
        files.write_text(os.path.join(self.directory, MARKER), json.dumps(
            {"package": "keras_vae", "version": __version__}) + "\n")
        files.write_text(self.path("config"), json.dumps(config, indent=2) + "\n")

    def _is_marked(self):
        try:
            with open(os.path.join(self.directory, MARKER)) as f:
                return json.load(f).get("package") == "keras_vae"
        except (OSError, ValueError, AttributeError):
            return False

    def unexpected_files(self):
        """Entries of the directory that no run writes."""
        known = set(self.FILES.values()) | {f"{p}.png" for p in PICTURES} | {"export", MARKER}
        return sorted(name for name in os.listdir(self.directory)
                      if name not in known and ".partial" not in name
                      and not re.fullmatch(r"(samples_\w+\.png|sampler_\w+\.json)", name))

    def load(self):
        """`(config, vae)` of a run whose first epoch has finished."""
        config = self.read_config()
        if not os.path.exists(self.path("model")):
            raise FileNotFoundError(
                f"{self.directory} has no model.keras: its first epoch has not "
                f"finished. Continue it with `keras-vae train --resume {self.directory}`."
            )
        vae = load_vae_file(self.path("model"))
        _check_matches(vae, config, self.path("model"), self.path("config"))
        return config, vae

    def check_new(self, overwrite):
        """Refuse to start over an existing directory unless it may go, and
        a place where the directory cannot be made."""
        _check_can_create(self.directory)
        if not (os.path.exists(self.directory) and os.listdir(self.directory)):
            return
        if not overwrite:
            raise FileExistsError(
                f"The run directory {self.directory} exists. Pass --overwrite to "
                f"replace it, --resume {self.directory} to continue its training, or "
                "choose another --run-dir."
            )
        if not self._is_marked():
            raise FileExistsError(
                f"{self.directory} is not a keras-vae run directory (it has no "
                f"{MARKER} marker); --overwrite refuses to delete it. Choose another "
                "--run-dir."
            )
        unexpected = self.unexpected_files()
        if unexpected:
            raise FileExistsError(
                f"{self.directory} holds files that a run does not write: "
                f"{', '.join(unexpected[:10])}{' …' if len(unexpected) > 10 else ''}; "
                "--overwrite refuses to delete them. Move them, or choose another --run-dir."
            )

    def check_resumable(self):
        backup = self.path("backup")
        if not os.path.isdir(backup) and os.path.exists(self.path("model")):
            raise FileExistsError(
                f"The run {self.directory} has finished (model.keras exists and "
                "backup/ is gone): there is nothing to resume. Start a new run with "
                "--run-dir, or --overwrite this one."
            )
        tops = (backup, self.path("tensorboard"))
        files.check_no_link(self.directory, *tops, *(self.path(name) for name in self.FILES))
        folders = [self.directory]
        for top in tops:  # and no link below them (os.walk lists links, never enters)
            for root, subfolders, _ in os.walk(top):
                files.check_no_link(self.directory, *(os.path.join(root, d) for d in subfolders))
                folders.append(root)
        for folder in folders:  # before TensorFlow meets one (its text is raw)
            files.check_writable(folder, "Resuming rewrites model.keras, history.csv, "
                                         "backup/ and tensorboard/ in the run.")
        weights = os.path.join(backup, "latest.weights.h5")
        copies = [p for p in (weights, weights + ".bkp") if os.path.exists(p)]
        if copies and not any(files.readable_h5(p) for p in copies):
            raise ValueError(
                f"The backup {weights} is truncated or corrupt, and so is its "
                "previous copy: this run cannot be resumed. Start it again with "
                "--overwrite."
            )

    def for_worker(self, strategy):
        """Where a non-chief worker writes: fixed per run and worker, so that
        a resumed multi-worker run finds every worker's backup again."""
        key = hashlib.sha1(os.path.abspath(self.directory).encode()).hexdigest()[:10]
        task = strategy.cluster_resolver.task_id
        return Run(os.path.join(tempfile.gettempdir(), f"keras-vae-{key}-worker{task}"))


def _check_can_create(directory):
    """A ValueError unless `directory` is a folder, or can be made as one."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"The run directory {directory} is a file. Choose another --run-dir.")
    parent = os.path.dirname(os.path.abspath(directory))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"Cannot make {directory}: {parent} is a file, not a folder.")
    if not os.access(parent if not os.path.exists(directory) else directory, os.W_OK):
        raise ValueError(f"Cannot write in {parent if not os.path.exists(directory) else directory}"
                         ": permission denied. Choose another --run-dir.")


def path(run_dir, name):
    """`Run(run_dir).path(name)`."""
    return Run(run_dir).path(name)


def _check_matches(vae, config, model_path, config_path):
    """Refuse a model file that another configuration made (a model.keras
    copied from another run): its latent size and likelihood must be the
    config's."""
    from keras_vae.distributions import likelihoods, standardized

    latent = sum(config["latent_dims"]) if config["latent_dims"] else config["latent_dim"]
    found = {"latent size": (vae.latent_dim, latent),
             "likelihood": (likelihoods.REGISTRY.name_of(standardized.inner(vae.likelihood)),
                            config["likelihood"])}
    for what, (in_model, in_config) in found.items():
        if in_model != in_config:
            raise ValueError(
                f"{model_path} does not match {config_path}: its {what} is {in_model!r}, "
                f"the config's {in_config!r}. Put back the run's own model.keras, or "
                "train the run again.")


def load_vae_file(model_path):
    """Load a `.keras` file and check that it holds a `keras_vae.VAE`."""
    if not os.path.exists(model_path):
        raise FileNotFoundError(f"No model file at {model_path}.")
    try:
        model = keras.models.load_model(model_path)
    except Exception as error:  # Keras raises many types for unreadable files
        raise ValueError(
            f"{model_path} could not be read as a Keras model ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Expected a .keras "
            "file saved from a keras_vae.VAE."
        ) from None
    if not isinstance(model, VAE):
        raise ValueError(
            f"{model_path} holds a {type(model).__name__}, not a keras_vae.VAE: "
            "only keras_vae models can be exported."
        )
    return model
