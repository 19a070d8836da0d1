"""The natural-photo dataset (`keras_vae.data.photos`, examples/make_photos.py):
crops of the photos that scikit-image and scikit-learn ship, split by photo,
written as TFRecord shards, PNG folders or an npz file."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_vae
from keras_vae.data import photos

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_each_crop_is_a_window_of_its_photo_and_the_photos_take_turns():
    train = photos.train_photos()
    assert tuple(train) == photos.TRAIN_PHOTOS
    assert all(image.dtype == np.uint8 and image.shape[2] == 3 for image in train.values())
    x, owner, corners = photos.crops(train, 32, 20, seed=3)
    assert x.shape == (20, 32, 32, 3) and list(owner[:9]) == [0, 1, 2, 3, 4, 5, 6, 7, 0]
    images = list(train.values())
    for crop, index, (top, left) in zip(x, owner, corners, strict=True):
        np.testing.assert_array_equal(crop, images[index][top:top + 32, left:left + 32])
    again, _, _ = photos.crops(train, 32, 20, seed=3)
    np.testing.assert_array_equal(again, x)  # seeded
    with pytest.raises(ValueError, match=r"Crops of 320 pixels do not fit in the photos "
                                         r"\['chelsea'\]; use a smaller size"):
        photos.crops({k: train[k] for k in ("astronaut", "chelsea", "coffee")}, 320, 2, 0)
    with pytest.raises(ValueError, match="Invalid crop size 0"):
        photos.crops(train, 0, 2, 0)


def test_the_test_crops_come_from_photos_never_used_in_training():
    held_out, train = photos.held_out_photos(), photos.train_photos()
    assert tuple(held_out) == photos.TEST_PHOTOS == ("china", "flower")
    for image in held_out.values():
        assert not any(image.shape == other.shape and np.array_equal(image, other)
                       for other in train.values())
    arrays = photos.make_arrays(16, train_count=16, test_count=6, seed=0)
    assert arrays["x_train"].shape == (16, 16, 16, 3)
    assert arrays["x_test"].shape == (6, 16, 16, 3)
    assert set(arrays["y_train"]) == set(range(8)) and set(arrays["y_test"]) == {0, 1}
    x_test, owner, _ = photos.crops(held_out, 16, 6, seed=1)  # make_arrays' draw
    np.testing.assert_array_equal(arrays["x_test"], x_test)
    np.testing.assert_array_equal(arrays["y_test"], owner)


def _make(tmp_path, *options, process=False):
    """Run examples/make_photos.py: in a new process as a user does, or in
    this one (its `main`), which saves TensorFlow's start-up."""
    out = tmp_path / "photos"
    argv = [str(out), "--size", "16", "--train", "24", "--test", "8", *options]
    script = os.path.join(ROOT, "examples", "make_photos.py")
    if process:
        subprocess.run([sys.executable, script, *argv], check=True, capture_output=True)
    else:
        spec = importlib.util.spec_from_file_location("make_photos", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main(argv)
    return out


@pytest.mark.long  # 8 s; the npz and images: formats run in make test
def test_the_script_writes_tfrecord_shards_that_the_streaming_source_reads(tmp_path):
    out = _make(tmp_path, process=True)
    splits = keras_vae.data.load(f"tfrecord:{out}")
    assert (splits.train.count, splits.test.count) == (24, 8)
    assert splits.image_shape == (16, 16, 3)
    first = next(iter(splits.test.dataset().batch(8)))
    want = photos.make_arrays(16, 24, 8, seed=0)["x_test"]
    np.testing.assert_array_equal(np.asarray(first["images"]), want)


def test_the_script_writes_png_folders_named_by_photo_and_an_npz(tmp_path):
    out = _make(tmp_path, "--format", "images")
    train, test = sorted(os.listdir(out / "train")), sorted(os.listdir(out / "test"))
    assert len(train) == 24 and len(test) == 8
    assert {name.rsplit("_", 1)[0] for name in train} == set(photos.TRAIN_PHOTOS)
    assert {name.rsplit("_", 1)[0] for name in test} == {"china", "flower"}
    assert keras_vae.data.load(f"images:{out / 'train'}").image_shape == (16, 16, 3)
    npz = _make(tmp_path, "--format", "npz") / "photos.npz"
    with np.load(npz) as arrays:
        np.testing.assert_array_equal(arrays["x_test"],
                                      photos.make_arrays(16, 24, 8, seed=0)["x_test"])


@pytest.mark.long  # a resnet trained through the command line: make test-long
def test_examples_photos_yaml_trains_the_benchmarks_model_with_keras_vae_train(tmp_path):
    import csv

    import yaml

    with open(os.path.join(ROOT, "examples", "photos.yaml")) as f:
        example = yaml.safe_load(f)
    assert example["dataset"] == "tfrecord:data/photos32"
    assert (example["encoder"], example["decoder"], example["likelihood"],
            example["augment"]) == ("resnet", "resnet", "autoregressive_logistic_mixture",
                                    "flip+channel_order")
    out = tmp_path / "photos"
    _make(tmp_path, "--size", "32", "--train", "64", "--test", "16")
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "keras_vae", "train", "--config",
                           os.path.join(ROOT, "examples", "photos.yaml"), "--dataset",
                           f"tfrecord:{out}", "--epochs", "1", "--run-dir", str(run)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    config = json.loads((run / "config.json").read_text())
    assert {k: config[k] for k in example if k not in ("dataset", "epochs")} == {
        k: v for k, v in example.items() if k not in ("dataset", "epochs")}
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and np.isfinite(float(rows[0]["loss"]))
    for picture in ("samples.png", "reconstructions.png", "interpolation.png"):
        assert (run / picture).stat().st_size > 1000
