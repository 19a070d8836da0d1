"""Training runs: the application layer under the `keras-vae` command line.

One directory holds everything a run produced (`layout.Run`); each job has
its module: `train`, `evaluate`, `pictures` (draw), `detect`, `export`, `web` and
`convert`, with the
configuration turned into objects in `build`. The library (`keras_vae.VAE`
and the rest) never imports this package.
"""

from keras_vae.runs.build import build_model, inputs, load_splits
from keras_vae.runs.convert import convert
from keras_vae.runs.detect import detect, fit_detector
from keras_vae.runs.evaluate import evaluate, evaluation_table, objective_name
from keras_vae.runs.export import FORMATS, export_model
from keras_vae.runs.layout import Run, load_vae_file, path
from keras_vae.runs.pictures import PICTURES, draw
from keras_vae.runs.samplers import SAMPLERS, fit_sampler
from keras_vae.runs.train import train
from keras_vae.runs.web import serve_web


def read_config(run_dir):
    """The resolved configuration of a run."""
    return Run(run_dir).read_config()


def load_run(run_dir):
    """`(config, vae)` of a finished run."""
    return Run(run_dir).load()


def worker_dir(run_dir, strategy):
    """Where a non-chief worker of a multi-worker run writes."""
    return Run(run_dir).for_worker(strategy).directory


__all__ = [
    "FORMATS", "PICTURES", "Run", "build_model", "convert", "draw", "evaluate", "evaluation_table",
    "export_model",
    "inputs", "load_run", "load_splits", "load_vae_file", "objective_name", "path",
    "read_config", "serve_web", "train", "worker_dir", "SAMPLERS", "fit_sampler",
    "detect", "fit_detector",
]
