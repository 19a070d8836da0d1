"""The convert job: any source to a folder of TFRecord shards
(`keras_vae.data.records`), which `--dataset tfrecord:OUT_DIR` then trains on."""

import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_vae import data, files
from keras_vae.data import records
from keras_vae.runs import costs

#: Examples per shard by default (about 120 MiB of 64x64x3 PNGs).
SHARD_SIZE = 10_000


def convert(source, out_dir, shard_size=SHARD_SIZE, data_dir=None, image_size=None,
            seed=0, overwrite=False, verbose=True, max_minutes=None, max_memory=None):
    """Write `source`'s train and test splits to `out_dir` as PNG-encoded
    TFRecord shards, `train-00000.tfrecord`, ..., and `dataset.json`; return
    the paths written.

    Each shard is written under a temporary name and renamed when complete,
    and `dataset.json` is written last: a conversion that was interrupted
    is simply run again. Float images in [0, 1] are stored as 8-bit levels.

    Its time (from encoding the first images, measured) and memory (a shard
    is gathered before it is written) are estimated and printed first, and
    refused over `max_minutes` (default: no limit) or `max_memory` GiB
    (default: 80% of this machine's memory).
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"Invalid shard_size {shard_size!r}: expected a positive integer, "
                         f"such as {SHARD_SIZE}.")
    metadata_path = os.path.join(out_dir, records.METADATA)
    if os.path.exists(metadata_path) and not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds a converted dataset ({records.METADATA}). Pass "
            "--overwrite to replace it, or choose another folder.")
    splits = data.load(source, data_dir=data_dir, image_size=image_size, seed=seed)
    if splits.columns is not None:
        raise ValueError(f"convert writes images as PNG shards, and {source!r} is a table of "
                         f"{len(splits.columns)} columns: train on it directly "
                         f"(--dataset {source}).")
    limits = costs.Limits(float("inf") if max_minutes is None else max_minutes, max_memory)
    check_cost(splits, shard_size, limits, limited=max_minutes is not None)
    os.makedirs(out_dir, exist_ok=True)
    for stale in os.listdir(out_dir):  # an earlier conversion's, finished or not
        if stale == records.METADATA or stale.endswith((".tfrecord", ".tfrecord.partial")):
            os.remove(os.path.join(out_dir, stale))
    written, counts, shard_counts = [], {}, {}
    for name, split in (("train", splits.train), ("test", splits.test)):
        shards = _write_split(split, out_dir, name, shard_size, verbose)
        counts[name] = sum(shards.values())
        shard_counts.update({os.path.basename(path): n for path, n in shards.items()})
        written += list(shards)
    metadata = {"format": records.FORMAT, "version": 1,
                "image_shape": list(splits.image_shape), "counts": counts,
                "class_names": splits.class_names, "source": source,
                "shard_counts": shard_counts}
    files.write_text(metadata_path, json.dumps(metadata, indent=2) + "\n")
    return written + [metadata_path]


def check_cost(splits, shard_size, limits, limited):
    """Print, and refuse over `limits`, the conversion's estimated time (the
    first 32 images encoded, timed) and memory (the largest shard gathered:
    its images decoded and encoded)."""
    count = splits.train.count + splits.test.count
    sample = min(32, splits.train.count)
    start = time.perf_counter()
    with data.reading(splits.train):
        for _ in splits.train.dataset().take(sample).map(_encoder(splits.train.has_labels)):
            pass
    seconds = (time.perf_counter() - start) / max(sample, 1) * count
    pixels = int(np.prod(splits.image_shape))
    nbytes = 2 * min(shard_size, max(splits.train.count, splits.test.count)) * pixels
    shape = "x".join(map(str, splits.image_shape))
    print(f"Estimate: {count} {shape} images take about {costs.duration(seconds)} and "
          f"{costs.size(nbytes)} of memory (shards of {shard_size}).", file=sys.stderr)
    limits.check(f"Converting {count} {shape} images in shards of {shard_size}",
                 seconds if limited else None, nbytes,
                 fewer="give a smaller --shard-size (a shard is gathered in memory)")


def _write_split(split, out_dir, name, shard_size, verbose):
    """Write one split's shards; `{path: examples in it}`."""
    encoded = split.dataset().map(_encoder(split.has_labels),
                                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(64)
    progress = keras.utils.Progbar(split.count, verbose=int(bool(verbose)),
                                   unit_name=f"{name} image")
    shards, shard = {}, []

    def flush():
        path = os.path.join(out_dir, f"{name}-{len(shards):05d}.tfrecord")
        records.write_shard(path, shard)
        shards[path] = len(shard)
        shard.clear()

    count = 0
    with data.reading(split):
        for image, label in encoded.as_numpy_iterator():
            shard.append((image, None if label < 0 else int(label)))
            count += 1
            if len(shard) == shard_size:
                flush()
            if count % 256 == 0 or count == split.count:
                progress.update(count)
    if shard or not shards:
        flush()
    return shards


def _encoder(has_labels):
    def encode(element):
        images = element["images"]
        if images.dtype != tf.uint8:  # floats in [0, 1]
            images = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 1.0) * 255.0), tf.uint8)
        label = tf.cast(element["labels"], tf.int64) if has_labels \
            else tf.constant(-1, tf.int64)
        return tf.io.encode_png(images), label

    return encode

