"""SavedModel and LiteRT exports: layout, signatures, parity and bad input."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import dynamic_dimensions, run_edge_sample

import keras_vae
from keras_vae import edge, export, runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT = 16  # the demo's latent_dim, which the REST bodies in export/ use


@pytest.fixture(scope="module")
def vae(mnist):
    (x, _), _ = mnist
    keras.utils.set_random_seed(0)
    model = keras_vae.VAE(input_shape=(28, 28, 1), latent_dim=LATENT, hidden_units=(64,))
    model.compile(optimizer="adam")
    model.fit(x[:1000], epochs=1, batch_size=100, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(vae, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("export"))
    path = export.export_saved_model(vae, out, dataset="mnist")
    litert = export.export_litert(vae, out, quantize=tuple(export.VARIANTS))
    return out, path, litert


def _z(n=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, LATENT)).astype("float32")


# === SavedModel ===
def test_layout_is_what_tf_serving_loads(exported):
    out, path, _ = exported
    assert path == os.path.join(out, "vae", "1")
    assert {"saved_model.pb", "variables", "assets.extra"} <= set(os.listdir(path))
    assert not [name for name in os.listdir(os.path.join(out, "vae")) if not name.isdigit()]


def test_signatures_match_keras(exported, vae, mnist):
    _, path, _ = exported
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"decode", "sample", "sample_seeded", "encode",
                                      "metadata", "serving_default"}
    z = _z()
    want = np.asarray(vae.decode(z))
    np.testing.assert_allclose(loaded.signatures["decode"](z=tf.constant(z))["images"], want, atol=1e-5)
    np.testing.assert_allclose(loaded.signatures["serving_default"](z=tf.constant(z))["images"], want, atol=1e-5)
    (x, _), _ = mnist
    encoded = loaded.signatures["encode"](x=tf.constant(x[:7]))
    loc, scale = vae.encode(x[:7])
    np.testing.assert_allclose(encoded["loc"], loc, atol=1e-5)
    np.testing.assert_allclose(encoded["scale"], scale, atol=1e-5)


def test_sample_signatures(exported, vae):
    _, path, _ = exported
    signatures = tf.saved_model.load(path).signatures
    images = signatures["sample"](n=tf.constant(6))["images"].numpy()
    assert images.shape == (6, 28, 28, 1) and 0 <= images.min() and images.max() <= 1
    assert not np.allclose(images, signatures["sample"](n=tf.constant(6))["images"])
    seeded = lambda s: signatures["sample_seeded"](n=tf.constant(4), seed=tf.constant(s, tf.int64))["images"]  # noqa: E731
    np.testing.assert_array_equal(seeded(7), seeded(7))
    assert not np.allclose(seeded(7), seeded(8))
    np.testing.assert_allclose(seeded(7), vae.sample(4, seed=7), atol=1e-5)


def test_metadata_is_stored_and_readable_from_the_savedmodel(exported):
    _, path, _ = exported
    from_signature = json.loads(
        tf.saved_model.load(path).signatures["metadata"]()["json"].numpy())
    with open(os.path.join(path, "assets.extra", "metadata.json")) as f:
        from_file = json.load(f)
    assert from_signature == from_file
    assert from_file["latent_dim"] == LATENT and from_file["image_shape"] == [28, 28, 1]
    assert from_file["likelihood"] == "Bernoulli" and from_file["training_data"] == "mnist"
    assert from_file["package_version"] == keras_vae.__version__


def test_warmup_file_parses_as_prediction_logs(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    _, path, _ = exported
    records = tf.data.TFRecordDataset(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"))
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
    names = [log.predict_log.request.model_spec.signature_name for log in logs]
    assert names == ["decode", "sample", "sample_seeded", "encode"]
    z = tf.make_ndarray(logs[0].predict_log.request.inputs["z"])
    assert z.shape == (1, LATENT)
    assert all(log.predict_log.request.model_spec.name == "vae" for log in logs)


def test_bad_requests_name_what_was_expected(exported):
    _, path, _ = exported
    signatures = tf.saved_model.load(path).signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"z must have shape \[batch, {LATENT}\]"):
        signatures["decode"](z=tf.zeros((2, LATENT + 1)))
    for n in (0, -3, export.MAX_SAMPLES + 1):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"n must be an integer in \[1, 4096\]"):
            signatures["sample"](n=tf.constant(n))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"x must have shape \[batch, 28, 28, 1\]"):
        signatures["encode"](x=tf.zeros((1, 28, 27, 1)))


def test_versions_are_never_overwritten_unless_asked(exported, vae):
    out, _, _ = exported
    second = export.export_saved_model(vae, out)
    assert second == os.path.join(out, "vae", "2")
    with pytest.raises(FileExistsError, match="vae/1 exists. Choose another version, or pass overwrite=True"):
        export.export_saved_model(vae, out, version=1)
    assert export.export_saved_model(vae, out, version=1, overwrite=True).endswith("1")
    with pytest.raises(ValueError, match="positive integer version"):
        export.export_saved_model(vae, out, version=0)


@pytest.mark.long  # a served page or TensorFlow's own CLI in subprocesses: make test-long
def test_saved_model_cli_lists_and_runs_decode(exported, vae, tmp_path):
    _, path, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True,
                           text=True, check=True).stdout
    for name in ("decode", "sample", "sample_seeded", "encode", "serving_default"):
        assert f"signature_def['{name}']" in shown
    z = _z(3, seed=4)
    np.save(tmp_path / "z.npy", z)
    subprocess.run([cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def",
                    "decode", "--inputs", f"z={tmp_path / 'z.npy'}", "--outdir",
                    str(tmp_path / "out")], capture_output=True, text=True, check=True)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "images.npy"), vae.decode(z), atol=1e-5)


def _rest_inputs(body):
    if "instances" in body:
        names = body["instances"][0].keys()
        return {k: np.array([row[k] for row in body["instances"]], "float32") for k in names}
    dtypes = {"n": "int32", "seed": "int64"}
    return {k: np.array(v, dtypes.get(k, "float32")) for k, v in body["inputs"].items()}


def test_rest_bodies_of_the_deployment_kit_run(exported):
    _, path, _ = exported
    signatures = tf.saved_model.load(path).signatures
    folder = os.path.join(ROOT, "export", "requests")
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as f:
            body = json.load(f)
        signature = body.get("signature_name", "serving_default")
        assert name == f"{signature}.json"
        outputs = signatures[signature](**{k: tf.constant(v) for k, v in _rest_inputs(body).items()})
        assert all(np.isfinite(v.numpy()).all() for v in outputs.values()), name


# === LiteRT ===
def test_litert_files_have_decode_and_sample(exported):
    out, _, litert = exported
    assert sorted(os.path.basename(p) for p in litert.values()) == [
        "vae_dynamic.tflite", "vae_float16.tflite", "vae_float32.tflite", "vae_int8.tflite"]
    sizes = {v: os.path.getsize(p) for v, p in litert.items()}
    # (This small model's signatures weigh against its weights; the demo
    # model's dynamic-range file is about 0.3 of float32, BENCHMARKS.md.)
    assert sizes["float16"] < 0.6 * sizes["none"] and sizes["dynamic"] < 0.6 * sizes["none"]
    for path in litert.values():
        generator = edge.LiteRTGenerator(path)
        assert generator.latent_dim == LATENT and generator.batch_sizes == [1, 16, 64]
        assert generator.sample(3).shape == (3, 28, 28, 1)
    with open(os.path.join(out, "vae_metadata.json")) as f:
        metadata = json.load(f)
    assert metadata["latent_dim"] == LATENT and metadata["batch_sizes"] == [1, 16, 64]


def test_every_litert_file_has_fixed_shapes_everywhere(exported):
    """LiteRT.js refuses a dynamic batch dimension (and sampled out of
    bounds); no LiteRT file the exporter writes may have one."""
    _, _, litert = exported
    for variant, path in litert.items():
        assert dynamic_dimensions(path) == [], variant
    from ai_edge_litert.interpreter import Interpreter

    names = Interpreter(model_path=litert["none"]).get_signature_list()
    assert sorted(names) == sorted(f"{kind}_{b}" for kind in ("decode", "sample")
                                   for b in (1, 16, 64))
    assert names["sample_16"]["inputs"] == ["temperature"]


def test_a_request_runs_whole_batches_and_trims(exported, vae):
    _, _, litert = exported
    assert edge.batch_plan(83, [1, 16, 64]) == [(0, 64), (64, 64)]
    assert edge.batch_plan(17, [1, 16, 64]) == [(0, 64)]
    assert edge.batch_plan(130, [1, 16]) == [(s, 16) for s in range(0, 128, 16)] + [(128, 16)]
    assert edge.batch_plan(2, [1, 16]) == [(0, 16)]
    assert edge.batch_plan(1, [1, 16]) == [(0, 1)]
    generator = edge.LiteRTGenerator(litert["none"])
    for n in (1, 5, 16, 83):
        z = _z(n, seed=n)
        np.testing.assert_allclose(generator.decode(z), vae.decode(z), atol=1e-5)
        assert generator.sample(n).shape == (n, 28, 28, 1)


def test_temperature_scales_the_noise_of_litert_samples(exported, vae):
    _, _, litert = exported
    generator = edge.LiteRTGenerator(litert["none"])
    # Temperature 0: every code is the prior's mean, z = 0.
    cold = generator.sample(20, temperature=0.0)
    np.testing.assert_allclose(cold, np.broadcast_to(vae.decode(np.zeros((1, LATENT))),
                                                     cold.shape), atol=1e-5)
    warm = generator.sample(20)
    assert np.abs(warm - cold).max() > 0.1
    for bad in (-0.5, float("nan"), "1", True):
        with pytest.raises(ValueError, match="temperature >= 0"):
            generator.sample(2, temperature=bad)


def test_a_file_with_a_dynamic_batch_dimension_is_refused_with_a_fix(vae, tmp_path):
    from keras_vae.export import signatures

    saved = str(tmp_path / "dynamic")
    signatures.write_archive(vae, saved, ["decode"], checked=False)
    path = tmp_path / "old.tflite"
    path.write_bytes(export.convert(saved, "none", LATENT, signature_keys=("decode",)))
    with pytest.raises(ValueError, match=r"signatures \['decode'\]; expected decode_<B> and "
                                         r"sample_<B> with fixed batch sizes B. Export it again"):
        edge.LiteRTGenerator(str(path))


def test_export_batch_sizes_are_chosen_and_checked(vae, tmp_path):
    paths = export.export_litert(vae, str(tmp_path), batch_sizes=[4, 2])
    generator = edge.LiteRTGenerator(paths["none"])
    assert generator.batch_sizes == [2, 4] and dynamic_dimensions(paths["none"]) == []
    assert generator.sample(7).shape == (7, 28, 28, 1)
    for bad in ([], [0, 16], [2.5], "16", [export.MAX_SAMPLES + 1]):
        with pytest.raises(ValueError, match=r"Expected batch sizes: a list of integers in "
                                             r"\[1, 4096\].*Received: "):
            export.export_litert(vae, str(tmp_path / "bad"), batch_sizes=bad)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("variant, max_error, mean_error", [
    ("none", 1e-5, 1e-6), ("float16", 1e-3, 1e-4),
    # Quantized variants are measured (benchmarks/export_benchmark.py); here
    # only a gross error fails.
    ("dynamic", 0.1, 0.01), ("int8", 0.5, 0.05)])
def test_litert_parity_with_keras(exported, vae, variant, max_error, mean_error):
    _, _, litert = exported
    z = _z(64, seed=1)
    error = np.abs(edge.LiteRTGenerator(litert[variant]).decode(z) - vae.decode(z))
    assert error.max() < max_error and error.mean() < mean_error, (variant, error.max(), error.mean())


def test_litert_bad_input_is_refused_before_the_interpreter(exported):
    _, _, litert = exported
    generator = edge.LiteRTGenerator(litert["none"])
    with pytest.raises(ValueError, match=rf"z of shape \(n, {LATENT}\).*z.shape=\(2, 3\)"):
        generator.decode(np.zeros((2, 3)))
    for n in (0, edge.MAX_SAMPLES + 1, 2.5):
        with pytest.raises(ValueError, match=r"integer n in \[1, 4096\]"):
            generator.sample(n)


def test_conversion_names_an_op_without_builtin_kernel(tmp_path, vae):
    archive = keras.export.ExportArchive()
    archive.track(vae)
    archive.add_endpoint(
        "decode",
        lambda z: {"images": vae.decode(z + tf.random.stateless_normal(tf.shape(z), seed=[1, 2]))},
        input_signature=[tf.TensorSpec([None, LATENT], tf.float32, name="z")])
    archive.write_out(str(tmp_path / "flex"), verbose=False)
    with pytest.raises(ValueError, match=r"LiteRT has no builtin kernel for the op\(s\) .*StatelessRandom"):
        export.convert(str(tmp_path / "flex"), signature_keys=("decode",))


def test_existing_litert_file_is_refused(exported, vae):
    out, _, _ = exported
    with pytest.raises(FileExistsError, match="vae_float32.tflite already exist"):
        export.export_litert(vae, out, quantize=("none",))
    with pytest.raises(ValueError, match=r"Unknown quantization: int4"):
        export.export_litert(vae, out, quantize=("int4",))


# === The deployment kit and the command line ===
def test_edge_sample_runs_without_tensorflow(exported, vae, tmp_path):
    _, _, litert = exported
    png = tmp_path / "edge.png"
    result = run_edge_sample(litert["none"], "--num", "6", "--seed", "3", "--scale", "1",
                             "--out", png)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["images"] == 6
    import matplotlib.image

    picture = matplotlib.image.imread(png)  # floats in [0, 1]
    z = np.random.default_rng(3).standard_normal((6, LATENT)).astype("float32")
    want = np.asarray(vae.decode(z))
    for index in range(6):  # grid of 3 columns, 2-pixel padding
        top, left = 2 + (index // 3) * 30, 2 + (index % 3) * 30
        tile = picture[top: top + 28, left: left + 28]
        np.testing.assert_allclose(tile, want[index, ..., 0], atol=1 / 255 + 1e-6)


def test_edge_sample_temperature_without_tensorflow(exported, vae, tmp_path):
    _, _, litert = exported
    png = tmp_path / "cold.png"
    result = run_edge_sample(litert["none"], "--num", "4", "--temperature", "0",
                             "--scale", "1", "--out", png)
    assert result.returncode == 0, result.stderr[-2000:]
    import matplotlib.image

    picture = matplotlib.image.imread(png)
    want = np.asarray(vae.decode(np.zeros((1, LATENT), "float32")))[0, ..., 0]
    for index in range(4):  # temperature 0: every code at the prior's mean
        top, left = 2 + (index // 2) * 30, 2 + (index % 2) * 30
        np.testing.assert_allclose(picture[top: top + 28, left: left + 28], want,
                                   atol=1 / 255 + 1e-6)


def test_png_writer_round_trips(tmp_path):
    import matplotlib.image

    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    edge.write_png(rgb, str(tmp_path / "rgb.png"))
    np.testing.assert_array_equal(np.round(matplotlib.image.imread(tmp_path / "rgb.png") * 255), rgb)


def test_export_refuses_models_that_are_not_keras_vae(tmp_path):
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="holds a Sequential, not a keras_vae.VAE"):
        runs.export_model(str(tmp_path / "other.keras"), str(tmp_path / "out"))
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.keras could not be read as a Keras model"):
        runs.export_model(str(tmp_path / "junk.keras"), str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"Unknown format\(s\): onnx"):
        runs.export_model(str(tmp_path / "other.keras"), formats=("onnx",))



# === A conditional model: trained from a data source, exported with labels ===
@pytest.mark.long  # 10-15 s; the matrix and journeys cover the common path
def test_conditional_run_trains_evaluates_and_exports_with_labels(tmp_path):
    config = keras_vae.runs.config.resolve({"conditional": True, "limit": 600, "epochs": 1,
                                       "batch_size": 100, "hidden_units": [32],
                                       "latent_dim": 2})
    run_dir = str(tmp_path / "run")
    written = runs.train(config, run_dir, verbose=0)
    assert all(os.path.exists(p) for p in written)
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f)["num_classes"] == 10  # found in the labels
    scores = runs.evaluate(run_dir, verbose=0)
    assert scores["negative_elbo"] == pytest.approx(
        scores["reconstruction_loss"] + scores["kl_loss"], rel=1e-5)
    vae = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    assert isinstance(vae, keras_vae.ConditionalVAE)

    out = str(tmp_path / "export")
    paths = runs.export_model(run_dir, out, quantize=("none",))
    signatures = tf.saved_model.load(paths[0]).signatures
    z = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
    labels = np.array([0, 3, 7, 9], "int32")
    want = np.asarray(vae.decode(z, labels=labels))
    got = signatures["decode"](z=tf.constant(z), labels=tf.constant(labels))["images"]
    np.testing.assert_allclose(got, want, atol=1e-5)
    seeded = signatures["sample_seeded"](labels=tf.constant(labels), seed=tf.constant(5, tf.int64))
    np.testing.assert_allclose(seeded["images"], vae.sample(4, seed=5, labels=labels), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must be integers in \[0, 10\)"):
        signatures["decode"](z=tf.constant(z), labels=tf.constant([0, 1, 2, 10]))
    generator = edge.LiteRTGenerator(os.path.join(out, "vae_float32.tflite"))
    assert generator.conditional
    np.testing.assert_allclose(generator.decode(z, labels=labels), want, atol=1e-5)
    assert generator.sample(5, labels=7).shape == (5, 28, 28, 1)
    with pytest.raises(ValueError, match="is a conditional model: pass labels"):
        generator.sample(5)


def test_the_device_code_knows_the_exporters_sample_limit():
    assert edge.MAX_SAMPLES == export.MAX_SAMPLES


@pytest.mark.parametrize("content", ["truncated", b"not a model", b""])
def test_litert_refuses_truncated_and_foreign_files(exported, tmp_path, content):
    _, _, litert = exported
    path = tmp_path / "bad.tflite"
    whole = open(litert["none"], "rb").read()
    path.write_bytes(whole[: len(whole) // 3] if content == "truncated" else content)
    with pytest.raises(ValueError, match="is not a LiteRT model .*Export it again"):
        edge.LiteRTGenerator(str(path))
    script = os.path.join(ROOT, "export", "edge_sample.py")
    result = subprocess.run([sys.executable, script, str(path)], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"edge_sample: error: {path} is not a LiteRT model" in result.stderr
    result = subprocess.run([sys.executable, script, litert["none"], "--num", "0"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "integer n in [1, 4096]" in result.stderr
