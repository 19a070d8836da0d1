"""The anomaly jobs: fit a run's detector on normal data, and flag a dataset.

`fit_detector` scores held-out normal data and keeps the detector (its
score, fixed noise and threshold: `keras_vae.models.detectors`) in the run's
model.keras, with `detector.json` beside it. `detect` scores every example
of a dataset and writes, in `RUN/detect/<name>/`, `scores.csv` (one row per
example: split, index, label, score, is_anomaly), `score_histogram.png` and,
for images, `most_anomalous.png`. Both jobs score examples as the exports
receive them: images as grey levels in [0, 1], never binarized.
"""

import csv
import heapq
import io
import json
import os
import re

import numpy as np

from keras_vae import data, files, plotting
from keras_vae.distributions import standardized
from keras_vae.models import detectors, scores
from keras_vae.runs import build, costs
from keras_vae.runs.layout import Run

#: The examples that `most_anomalous.png` shows.
SHOWN = 8


def fit_detector(run_dir, normal=None, false_positive_rate=0.01, score="elbo",
                 num_samples=detectors.SAMPLES, sampler=None, limits=None):
    """Fit the run's detector on the test split of `normal` (a dataset spec;
    default: the run's own held-out test split); return the paths written.
    `sampler`: the fitted sampler whose density the latent score uses."""
    if score not in scores.names():
        raise ValueError(f"Unknown score: {score!r}. Expected one of {list(scores.names())}.")
    if sampler is not None and score != "latent":
        raise ValueError(f"sampler={sampler!r} is the density of the latent score, and the "
                         f"{score} score uses none. Give --score latent, or leave it out.")
    run = Run(run_dir)
    config, vae = run.load()
    if sampler is not None:
        vae.sampler(sampler)  # refuses a sampler the run has not fitted
        score = scores.LatentDensity(sampler)
    split = _split(config, vae, normal, "test") if normal else build.load_splits(config).test
    detector = detectors.Detector(score, num_samples, config["seed"])
    check_cost(vae, config, detector, split.count, limits or costs.Limits())
    with data.reading(split):
        normal_scores = detector.fit(vae, _as_exported(config, vae, split),
                                     false_positive_rate)
    vae.add_detector(detector)
    files.save_model(vae, run.path("model"))
    report = run.path("detector")
    files.write_text(report, json.dumps({
        **detector.get_config(), "score": scores.REGISTRY.name_of(detector.score),
        "fitted_on": f"{split.count} examples of {split.name}",
        "normal_scores": _summary(normal_scores),
    }, indent=2) + "\n")
    return [run.path("model"), report]


def detect(run_dir, dataset, out=None, split="all", limits=None):
    """Score every example of `dataset` (its `split`: all, train or test)
    with the run's detector; return the paths written."""
    if split not in ("all", "train", "test"):
        raise ValueError(f"Invalid split: {split!r}. Expected all, train or test.")
    run = Run(run_dir)
    config, vae = run.load()
    detector = vae.detector_or_refuse()
    parts = {name: _split(config, vae, dataset, name)
             for name in (("train", "test") if split == "all" else (split,))}
    check_cost(vae, config, detector, sum(p.count for p in parts.values()),
               limits or costs.Limits())
    rows, top = [], []
    for name, part in parts.items():
        with data.reading(part):
            _score_split(vae, detector, config, (name, part), rows, top)
    folder = out or os.path.join(run.directory, "detect", _folder_name(dataset))
    files.check_no_link(run.directory, folder)
    os.makedirs(folder, exist_ok=True)
    written = [_write_csv(os.path.join(folder, "scores.csv"), rows)]
    values = np.array([row[3] for row in rows])
    written.append(plotting.score_histogram(values, detector.threshold,
                                            os.path.join(folder, "score_histogram.png")))
    if len(vae.data_shape) == 3 and top:  # images: the most anomalous, reconstructed
        top.sort(key=lambda item: -item[0])
        images = np.stack([item[2] for item in top])
        labels = np.array([item[3] for item in top], "int32") if vae.num_classes else None
        written.append(plotting.anomalies(
            images, np.asarray(vae.reconstruct(vae.join_inputs(images, labels))),
            [item[0] for item in top], os.path.join(folder, "most_anomalous.png")))
    return written


