"""Sources that stream (issue 32): image folders decoded inside tf.data,
TFRecord shards written by `keras-vae convert`, bad files named or skipped,
and every job of a run reading its data as a stream."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_vae import cli, data, runs
from keras_vae.data import pipeline
from keras_vae.runs import config as config_lib


def _save(path, array, mode=None, format=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path, format=format)


def _blobs(n, seed=0, size=8):
    """`n` uint8 grey images whose bright row is the label, and the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.integers(0, 40, (n, size, size)).astype("uint8")
    for i, label in enumerate(labels):
        x[i, 4 * label: 4 * label + 3] = 220
    return x, labels


def _folder(root, n=40, seed=0):
    """A folder of PNGs in class subfolders; `{relative path: (image, label)}`."""
    x, labels = _blobs(n, seed)
    written = {}
    for i, (image, label) in enumerate(zip(x, labels, strict=True)):
        relative = os.path.join(["low", "high"][label], f"{seed}-{i}.png")
        _save(root / relative, image)
        written[relative] = (image, label)
    return written


def _elements(split):
    return {int(e["index"]): e for e in split.dataset().as_numpy_iterator()}


def test_an_image_folder_streams_its_files_with_labels_from_subfolders(tmp_path):
    written = _folder(tmp_path)
    splits = data.load(f"images:{tmp_path}", test_fraction=0.25)
    assert splits.class_names == ["high", "low"]  # sorted, as Keras names them
    assert splits.train.count + splits.test.count == 40 and splits.test.count > 0
    assert splits.image_shape == (8, 8, 1)
    assert splits.train.dataset().element_spec["images"].dtype == tf.uint8
    for split in (splits.train, splits.test):
        for index, element in _elements(split).items():
            relative = os.path.relpath(split.files[index], tmp_path)
            image, label = written[relative]
            np.testing.assert_array_equal(element["images"][..., 0], image)
            assert element["labels"] == ["high", "low"].index(["low", "high"][label])


def test_adding_images_to_a_folder_keeps_the_old_ones_in_their_split(tmp_path):
    _folder(tmp_path, n=60, seed=0)
    before = data.load(f"images:{tmp_path}", test_fraction=0.2, seed=3)
    _folder(tmp_path, n=60, seed=1)
    after = data.load(f"images:{tmp_path}", test_fraction=0.2, seed=3)
    assert after.train.count + after.test.count == 120
    assert set(before.test.files) <= set(after.test.files)
    assert set(before.train.files) <= set(after.train.files)
    assert 10 <= after.test.count <= 40  # about 20% of 120
    other_seed = data.load(f"images:{tmp_path}", test_fraction=0.2, seed=4)
    assert set(other_seed.test.files) != set(after.test.files)


def test_workers_of_a_cluster_read_disjoint_files_or_disjoint_examples(tmp_path):
    _folder(tmp_path, n=30)
    split = data.load(f"images:{tmp_path}", test_fraction=0.1).train
    shares = [{int(e["index"]) for e in split.dataset(shard=(3, w)).as_numpy_iterator()}
              for w in range(3)]
    assert [len(s) for s in shares] == [split.shard_count(3, w) for w in range(3)]
    assert set().union(*shares) == set(range(split.count)) and sum(map(len, shares)) == split.count
    assert [split.shard_files(3, w) for w in range(3)] == [split.files[w::3] for w in range(3)]
    # Fewer files than workers: every worker reads all files, a share of the examples.
    few = split.take(2)
    assert few.shard_files(3, 1) == few.files and few.shard_count(3, 2) == 0
    arrays = data.from_arrays(np.zeros((7, 2, 2), "uint8"), np.zeros((2, 2, 2), "uint8")).train
    assert [arrays.shard_count(2, w) for w in range(2)] == [4, 3]
    assert [len(list(arrays.dataset(shard=(2, w)))) for w in range(2)] == [4, 3]


def test_grey_rgb_rgba_and_palette_files_become_one_channel_count(tmp_path):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (6, 6, 3)).astype("uint8")
    _save(tmp_path / "rgb.png", colour)
    _save(tmp_path / "rgba.png", np.dstack([colour, np.full((6, 6), 128, "uint8")]))
    _save(tmp_path / "palette.png", colour, mode="P")
    _save(tmp_path / "grey.png", colour[..., 0])
    splits = data.load(f"images:{tmp_path}", test_fraction=0.25)
    assert splits.image_shape == (6, 6, 3)
    images = {}
    for split in (splits.train, splits.test):
        for index, element in _elements(split).items():
            name = os.path.basename(split.files[index])
            images[name] = element["images"]
    np.testing.assert_array_equal(images["rgb.png"], colour)
    np.testing.assert_array_equal(images["rgba.png"], colour)  # alpha dropped
    np.testing.assert_array_equal(images["grey.png"], np.repeat(colour[..., :1], 3, axis=2))
    palette = np.asarray(Image.open(tmp_path / "palette.png").convert("RGB"))
    np.testing.assert_array_equal(images["palette.png"], palette)


