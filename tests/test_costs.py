"""Costs estimated before they are paid (`keras_vae.runs.costs`, issue 36)."""

import os

import numpy as np
import pytest
from PIL import Image

import keras_vae
from keras_vae import plotting
from keras_vae.runs import costs


def test_a_request_over_a_limit_is_refused_with_its_estimate_and_the_flag():
    limits = costs.Limits(max_minutes=30, max_memory=1)
    limits.check("small", seconds=30 * 60, nbytes=2**30)  # at the limits: accepted
    with pytest.raises(costs.CostError, match=r"^training would need about 2.0 GiB of "
                       r"memory on this machine; the memory limit is 1.0 GiB: raise"):
        limits.check("training", nbytes=2**31)  # no time estimate
    with pytest.raises(costs.CostError) as slow:
        limits.check("--iw-samples 9", seconds=3 * 3600, nbytes=2**29, fewer="ask less")
    assert str(slow.value) == (
        "--iw-samples 9 would take about 3 hours and 512.0 MiB of memory on this machine; "
        "the limit is 30 minutes: raise it with --max-minutes (max_minutes=); or ask less.")
    with pytest.raises(costs.CostError) as large:
        limits.check("--num 5", seconds=5, nbytes=3 * 2**30)
    assert str(large.value) == (
        "--num 5 would take about 5 seconds and 3.0 GiB of memory on this machine; the "
        "memory limit is 1.0 GiB: raise it with --max-memory GIB (max_memory=).")


def test_the_default_memory_limit_is_a_share_of_this_machines_memory():
    have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert costs.Limits().memory_bytes == pytest.approx(0.8 * have)
    assert costs.Limits(max_memory=2.5).memory_bytes == 2.5 * 2**30


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "5"])
def test_limits_must_be_positive_numbers(bad):
    if bad != float("inf"):  # max_minutes=inf: no limit of time (training's default)
        with pytest.raises(ValueError, match=r"Invalid max_minutes: .*Expected a positive"):
            costs.Limits(max_minutes=bad)
    with pytest.raises(ValueError, match=r"Invalid max_memory: .*GiB, e.g. 16"):
        costs.Limits(max_memory=bad)
    costs.Limits(max_minutes=float("inf")).check("training", seconds=1e12)  # accepted


@pytest.mark.parametrize("count, columns", [(16, 4), (10, 10), (300, 18)])
def test_a_pictures_raster_is_the_estimated_pixels_per_image(tmp_path, count, columns):
    """PNG_PIXELS_PER_IMAGE is what the drawn grid holds per tile (within the
    title's band and the margins)."""
    path = plotting.image_grid(np.zeros((count, 28, 28, 1)), str(tmp_path / "g.png"),
                               columns=columns)
    width, height = Image.open(path).size
    rows = -(-count // columns)
    assert width == columns * 80
    assert height == rows * 80
    assert width * height == pytest.approx(columns * rows * costs.PNG_PIXELS_PER_IMAGE)


def test_a_pictures_estimate_counts_its_decodes_and_its_raster(monkeypatch):
    vae = keras_vae.VAE((8, 8, 1), latent_dim=2, hidden_units=(4,))
    monkeypatch.setattr(costs, "decodes_per_second", lambda vae, count: 100.0)
    seconds, nbytes = costs.picture(vae, images=20, codes=10, columns=5)
    assert seconds == pytest.approx(10 / 100 + 20 * 6400 / 1e6)
    # float32 images and mosaic (2 × 30 × 64 values), the RGBA raster and its copy.
    assert nbytes == 4 * (2 * 30 * 64 + 3 * 20 * 6400)
    with pytest.raises(costs.CostError, match="would be 8,388,640 pixels wide"):
        costs.picture(vae, images=104858, codes=104858, columns=104858)


@pytest.mark.parametrize("seconds, text", [(59, "59 seconds"), (150, "2 minutes"),
                                           (7300, "2 hours"), (3 * 86400, "3 days")])
def test_durations_are_written_in_the_largest_unit(seconds, text):
    assert costs.duration(seconds) == text


def test_an_importance_sampled_estimate_is_timed_from_the_decoders_speed(monkeypatch):
    import importlib

    from keras_vae.runs import config as config_lib

    evaluate = importlib.import_module("keras_vae.runs.evaluate")

    vae = keras_vae.VAE((28, 28, 1), latent_dim=2, hidden_units=(4,))
    config = config_lib.resolve({"hidden_units": [4], "latent_dim": 2})
    monkeypatch.setattr(costs, "decodes_per_second", lambda vae: 1000.0)
    limits = costs.Limits(max_minutes=60)
    # 10 000 × 100 decodes at 1000 a second, and half as long again for the
    # log-densities: 25 minutes, under the limit; 1000 samples: 4 hours.
    evaluate.check_cost(vae, config, 10_000, 500, 100, limits)
    with pytest.raises(costs.CostError, match=r"^--iw-samples 1000 on 10000 test images "
                       r"\(1e\+07 decodes\) would take about 4 hours and "):
        evaluate.check_cost(vae, config, 10_000, 500, 1000, limits)


def test_training_time_is_estimated_from_the_multiply_adds(monkeypatch):
    """The README's MLP: 2 × (784·512 + 512·256 + 256·32) multiply-adds an
    example; 6 × that per example trained, at 40% of the matmul speed."""
    from keras_vae.runs import build
    from keras_vae.runs import config as config_lib

    config = config_lib.resolve({})
    macs = build.estimated_macs(config, (28, 28, 1))
    assert macs == 2 * (784 * 512 + 512 * 256 + 256 * 32)
    monkeypatch.setattr(costs, "matmul_flops", lambda: 1e11)
    assert costs.training_seconds(6 * macs * 60_000 * 10) == pytest.approx(
        6 * macs * 6e5 / 4e10)
    conv = config_lib.resolve({"encoder": "conv", "decoder": "conv", "conv_filters": [4, 8]})
    # 3×3 convolutions 1→4 at 28×28 and 4→8 at 14×14, encoder and decoder.
    assert build.estimated_macs(conv, (28, 28, 1)) == 2 * (9 * 4 * 784 + 9 * 32 * 196)


def test_a_conversion_is_estimated_and_refused_over_its_limits(tmp_path, capsys):
    from keras_vae import cli

    x = np.random.default_rng(0).integers(0, 256, (300, 16, 16), "uint8")
    np.savez(tmp_path / "d.npz", x=x)
    source, out = f"npz:{tmp_path / 'd.npz'}", str(tmp_path / "shards")
    assert cli.main(["convert", source, out, "--max-memory", "0.00001"]) == 2
    err = capsys.readouterr().err
    assert "Estimate: 300 16x16x1 images take about" in err
    # The largest shard (the 270 training images), decoded and encoded: 2 × 270 × 256 bytes.
    assert ("Converting 300 16x16x1 images in shards of 10000 would need about 135 KiB of "
            "memory on this machine; the memory limit is 10 KiB") in err
    assert "give a smaller --shard-size" in err and not os.path.exists(out)
    assert cli.main(["convert", source, out, "--max-minutes", "1e-9"]) == 2
    assert "would take about 0 seconds and 135 KiB" in capsys.readouterr().err
    assert cli.main(["convert", source, out, "--max-minutes", "0"]) == 2
    assert "Invalid max_minutes: 0.0" in capsys.readouterr().err
    assert cli.main(["convert", source, out, "--shard-size", "100"]) == 0
