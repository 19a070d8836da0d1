"""Bad input to `keras-vae` gets one clear message, exit code 2, no traceback,
and leaves no run directory or export behind (table-driven; in-process, so
that an unhandled exception fails the test where a user would see a
traceback)."""

import json
import os
import struct
import zlib

import numpy as np
import pytest

from keras_vae import cli

FAST = ["--limit", "64", "--epochs", "1", "--hidden-units", "8", "--latent-dim", "2",
        "--batch-size", "32"]


def run(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out + out.err


def check_refused(argv, capsys, *expected, code=2):
    got, output = run(argv, capsys)
    assert got == code, output[-2000:]
    assert "Traceback" not in output
    for text in expected:
        assert text in output, (text, output[-2000:])
    return output


# === train options ===
OVER_MEMORY = "of memory on this machine; the memory limit is"
TRAIN_CASES = [
    (["--skip-bad-files", "true"], "skip_bad_files applies to sources read from files "
     "(images:<dir>, tfrecord:<dir>, tfds:<name>); 'mnist' is held in memory, so it would "
     "change nothing"),
    (["--cache-dir", "/tmp/c"], "cache_dir applies to sources read from files"),
    (["--shuffle-buffer", "100"], "shuffle_buffer applies to sources read from files"),
    (["--shuffle-buffer", "0"], "Invalid value for shuffle_buffer: 0"),
    (["--epochs", "0"], "Invalid value for epochs: 0"),
    (["--epochs", "-1"], "Invalid value for epochs: -1"),
    (["--epochs", "two"], "Invalid value for epochs: 'two'"),
    (["--batch-size", "0"], "Invalid value for batch_size: 0"),
    (["--batch-size", "-5"], "Invalid value for batch_size: -5"),
    (["--batch-size", "1000000000"], "Invalid value for batch_size: 1000000000"),
    (["--latent-dim", "0"], "Invalid value for latent_dim: 0"),
    (["--batch-size", "100", "--drop-remainder", "true"],
     "batch_size 100 is larger than the 64 training images: with drop_remainder no batch"),
    (["--hidden-units", "60000,60000"], OVER_MEMORY),
    (["--num-samples", "90000", "--latent-dim", "512"], OVER_MEMORY),
    # Issue 36: the estimate missed a hierarchy's links and a full covariance's head.
    (["--latent-dims", "60000,60000", "--hierarchy-units", "60000"], OVER_MEMORY),
    (["--latent-dim", "60000", "--posterior", "full_covariance"], OVER_MEMORY),
    # Issue 36: the memory limit is stated, and a flag sets it.
    (["--max-memory", "0.001"], "Training this model on 28x28x1 examples in batches of 32 "
     "for 1 epochs (weights, gradients, Adam's slots and one batch of activations) would "
     "need about 1.6 MiB of memory on this machine; the memory limit is 1.0 MiB: raise it with "
     "--max-memory GIB (max_memory=); or use fewer epochs or smaller hidden_units"),
    (["--max-memory", "0"], "Invalid value for max_memory: 0"),
    (["--max-minutes", "0.0001", "--epochs", "1000"], "for 1000 epochs (weights, gradients, "
     "Adam's slots and one batch of activations) would take about "),
    (["--max-minutes", "-1"], "Invalid value for max_minutes: -1"),
    (["--resnet-blocks", "3"], "resnet_blocks applies to the resnet networks"),
    (["--mixture-components", "3"], "mixture_components applies to the "
                                    "discretized_logistic_mixture and "
                                    "autoregressive_logistic_mixture likelihoods, not to "
                                    "'bernoulli'"),
    (["--augment", "mirror"], "Invalid augment: 'mirror'. Expected 'none', or names from "
                              "['flip', 'channel_order'] joined by '+'"),
    (["--likelihood", "discretized_logistic_mixture", "--mixture-neighbours", "4"],
     "mixture_neighbours applies to the autoregressive_logistic_mixture likelihood, not to "
     "'discretized_logistic_mixture'"),
    (["--likelihood", "discretized_logistic_mixture", "--mixture-cross-channel", "false"],
     "mixture_cross_channel applies to the autoregressive_logistic_mixture likelihood, not to "
     "'discretized_logistic_mixture'"),
    (["--mixture-local-scales", "true"], "mixture_local_scales applies to the "
                                         "autoregressive_logistic_mixture likelihood, not to "
                                         "'bernoulli'"),
    (["--mixture-local-scales", "maybe"], "Invalid value for mixture_local_scales: 'maybe'"),
    (["--latent-dim", "100000000"], "Invalid value for latent_dim: 100000000"),
    (["--hidden-units", "0"], "Invalid value for hidden_units: 0"),
    (["--hidden-units", "a,b"], "Invalid value for hidden_units: 'a,b'"),
    (["--hidden-units", ","], "Invalid value for hidden_units: ','"),
    (["--hidden-units", "100000000"], "Invalid value for hidden_units: 100000000"),
    (["--conv-filters", "-3"], "Invalid value for conv_filters: -3"),
    (["--learning-rate", "0"], "Invalid value for learning_rate: 0"),
    (["--learning-rate", "nan"], "Invalid value for learning_rate: nan"),
    (["--learning-rate", "inf"], "Invalid value for learning_rate: inf"),
    (["--clipnorm", "0"], "Invalid value for clipnorm: 0"),
    (["--kl-weight", "-1"], "Invalid value for kl_weight: -1"),
    (["--kl-weight", "nan"], "Invalid value for kl_weight: nan"),
    (["--free-bits", "-0.5"], "Invalid value for free_bits: -0.5"),
    (["--num-samples", "0"], "Invalid value for num_samples: 0"),
    (["--seed", "-1"], "Invalid value for seed: -1"),
    (["--limit", "0"], "Invalid value for limit: 0"),
    (["--gaussian-scale", "0"], "Invalid value for gaussian_scale: 0"),
    (["--prior-components", "0"], "Invalid value for prior_components: 0"),
    (["--steps-per-execution", "0"], "Invalid value for steps_per_execution: 0"),
    (["--use-exact-kl", "maybe"], "Invalid value for use_exact_kl: 'maybe'"),
    (["--likelihood", "poisson"], "Unknown likelihood: 'poisson'"),
    (["--prior", "flat"], "Unknown prior: 'flat'"),
    (["--posterior", "flow"], "Unknown posterior: 'flow'"),
    (["--objective", "vimco"], "Unknown objective: 'vimco'"),
    (["--encoder", "transformer"], "Unknown encoder: 'transformer'"),
    (["--optimizer", "nope"], "Unknown optimizer: 'nope'"),
    (["--binarize", "half"], "Unknown binarize mode: 'half'"),
    (["--strategy", "cluster"], "cluster"),
    (["--mixed-precision", "fp8"], "fp8"),
    (["--dataset", "cifar"], "Unknown dataset: 'cifar'"),
    (["--dataset", "npz:/no/such/file.npz"], "No .npz file at /no/such/file.npz"),
    (["--dataset", "images:/no/such/folder"], "No folder of images at /no/such/folder"),
    (["--image-size", "big"], "Invalid image_size 'big'"),
    (["--kl-warmup-epochs", "2", "--kl-cycle-epochs", "2"], "not both"),
    (["--free-bits", "0.5", "--objective", "iwae"], "free_bits"),
    (["--prior-components", "3"], "prior_components applies to"),
    (["--conditional", "true", "--dataset", "npz:{unlabelled}"], "conditional training needs labels"),
]


@pytest.fixture
def unlabelled(tmp_path):
    path = tmp_path / "unlabelled.npz"
    x = np.random.default_rng(0).integers(0, 256, (80, 8, 8), dtype=np.uint8)
    np.savez(path, x_train=x[:70], x_test=x[70:])
    return str(path)


@pytest.mark.parametrize("flags, message", TRAIN_CASES,
                         ids=[" ".join(flags) for flags, _ in TRAIN_CASES])
def test_bad_train_options(flags, message, tmp_path, capsys, unlabelled):
    flags = [f.replace("{unlabelled}", unlabelled) for f in flags]
    run_dir = tmp_path / "run"
    check_refused(["train", *FAST, *flags, "--run-dir", str(run_dir)], capsys, message)
    assert not run_dir.exists()


# === config files ===
@pytest.mark.parametrize("name, text, message", [
    ("null.yaml", "epochs: null\n", "epochs is null"),
    ("nulldata.yaml", "dataset: null\n", "dataset is null"),
    ("list.yaml", "- 1\n- 2\n", "must hold a mapping"),
    ("broken.yaml", "epochs: [1,\n", "Could not parse the config file"),
    ("tag.yaml", "epochs: !!python/object/apply:os.system ['true']\n",
     "Could not parse the config file"),
    ("broken.json", "{\"epochs\": ", "Could not parse the config file"),
    ("unknown.json", "{\"epoch\": 3}", "Unknown config key(s): epoch"),
    ("binary.yaml", b"\xff\xfe\x00", "Could not read the config file"),
    # Issue 36: a TypeError, a RecursionError, and a value silently dropped.
    ("intkey.yaml", "1: 2\n", "Config keys are option names (text). Received the key 1 (int)"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "it is nested too deeply"),
    ("twice.yaml", "epochs: 1\nepochs: 2\n", "the key 'epochs' is given twice; keep one"),
    ("twice.json", "{\"epochs\": 1, \"epochs\": 2}", "the key 'epochs' is given twice"),
])
def test_bad_config_files(name, text, message, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    run_dir = tmp_path / "run"
    check_refused(["train", "--config", str(path), "--run-dir", str(run_dir)], capsys, message)
    assert not run_dir.exists()


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "must hold a mapping of option names to values. Received a list"),
    ("{\"1\": 2}", "Unknown config key(s): 1"),
    ("{\"epochs\": \"x\"}", "Invalid value for epochs: 'x'"),
])
def test_resume_of_a_run_whose_config_json_is_damaged(text, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(text)
    output = check_refused(["train", "--resume", str(run_dir)], capsys, message)
    assert str(run_dir / "config.json") in output


def test_a_config_that_is_a_directory(tmp_path, capsys):
    check_refused(["train", "--config", str(tmp_path), "--run-dir", str(tmp_path / "run")],
                  capsys, "(it is a directory)")


# === npz data ===
def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


NPZ_CASES = {
    "strings": (dict(x=np.array([["a"] * 4] * 3)), "dtype <U1"),
    "flat": (dict(x=np.zeros((10, 784), "float32")), "flat vectors, not images"),
    "0-255 floats": (dict(x=np.full((10, 4, 4), 200.0)), "holds floats from 200 to 200"),
    "negative": (dict(x=np.full((10, 4, 4), -0.5)), "holds floats from -0.5"),
    "NaN": (dict(x=np.full((10, 4, 4), np.nan)), "NaN or infinite values"),
    "inf": (dict(x=np.full((10, 4, 4), np.inf)), "NaN or infinite values"),
    "empty train": (dict(x_train=np.zeros((0, 4, 4)), x_test=np.zeros((3, 4, 4))),
                    "x_train is empty"),
    "empty test": (dict(x_train=np.zeros((3, 4, 4)), x_test=np.zeros((0, 4, 4))),
                   "x_test is empty"),
    "big ints": (dict(x=np.full((10, 4, 4), 300, "int32")), "integers from 300 to 300"),
    "5 channels": (dict(x=np.zeros((10, 4, 4, 5))), "with 1, 3 or 4 channels"),
    "shapes differ": (dict(x_train=np.zeros((3, 4, 4)), x_test=np.zeros((3, 5, 5))),
                      "Both splits must have one shape"),
    "labels short": (dict(x=np.zeros((10, 4, 4)), y=np.zeros(3, "int64")),
                     "one label per image"),
    "float labels": (dict(x=np.zeros((10, 4, 4)), y=np.full(10, 0.5)), "integer labels"),
    # Issue 36 (found by tests/test_fuzz.py): a TypeError inside convert.
    "no pixels": (dict(x=np.zeros((3, 0, 0), bool)), "has images of 0x0 pixels; expected at "
                                                     "least 1 pixel a side"),
    # Issue 36: a NumPy UFuncNoLoopError from y.min().
    "string labels": (dict(x=np.zeros((10, 4, 4)), y=np.array(["cat", "dog"] * 5)),
                      "received dtype <U3 with values such as 'cat'. Map class names"),
}


@pytest.mark.parametrize("case", sorted(NPZ_CASES))
def test_bad_npz_data(case, tmp_path, capsys):
    arrays, message = NPZ_CASES[case]
    spec = _npz(tmp_path, **arrays)
    check_refused(["train", *FAST, "--dataset", spec, "--binarize", "none",
                   "--run-dir", str(tmp_path / "run")], capsys, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["plain.npy", "plain.npz"])
def test_a_single_array_file_is_not_an_npz(name, tmp_path, capsys):
    path = tmp_path / name
    with open(path, "wb") as f:
        np.save(f, np.zeros((10, 4, 4)))
    check_refused(["train", *FAST, "--dataset", f"npz:{path}", "--run-dir",
                   str(tmp_path / "run")], capsys, "holds one array (a .npy file)")


# === folders of images ===
def _png_header(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                              8, 0, 0, 0, 0))


