"""The export job: a run's model as SavedModel, LiteRT files and a web page."""

import os
import re

from keras_vae import _quiet, export, files
from keras_vae.export import web
from keras_vae.runs.layout import Run, load_vae_file

FORMATS = ("saved_model", "tflite", "web")

#: The formats written when none are named (`web` is asked for by name).
DEFAULT_FORMATS = ("saved_model", "tflite")


def export_model(source, out=None, formats=DEFAULT_FORMATS, quantize=None,
                 model_name="vae", version=None, overwrite=False,
                 batch_sizes=export.BATCH_SIZES, web_runtime=web.CDN_RUNTIME):
    """Export a run directory or a `.keras` file; return the paths written.

    SavedModel goes to `<out>/<model_name>/<version>/`, LiteRT files to
    `<out>/<model_name>_<variant>.tflite` (fixed shapes: signatures for each
    of `batch_sizes`); `out` defaults to `<run>/export`. The `web` format
    writes a page that generates in the browser into `<out>/web/` (see
    `keras_vae.export.web`: its variants are `quantize`, float32 and int8
    by default, and it loads LiteRT.js from `web_runtime`).
    """
    _check_arguments(formats, model_name, out)
    if os.path.isdir(source):
        config, vae = Run(source).load()
        base = source if out is None else out  # no link followed out of the run
        dataset, out = config["dataset"], out or os.path.join(source, "export")
    else:
        vae, dataset = load_vae_file(source), None
        base = out or os.path.dirname(os.path.abspath(source))
        out = out or os.path.join(os.path.dirname(os.path.abspath(source)), "export")
    files.check_no_link(base, os.path.join(out, model_name), os.path.join(out, "web"))
    # Check every target first, so a refusal leaves nothing half-exported.
    if "saved_model" in formats:
        export.saved_model.version_path(out, model_name, version, overwrite)
    web_dir = os.path.join(out, "web")
    web_quantize = quantize or web.WEB_VARIANTS
    quantize = quantize or tuple(export.VARIANTS)
    if "tflite" in formats:
        export.litert.litert_paths(out, model_name, quantize, overwrite)
    if "web" in formats:
        _check_images(vae)
        web.check_target(web_dir, web_quantize, overwrite, web_runtime)
    export.signatures.check_batch_sizes(batch_sizes)
    written = []
    if "saved_model" in formats:
        written.append(export.export_saved_model(vae, out, model_name, version,
                                                 overwrite, dataset))
    paths = {}
    if "tflite" in formats:
        with _quiet.converter_logs_hidden():  # the converter's C++ log lines
            paths = export.export_litert(vae, out, model_name, quantize, overwrite, dataset,
                                         batch_sizes)
        written += list(paths.values()) + [os.path.join(out, f"{model_name}_metadata.json")]
    if "web" in formats:
        with _quiet.converter_logs_hidden():
            written += web.export_web(vae, web_dir, web_quantize, overwrite, dataset,
                                      batch_sizes, web_runtime, converted=paths)
    return written


def _check_arguments(formats, model_name, out):
    if not formats:
        raise ValueError(f"No export format was given (received {tuple(formats)!r}), so "
                         f"nothing would be written. Give some of {list(FORMATS)}, e.g. "
                         "--formats saved_model,tflite.")
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"Unknown format(s): {', '.join(unknown)}. "
                         f"Expected some of {list(FORMATS)}.")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", str(model_name)):
        raise ValueError(f"Invalid model name {model_name!r}: use letters, digits, '_', "
                         "'-' and '.', e.g. vae (it names files and the served model).")
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file; expected a folder to export into.")


def _check_images(vae):
    """The web page draws images: refuse a table's model (its rows are not)."""
    if len(vae.data_shape) != 3:
        raise ValueError(
            f"The web page draws generated images, and a table's rows are not images "
            f"(the model takes rows of {vae.data_shape[0]} columns). Export "
            "saved_model,tflite: their score signatures take raw rows.")
