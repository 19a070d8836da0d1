"""The input pipeline at scale: images per second, and the memory of training.

    python benchmarks/data_benchmark.py --work /tmp/kv-data --out docs/benchmarks/data.md
    python benchmarks/data_benchmark.py --quick --work /tmp/kv-quick --out /tmp/data.md

Builds synthetic collections of 64x64x3 photographs (random crops of the
sample photos that scikit-learn ships, resized) as a PNG folder, a JPEG
folder and TFRecord shards (`keras-vae convert`), once, under `--work`
(resumable: what exists is kept). Then:

- **Throughput**: images per second of the input pipeline alone
  (`keras_vae.data.stream`, batches of 128, a training pass: decoded,
  shuffled, scaled) from each, against the training rate of the conv model
  on the same images.
- **Memory**: the peak resident memory of the whole `keras-vae train`
  process (one epoch of the conv model) on 10 000, 50 000 and 200 000
  images, from the PNG folder and from the shards, polled every 0.1 s. The
  goal: less than 300 MiB of growth from 10 000 to 200 000 images.

Rows are appended to `<work>/results.json` as they finish, so an
interrupted run resumes where it stopped.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import _report  # benchmarks/_report.py, beside this script
import numpy as np
import psutil

SIZES = (10_000, 50_000, 200_000)
QUICK_SIZES = (200, 600)
SIDE = 64
#: Distinct photographs in each synthetic folder.
DISTINCT = 20_000
TRAIN = ["--epochs", "1", "--encoder", "conv", "--decoder", "conv", "--conv-filters", "32,64",
         "--latent-dim", "32", "--batch-size", "128", "--likelihood", "gaussian",
         "--binarize", "none", "--seed", "0"]


def photos(count, seed):
    """`count` 64x64x3 uint8 crops of the sample photos that scikit-learn
    ships (a Chinese temple, a flower), flipped at random."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    sources = load_sample_images().images
    rng = np.random.default_rng(seed)
    for _ in range(count):
        image = sources[rng.integers(len(sources))]
        side = int(rng.integers(48, min(image.shape[:2])))
        top = int(rng.integers(0, image.shape[0] - side + 1))
        left = int(rng.integers(0, image.shape[1] - side + 1))
        crop = image[top:top + side, left:left + side]
        crop = crop[:, ::-1] if rng.integers(2) else crop
        yield np.asarray(Image.fromarray(crop).resize((SIDE, SIDE), Image.LANCZOS))


def make_folder(folder, count, extension):
    """A folder of `count` images in 10 class subfolders (kept if complete):
    `DISTINCT` distinct photographs, the rest hard links to them (decoding
    costs the same; writing 200 000 distinct PNGs would take most of an hour)."""
    from PIL import Image

    done = sum(len(files) for _, _, files in os.walk(folder)) if os.path.isdir(folder) else 0
    if done >= count:
        return
    images = photos(min(count, DISTINCT), seed=0)
    for i in range(count):
        path = os.path.join(folder, f"class{i % 10}", f"{i:06d}{extension}")
        image = next(images) if i < DISTINCT else None
        if os.path.exists(path):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if image is None:
            j = i % DISTINCT
            os.link(os.path.join(folder, f"class{j % 10}", f"{j:06d}{extension}"), path)
            continue
        Image.fromarray(image).save(path + ".partial",
                                    format=extension[1:].replace("jpg", "jpeg"))
        os.replace(path + ".partial", path)
        if (i + 1) % 10_000 == 0:
            print(f"{folder}: {i + 1}/{count} images", flush=True)


def throughput(spec, batches):
    """Images per second of a training pass of the input pipeline alone."""
    from keras_vae import data

    split = data.load(spec).train
    stream = data.stream(split, 128, training=True, seed=0).take(batches)
    for _ in stream.take(2):
        pass  # start-up
    start, seen = time.perf_counter(), 0
    for batch in stream:
        seen += int(batch["images"].shape[0]) if isinstance(batch, dict) \
            else int(batch.shape[0])
    return seen / (time.perf_counter() - start)