@pytest.mark.parametrize("content, message", [
    (b"just some text", "Could not read the image"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "Could not read the image"),
    (_png_header(4, 4) + b"\x00\x00", "Could not read the image"),
    (_png_header(20000, 20000), "Could not read the image"),
    ("wide", "it is 5000x10 pixels; the limit is 4096 per side"),
])
def test_bad_image_files(content, message, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    if content == "wide":
        from PIL import Image

        Image.new("L", (5000, 10)).save(folder / "bad.png")
    else:
        (folder / "bad.png").write_bytes(content)
    output = check_refused(["train", *FAST, "--dataset", f"images:{folder}", "--run-dir",
                            str(tmp_path / "run")], capsys, message)
    assert "bad.png" in output and not (tmp_path / "run").exists()


def test_an_image_size_too_large_is_refused(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    from PIL import Image

    Image.new("L", (4, 4)).save(folder / "a.png")
    check_refused(["train", *FAST, "--dataset", f"images:{folder}", "--image-size",
                   "30000x30000", "--run-dir", str(tmp_path / "run")], capsys,
                  "image_size 30000x30000 is out of range")


# === run directories ===
def test_a_run_dir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("mine")
    check_refused(["train", *FAST, "--run-dir", str(path)], capsys, "is a file")
    check_refused(["train", *FAST, "--run-dir", str(path / "run")], capsys,
                  f"{path} is a file, not a folder")
    assert path.read_text() == "mine"


def test_overwrite_deletes_only_a_keras_vae_run(tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text("{}")  # a web project's own config
    check_refused(["train", *FAST, "--run-dir", str(project), "--overwrite"], capsys,
                  "is not a keras-vae run directory")
    assert (project / "config.json").read_text() == "{}"
    (project / ".keras-vae-run").write_text(json.dumps({"package": "keras_vae"}))
    (project / "index.html").write_text("<html>")
    check_refused(["train", *FAST, "--run-dir", str(project), "--overwrite"], capsys,
                  "holds files that a run does not write: index.html")
    assert (project / "index.html").exists()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("bad") / "run")
    assert cli.main(["train", *FAST, "--run-dir", run_dir]) == 0
    return run_dir


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "{missing}"], "No run at"),
    (["sample", "{run}", "--num", "0"], "--num 0 is out of range"),
    # Issue 36: pictures estimate their time and memory first (a fixed limit before).
    (["sample", "{run}", "--num", "100000000"], "--num 100000000: a picture of 100000000 "
     "images would take about 7 days and "),
    (["sample", "{run}", "--num", "100000000"], "GiB of memory on this machine; the limit "
     "is 60 minutes: raise it with --max-minutes (max_minutes=); the memory limit is"),
    (["sample", "{run}", "--num", "4000", "--max-minutes", "0.01"],
     "the limit is 0.01 minutes: raise it with --max-minutes"),
    (["reconstruct", "{run}", "--num", "9000", "--max-memory", "0.1"],
     "--num 9000: a picture of 18000 images would take about"),
    (["interpolate", "{run}", "--steps", "1"], "--steps 1 is out of range"),
    (["interpolate", "{run}", "--steps", "100000", "--max-minutes", "1"],
     "--steps 100000: a picture of 100000 images would take about 11 minutes"),
    (["interpolate", "{run}", "--steps", "200000"], "would be 16,000,000 pixels wide, "
     "and matplotlib writes at most 8,388,608 (2^23) a side"),
    (["sample", "{run}", "--max-memory", "-1"], "Invalid max_memory: -1.0"),
    (["reconstruct", "{run}", "--num", "-2"], "--num -2 is out of range"),
    (["evaluate", "{run}", "--iw-samples", "-1"], "iw_samples"),
    (["evaluate", "{run}", "--iw-precision", "float16"], "invalid choice: 'float16'"),
    (["evaluate", "{run}", "--iw-precision", "bfloat16"], "iw_samples=0 computes none"),
    (["evaluate", "{run}", "--batch-size", "0"], "batch_size"),
    # Issue 36: ran on for minutes with no estimate and no limit.
    (["evaluate", "{run}", "--iw-samples", "100000000"],
     "--iw-samples 100000000 on 10000 test images (1e+12 decodes) would take about"),
    (["evaluate", "{run}", "--iw-samples", "1000000", "--max-minutes", "1"],
     "the limit is 1 minutes: raise it with --max-minutes (max_minutes=); or give fewer "
     "--iw-samples"),
    (["evaluate", "{run}", "--batch-size", "5000", "--max-memory", "0.01"],
     "--batch-size 5000 would need about "),
    (["evaluate", "{run}", "--max-minutes", "0"], "Invalid max_minutes: 0.0"),
    (["evaluate", "{run}", "--anomaly", "cifar"], "Unknown dataset: 'cifar'"),
    (["evaluate", "{run}", "--anomaly-quantile", "1.5"], "quantile"),
    (["export", "{run}", "--formats", "onnx"], "Unknown format(s): onnx"),
    (["export", "{run}", "--formats", ""], "No export format was given"),  # issue 36: exit 0
    (["export", "{run}", "--formats", " , "], "nothing would be written"),
    (["export", "{run}", "--quantize", "int4"], "int4"),
    (["export", "{run}", "--out", "{file}"], "is a file"),
    (["export", "{run}", "--version", "-1"], "Expected a positive integer version"),
    (["export", "{run}", "--version", "x"], "invalid integer value: 'x'"),
    # The long fuzz profile: a 400-digit count overflowed the cost estimates' floats.
    (["sample", "{run}", "--num", "1" * 400], "(400 digits) is too large: expected an "
     "integer of at most 9223372036854775807"),
    (["evaluate", "{run}", "--iw-samples", "9" * 30], "(30 digits) is too large"),
    (["fit-detector", "{run}", "--num-samples", "-" + "9" * 20], "(21 digits) is too large"),
    (["export", "{run}", "--model-name", "../evil"], "Invalid model name '../evil'"),
    (["export", "{run}", "--model-name", ""], "Invalid model name ''"),
    (["sample", "{run}", "--seed", "-3"], "seed"),
    (["latent-map", "{missing}"], "No run at"),
    (["export", "{missing}"], "No model file at"),
    (["train", "--resume", "{missing}"], "No run at"),
    (["train", "--resume", "{run}", "--epochs", "3"], "--resume continues a run"),
])
def test_bad_use_of_a_run(argv, message, trained_run, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = [a.replace("{run}", trained_run).replace("{missing}", str(tmp_path / "none"))
            .replace("{file}", str(afile)) for a in argv]
    before = sorted(os.listdir(trained_run))
    check_refused(argv, capsys, message)
    assert sorted(os.listdir(trained_run)) == before  # nothing half-made in the run


def test_the_docs_count_these_cases():
    import pathlib

    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "bad-input.md").read_text()
    assert f"| {len(TRAIN_CASES)} | `tests/test_bad_input.py::test_bad_train_options`" in doc
    assert f"| {len(NPZ_CASES) + 2} | `test_bad_npz_data`" in doc