def _score_split(vae, detector, config, named, rows, top):
    """Append `(split, index, label, score, flag)` rows; keep the SHOWN highest."""
    name, part = named
    function = detector.traced(vae)
    pipeline = _as_exported(config, vae, part)
    labels = None
    if part.has_labels:  # read apart from the model's pipeline, which may drop them
        labels = np.concatenate(list(part.dataset().map(lambda e: e["labels"]).batch(
            8192).as_numpy_iterator()) or [np.zeros(0, "int64")])
    index = 0
    for batch in pipeline:
        values = np.asarray(function(batch), "float64")
        detectors.check_scores(values, f"{part.name}", "so they cannot be flagged")
        images, _ = (np.asarray(t) if t is not None else t for t in vae.split_inputs(batch))
        for offset, value in enumerate(values):
            label = "" if labels is None else int(labels[index + offset])
            rows.append((name, index + offset, label, float(value),
                         bool(value > detector.threshold)))
            item = (float(value), len(rows), images[offset], label or 0)
            (heapq.heappush if len(top) < SHOWN else heapq.heappushpop)(top, item)
        index += len(values)


def check_cost(vae, config, detector, examples, limits):
    """Refuse scoring whose estimated time (examples × k decodes and
    encodes at the decoder's measured speed) or memory (a batch of 256
    examples × k samples) is over `limits`."""
    k = detector.num_samples
    seconds = 2 * examples * k / costs.decodes_per_second(vae)
    nbytes = build.estimated_bytes({**config, "batch_size": min(256, max(examples, 1)),
                                    "num_samples": k},
                                   vae.data_shape)
    limits.check(f"Scoring {examples} examples with {k} samples each", seconds, nbytes,
                 fewer="give fewer --num-samples (16 is the default)")


def _as_exported(config, vae, split):
    """A split's batches as the exports take them: grey levels in [0, 1],
    never binarized (a run that trained on binarized images is scored, and
    its threshold set, on the images themselves, as TF Serving and devices
    will send them)."""
    return build.dataset({**config, "binarize": "none"}, vae, split, training=False,
                         batch_size=256)


def _split(config, vae, spec, name):
    """The `name` split of the dataset `spec`, as the run's model takes it."""
    other = data.load(spec, data_dir=None, image_size=tuple(vae.data_shape[:2])
                      if spec.startswith("images:") else None, seed=config["seed"],
                      label_column=config["label_column"] if spec.startswith(
                          ("csv:", "parquet:")) else None)
    if tuple(other.image_shape) != tuple(vae.data_shape):
        raise ValueError(f"The dataset {spec!r} has examples of shape {other.image_shape}; "
                         f"the model takes {tuple(vae.data_shape)}.")
    trained_on = standardized.columns_of(vae.likelihood)
    if other.columns is not None and trained_on is not None and other.columns != trained_on:
        raise ValueError(f"The table {spec!r} has the columns {other.columns}; the model was "
                         f"trained on {trained_on}. Give a table with the model's columns, "
                         "in its order.")
    if vae.num_classes and not other.test.has_labels:
        raise ValueError(f"A conditional model scores labelled data; {spec!r} has no labels.")
    return getattr(other, name)


def _write_csv(path, rows):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["split", "index", "label", "score", "is_anomaly"])
    writer.writerows((s, i, label, f"{v:.9g}", int(f)) for s, i, label, v, f in rows)
    files.write_text(path, text.getvalue())
    return path


def _folder_name(spec):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(spec.rstrip("/")) or spec)[:80]


def _summary(values):
    return {"count": len(values), "mean": float(np.mean(values)),
            "quantiles": {q: float(np.quantile(values, float(q)))
                          for q in ("0.5", "0.9", "0.99")}}