def training_rate(spec, images):
    """Images per second of `fit` of the conv model on the same stream."""
    import keras

    import keras_vae
    from keras_vae import data

    split = data.load(spec).train.take(images)
    vae = keras_vae.VAE((SIDE, SIDE, 3), latent_dim=32, encoder="conv", decoder="conv",
                        conv_filters=(32, 64), likelihood="gaussian")
    vae.compile(optimizer=keras.optimizers.Adam())
    stream = data.stream(split, 128, training=True, seed=0, labels=False)
    vae.fit(stream.take(3), verbose=0)  # tracing
    start = time.perf_counter()
    vae.fit(stream, verbose=0)
    return split.count / (time.perf_counter() - start)


def peak_memory(spec, count, run_dir):
    """Peak resident MiB of `keras-vae train` for one epoch on `count` images."""
    args = [sys.executable, "-m", "keras_vae", "train", *TRAIN, "--dataset", spec,
            "--limit", str(count), "--run-dir", run_dir, "--overwrite"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    watched, peak, start = psutil.Process(process.pid), 0, time.time()
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    if process.returncode:
        raise RuntimeError(f"keras-vae train failed: {process.stderr.read()[-2000:]}")
    return peak / 2**20, time.time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="where the synthetic data goes")
    parser.add_argument("--quick", action="store_true", help="200 and 600 images")
    parser.add_argument("--out", default="docs/benchmarks/data.md")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else SIZES
    total = max(sizes) + max(sizes) // 9  # the folder's test share comes on top
    os.makedirs(args.work, exist_ok=True)
    results_path = os.path.join(args.work, "results.json")
    results = json.load(open(results_path)) if os.path.exists(results_path) else {}

    def record(key, compute):
        if key not in results:
            results[key] = compute()
            with open(results_path + ".partial", "w") as f:
                json.dump(results, f, indent=2)
            os.replace(results_path + ".partial", results_path)
            print(key, results[key], flush=True)
        return results[key]

    png, jpeg = os.path.join(args.work, "png"), os.path.join(args.work, "jpeg")
    shards = os.path.join(args.work, "shards")
    make_folder(png, total, ".png")
    make_folder(jpeg, min(total, 20_000), ".jpg")
    if not os.path.exists(os.path.join(shards, "dataset.json")):
        from keras_vae import runs

        runs.convert(f"images:{png}", shards, verbose=False)
    batches = 20 if args.quick else 300
    sources = {"PNG folder": f"images:{png}", "JPEG folder": f"images:{jpeg}",
               "TFRecord shards": f"tfrecord:{shards}"}
    rates = {name: record(f"throughput {name}", lambda s=spec: throughput(s, batches))
             for name, spec in sources.items()}
    trained = record("training rate", lambda: training_rate(f"tfrecord:{shards}",
                                                           2_000 if not args.quick else 300))
    memory = {}
    for name, spec in (("PNG folder", f"images:{png}"), ("TFRecord shards", f"tfrecord:{shards}")):
        for count in sizes:
            memory[name, count] = record(
                f"memory {name} {count}",
                lambda s=spec, c=count: peak_memory(s, c, os.path.join(args.work, "run")))
    lines = [
        "# The input pipeline at scale",
        "",
        *_report.provenance("data_benchmark.py", argv),
        "",
        f"Synthetic 64x64x3 photographs (crops of scikit-learn's sample photos; "
        f"{DISTINCT:,} distinct files, the others hard links to them); batches of 128.",
        "",
        "| source | input pipeline alone (images/s) | training the conv model (images/s) |",
        "|---|---|---|",
        *[f"| {name} | {rate:,.0f} | {trained:,.0f} |" for name, rate in rates.items()],
        "",
        "Peak resident memory of `keras-vae train` (one epoch, conv model, "
        f"`{' '.join(TRAIN)}`):",
        "",
        "| source | " + " | ".join(f"{c:,} images" for c in sizes) + " | growth |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for name in ("PNG folder", "TFRecord shards"):
        peaks = [memory[name, c][0] for c in sizes]
        lines.append(f"| {name} | " + " | ".join(f"{p:,.0f} MiB ({memory[name, c][1]:.0f} s)"
                                                 for p, c in zip(peaks, sizes, strict=True))
                     + f" | {peaks[-1] - peaks[0]:+,.0f} MiB |")
    _report.write(args.out, lines)


if __name__ == "__main__":
    main()