def test_a_read_only_place_is_named(trained_run, monkeypatch, capsys):
    """As root (CI), chmod does not stop writes: the refusal is simulated where
    the package writes, as a read-only file system would refuse."""
    import errno

    from keras_vae import files

    def read_only(path, text):
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(files, "write_text", read_only)
    check_refused(["evaluate", trained_run], capsys,
                  f"cannot use {trained_run}/evaluation.json: Read-only file system")
    assert not os.path.exists(os.path.join(trained_run, "evaluation.json"))


def test_a_batch_larger_than_the_data_is_noted(tmp_path, capsys):
    code, output = run(["train", *FAST, "--batch-size", "100", "--run-dir",
                        str(tmp_path / "run")], capsys)
    assert code == 0, output[-2000:]
    assert "Note: batch_size 100 is larger than the 64 training images" in output


@pytest.mark.parametrize("argv, patch, message", [
    (["sample", "{run}"], "replacing", "samples.png: Read-only file system"),
    (["export", "{run}", "--formats", "tflite", "--quantize", "none", "--out", "{out}"],
     "write_bytes", "vae_float32.tflite: Read-only file system"),
    (["train", "--resume", "{run}"], "save_model", "model.keras: Read-only file system"),
])
def test_read_only_places_are_named(argv, patch, message, trained_run, tmp_path, monkeypatch,
                                    capsys):
    """As root (CI), chmod does not stop writes: a read-only file system is
    simulated where the package writes files."""
    import errno

    from keras_vae import files

    def read_only(*args, **kwargs):
        path = [a for a in args if isinstance(a, (str, os.PathLike))][0]
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(files, patch, read_only)
    argv = [a.replace("{run}", trained_run).replace("{out}", str(tmp_path / "out"))
            for a in argv]
    if argv[:2] == ["train", "--resume"]:  # a finished run has nothing to resume:
        os.makedirs(os.path.join(trained_run, "backup"), exist_ok=True)  # pretend
    try:
        check_refused(argv, capsys, message)
    finally:
        import shutil

        shutil.rmtree(os.path.join(trained_run, "backup"), ignore_errors=True)


