"""Faults during training: SIGKILL at random moments, SIGTERM, Ctrl-C and a
full disk each leave a run that `keras-vae train --resume` finishes, with one
history row per epoch and a model.keras that loads."""

import csv
import errno
import os
import random
import signal
import subprocess
import sys
import time

import keras
import pytest

import keras_vae
from keras_vae import cli, files

# The process-level tests are under the `slow` marker; `make test-faults`
# (run by .ci/run) runs them. The full-disk test runs in the default suite.
EPOCHS = 6
TRAIN = ["--dataset", "mnist", "--limit", "3000", "--epochs", str(EPOCHS), "--batch-size",
         "50", "--hidden-units", "32", "--latent-dim", "2"]


def _start(args):
    return subprocess.Popen([sys.executable, "-m", "keras_vae", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _epochs_done(run_dir):
    history = run_dir / "history.csv"
    return len(history.read_text().splitlines()) - 1 if history.exists() else 0


def _finish_and_check(run_dir):
    result = subprocess.run([sys.executable, "-m", "keras_vae", "train", "--resume",
                             str(run_dir)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(EPOCHS))
    assert isinstance(keras.models.load_model(run_dir / "model.keras"), keras_vae.VAE)
    assert not (run_dir / "backup").exists()  # a finished run keeps no backup


@pytest.mark.slow
def test_five_sigkills_at_random_moments_then_resume(tmp_path):
    rng = random.Random(7)
    run_dir = tmp_path / "run"
    kills = []
    for attempt in range(5):
        args = (["train", *TRAIN, "--run-dir", str(run_dir)] if attempt == 0
                else ["train", "--resume", str(run_dir)])
        process = _start(args)
        # Wait until TensorFlow trains (an epoch is under a second), then a
        # random moment within the next epochs.
        deadline = time.time() + 120
        start = _epochs_done(run_dir)
        while process.poll() is None and not (run_dir / "config.json").exists():
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(rng.uniform(0.5, 4.0))
        if process.poll() is not None:  # finished before the kill: start over
            break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        kills.append((start, _epochs_done(run_dir)))
    # Five kills, at different epochs (the seeded moments), before the end.
    assert len(kills) == 5, kills
    assert kills[-1][1] < EPOCHS, kills
    _finish_and_check(run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_say_how_to_resume(tmp_path, signum, code):
    run_dir = tmp_path / "run"
    process = _start(["train", *TRAIN, "--run-dir", str(run_dir)])
    deadline = time.time() + 120
    while _epochs_done(run_dir) < 1:
        assert process.poll() is None, process.stderr.read()[-2000:]
        assert time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    assert f"keras-vae train --resume {run_dir}" in stderr
    _finish_and_check(run_dir)


@pytest.mark.long  # minutes of training or a resumed run: make test-long
def test_a_full_disk_stops_the_run_resumably(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    write_text = files.write_text
    calls = {"history": 0}

    def full_disk(path, text):
        if str(path).endswith("history.csv"):
            calls["history"] += 1
            if calls["history"] == 3:  # the third epoch's row
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return write_text(path, text)

    monkeypatch.setattr(files, "write_text", full_disk)
    code = cli.main(["train", *TRAIN, "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 4, err
    assert f"no space left on the device while writing {run_dir / 'history.csv'}" in err
    assert f"keras-vae train --resume {run_dir}" in err
    monkeypatch.setattr(files, "write_text", write_text)
    _finish_and_check(run_dir)


def test_a_signal_during_the_epochs_writes_waits_for_them():
    """The stop that SIGTERM asks for is raised only when the deferred section
    (the end-of-epoch writes of model.keras, history and backup) is done."""
    import os

    from keras_vae.cli import failures
    from keras_vae.training import signals

    assert not signals.deferring()  # no section left open by earlier runs
    previous = failures.raise_on_signals()
    finished = []
    try:
        with pytest.raises(failures.Stopped, match="SIGTERM"):
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler runs here and must not raise
                finished.append("the writes")
        assert finished == ["the writes"]
        with pytest.raises(failures.Stopped):  # outside a section: at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
    finally:
        failures.restore_signals(previous)


def test_an_error_inside_the_epochs_writes_closes_the_section(tmp_path, monkeypatch, capsys):
    from keras_vae.training import signals

    def fails(*args, **kwargs):
        raise OSError(errno.EIO, "I/O error", "model.keras")

    monkeypatch.setattr(files, "save_model", fails)
    assert cli.main(["train", *TRAIN, "--epochs", "1", "--run-dir", str(tmp_path / "r")]) == 2
    assert not signals.deferring()


def test_the_disk_guard_stops_before_the_epochs_writes_when_they_would_not_fit(
        tmp_path, monkeypatch, capsys):
    """Issue 36: a disk that filled while backup/latest.weights.h5 was written
    killed the process (HDF5, SIGSEGV). The guard checks the room first."""
    import collections
    import shutil

    run_dir = tmp_path / "run"
    usage = shutil.disk_usage
    calls = collections.Counter()

    def filling(path):  # room for the first epoch's files, not for the second's
        calls[path] += 1
        total, used, free = usage(path)
        return type(usage(path))(total, used, free if calls[path] == 1 else 2**20)

    monkeypatch.setattr(shutil, "disk_usage", filling)
    code = cli.main(["train", "--limit", "256", "--epochs", "3", "--batch-size", "128",
                     "--hidden-units", "32", "--latent-dim", "2", "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 4, err
    assert (f"no space left on the device while writing {run_dir}/model.keras and backup/ "
            "(the epoch's files need about") in err and "and 1.0 MiB are free" in err
    assert f"keras-vae train --resume {run_dir}" in err
    with open(run_dir / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 1  # the first epoch, finished and kept
    assert keras.saving.load_model(run_dir / "model.keras").latent_dim == 2


@pytest.fixture
def small_disk(tmp_path):
    """A mounted tmpfs of `size` (call it with the size): a real disk that fills."""
    mounts = []

    def mount(size):
        folder = tmp_path / f"disk{len(mounts)}"
        folder.mkdir()
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(folder)], capture_output=True, text=True)
        if made.returncode:
            pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip()}")
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", str(folder)], check=True)


def _keras_vae(*argv):
    return subprocess.run([sys.executable, "-m", "keras_vae", *argv], capture_output=True,
                          text=True, timeout=600)


@pytest.mark.long  # a real file system that fills up: make test-long
def test_a_real_full_disk_during_the_backup_is_a_message_not_a_crash(small_disk):
    """On a 16 MiB tmpfs the default model's first model.keras fits and its
    backup does not: before the guard, HDF5 crashed the process (exit -11)."""
    run_dir = small_disk("16m") / "run"
    result = _keras_vae("train", "--limit", "512", "--epochs", "2", "--batch-size", "128",
                        "--run-dir", str(run_dir))
    assert result.returncode == 4, result.stderr[-2000:]
    assert f"no space left on the device while writing {run_dir}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.long
def test_a_full_disk_under_exports_and_shards_is_a_message_and_leaves_nothing(
        small_disk, tmp_path):
    """Issue 36: SavedModel's full disk was reported as "out of memory", the
    LiteRT files' named no file, and partial files were left behind."""
    run_dir = tmp_path / "run"
    assert _keras_vae("train", "--limit", "256", "--epochs", "1", "--batch-size", "128",
                      "--run-dir", str(run_dir)).returncode == 0
    disk = small_disk("1m")
    for argv in (["export", str(run_dir), "--formats", "saved_model", "--out", str(disk)],
                 ["export", str(run_dir), "--formats", "tflite", "--quantize", "none",
                  "--out", str(disk)],
                 ["export", str(run_dir), "--formats", "web", "--quantize", "none",
                  "--out", str(disk)],
                 ["convert", "mnist", str(disk / "shards")]):
        result = _keras_vae(*argv)
        assert result.returncode == 4, (argv, result.stderr[-2000:])
        assert f"no space left on the device while writing {disk}/" in result.stderr, argv
        assert "Traceback" not in result.stderr
        left = [os.path.join(r, f) for r, _, fs in os.walk(disk) for f in fs]
        assert not left, (argv, left)
