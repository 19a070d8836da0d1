"""Data sources: MNIST, TFDS (mocked), npz files and folders of images."""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from keras_vae import data
from keras_vae.runs import build


def test_mnist_source_keeps_labels():
    splits = data.load("mnist")
    assert splits.x_train.shape == (60000, 28, 28, 1)
    assert splits.x_test.shape == (10000, 28, 28, 1)
    assert splits.y_test[:5].tolist() == [7, 2, 1, 0, 4]  # the famous first digits
    assert splits.image_shape == (28, 28, 1)


def test_tfds_source_through_mock_data():
    with tfds.testing.mock_data(num_examples=12):
        splits = data.load("tfds:mnist")
        assert splits.train.count == 12 and splits.image_shape == (28, 28, 1)
        assert splits.class_names == [str(i) for i in range(10)]
        assert splits.x_train.shape == (12, 28, 28, 1)  # read from TFDS's dataset
        assert splits.x_test.shape == (12, 28, 28, 1)
        config = {"dataset": "tfds:mnist", "skip_bad_files": False, "cache_dir": "/tmp/c",
                  "shuffle_buffer": None}
        with pytest.raises(ValueError, match="cache_dir applies to sources read from files "
                           r"\(images:<dir>, tfrecord:<dir>\); 'tfds:mnist' is read and "
                           "cached by TFDS itself, so it would change nothing"):
            build._check_data_options(config, splits.train)
        build._check_data_options({**config, "cache_dir": None, "shuffle_buffer": 64},
                                  splits.train)  # a TFDS split is shuffled in a buffer
    assert splits.x_train.dtype == np.uint8
    assert splits.y_train.shape == (12,) and splits.y_train.max() < 10
    assert splits.name == "tfds:mnist"


def test_tfds_offline_fails_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match=r"(?s)Could not load the 'train' split of the TFDS dataset 'mnist'.*offline.*tfds build mnist.*--data-dir"):
        data.load("tfds:mnist", data_dir=str(tmp_path))


def test_npz_with_train_and_test_arrays(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.integers(0, 256, (20, 5, 4), dtype=np.uint8),
             x_test=rng.integers(0, 256, (6, 5, 4), dtype=np.uint8),
             y_train=np.arange(20))
    splits = data.load(f"npz:{path}")
    assert splits.x_train.shape == (20, 5, 4, 1) and splits.x_test.shape == (6, 5, 4, 1)
    np.testing.assert_array_equal(splits.y_train, np.arange(20))
    assert splits.y_test is None
    assert splits.x_train.dtype == np.uint8  # kept as 8-bit levels, never float
    splits.train = splits.train.take(5)  # as --limit does: read anew
    np.testing.assert_array_equal(splits.y_train, np.arange(5))


def test_npz_with_one_array_holds_out_a_fixed_test_split(tmp_path):
    x = np.random.default_rng(0).uniform(size=(50, 3, 3, 3)).astype("float32")
    path = tmp_path / "one.npz"
    np.savez(path, x=x, y=np.arange(50))
    first = data.load(f"npz:{path}", test_fraction=0.2, seed=1)
    again = data.load(f"npz:{path}", test_fraction=0.2, seed=1)
    assert len(first.x_test) == 10 and len(first.x_train) == 40
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert sorted(first.y_train.tolist() + first.y_test.tolist()) == list(range(50))
    np.testing.assert_array_equal(first.x_test, x[first.y_test])


def test_npz_errors_name_the_file_and_keys(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"No .npz file at {tmp_path}/missing.npz"):
        data.load(f"npz:{tmp_path}/missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ValueError, match=f"{corrupt} is not a readable .npz file"):
        data.load(f"npz:{corrupt}")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, images=np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match=r"holds the arrays \['images'\]. Expected 'x_train' and 'x_test'"):
        data.load(f"npz:{wrong}")


def _write_image(path, size, value, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size if mode == "L" else size + (3,)
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode=mode).save(path)