def test_a_run_dir_that_cannot_be_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    check_refused(["train", *FAST, "--run-dir", str(tmp_path / "run")], capsys,
                  f"Cannot write in {tmp_path}: permission denied")
    assert not (tmp_path / "run").exists()


def test_a_model_that_does_not_match_the_runs_config_is_refused(trained_run, tmp_path, capsys):
    """Issue 36: a model.keras of another latent size was used without a check."""
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(trained_run, run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "latent_dim": 3}))
    output = check_refused(["evaluate", str(run_dir)], capsys,
                           f"{run_dir / 'model.keras'} does not match "
                           f"{run_dir / 'config.json'}: its latent size is 2, the config's 3")
    assert "Put back the run's own model.keras" in output


def test_resume_of_a_run_that_cannot_be_written(trained_run, tmp_path, capsys):
    """Issue 36: raw TensorFlow text ("CreateSummaryFileWriter ... permission
    denied"). An immutable folder (chattr +i) stops root too, as CI runs."""
    import shutil
    import subprocess

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    (run_dir / "backup").mkdir()  # an unfinished run
    if os.geteuid() == 0:
        locked = subprocess.run(["chattr", "+i", str(run_dir / "tensorboard")],
                                capture_output=True)
        if locked.returncode:
            pytest.skip(f"chattr +i is not allowed here: {locked.stderr.decode().strip()}")
        unlock = ["chattr", "-i", str(run_dir / "tensorboard")]
    else:
        os.chmod(run_dir / "tensorboard", 0o555)
        unlock = ["chmod", "755", str(run_dir / "tensorboard")]
    try:
        output = check_refused(["train", "--resume", str(run_dir)], capsys,
                               f"Cannot write in {run_dir / 'tensorboard'}:",
                               "Resuming rewrites model.keras")
    finally:
        subprocess.run(unlock, check=True)
    assert "CreateSummaryFileWriter" not in output


