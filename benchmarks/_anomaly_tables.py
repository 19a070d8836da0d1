"""The tables part of anomaly_benchmark.py: scikit-learn's bundled tables,
one class normal at a time, keras_vae's VAEs against the detectors people
use (scikit-learn's and pyod's), on the same splits and seeds.

keras_vae's VAEs take the raw rows (their likelihood standardises them,
`Standardized`) and stop early: a fifth of the training rows (seeded) is
held out, and training stops when their loss has not improved for
`PATIENCE` epochs (Keras's `EarlyStopping`, best weights restored). Two
likelihoods, each a row of the table: a Gaussian with a learnt scale per
column given z (`gaussian_learned_scale`), and a Gaussian of fixed scale on
the standardised columns (`gaussian`). The baselines take the rows
standardised with the training rows' statistics.
"""

import numpy as np

TABLES = ("breast_cancer", "wine", "digits")
#: keras_vae's rows: the likelihood of each.
VAES = {"keras_vae VAE, learnt scales": "gaussian_learned_scale",
        "keras_vae VAE, fixed scale": "gaussian"}
METHODS = (*VAES, "IsolationForest", "LocalOutlierFactor", "OneClassSVM",
           "pyod AutoEncoder", "pyod VAE")
PATIENCE = 20


def table_tasks(name):
    """`[(x, is_anomaly)]`: the one-class tasks of a scikit-learn table."""
    from sklearn import datasets

    loaded = getattr(datasets, f"load_{name}")()
    x, y = loaded.data.astype("float32"), loaded.target
    if name == "breast_cancer":  # target 0 is malignant
        return [(x, y == 0)]
    return [(x, y != label) for label in np.unique(y)]


def vae_scores(likelihood, x_train, x_test, seed, max_epochs, keras_vae):
    """The `log_likelihood` scores (k = 16) of a VAE stopped early."""
    import keras

    from keras_vae.distributions.standardized import Standardized

    keras.utils.set_random_seed(seed)
    columns = x_train.shape[1]
    vae = keras_vae.VAE((columns,), latent_dim=max(2, columns // 4), hidden_units=(64, 32),
                        likelihood=Standardized.fit(likelihood, x_train), seed=seed)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    shuffled = x_train[np.random.default_rng(seed).permutation(len(x_train))]
    stop = keras.callbacks.EarlyStopping("val_loss", patience=PATIENCE,
                                         restore_best_weights=True)
    vae.fit(shuffled, epochs=max_epochs, batch_size=32, validation_split=0.2,
            callbacks=[stop], verbose=0)
    return keras_vae.detectors.Detector("log_likelihood", 16, seed).scores(vae, x_test)


def table_scores(x_train, x_test, seed, max_epochs, keras_vae):
    """Each method's anomaly scores of `x_test` (higher: more anomalous)."""
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.vae import VAE as PyodVAE
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    scores = {name: vae_scores(likelihood, x_train, x_test, seed, max_epochs, keras_vae)
              for name, likelihood in VAES.items()}
    scaler = StandardScaler().fit(x_train)
    train, test = scaler.transform(x_train), scaler.transform(x_test)
    for name, model in (
            ("IsolationForest", IsolationForest(random_state=seed)),
            ("LocalOutlierFactor", LocalOutlierFactor(novelty=True)),
            ("OneClassSVM", OneClassSVM(gamma="scale", nu=0.1))):
        scores[name] = -model.fit(train).score_samples(test)
    for name, model in (("pyod AutoEncoder", AutoEncoder(random_state=seed, verbose=0,
                                                         preprocessing=False)),
                        ("pyod VAE", PyodVAE(random_state=seed, verbose=0,
                                             preprocessing=False))):
        scores[name] = model.fit(train).decision_function(test)
    return scores


def table_benchmark(name, seeds, max_epochs, keras_vae):
    """`{method: [AUROC (%) per seed]}`, each seed's mean over the tasks;
    `seeds` the seeds of the splits and of the models."""
    per_seed = {method: [] for method in METHODS}
    for seed in seeds:
        by_task = {method: [] for method in METHODS}
        for x, anomalous in table_tasks(name):
            rng = np.random.default_rng(seed)
            normal = np.flatnonzero(~anomalous)
            rng.shuffle(normal)
            cut = int(0.7 * len(normal))
            test = np.concatenate([normal[cut:], np.flatnonzero(anomalous)])
            scores = table_scores(x[normal[:cut]], x[test], seed, max_epochs, keras_vae)
            held = anomalous[test]
            for method, values in scores.items():
                by_task[method].append(100 * keras_vae.evaluation.auroc(values[~held],
                                                                        values[held]))
        for method in METHODS:
            per_seed[method].append(float(np.mean(by_task[method])))
    return per_seed


def tables_report(results):
    """Markdown rows: each table's mean AUROC ± standard deviation per method."""
    rows = ["| table | " + " | ".join(METHODS) + " |", "|---" * (1 + len(METHODS)) + "|"]
    for name in TABLES:
        if name not in results.get("tables", {}):
            continue
        values = results["tables"][name]
        best = max(METHODS, key=lambda m: np.mean(values[m]))
        rows.append(f"| {name} | " + " | ".join(
            (f"**{np.mean(values[m]):.1f} ± {np.std(values[m]):.1f}**" if m == best else
             f"{np.mean(values[m]):.1f} ± {np.std(values[m]):.1f}") for m in METHODS) + " |")
    return rows
