"""`keras-vae web RUN`: serve a run's web page on this machine.

The page (`keras_vae.export.web`) is exported into `RUN/export/web/` when
missing, then served on 127.0.0.1 only, with the cross-origin-isolation
headers (COOP `same-origin`, COEP `require-corp`) that LiteRT.js's threaded
runtime needs, until Ctrl-C.
"""

import functools
import http.server
import os
import threading

from keras_vae.runs.export import export_model

#: The only address the page is served on.
HOST = "127.0.0.1"

_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
          ".json": "application/json", ".tflite": "application/octet-stream"}


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers of a cross-origin-isolated page."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **_TYPES}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # one line per file would bury the URL


def page_dir(run_dir, runtime=None):
    """`RUN/export/web`, exported first when it has no page."""
    folder = os.path.join(run_dir, "export", "web")
    if not os.path.exists(os.path.join(folder, "index.html")):
        print(f"Exporting the web page into {folder}")
        export_model(run_dir, formats=("web",), overwrite=True,
                     **({"web_runtime": runtime} if runtime else {}))
    elif runtime:
        print(f"{folder} exists: --web-runtime is used only when the page is exported "
              f"(keras-vae export {run_dir} --formats web --overwrite --web-runtime ...).")
    return folder


def make_server(folder, port=8000):
    """A threaded HTTP server of `folder` on 127.0.0.1:`port` (0: any free
    port); call `serve_forever()`, and `server_close()` after."""
    if not os.path.isfile(os.path.join(folder, "index.html")):
        raise FileNotFoundError(f"{folder} has no index.html: export the page with "
                                "keras-vae export RUN --formats web.")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"Expected a port in [0, 65535], such as 8000. Received: {port!r}")
    handler = functools.partial(PageHandler, directory=folder)
    try:
        return http.server.ThreadingHTTPServer((HOST, port), handler)
    except OSError as error:
        raise OSError(f"Cannot serve on {HOST}:{port} ({error.strerror}): is another "
                      "server using it? Choose another --port.") from None


def serve_web(run_dir, port=8000, runtime=None):
    """Export the page if needed and serve it until Ctrl-C (or SIGTERM under
    the keras-vae command).

    The server runs in its own thread and the main thread only waits: a
    signal always lands in the wait, never inside socketserver, whose request
    loop would print and swallow the exception the keras-vae command raises
    on a signal (`failures.Stopped`), and serve on. That exception leaves
    through here, the server shut down, and the command says "Stopped."."""
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"No run directory {run_dir}.")
    server = make_server(page_dir(run_dir, runtime), port)
    print(f"Serving {run_dir} at http://{HOST}:{server.server_address[1]}/ (Ctrl-C stops)",
          flush=True)
    failed = []

    def serve():
        try:
            server.serve_forever()
        except Exception as error:  # raised again in the caller's thread below
            failed.append(error)

    thread = threading.Thread(target=serve, name="keras-vae-web", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        print("Stopped.", flush=True)
    finally:
        if thread.is_alive():  # shutdown() waits for a serve_forever that runs
            server.shutdown()
        server.server_close()
    if failed:
        raise failed[0]