def test_image_size_resizes_every_file_in_the_pipeline(tmp_path):
    _save(tmp_path / "a.png", np.full((10, 6), 200, "uint8"))
    _save(tmp_path / "b.png", np.full((7, 9), 50, "uint8"))
    splits = data.load(f"images:{tmp_path}", image_size=(4, 5), test_fraction=0.5)
    assert splits.image_shape == (4, 5, 1)
    values = sorted(int(e["images"].mean()) for split in (splits.train, splits.test)
                    for e in split.dataset().as_numpy_iterator())
    assert values == [50, 200]  # a flat image stays flat when resized


def test_batches_are_scaled_per_batch_and_the_shuffle_buffer_is_bounded(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 1)).astype("uint8")
    split = data.Split("big", 10**9, (64, 64, 3), False, read=None, files=["a"],
                       examples_shuffled=False)
    assert pipeline._buffer(split, None) == pipeline.SHUFFLE_BUFFER == 10_000  # 117 MiB
    photos = data.Split("big", 10**9, (256, 256, 3), False, read=None)
    assert pipeline._buffer(photos, None) == 512 * 2**20 // (256 * 256 * 3) == 2730
    assert pipeline._buffer(split, 100) == 100
    small = data.Split("small", 30, (4, 4, 1), False, read=None)
    assert pipeline._buffer(small, None) == 30
    batches = list(data.make_dataset(x, 16).as_numpy_iterator())
    assert [len(b) for b in batches] == [16, 16, 16, 2]
    np.testing.assert_allclose(np.concatenate(batches), x / 255.0, rtol=1e-6)


def test_a_split_larger_than_the_memory_budget_is_cached_on_disk_or_not_at_all(tmp_path):
    split = data.Split("images:/x train", 10**6, (64, 64, 3), False, read=None,
                       files=["a.png", "b.png"])
    assert pipeline._cache_place(split, (1, 0), None, 512) is None
    place = pipeline._cache_place(split, (1, 0), str(tmp_path), 512)
    assert place.startswith(str(tmp_path / "train-"))
    assert place == pipeline._cache_place(split, (1, 0), str(tmp_path), 512)  # reused
    assert pipeline._cache_place(split, (2, 1), str(tmp_path), 512) != place
    small = data.Split("images:/x train", 100, (64, 64, 3), False, read=None, files=["a"])
    assert pipeline._cache_place(small, (1, 0), None, 512) == ""  # in memory
    assert pipeline._cache_place(small, (1, 0), str(tmp_path), 512).startswith(
        str(tmp_path))  # --cache-dir is used whatever the size


def test_a_cached_folder_sorted_by_class_is_still_shuffled_for_training(tmp_path):
    _folder(tmp_path, n=60)  # low/ then high/: the listing is sorted by class
    split = data.load(f"images:{tmp_path}", test_fraction=0.1).train
    in_order = [int(e["labels"]) for e in split.dataset().as_numpy_iterator()]
    assert in_order == sorted(in_order)
    assert pipeline._cache_place(split, (1, 0), None, 512) == ""  # cached in memory
    stream = data.stream(split, split.count, training=True, seed=0, shuffle_buffer=2)
    epochs = [next(stream.as_numpy_iterator())["labels"].tolist() for _ in range(2)]
    assert epochs[0] != sorted(epochs[0]) and epochs[1] != epochs[0]
    assert sorted(epochs[0]) == sorted(epochs[1]) == in_order
    first_half = epochs[0][: len(in_order) // 2]
    assert 0 < sum(first_half) < len(first_half)  # both classes early on


def test_a_split_over_the_memory_budget_is_cached_on_disk_as_uint8(tmp_path):
    written = _folder(tmp_path / "images", n=30)
    split = data.load(f"images:{tmp_path / 'images'}", test_fraction=0.1).train
    expected = np.stack([written[os.path.relpath(p, tmp_path / "images")][0]
                         for p in split.files]).reshape(split.count, -1) / 255.0
    cache = tmp_path / "cache"
    stream = data.stream(split, 8, training=True, seed=0, cache_dir=str(cache),
                         labels=False)
    first = np.concatenate(list(stream.as_numpy_iterator()))
    assert os.listdir(cache) and all(n.startswith("train-") for n in os.listdir(cache))
    size = sum(os.path.getsize(cache / n) for n in os.listdir(cache))
    assert size < split.count * 8 * 8 * 4  # less than the images would take as float32
    for path in split.files:  # the cache now serves the images, not the files
        os.remove(path)
    second = np.concatenate(list(stream.as_numpy_iterator()))
    for seen in (first, second):
        np.testing.assert_allclose(np.sort(seen.reshape(split.count, -1), axis=0),
                                   np.sort(expected, axis=0), rtol=1e-6)
    assert not np.array_equal(first, second)  # reshuffled from the cache


# === TFRecord shards ===
def _npz(tmp_path, n_train=23, n_test=7):
    x, y = _blobs(n_train + n_test)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:],
             y_test=y[n_train:])
    return path, x, y


