"""The evaluation job: a run scored on its test split, saved as JSON."""

import json

import numpy as np

from keras_vae import data, evaluation, files
from keras_vae.evaluation import decoding
from keras_vae.runs import build, costs
from keras_vae.runs.layout import Run


def evaluate(run_dir, batch_size=500, verbose="auto", iw_samples=0, anomaly=None,
             anomaly_quantile=0.99, sample_quality=False, iw_precision="float32",
             max_minutes=costs.MAX_MINUTES, max_memory=None):
    """Score a run on its test split; the result is also saved as JSON.

    Always: the negative ELBO, reconstruction and KL (nats per example),
    active units and, for factorised Gaussian priors, the KL per latent
    dimension. With `iw_samples` = k > 0: the importance-sampled negative
    log-likelihood (nats and bits per dimension), its decoder's products in
    `iw_precision` (`keras_vae.evaluation.decoding`: "float32", or "bfloat16" for an
    MLP decoder, faster on CPUs with bfloat16 units). With `anomaly` (another
    dataset spec): per-example negative-ELBO scores of that dataset's test
    split against a threshold at `anomaly_quantile` of this one's, and the
    AUROC of the two. With `sample_quality` (28×28 grey images): the
    Fréchet distance and precision/recall (`keras_vae.evaluation.quality`) of samples
    from the prior and from each fitted sampler against the test images.

    The time and memory of the evaluation are estimated first
    (`keras_vae.runs.costs`: the importance-sampled estimate decodes k codes
    per test image, at the decoder's measured speed), and one over
    `max_minutes` or `max_memory` (GiB) is refused with the estimate.
    """
    _check_arguments(batch_size, iw_samples, anomaly_quantile, iw_precision)
    limits = costs.Limits(max_minutes, max_memory)
    run = Run(run_dir)
    config, vae = run.load()
    decoding.decoding(vae, iw_precision)  # refuses an unknown or unsupported one now
    splits = build.load_splits(config)
    check_cost(vae, config, splits.test.count, batch_size, iw_samples, limits)
    # The test split, read as a stream as many times as the reports need it.
    x_test = build.dataset(config, vae, splits.test, training=False, batch_size=batch_size)
    with data.reading(splits.test):
        logs = vae.evaluate(x_test, verbose=verbose, return_dict=True)
        result = _elbo_report(vae, config, x_test, splits.test.count, logs)
        if iw_samples:
            # Batches of 100, as log_likelihood's own: the same seeds per example.
            result.update(_likelihood_report(
                vae, config, build.dataset(config, vae, splits.test, training=False,
                                           batch_size=100),
                iw_samples, verbose, iw_precision))
        if anomaly:
            result["anomaly"] = _anomaly_report(vae, config, x_test, anomaly, anomaly_quantile)
        if sample_quality:
            result["sample_quality"] = sample_quality_report(
                vae, data.to_unit_interval(splits.test.head(QUALITY_SAMPLES)[0]).numpy(),
                config["seed"])
    files.write_text(run.path("evaluation"), json.dumps(result, indent=2) + "\n")
    return result


def _elbo_report(vae, config, x_test, examples, logs):
    """The test split's ELBO terms (from Keras's `evaluate` logs) and latent usage."""
    result = {
        "dataset": config["dataset"],
        "split": "test",
        "examples": int(examples),
        "binarize": config["binarize"],
        # −ELBO = reconstruction + KL at weight 1, whatever the training used.
        "negative_elbo": float(logs["reconstruction_loss"] + logs["kl_loss"]),
        "reconstruction_loss": float(logs["reconstruction_loss"]),
        "kl_loss": float(logs["kl_loss"]),
        # What `fit` minimised: −ELBO only with the ELBO objective, kl_weight
        # 1 and no free bits.
        "training_objective": float(logs["loss"]),
        "training_objective_name": objective_name(vae),
        "kl_weight": float(np.asarray(vae.kl_weight.value)),
        # z_1 first; one entry for a one-layer model.
        "active_units_per_layer": [count for count, _ in
                                   evaluation.active_units_per_layer(vae, x_test)],
        "units": "nats per example",
    }
    result["active_units"] = sum(result["active_units_per_layer"])
    try:
        result["kl_per_dimension"] = evaluation.kl_per_dimension(vae, x_test).tolist()
    except ValueError:
        pass  # no per-dimension KL for mixture priors
    return result