def test_image_folder_with_class_subfolders(tmp_path):
    for i in range(5):
        _write_image(tmp_path / "cats" / f"{i}.png", (8, 6), 10 * i)
        _write_image(tmp_path / "dogs" / f"{i}.jpg", (8, 6), 200)
    splits = data.load(f"images:{tmp_path}", test_fraction=0.2)
    assert splits.x_train.shape == (8, 8, 6, 1) and splits.x_test.shape == (2, 8, 6, 1)
    labels = np.concatenate([splits.y_train, splits.y_test])
    assert sorted(labels.tolist()) == [0] * 5 + [1] * 5
    # Label 1 is "dogs", whose images are all 200 (JPEG may shift it slightly).
    x = np.concatenate([splits.x_train, splits.x_test])
    assert np.all(np.abs(x[labels == 1].astype(int) - 200) <= 2)


def test_image_folder_of_mixed_sizes_names_two_files(tmp_path):
    _write_image(tmp_path / "a.png", (8, 8), 0)
    _write_image(tmp_path / "b.png", (8, 8), 0)
    _write_image(tmp_path / "c.png", (9, 7), 0)
    splits = data.load(f"images:{tmp_path}")  # the files are read as they are used
    with pytest.raises(data.BadFilesError, match=rf"(?s){tmp_path}/c.png: 9x7 pixels, the others 8x8.*--image-size"):
        np.concatenate([splits.x_train, splits.x_test])
    splits = data.load(f"images:{tmp_path}", image_size=(4, 5), test_fraction=0.34)
    assert splits.x_train.shape[1:] == (4, 5, 1)
    assert splits.y_train is None  # no class subfolders, no labels


def test_colour_images_keep_three_channels(tmp_path):
    for i in range(3):
        _write_image(tmp_path / f"{i}.png", (4, 4), 50, mode="RGB")
    assert data.load(f"images:{tmp_path}").x_train.shape[1:] == (4, 4, 3)


def test_missing_or_empty_image_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"No folder of images at {tmp_path}/nope"):
        data.load(f"images:{tmp_path}/nope")
    with pytest.raises(ValueError, match=f"No images in {tmp_path}"):
        data.load(f"images:{tmp_path}")


@pytest.mark.parametrize("spec", ["cifar", "tfds:", "npz", "mnist:extra"])
def test_unknown_source_lists_the_valid_ones(spec):
    with pytest.raises(ValueError, match=r"Unknown dataset: .*Expected one of: mnist, tfds:<name>, npz:<path>, images:<dir>"):
        data.load(spec)


def test_sixteen_bit_pngs_are_scaled_to_their_range_like_eight_bit_ones(tmp_path):
    """Issue 36 reported 16-bit PNGs clipped to {0, 255}: a folder mixing
    16-bit and 8-bit files gives one scaling, k16 / 257 = k8 (65 535 → 255)."""
    for i in range(6):
        Image.fromarray(np.full((4, 4), 40_000 + 257 * i, "uint16")).save(tmp_path / f"a{i}.png")
        Image.fromarray(np.full((4, 4), 156 + i, "uint8")).save(tmp_path / f"b{i}.png")
    assert Image.open(tmp_path / "a0.png").mode == "I;16"
    splits = data.load(f"images:{tmp_path}")
    values = {}
    for split in (splits.train, splits.test):
        for element in split.dataset():
            values[int(element["index"])] = np.asarray(element["images"])
    got = sorted({int(v.min()) for v in values.values()} | {int(v.max()) for v in values.values()})
    assert got == [156, 157, 158, 159, 160, 161]  # round(40 000 / 257) = 156, then +1 per file


def test_boolean_npz_images_are_the_levels_0_and_255(tmp_path):
    """Found by tests/test_fuzz.py: boolean images ended in a TypeError."""
    x = np.zeros((6, 3, 3), bool)
    x[:, 1, 1] = True
    np.savez(tmp_path / "b.npz", x_train=x[:4], x_test=x[4:])
    splits = data.load(f"npz:{tmp_path / 'b.npz'}")
    images = np.stack([np.asarray(e["images"]) for e in splits.train.dataset()])
    assert images.dtype == np.uint8 and images.shape == (4, 3, 3, 1)
    np.testing.assert_array_equal(images[..., 0], x[:4].astype("uint8") * 255)
