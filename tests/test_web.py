"""The web page export (`--formats web`) and its server (`keras-vae web`),
checked without a browser: files for their content, the server for its
headers, refusals for their messages. tests/test_browser.py runs the page
in Chromium."""

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import dynamic_dimensions, small_vae

import keras_vae
from keras_vae import edge, runs, samplers
from keras_vae.export import web
from keras_vae.runs import web as web_run


def _fake_runtime(folder):
    """A folder laid out as node_modules/@litertjs, with stand-in files."""
    for name, text in {"core/dist/index.js": "export const core = 1;",
                       "core/dist/index.js.map": "{}",
                       "core/wasm/litert_wasm_internal.wasm": "\0asm",
                       "core/README.md": "readme",
                       "wasm-utils/dist/index.js": "export const utils = 1;"}.items():
        path = os.path.join(folder, "@litertjs", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return folder


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A 2-D standard-normal model with a fitted sampler, exported as a page
    with the default (CDN) runtime: `(vae, folder, written)`."""
    vae = small_vae(latent_dim=2)
    x = np.random.default_rng(0).uniform(size=(64, 6, 6, 1)).astype("float32")
    fitted, _ = samplers.fit_gaussian_mixture(vae, x, num_components=2)
    vae.add_sampler("gmm", fitted)
    folder = str(tmp_path_factory.mktemp("page") / "web")
    return vae, folder, web.export_web(vae, folder)


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_the_page_folder_holds_the_page_the_models_and_their_metadata(page):
    vae, folder, written = page
    names = {"index.html", "app.js", "style.css", "metadata.json",
             "vae_float32.tflite", "vae_int8.tflite", "vae_metadata.json"}
    assert set(os.listdir(folder)) == names
    assert sorted(written) == sorted(os.path.join(folder, n) for n in names)
    meta = json.loads(_read(os.path.join(folder, "metadata.json")))
    assert meta["latent_dim"] == 2 and meta["image_shape"] == [6, 6, 1]
    assert meta["batch_sizes"] == [1, 16, 64] and meta["samplers"] == ["gmm"]
    assert meta["prior"] == "StandardNormal" and meta["class_names"] is None
    assert meta["variants"] == [
        {"name": v, "file": f"vae_{v}.tflite",
         "bytes": os.path.getsize(os.path.join(folder, f"vae_{v}.tflite"))}
        for v in ("float32", "int8")]
    # The latent map shows the central 99% of N(0, I): ±2.576 on each axis
    # (the Monte-Carlo error of 4000 draws is about 0.08).
    np.testing.assert_allclose(meta["latent_box"], [[-2.5758, 2.5758]] * 2, atol=0.25)
    for name in ("app.js", "style.css"):
        assert _read(os.path.join(folder, name)) == _read(
            os.path.join(os.path.dirname(web.__file__), "web_page", name))


def test_the_page_loads_a_pinned_release_of_litertjs_through_an_import_map(page):
    _, folder, _ = page
    html = _read(os.path.join(folder, "index.html"))
    assert "{{" not in html
    imports = json.loads(html.split('<script type="importmap">')[1].split("</script>")[0])
    cdn = "https://cdn.jsdelivr.net/npm/@litertjs"
    assert imports == {"imports": {
        "@litertjs/core": f"{cdn}/core@2.5.3/dist/index.js",
        "@litertjs/wasm-utils": f"{cdn}/wasm-utils@2.5.3/dist/index.js"}}
    assert f'<meta name="litert-wasm" content="{cdn}/core@2.5.3/wasm/">' in html
    assert '<script type="module" src="app.js"' in html and "onerror=" in html


def test_the_pages_models_have_fixed_shapes_and_samples_come_with_their_codes(page):
    vae, folder, _ = page
    for variant in ("float32", "int8"):
        assert dynamic_dimensions(os.path.join(folder, f"vae_{variant}.tflite")) == []
    generator = edge.LiteRTGenerator(os.path.join(folder, "vae_float32.tflite"))
    assert generator.samplers == ["gmm"]
    for key in ("sample_16", "sample_gmm_16"):
        out = generator.interpreter.get_signature_runner(key)(temperature=np.float32(1.0))
        assert out["z"].shape == (16, 2) and out["images"].shape == (16, 6, 6, 1)
        # The codes are the ones the images were decoded from.
        np.testing.assert_allclose(out["images"], vae.decode(out["z"]), atol=1e-5)
        np.testing.assert_allclose(generator.decode(out["z"]), out["images"], atol=1e-6)


def test_a_local_runtime_is_copied_into_the_page_for_offline_use(tmp_path):
    vae = small_vae(latent_dim=3)
    modules = _fake_runtime(str(tmp_path / "node_modules"))
    # Issue 36: links were followed (/etc/passwd, a 6.3 GB home folder).
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the page")
    core = os.path.join(modules, "@litertjs", "core")
    os.symlink(secret, os.path.join(core, "dist", "passwd.js"))
    os.symlink(tmp_path, os.path.join(core, "home"), target_is_directory=True)
    os.mkfifo(os.path.join(core, "dist", "pipe"))
    out = str(tmp_path / "web")
    web.export_web(vae, out, quantize=("none",), runtime=modules)
    html = _read(os.path.join(out, "index.html"))
    assert '"@litertjs/core": "./runtime/core/dist/index.js"' in html
    assert '"@litertjs/wasm-utils": "./runtime/wasm-utils/dist/index.js"' in html
    assert 'content="./runtime/core/wasm/"' in html
    copied = sorted(os.path.relpath(os.path.join(r, f), out)
                    for r, _, fs in os.walk(os.path.join(out, "runtime")) for f in fs)
    assert copied == ["runtime/core/dist/index.js", "runtime/core/wasm/litert_wasm_internal.wasm",
                      "runtime/wasm-utils/dist/index.js"]
    assert json.loads(_read(os.path.join(out, "metadata.json")))["latent_box"] is None


@pytest.mark.parametrize("runtime, message", [
    ("{tmp}", r"neither a URL nor a folder with LiteRT.js \(missing core/dist/index.js, "
              r"core/wasm, wasm-utils/dist/index.js\)"),
    ("https://example.org/litert", r"Expected a runtime URL with \{package\}"),
    # Issue 36: a KeyError, an IndexError, and a script injected into the page.
    ("https://example.org/{oops}/{package}", r"no other \{placeholder\} \(it also has "
                                             r"\{oops\}\)"),
    ("https://example.org/{0}/{package}", r"\(it also has \{0\}\)"),
    ("https://example.org/{package}\"></script><script>alert(1)</script>",
     r"has the character '\"', which a URL written into the page must not have"),
    ("https://example.org/a b/{package}", r"has the character ' '"),
])
def test_a_runtime_that_is_not_litertjs_is_refused_before_anything_is_written(
        tmp_path, runtime, message):
    out = str(tmp_path / "web")
    with pytest.raises(ValueError, match=message):
        web.export_web(small_vae(), out, runtime=runtime.replace("{tmp}", str(tmp_path)))
    assert not os.path.exists(out)


def test_an_existing_page_is_kept_unless_overwrite(page, tmp_path):
    vae, folder, _ = page
    out = str(tmp_path / "web")
    web.export_web(vae, out, quantize=("none",))
    with pytest.raises(FileExistsError, match=r"vae_float32.tflite, .*metadata.json, "
                       r".*index.html, .*app.js, .*style.css already exist\(s\). Pass overwrite"):
        web.export_web(vae, out, quantize=("none",))
    web.export_web(vae, out, quantize=("none",), overwrite=True)


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def test_the_server_sends_the_cross_origin_isolation_headers_on_127_0_0_1_only(tmp_path):
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><p>page</p>")
    (folder / "app.js").write_text("export {};")
    (folder / "m.wasm").write_bytes(b"\0asm")
    server = web_run.make_server(str(folder), 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address
        assert host == "127.0.0.1"
        status, headers, body = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and body == b"<!doctype html><p>page</p>"
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert _get(f"http://127.0.0.1:{port}/app.js")[1]["Content-type"] == "text/javascript"
        assert _get(f"http://127.0.0.1:{port}/m.wasm")[1]["Content-type"] == "application/wasm"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            _get(f"http://127.0.0.1:{port}/missing.tflite")
        with pytest.raises(OSError, match=f"Cannot serve on 127.0.0.1:{port}.*another --port"):
            web_run.make_server(str(folder), port)
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(FileNotFoundError, match="has no index.html"):
        web_run.make_server(str(tmp_path), 0)
    with pytest.raises(ValueError, match="Expected a port in"):
        web_run.make_server(str(folder), 70000)


def _request(port, path, host=None):
    """`(status, body)` of a GET, with a chosen Host header."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if host is not None:
        request.add_unredirected_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_server_serves_only_the_regular_files_of_the_page_to_its_own_host(tmp_path):
    """Issue 36: links in the page folder were followed, folders without an
    index.html were listed, and any Host header was answered (DNS
    rebinding)."""
    folder = tmp_path / "web"
    (folder / "models").mkdir(parents=True)
    (folder / "index.html").write_text("<p>page</p>")
    (folder / "models" / "vae.tflite").write_bytes(b"model")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the page")
    (folder / "secret.txt").symlink_to(secret)
    (folder / "home").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(folder / "pipe")
    server = web_run.make_server(str(folder), 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert _request(port, "/models/vae.tflite") == (200, b"model")
        assert _request(port, "/", host=f"localhost:{port}")[0] == 200
        for path in ("/secret.txt", "/home/secret.txt", "/home/", "/models/", "/pipe",
                     "/../secret.txt", "/%2e%2e/secret.txt"):
            status, body = _request(port, path)
            assert status == 404 and b"not for the page" not in body, path
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1", ""):
            assert _request(port, "/", host=host)[0] == 403, host
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.long  # a served page or TensorFlow's own CLI in subprocesses: make test-long
def test_keras_vae_web_exports_the_page_serves_it_and_stops_on_ctrl_c(tmp_path):
    config = keras_vae.runs.config.resolve({"limit": 300, "epochs": 1, "batch_size": 100,
                                       "hidden_units": [16], "latent_dim": 2})
    run_dir = str(tmp_path / "run")
    runs.train(config, run_dir, verbose=0)
    modules = _fake_runtime(str(tmp_path / "node_modules"))
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_vae", "web", run_dir, "--port", "0",
         "--web-runtime", modules], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        lines = []
        while not lines or not lines[-1].startswith("Serving"):
            line = process.stdout.readline()
            assert line, (lines, process.stderr.read()[-2000:])
            lines.append(line)
        assert lines[0] == f"Exporting the web page into {run_dir}/export/web\n"
        url = lines[-1].split(" at ")[1].split(" ")[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        status, headers, body = _get(url + "index.html")
        assert b"./runtime/core/dist/index.js" in body
        meta = json.loads(_get(url + "metadata.json")[2])
        assert meta["latent_dim"] == 2 and len(meta["latent_box"]) == 2
        assert meta["training_data"] == config["dataset"]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    assert out.strip().endswith("Stopped.")
    assert sorted(os.listdir(os.path.join(run_dir, "export", "web"))) == [
        "app.js", "index.html", "metadata.json", "runtime", "style.css", "vae_float32.tflite",
        "vae_int8.tflite", "vae_metadata.json"]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="the command sets signal handlers in the main thread only")
def test_ctrl_c_while_a_request_is_accepted_stops_the_command(tmp_path, monkeypatch, capsys):
    # CI saw this: Ctrl-C arrived while the server accepted a request, and
    # socketserver printed the command's Stopped exception and served on.
    from keras_vae import cli

    folder = tmp_path / "run" / "export" / "web"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<p>page</p>")
    servers, make = [], web_run.make_server
    monkeypatch.setattr(web_run, "make_server", lambda *a: servers.append(make(*a)) or servers[0])
    accept = http.server.ThreadingHTTPServer.process_request

    def ctrl_c_while_accepting(server, request, address):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.3)  # the handler runs now, in the main thread
        accept(server, request, address)

    monkeypatch.setattr(http.server.ThreadingHTTPServer, "process_request",
                        ctrl_c_while_accepting)

    def client():
        while not servers:
            time.sleep(0.05)
        try:
            _get(f"http://127.0.0.1:{servers[0].server_address[1]}/index.html")
        except OSError:
            pass  # the server may be closing
    threading.Thread(target=client, daemon=True).start()
    watchdog = threading.Timer(30, lambda: servers[0].shutdown())  # the old bug, bounded
    watchdog.start()
    started = time.monotonic()
    handler = signal.getsignal(signal.SIGINT)  # SIG_IGN where the shell started us in the background
    try:
        assert cli.main(["web", str(tmp_path / "run"), "--port", "0"]) == 0
    finally:
        watchdog.cancel()
    out, err = capsys.readouterr()
    assert out.strip().endswith("Stopped."), (out, err)
    assert "Exception occurred" not in err and "Stopped" not in err
    assert time.monotonic() - started < 25  # stopped by the signal, not by the watchdog
    assert signal.getsignal(signal.SIGINT) is handler  # the command put it back


