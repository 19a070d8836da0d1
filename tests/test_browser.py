"""The web page in a real browser: headless Chromium driven by puppeteer-core
(tests/browser/drive.mjs) runs the exported LiteRT files with LiteRT.js.

`make test-browser` installs the pinned packages (tests/browser/package.json
and its lock file) and runs this module; it is skipped, with the reason,
where Node, Chromium or those packages are absent. The page's screenshot is
saved under build/test-artifacts/ ($KERAS_VAE_TEST_ARTIFACTS).
"""

import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from keras_vae import edge, runs
from keras_vae.export import web
from keras_vae.runs import config as config_lib
from keras_vae.runs import web as web_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tests", "browser")
MODULES = os.path.join(DRIVER, "node_modules")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = os.environ.get("KERAS_VAE_TEST_ARTIFACTS",
                           os.path.join(ROOT, "build", "test-artifacts"))


def _missing():
    if not shutil.which("node"):
        return "Node.js (node) is not installed"
    if not os.path.exists(CHROMIUM):
        return f"Chromium is not at {CHROMIUM} (apt-get install chromium, or set $CHROMIUM)"
    for package in ("@litertjs/core", "puppeteer-core"):
        if not os.path.isdir(os.path.join(MODULES, package)):
            return f"{package} is not installed in tests/browser (run make browser-deps)"
    return None


pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(_missing() is not None, reason=str(_missing()))]