def test_a_test_split_of_one_image_trains_and_names_the_missing_interpolation(tmp_path,
                                                                            capsys):
    """Issue 36: 5 images hold out one for testing, and the interpolation
    between two test images ended in an IndexError after training."""
    spec = _npz(tmp_path, x=np.random.default_rng(0).integers(0, 255, (5, 8, 8), "uint8"))
    run_dir = tmp_path / "run"
    code, output = run(["train", "--dataset", spec, "--epochs", "1", "--hidden-units", "8",
                        "--latent-dim", "2", "--batch-size", "2", "--run-dir", str(run_dir)],
                       capsys)
    assert code == 0 and "Traceback" not in output
    assert "Note: no interpolation.png: The interpolation runs between two test images, and " \
           f"the test split of {spec} has 1." in output
    assert (run_dir / "model.keras").exists() and (run_dir / "samples.png").exists()
    check_refused(["interpolate", str(run_dir)], capsys, f"the test split of {spec} has 1")


@pytest.mark.parametrize("link, argv", [
    ("export", ["export", "{run}", "--formats", "tflite", "--quantize", "none"]),
    ("export/web", ["export", "{run}", "--formats", "web", "--quantize", "none"]),
    ("export/vae", ["export", "{run}", "--formats", "saved_model"]),
    ("export/web", ["web", "{run}", "--port", "0"]),
    ("tensorboard", ["train", "--resume", "{run}"]),
    ("backup", ["train", "--resume", "{run}"]),
])
def test_writes_never_follow_a_link_out_of_the_run(link, argv, trained_run, tmp_path, capsys):
    """Issue 36: with export/, export/web, tensorboard/ or backup/ a link,
    export and web wrote outside the run (one run overwrote a user's app.js)."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    elsewhere = tmp_path / "users_project"
    elsewhere.mkdir()
    (elsewhere / "app.js").write_text("the user's own")
    if link in ("tensorboard", "backup"):
        shutil.rmtree(run_dir / link, ignore_errors=True)
        if link == "tensorboard":
            (run_dir / "backup").mkdir()  # an unfinished run
    (run_dir / link).parent.mkdir(parents=True, exist_ok=True)
    (run_dir / link).symlink_to(elsewhere, target_is_directory=True)
    output = check_refused([a.replace("{run}", str(run_dir)) for a in argv], capsys,
                           f"{run_dir / link} is a symbolic link (to {elsewhere})",
                           f"keras-vae writes only inside {run_dir}")
    assert sorted(os.listdir(elsewhere)) == ["app.js"], output
    assert (elsewhere / "app.js").read_text() == "the user's own"