def test_convert_writes_shards_that_train_back_to_the_same_images(tmp_path):
    path, x, y = _npz(tmp_path)
    out = tmp_path / "records"
    written = runs.convert(f"npz:{path}", str(out), shard_size=10, verbose=False)
    assert sorted(os.listdir(out)) == ["dataset.json", "test-00000.tfrecord",
                                       "train-00000.tfrecord", "train-00001.tfrecord",
                                       "train-00002.tfrecord"]
    assert written[-1] == str(out / "dataset.json")
    metadata = json.loads((out / "dataset.json").read_text())
    assert metadata == {"format": "keras_vae.tfrecord", "version": 1,
                        "image_shape": [8, 8, 1], "counts": {"train": 23, "test": 7},
                        "class_names": ["0", "1"], "source": f"npz:{path}",
                        "shard_counts": {"train-00000.tfrecord": 10, "train-00001.tfrecord": 10,
                                         "train-00002.tfrecord": 3, "test-00000.tfrecord": 7}}
    splits = data.load(f"tfrecord:{out}")
    assert splits.train.count == 23 and splits.class_names == ["0", "1"]
    np.testing.assert_array_equal(splits.x_train[..., 0], x[:23])  # PNG is lossless
    np.testing.assert_array_equal(splits.y_train, y[:23])
    np.testing.assert_array_equal(splits.x_test[..., 0], x[23:])
    # Shuffled for training at the file level, then in a bounded buffer: the
    # same examples, in another order.
    batches = data.stream(splits.train, 8, training=True, seed=1, labels=False)
    seen = np.concatenate(list(batches.as_numpy_iterator()))
    assert len(seen) == 23
    assert not np.array_equal(seen[..., 0], x[:23] / 255.0)
    np.testing.assert_allclose(np.sort(seen.reshape(23, -1), axis=0),
                               np.sort(x[:23].reshape(23, -1) / 255.0, axis=0), rtol=1e-6)


def test_an_interrupted_conversion_runs_again_and_a_finished_one_is_kept(tmp_path):
    path, _, _ = _npz(tmp_path)
    out = tmp_path / "records"
    out.mkdir()
    (out / "train-00000.tfrecord.partial").write_bytes(b"half a shard")
    (out / "train-00007.tfrecord").write_bytes(b"from an earlier, larger run")
    runs.convert(f"npz:{path}", str(out), shard_size=100, verbose=False)
    assert sorted(os.listdir(out)) == ["dataset.json", "test-00000.tfrecord",
                                       "train-00000.tfrecord"]
    with pytest.raises(FileExistsError, match="already holds a converted dataset"):
        runs.convert(f"npz:{path}", str(out), verbose=False)
    runs.convert(f"npz:{path}", str(out), shard_size=5, overwrite=True, verbose=False)
    assert len([n for n in os.listdir(out) if n.startswith("train-")]) == 5


def test_convert_from_the_command_line_shows_progress(tmp_path, capsys):
    path, _, _ = _npz(tmp_path)
    out = tmp_path / "records"
    assert cli.main(["convert", f"npz:{path}", str(out), "--shard-size", "12"]) == 0
    printed = capsys.readouterr().out
    assert "23/23" in printed and "7/7" in printed  # the progress bars' ends
    assert str(out / "dataset.json") in printed
    assert data.load(f"tfrecord:{out}").train.files == [
        str(out / "train-00000.tfrecord"), str(out / "train-00001.tfrecord")]


def _shard(path, features):
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(tf.train.Example(features=tf.train.Features(feature=features))
                     .SerializeToString())


def test_a_shard_with_other_features_is_refused_with_the_features_it_has(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps(
        {"image_shape": [2, 2, 1], "counts": {"train": 1, "test": 1}}))
    png = tf.io.encode_png(np.zeros((2, 2, 1), "uint8")).numpy()
    for split in ("train", "test"):
        _shard(tmp_path / f"{split}-00000.tfrecord", {
            "img": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
            "class": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))})
    with pytest.raises(ValueError, match=r"have the features class \(int64_list\), img "
                                         r"\(bytes_list\); expected image \(bytes: .*\), "
                                         r"label \(int64: the class, optional\)"):
        data.load(f"tfrecord:{tmp_path}")