def drive(url, steps=(), tmp_path=None, timeout_ms=60000):
    """Open `url` in headless Chromium, run `steps` (see drive.mjs) and
    return its report: state, status, steps' values, refused requests."""
    job = os.path.join(str(tmp_path), f"job-{abs(hash(url))}.json")
    with open(job, "w") as f:
        json.dump({"url": url, "chromium": CHROMIUM, "timeout_ms": timeout_ms,
                   "steps": list(steps)}, f)
    result = subprocess.run(["node", "drive.mjs", job], cwd=DRIVER, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "error" not in report, report
    return report


class Served:
    """A page folder served on 127.0.0.1 (a free port) while in a `with`."""

    def __init__(self, folder):
        self.server = web_run.make_server(folder, 0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _train(folder, **options):
    config = config_lib.resolve({"limit": 2000, "epochs": 2, "batch_size": 100,
                                 "hidden_units": [64], "learning_rate": 3e-3, **options})
    runs.train(config, folder, verbose=0)
    return folder


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Four runs exported as pages with the local runtime: a 2-D model with
    a mixture prior and a fitted sampler, a VampPrior model, a conditional
    model and a model of grey levels whose pixels are predicted from their
    neighbours. `{name: (web folder, vae)}`."""
    base = tmp_path_factory.mktemp("runs")
    made = {
        "mixture": _train(str(base / "mixture"), latent_dim=2, prior="mixture_of_gaussians"),
        "vamp": _train(str(base / "vamp"), latent_dim=4, prior="vamp", epochs=1),
        "conditional": _train(str(base / "conditional"), latent_dim=3, conditional=True,
                              epochs=1),
        # each pixel from its left neighbour, its scales fixed by z: 28 passes
        # over the 28×28 image (4 neighbours, 81 passes, took 2.5 minutes to
        # convert to int8; the local scales read the row above, as many)
        "autoregressive": _train(str(base / "autoregressive"), latent_dim=2, epochs=1,
                                 binarize="none", mixture_neighbours=1,
                                 mixture_local_scales=False,
                                 likelihood="autoregressive_logistic_mixture"),
    }
    runs.fit_sampler(made["mixture"], "gmm", 3)
    found = {}
    for name, run_dir in made.items():
        runs.export_model(run_dir, formats=("web",), web_runtime=MODULES)
        found[name] = (os.path.join(run_dir, "export", "web"), runs.load_run(run_dir)[1])
    return found


def _python(folder, variant):
    return edge.LiteRTGenerator(os.path.join(folder, f"vae_{variant}.tflite"))


def _z(n, latent, seed=0):
    return np.random.default_rng(seed).standard_normal((n, latent)).astype("float32")


@pytest.mark.parametrize("name, label", [("mixture", None), ("vamp", None),
                                         ("conditional", 7), ("autoregressive", None)])
def test_browser_decode_equals_pythons_interpreter_for_float32_and_int8(
        pages, tmp_path, name, label):
    folder, vae = pages[name]
    z = _z(70, vae.latent_dim)  # batches of 64 and 16, the last padded and trimmed
    call = f"async () => Array.from(await window.kerasVae.decode({json.dumps(z.ravel().tolist())}, " \
           f"70, {label or 0}))"
    plan = "async () => [1, 15, 17, 64, 65, 83, 200].map((n) => window.kerasVae.batchPlan(n, [1, 16, 64]))"
    with Served(folder) as served:
        for variant in ("float32", "int8"):
            report = drive(f"{served.url}?variant={variant}", [{"evaluate": call},
                                                               {"evaluate": plan}], tmp_path)
            assert report["state"] == "ready", report["status"]
            assert report["refused"] == [] and report["cross_origin_isolated"] is True
            want = _python(folder, variant).decode(z, labels=label)
            got = np.asarray(report["steps"][0], "float32").reshape(want.shape)
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=variant)
            if variant == "float32":
                np.testing.assert_allclose(got, vae.decode(z, labels=None if label is None else np.full(70, label, "int32")), atol=1e-5)
            assert report["steps"][1] == [
                [list(batch) for batch in edge.batch_plan(n, [1, 16, 64])]
                for n in (1, 15, 17, 64, 65, 83, 200)]


def _sample_twice(sampler, label):
    options = json.dumps({"sampler": sampler, "label": label})
    return ("async () => { const out = []; for (const i of [0, 1]) { "
            f"const r = await window.kerasVae.sample(16, {options}); "
            "out.push({images: Array.from(r.images), z: Array.from(r.z)}); } return out; }")


@pytest.mark.parametrize("name, sampler, label", [
    ("mixture", "", 0), ("mixture", "gmm", 0), ("vamp", "", 0), ("conditional", "", 3)])
def test_every_prior_and_sampler_samples_fresh_images_in_the_browser(
        pages, tmp_path, name, sampler, label):
    folder, vae = pages[name]
    with Served(folder) as served:
        report = drive(served.url, [{"evaluate": _sample_twice(sampler, label)}], tmp_path)
    assert report["state"] == "ready" and report["refused"] == []
    first, second = report["steps"][0]
    shape = (16,) + tuple(vae.data_shape)
    images = [np.asarray(d["images"], "float32").reshape(shape) for d in (first, second)]
    codes = [np.asarray(d["z"], "float32").reshape(16, vae.latent_dim) for d in (first, second)]
    for batch, z in zip(images, codes, strict=True):
        assert batch.min() >= 0 and batch.max() <= 1
        # Not blank: no image is flat (a briefly trained model draws blurred strokes).
        assert batch.reshape(16, -1).std(axis=1).min() > 0.02, batch.reshape(16, -1).std(axis=1)
        # The images are the model's decoding of the codes drawn with them.
        labels = np.full(16, label, "int32") if vae.num_classes else None
        np.testing.assert_allclose(batch, vae.decode(z, labels=labels), atol=1e-5)
    assert not np.allclose(images[0], images[1]) and not np.allclose(codes[0], codes[1])


def _png_size(path):
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_the_controls_sample_interpolate_and_decode_the_latent_map(pages, tmp_path):
    folder, vae = pages["mixture"]
    with open(os.path.join(folder, "metadata.json")) as f:
        (x0, x1), (y0, y1) = json.load(f)["latent_box"]
    os.makedirs(ARTIFACTS, exist_ok=True)
    screenshot = os.path.join(ARTIFACTS, "web-page.png")
    if os.path.exists(screenshot):
        os.remove(screenshot)
    slide = ("async () => { const s = document.getElementById('interp-slider'); s.value = '0.25'; "
             "s.dispatchEvent(new Event('input')); await new Promise((r) => setTimeout(r, 50)); "
             "while (window.kerasVae.state.busy) await new Promise((r) => setTimeout(r, 20)); "
             "const st = window.kerasVae.state; return {mix: st.lastMix, pair: Array.from(st.pair.z)}; }")
    grid = ("async () => ({tiles: document.querySelectorAll('#grid canvas').length, "
            "timing: document.getElementById('timing').textContent, "
            "grid: window.kerasVae.state.lastGrid.images.length})")
    with Served(folder) as served:
        report = drive(served.url, [
            {"evaluate": "async () => document.getElementById('count').value = '20'"},
            {"click": "#sample"}, {"evaluate": grid}, {"evaluate": slide},
            {"click": "#map", "at": [0.25, 0.75]},
            {"evaluate": "async () => window.kerasVae.state.lastPoint"},
            {"evaluate": "async () => document.getElementById('map-z').textContent"},
            {"screenshot": screenshot}], tmp_path)
    assert report["state"] == "ready" and report["refused"] == []
    tiles = report["steps"][2]
    assert tiles["tiles"] == 20 and tiles["grid"] == 20 * 28 * 28
    assert tiles["timing"].startswith("20 images in ") and " ms per image (float32" in tiles["timing"]
    # The slider decodes (1 - t) z_a + t z_b, the two samples' codes.
    mix, pair = report["steps"][3]["mix"], np.reshape(report["steps"][3]["pair"], (2, 2))
    assert mix["t"] == 0.25
    z_mix = 0.75 * pair[0] + 0.25 * pair[1]
    np.testing.assert_allclose(mix["z"], z_mix, atol=1e-6)
    np.testing.assert_allclose(np.reshape(mix["image"], (1, 28, 28, 1)),
                               vae.decode(z_mix[None].astype("float32")), atol=1e-5)
    # A click a quarter across and three quarters down decodes that point.
    point = report["steps"][5]
    np.testing.assert_allclose(point["z"], [x0 + 0.25 * (x1 - x0), y1 - 0.75 * (y1 - y0)],
                               atol=0.01 * max(x1 - x0, y1 - y0))
    np.testing.assert_allclose(np.reshape(point["image"], (1, 28, 28, 1)),
                               vae.decode(np.float32([point["z"]])), atol=1e-5)
    assert report["steps"][6] == f"z = ({point['z'][0]:.2f}, {point['z'][1]:.2f})"
    width, height = _png_size(screenshot)
    assert width >= 1000 and height >= 900


def test_a_conditional_models_class_picker_conditions_every_control(pages, tmp_path):
    folder, vae = pages["conditional"]
    state = ("async () => { const st = window.kerasVae.state; return {"
             "options: Array.from(document.querySelectorAll('#class option')).map((o) => o.text), "
             "map: document.getElementById('map-section').hidden, label: st.pair.label, "
             "mix: st.lastMix}; }")
    with Served(folder) as served:
        report = drive(served.url, [{"evaluate": state}, {"select": "#class", "value": "7"},
                                    {"evaluate": state}], tmp_path)
    before, after = report["steps"][0], report["steps"][2]
    assert before["options"] == [str(c) for c in range(10)] and before["map"] is True
    assert before["label"] == 0 and after["label"] == 7
    z = np.float32([after["mix"]["z"]])
    np.testing.assert_allclose(np.reshape(after["mix"]["image"], (1, 28, 28, 1)),
                               vae.decode(z, labels=np.int32([7])), atol=1e-5)
    assert not np.allclose(vae.decode(z, labels=np.int32([7])), vae.decode(z, labels=np.int32([0])))


def _copy(folder, tmp_path):
    """A copy of a page to break. The runtime is copied too: the server never
    follows a symbolic link (issue 36)."""
    copy = str(tmp_path / "web")
    shutil.copytree(folder, copy)
    return copy


def test_a_missing_model_file_shows_the_error_in_the_page(pages, tmp_path):
    copy = _copy(pages["mixture"][0], tmp_path)
    os.remove(os.path.join(copy, "vae_int8.tflite"))
    with Served(copy) as served:
        report = drive(f"{served.url}?variant=int8", (), tmp_path)
    assert report["state"] == "error"
    assert report["status"].startswith(
        "Could not load the model file vae_int8.tflite (HTTP 404). Export the page again")


def test_a_runtime_that_does_not_load_shows_the_error_and_no_request_leaves_the_machine(
        pages, tmp_path):
    """The default page loads LiteRT.js from a CDN: the driver refuses every
    host but 127.0.0.1, so the page must say that the runtime did not load."""
    copy = _copy(pages["mixture"][0], tmp_path)
    with open(os.path.join(copy, "index.html"), "w") as f:
        f.write(web.index_html(web.resolve_runtime(web.CDN_RUNTIME)[0]))
    with Served(copy) as served:
        report = drive(served.url, (), tmp_path)
    assert report["state"] == "error"
    assert report["status"].startswith("Could not load the LiteRT.js runtime from "
                                       "https://cdn.jsdelivr.net/npm/@litertjs/core@2.5.3/wasm/")
    assert report["refused"] and all(u.startswith("https://cdn.jsdelivr.net/npm/@litertjs/")
                                     for u in report["refused"])


def test_web_benchmark_quick_mode(tmp_path):
    """benchmarks/web_benchmark.py times the page in the browser and the
    same files in Python; CI proves it runs (never its speed)."""
    out = tmp_path / "web.md"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "web_benchmark.py"),
                    "--quick", "--out", str(out)], check=True, capture_output=True, timeout=900)
    text = out.read_text()
    assert "Command: `python benchmarks/web_benchmark.py --quick --out" in text
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()
            if line.startswith("| ") and "---" not in line][1:]
    assert [(r[0].split()[0], r[1], r[2]) for r in rows] == [
        (where, variant, threads) for variant in ("float32", "int8") for threads in ("1", "2")
        for where in ("browser", "Python")]
    for row in rows:
        runtime, model, d16, d1000 = (float(v) for v in row[4:8])
        assert min(runtime, model, d16, d1000) > 0  # measured, never judged
