"""The sampler job: fit a sampler of z to a finished run's training codes,
keep it in the run's model.keras, and draw its samples."""

import json

from keras_vae import data, files
from keras_vae.models import samplers
from keras_vae.runs import build, pictures
from keras_vae.runs.layout import Run

#: The samplers this job fits: the registry's (`keras_vae.samplers.names()`).
SAMPLERS = samplers.names()


def fit_sampler(run_dir, sampler="gmm", components="auto"):
    """Fit `sampler` (a Gaussian mixture, K = `components` or "auto") to the
    posterior means of the run's training images; return the paths written:
    model.keras (now holding the sampler), `sampler_<name>.json` (K and the
    held-out log-density of each K tried) and `samples_<name>.png`."""
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler: {sampler!r}. Expected one of {list(SAMPLERS)}.")
    if components != "auto" and (isinstance(components, bool)
                                 or not isinstance(components, int) or components < 1):
        raise ValueError(f"Invalid components: {components!r}. Expected a positive "
                         "integer or 'auto'.")
    run = Run(run_dir)
    config, vae = run.load()
    splits = build.load_splits(config)
    # The training images as the model saw them (binarized once, with the
    # seed), streamed: their posterior means are computed batch by batch.
    images = build.dataset(config, vae, splits.train, training=False, batch_size=1000)
    with data.reading(splits.train):
        fitted, scores = samplers.fit_gaussian_mixture(vae, images, num_components=components,
                                                       seed=config["seed"])
    vae.add_sampler(sampler, fitted)
    files.save_model(vae, run.path("model"))
    report = run.path(f"sampler_{sampler}").replace(".png", ".json")
    files.write_text(report, json.dumps({
        "sampler": type(fitted).__name__, "components": fitted.num_components,
        "fitted_on": f"posterior means of {splits.train.count} training images",
        "held_out_log_density_by_components": {str(k): v for k, v in scores.items()},
    }, indent=2) + "\n")
    picture = pictures.draw(run_dir, "samples", vae, config, splits, sampler=sampler)
    return [run.path("model"), report, picture]
