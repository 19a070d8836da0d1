"""Generation in the browser (LiteRT.js) against Python (ai_edge_litert).

    python benchmarks/web_benchmark.py --run runs/demo-vamp --out docs/benchmarks/web.md
    python benchmarks/web_benchmark.py --quick --out /tmp/web.md   # CI smoke run

Exports the run's page (float32 and int8 files, the LiteRT.js copy of
tests/browser/node_modules: `make browser-deps`), serves it on 127.0.0.1 and
drives headless Chromium (tests/browser/drive.mjs, puppeteer-core) with one
and two threads. For each variant and thread count, in the browser and in
Python on the same machine, with a real clock (`performance.now()` in a page
driven in real time; `time.perf_counter()` in Python): the runtime's load,
the model's load (fetch and compile; read and build the interpreter), and
the median time to decode 16 and 1000 images (whole batches of 64, 16 and
1, as `keras_vae.edge` runs them).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import _report  # benchmarks/_report.py, beside this script
import numpy as np

from keras_vae import edge, runs
from keras_vae.export import web
from keras_vae.runs import config as config_lib
from keras_vae.runs import web as web_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tests", "browser")
VARIANTS = ("float32", "int8")
THREADS = (1, 2)

_PAGE_TIMING = """async () => {
  const k = window.kerasVae, d = k.state.meta.latent_dim, out = {};
  for (const n of [16, 1000]) {
    const z = new Float32Array(n * d).map((_, i) => Math.sin(i));
    await k.decode(z, n);  // warm-up
    const times = [];
    for (let r = 0; r < REPEATS; r++) {
      const t = performance.now(); await k.decode(z, n); times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    out[n] = times[Math.floor(times.length / 2)];
  }
  return {runtime: k.state.loadTimes.runtime, model: k.state.loadTimes[k.state.variant],
          decode: out, threads: k.state.threads};
}"""


def _model_run(args, tmp):
    if args.run:
        return args.run
    config = config_lib.resolve({"limit": 2000, "epochs": 1, "hidden_units": [64],
                                 "latent_dim": 8})
    run_dir = os.path.join(tmp, "run")
    runs.train(config, run_dir, verbose=0)
    return run_dir


def _browser(url, variant, threads, repeats, chromium, tmp):
    job = os.path.join(tmp, "job.json")
    with open(job, "w") as f:
        json.dump({"url": f"{url}?variant={variant}&threads={threads}", "chromium": chromium,
                   "steps": [{"evaluate": _PAGE_TIMING.replace("REPEATS", str(repeats))}]}, f)
    result = subprocess.run(["node", "drive.mjs", job], cwd=DRIVER, capture_output=True,
                            text=True, timeout=600, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report.get("state") != "ready" or report["refused"]:
        raise RuntimeError(f"The page did not run: {report}")
    timing = report["steps"][0]
    if timing["threads"] != threads:
        raise RuntimeError(f"The page ran {timing['threads']} threads, not {threads}.")
    return timing["runtime"], timing["model"], timing["decode"]["16"], timing["decode"]["1000"]


def _python_runtime_load():
    """Milliseconds to import ai_edge_litert's interpreter in a fresh process."""
    code = ("import time, numpy; t = time.perf_counter(); "
            "from ai_edge_litert.interpreter import Interpreter; "
            "print((time.perf_counter() - t) * 1000)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout)


def _python(path, threads, repeats, latent_dim):
    start = time.perf_counter()
    generator = edge.LiteRTGenerator(path, num_threads=threads)
    model = (time.perf_counter() - start) * 1000
    decode = {}
    for n in (16, 1000):
        z = np.sin(np.arange(n * latent_dim, dtype="float32")).reshape(n, latent_dim)
        generator.decode(z)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            generator.decode(z)
            times.append((time.perf_counter() - start) * 1000)
        decode[n] = statistics.median(times)
    return model, decode[16], decode[1000]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished run directory (default: a quick model)")
    parser.add_argument("--quick", action="store_true", help="a small model, few repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (default 21)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", default="docs/benchmarks/web.md")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 21)
    modules = os.path.join(DRIVER, "node_modules")
    if not os.path.isdir(os.path.join(modules, "puppeteer-core")) or not os.path.exists(
            args.chromium):
        sys.exit("Needs Chromium and tests/browser/node_modules: run make browser-deps.")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = _model_run(args, tmp)
        _, vae = runs.load_run(run_dir)
        folder = os.path.join(tmp, "web")
        web.export_web(vae, folder, runtime=modules)
        server = web_run.make_server(folder, 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        rows, python_load = [], _python_runtime_load()
        try:
            for variant in VARIANTS:
                for threads in THREADS:
                    browser = _browser(url, variant, threads, repeats, args.chromium, tmp)
                    path = os.path.join(folder, f"vae_{variant}.tflite")
                    python = (python_load,) + _python(path, threads, repeats, vae.latent_dim)
                    for where, times in (("browser (LiteRT.js, wasm)", browser),
                                         ("Python (ai_edge_litert)", python)):
                        rows.append((where, variant, threads, os.path.getsize(path), *times))
        finally:
            server.shutdown()
            server.server_close()
    lines = [
        "# Generation in the browser and in Python",
        "",
        *_report.provenance("web_benchmark.py", argv),
        f"Model: {'quick model' if not args.run else args.run} (latent_dim {vae.latent_dim}, "
        f"image {tuple(vae.data_shape)}); LiteRT.js {web.LITERTJS_VERSION} in headless "
        f"Chromium ({args.chromium}, --disable-gpu: the wasm CPU backend, XNNPACK) driven "
        f"by puppeteer-core; median of {repeats} timed calls after a warm-up.",
        "",
        "| where | variant | threads | file KiB | runtime load ms | model load ms | "
        "decode 16 ms | decode 1000 ms | µs per image (1000) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for where, variant, threads, size, runtime, model, d16, d1000 in rows:
        lines.append(f"| {where} | {variant} | {threads} | {size / 1024:.0f} | {runtime:.0f} | "
                     f"{model:.1f} | {d16:.2f} | {d1000:.1f} | {1000 * d1000 / 1000:.1f} |")
    lines += ["", "Runtime load: the browser's `loadLiteRt` (fetch and compile the wasm "
              "module, threaded when threads > 1); Python's import of "
              "`ai_edge_litert.interpreter` in a fresh process (numpy already imported). "
              "Model load: the browser fetches the file and compiles it; Python reads it and "
              "builds the interpreter and its signature runners (the first file Python loads "
              "also loads the runtime's native library, which the import defers)."]
    _report.write(args.out, lines)


if __name__ == "__main__":
    main()