def test_a_server_that_fails_in_its_thread_fails_the_command(tmp_path, monkeypatch):
    folder = tmp_path / "run" / "export" / "web"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<p>page</p>")

    def broken(server, poll_interval=0.5):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(http.server.ThreadingHTTPServer, "serve_forever", broken)
    with pytest.raises(OSError, match="Too many open files"):
        web_run.serve_web(str(tmp_path / "run"), 0)


def test_keras_vae_web_says_what_is_wrong_with_a_missing_run(tmp_path, capsys):
    from keras_vae import cli

    assert cli.main(["web", str(tmp_path / "nothing")]) != 0
    assert f"No run directory {tmp_path / 'nothing'}" in capsys.readouterr().err


def test_the_device_code_runs_with_a_chosen_number_of_threads(page):
    _, folder, _ = page
    path = os.path.join(folder, "vae_float32.tflite")
    z = np.random.default_rng(1).standard_normal((20, 2)).astype("float32")
    np.testing.assert_allclose(edge.LiteRTGenerator(path, num_threads=2).decode(z),
                               edge.LiteRTGenerator(path).decode(z), atol=1e-6)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match=f"Expected num_threads: a positive int.*"
                                             f"Received: {bad!r}"):
            edge.LiteRTGenerator(path, num_threads=bad)