def check_cost(vae, config, examples, batch_size, iw_samples, limits):
    """Refuse an evaluation whose estimated time or memory is over `limits`:
    the ELBO pass in batches of `batch_size`, and the importance-sampled
    estimate's decodes (examples × k, in chunks of at most 250 codes for
    batches of 100 images) at this decoder's measured speed."""
    batch = min(batch_size, examples)
    limits.check(f"--batch-size {batch_size}", None,
                 nbytes=build.estimated_bytes({**config, "batch_size": batch}, vae.data_shape),
                 fewer="give a smaller --batch-size")
    if not iw_samples:
        return
    decodes = examples * iw_samples
    seconds = decodes / costs.decodes_per_second(vae) * 1.5  # the log-likelihoods' share
    memory = build.estimated_bytes({**config, "batch_size": min(100, examples),
                                    "num_samples": min(iw_samples, 250)}, vae.data_shape)
    limits.check(f"--iw-samples {iw_samples} on {examples} test images ({decodes:.3g} "
                 "decodes)", seconds, memory,
                 fewer="give fewer --iw-samples (1000 to 5000 are the usual numbers)")


def _check_arguments(batch_size, iw_samples, anomaly_quantile, iw_precision):
    for name, value, low in (("batch_size", batch_size, 1), ("iw_samples", iw_samples, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"Invalid {name}: {value!r}. Expected an integer ≥ {low}.")
    if iw_precision != "float32" and not iw_samples:
        raise ValueError(
            f"iw_precision={iw_precision!r} sets how the importance-sampled "
            "log-likelihood decodes, and iw_samples=0 computes none, so it would change "
            "nothing. Give iw_samples > 0 (--iw-samples 5000 for reported numbers), or "
            "leave iw_precision at 'float32'.")
    if not 0 < anomaly_quantile < 1:
        raise ValueError(f"Invalid anomaly_quantile: {anomaly_quantile!r}. Expected a "
                         "number between 0 and 1, e.g. 0.99.")


#: Images compared per sampler: this many samples against as many test images.
QUALITY_SAMPLES = 5000


def sample_quality_report(vae, real_images, seed=0):
    """`{sampler: {"frechet_distance", "precision", "recall"}}` for the prior
    and each fitted sampler, each with as many samples as `real_images`."""
    from keras_vae.evaluation import quality

    if tuple(vae.data_shape) != (28, 28, 1):
        raise ValueError(
            "Sample quality is measured with an MNIST classifier: it takes 28x28 grey "
            f"images, and this model makes images of shape {tuple(vae.data_shape)}.")
    features = quality.Features()
    return {name: evaluation.sample_quality(vae, real_images, sampler=name, seed=seed,
                                            features=features)
            for name in ["prior", *vae.samplers]}


def objective_name(vae):
    """What the model's `loss` is, in words."""
    weight = float(np.asarray(vae.kl_weight.value))
    name = vae.objective.describe(vae)
    details = [f"KL weight {weight:g}"] if weight != 1.0 else []
    details += vae.objective.details()
    return name + (f" with {', '.join(details)}" if details else "")


def _likelihood_report(vae, config, x_test, iw_samples, verbose, precision):
    nll = -evaluation.log_likelihood(vae, x_test, num_samples=iw_samples,
                                     verbose=verbose != 0, precision=precision)
    result = {"negative_log_likelihood": float(nll.mean()), "iw_samples": iw_samples,
              "iw_precision": precision}
    convention, reason = evaluation.bits_convention(
        vae.likelihood, binarized=config["binarize"] != "none")
    if not convention:
        return {**result, "bits_per_dimension_omitted": reason}
    return {
        **result,
        "bits_per_dimension": float(evaluation.bits_per_dimension(
            nll.mean(), int(np.prod(vae.data_shape)), convention)),
        "bits_per_dimension_convention": evaluation.BITS_CONVENTIONS[convention],
    }


def _anomaly_report(vae, config, x_test, spec, quantile):
    other = data.load(spec, data_dir=None, image_size=tuple(vae.data_shape[:2])
                      if spec.startswith("images:") else None, seed=config["seed"])
    if tuple(other.image_shape) != tuple(vae.data_shape):
        raise ValueError(
            f"The anomaly dataset {spec!r} has images of shape {other.image_shape}; "
            f"the model takes {tuple(vae.data_shape)}."
        )
    if vae.num_classes and not other.test.has_labels:
        raise ValueError(f"A conditional model scores labelled data; {spec!r} has no labels.")
    x_other = build.dataset(config, vae, other.test, training=False, batch_size=500)
    normal = evaluation.anomaly_scores(vae, x_test)
    with data.reading(other.test):
        scores = evaluation.anomaly_scores(vae, x_other)
    threshold = evaluation.anomaly_threshold(normal, quantile)
    return {
        "dataset": spec,
        "score": "negative ELBO (nats)",
        "threshold": threshold,
        "quantile": quantile,
        "flagged_fraction": float(np.mean(scores > threshold)),
        "normal_flagged_fraction": float(np.mean(normal > threshold)),
        "auroc": evaluation.auroc(normal, scores),
    }


def evaluation_table(result):
    """The lines `keras-vae evaluate` prints for an evaluation's result."""
    rows = [("negative ELBO", result["negative_elbo"]),
            ("reconstruction", result["reconstruction_loss"]),
            ("KL", result["kl_loss"])]
    if result["training_objective_name"] != "negative ELBO":
        rows.append(("training loss", result["training_objective"]))
    if "negative_log_likelihood" in result:
        rows.append((f"NLL (k={result['iw_samples']})", result["negative_log_likelihood"]))
    header = (f"Test set of {result['dataset']} ({result['examples']} examples, "
              f"binarize={result['binarize']}), nats per example:")
    lines = [header] + [f"  {name:<16}{value:10.2f}" for name, value in rows]
    lines.append(f"  {'active units':<16}{result['active_units']:10d}")
    layers = result.get("active_units_per_layer", [])
    if len(layers) > 1:
        lines.append(f"  {'  per layer':<16}{' + '.join(map(str, layers)):>10}  (z_1 first)")
    if "bits_per_dimension" in result:
        lines.append(f"  {'bits/dimension':<16}{result['bits_per_dimension']:10.4f}"
                     f"  ({result['bits_per_dimension_convention']})")
    if "bits_per_dimension_omitted" in result:
        lines.append(f"  no bits/dimension: {result['bits_per_dimension_omitted']}")
    if result["training_objective_name"] != "negative ELBO":
        lines.append(f"  (training loss: {result['training_objective_name']})")
    for name, scores in result.get("sample_quality", {}).items():
        lines.append(f"Samples ({name}): Fréchet distance {scores['frechet_distance']:.2f}, "
                     f"precision {scores['precision']:.3f}, recall {scores['recall']:.3f}")
    if "anomaly" in result:
        a = result["anomaly"]
        lines.append(f"Anomalies ({a['dataset']}): AUROC {a['auroc']:.4f}; threshold "
                     f"{a['threshold']:.2f} nats flags {100 * a['flagged_fraction']:.1f}% of "
                     f"them and {100 * a['normal_flagged_fraction']:.1f}% of normal data")
    return "\n".join(lines)
