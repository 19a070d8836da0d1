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

from keras_vae import files
from keras_vae.runs.export import export_model

#: The only address the page is served on.
HOST = "127.0.0.1"

_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
          ".json": "application/json", ".tflite": "application/octet-stream"}


#: Where a refused request is pointed: a name the page never holds (404).
_REFUSED = ".keras-vae-refused-7f3a9c5e"


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers of a cross-origin-isolated page: the
    regular files inside the page folder only (no listing, no symbolic link
    followed, no device or pipe), to requests whose `Host` is the address it
    bound (a page on another site that rebinds its DNS name to 127.0.0.1
    gets 403)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **_TYPES}

    def do_GET(self):
        if self._host_allowed():
            super().do_GET()

    def do_HEAD(self):
        if self._host_allowed():
            super().do_HEAD()

    def _host_allowed(self):
        port = self.server.server_address[1]
        allowed = {f"{name}:{port}" for name in (HOST, "localhost")}
        if self.headers.get("Host", "") in allowed:
            return True
        self.send_error(403, f"Host must be one of {sorted(allowed)}")
        return False

    def translate_path(self, path):
        """The file under the page folder, or a path that does not exist
        (404) where a symbolic link is on the way or it is no regular file
        or folder."""
        translated = super().translate_path(path)
        root = os.path.realpath(self.directory)
        candidate = os.path.normpath(os.path.join(
            root, os.path.relpath(translated, os.path.abspath(self.directory))))
        inside = candidate == root or candidate.startswith(root + os.sep)
        if (not inside or os.path.realpath(candidate) != candidate
                or not (os.path.isfile(candidate) or os.path.isdir(candidate))):
            return os.path.join(root, _REFUSED)
        return candidate

    def list_directory(self, path):
        self.send_error(404, "No listing: the page serves its own files only")

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
    files.check_no_link(run_dir, folder)  # never serve, nor export into, another folder
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