def test_folders_without_images_or_shards_say_where_they_looked(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=rf"No images in {tmp_path}/empty \(looked in it "
                                         r"and its subfolders\)"):
        data.load(f"images:{tmp_path}/empty")
    with pytest.raises(FileNotFoundError, match=f"No folder of TFRecord shards at {tmp_path}/none"):
        data.load(f"tfrecord:{tmp_path}/none")
    with pytest.raises(ValueError, match=f"No dataset.json in {tmp_path}/empty"):
        data.load(f"tfrecord:{tmp_path}/empty")
    (tmp_path / "empty" / "dataset.json").write_text(json.dumps(
        {"image_shape": [2, 2, 1], "counts": {"train": 1, "test": 1}}))
    with pytest.raises(ValueError, match=rf"No train shards in {tmp_path}/empty: looked "
                                         r"for train-\*.tfrecord there"):
        data.load(f"tfrecord:{tmp_path}/empty")


# === bad files met in the middle of an epoch ===
TRAIN = ["--epochs", "1", "--hidden-units", "8", "--latent-dim", "2", "--batch-size", "8",
         "--binarize", "none"]


def _train(argv):
    out, err = io.StringIO(), io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue() + err.getvalue()


def test_a_corrupt_file_stops_the_run_naming_it_and_the_run_resumes_without_it(tmp_path):
    images = tmp_path / "images"
    _folder(images, n=40)
    bad = images / "low" / "truncated.png"
    good = (images / "low").iterdir().__next__().read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # its header reads, its data ends early
    run_dir = tmp_path / "run"
    code, output = _train(["train", *TRAIN, "--dataset", f"images:{images}",
                           "--run-dir", str(run_dir)])
    assert code == 2 and "Traceback" not in output, output[-3000:]
    assert f"{bad}: corrupt or truncated" in output and "--skip-bad-files" in output
    bad.unlink()
    code, output = _train(["train", "--resume", str(run_dir)])
    assert code == 0, output[-3000:]
    assert (run_dir / "model.keras").exists() and not (run_dir / "backup").exists()


def test_skip_bad_files_trains_on_the_others_and_lists_what_it_skipped(tmp_path):
    images = tmp_path / "images"
    _folder(images, n=40)
    (images / "high" / "not-an-image.png").write_bytes(b"plain text")
    run_dir = tmp_path / "run"
    code, output = _train(["train", *TRAIN, "--dataset", f"images:{images}",
                           "--skip-bad-files", "true", "--run-dir", str(run_dir)])
    assert code == 0, output[-3000:]
    listed = (run_dir / "skipped_files.txt").read_text().splitlines()
    assert listed[0] == "# 1 file(s) could not be decoded and were skipped"
    assert listed[1].startswith(str(images / "high" / "not-an-image.png") + "\t")
    assert len(listed) == 2


# === every job streams ===
def test_a_run_on_tfrecord_shards_evaluates_fits_a_sampler_and_draws(tmp_path):
    path, x, y = _npz(tmp_path, n_train=60, n_test=20)
    out = tmp_path / "records"
    runs.convert(f"npz:{path}", str(out), shard_size=16, verbose=False)
    run_dir = str(tmp_path / "run")
    config = config_lib.resolve({"dataset": f"tfrecord:{out}", "epochs": 1, "batch_size": 16,
                           "hidden_units": [8], "latent_dim": 2, "conditional": True,
                           "binarize": "static", "seed": 1})
    runs.train(config, run_dir, verbose=0)
    result = runs.evaluate(run_dir, verbose=0, iw_samples=3)
    assert result["examples"] == 20 and np.isfinite(result["negative_log_likelihood"])
    # The same numbers as the arrays themselves give, binarized the same way.
    _, vae = runs.load_run(run_dir)
    arrays = data.from_arrays(x[:60, ..., None], x[60:, ..., None], y[:60], y[60:])
    same = data.stream(arrays.test, 500, binarize="static", seed=1, join=vae.join_inputs)
    logs = vae.evaluate(same, verbose=0, return_dict=True)
    assert result["negative_elbo"] == pytest.approx(
        logs["reconstruction_loss"] + logs["kl_loss"], rel=1e-5)
    written = runs.fit_sampler(run_dir, components=2)
    report = json.loads(open(written[1]).read())
    assert report["fitted_on"] == "posterior means of 60 training images"
    assert os.path.getsize(runs.draw(run_dir, "latent_map")) > 1000
