"""The export job: a run's model as SavedModel and LiteRT files."""

import os
import re

from keras_vae import _quiet, export
from keras_vae.runs.layout import Run, load_vae_file

FORMATS = ("saved_model", "tflite")


def export_model(source, out=None, formats=FORMATS, quantize=tuple(export.VARIANTS),
                 model_name="vae", version=None, overwrite=False,
                 batch_sizes=export.BATCH_SIZES):
    """Export a run directory or a `.keras` file; return the paths written.

    SavedModel goes to `<out>/<model_name>/<version>/`, LiteRT files to
    `<out>/<model_name>_<variant>.tflite` (fixed shapes: signatures for each
    of `batch_sizes`); `out` defaults to `<run>/export`.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"Unknown format(s): {', '.join(unknown)}. "
                         f"Expected some of {list(FORMATS)}.")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", str(model_name)):
        raise ValueError(f"Invalid model name {model_name!r}: use letters, digits, '_', "
                         "'-' and '.', e.g. vae (it names files and the served model).")
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file; expected a folder to export into.")
    if os.path.isdir(source):
        config, vae = Run(source).load()
        dataset, out = config["dataset"], out or os.path.join(source, "export")
    else:
        vae, dataset = load_vae_file(source), None
        out = out or os.path.join(os.path.dirname(os.path.abspath(source)), "export")
    # Check every target first, so a refusal leaves nothing half-exported.
    if "saved_model" in formats:
        export.saved_model.version_path(out, model_name, version, overwrite)
    if "tflite" in formats:
        export.litert.litert_paths(out, model_name, quantize, overwrite)
        export.signatures.check_batch_sizes(batch_sizes)
    written = []
    if "saved_model" in formats:
        written.append(export.export_saved_model(vae, out, model_name, version,
                                                 overwrite, dataset))
    if "tflite" in formats:
        with _quiet.converter_logs_hidden():  # the converter's C++ log lines
            paths = export.export_litert(vae, out, model_name, quantize, overwrite, dataset,
                                         batch_sizes)
        written += list(paths.values()) + [os.path.join(out, f"{model_name}_metadata.json")]
    return written