@pytest.mark.long  # 10-15 s; the matrix and journeys cover the common path
def test_exporting_tflite_and_web_together_converts_each_variant_once(tmp_path, monkeypatch):
    from keras_vae.export import litert

    vae = small_vae(latent_dim=3)
    vae.save(tmp_path / "vae.keras")
    calls = []
    convert = litert.convert
    monkeypatch.setattr(litert, "convert", lambda *a, **k: calls.append(a[1]) or convert(*a, **k))
    out = tmp_path / "export"
    runs.export_model(str(tmp_path / "vae.keras"), str(out), formats=("tflite", "web"),
                      quantize=("none", "int8"))
    assert sorted(calls) == ["int8", "none"]  # not four: the page copies the files
    for variant in ("float32", "int8"):
        assert (out / "web" / f"vae_{variant}.tflite").read_bytes() == (
            out / f"vae_{variant}.tflite").read_bytes()
    assert json.loads((out / "web" / "vae_metadata.json").read_text()) == json.loads(
        (out / "vae_metadata.json").read_text())
    meta = json.loads((out / "web" / "metadata.json").read_text())
    assert [v["bytes"] for v in meta["variants"]] == [
        os.path.getsize(out / f"vae_{v}.tflite") for v in ("float32", "int8")]
    # A variant that was not converted yet is converted for the page.
    calls.clear()
    web.export_web(vae, str(tmp_path / "page"), quantize=("none", "int8"),
                   converted={"none": str(out / "vae_float32.tflite")})
    assert calls == ["int8"]
    assert (tmp_path / "page" / "vae_float32.tflite").read_bytes() == (
        out / "vae_float32.tflite").read_bytes()
