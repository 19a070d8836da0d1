"""A static web page that generates with the model on the visitor's device.

`export_web` writes a folder that any static file server can serve: the
page (`index.html`, `app.js`, `style.css`: plain HTML and ES modules, no
build step), the fixed-shape LiteRT files of `export_litert` and a
`metadata.json` the page reads. The page runs the files with LiteRT.js
(`@litertjs/core`), loaded through an import map from a pinned public CDN
by default or from a local copy (`runtime=` a folder) for offline use.
"""

import html
import json
import os
import re
import shutil

import keras
import numpy as np

from keras_vae import files
from keras_vae.export import litert, signatures
from keras_vae.models import generation

#: The LiteRT.js release the page is written and tested against.
LITERTJS_VERSION = "2.5.3"

#: The default runtime: a URL template of the npm packages on a public CDN
#: (`{package}` is `core` or `wasm-utils`).
CDN_RUNTIME = f"https://cdn.jsdelivr.net/npm/@litertjs/{{package}}@{LITERTJS_VERSION}"

#: The variants the page offers by default (`--quantize` names).
WEB_VARIANTS = ("none", "int8")

#: The page's own files, shipped inside the package.
PAGE_FILES = ("index.html", "app.js", "style.css")
_PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web_page")

#: Where a local runtime is copied inside the page's folder.
_LOCAL_RUNTIME = "runtime"


def export_web(vae, out_dir, quantize=WEB_VARIANTS, overwrite=False, dataset=None,
               batch_sizes=signatures.BATCH_SIZES, runtime=CDN_RUNTIME, converted=None):
    """Write the page into `out_dir` (`RUN/export/web` from the command
    line); return the paths written.

    Args:
        quantize: the LiteRT variants the page offers (names of
            `keras_vae.export.VARIANTS`), float32 and int8 by default.
        runtime: where the page loads LiteRT.js from: a URL template with
            `{package}` (default: the pinned CDN release), or a local folder
            holding the `core` and `wasm-utils` packages of `@litertjs`
            (`node_modules/@litertjs`, or the `node_modules` above it),
            copied into the page for offline use.
        converted: `{variant: path}` of LiteRT files of this model already
            written with the same batch sizes (`keras-vae export --formats
            tflite,web`): copied, not converted again.
    """
    runtime_urls, runtime_source = check_target(out_dir, quantize, overwrite, runtime)
    page = [os.path.join(out_dir, name) for name in ("metadata.json",) + PAGE_FILES]
    box = latent_box(vae) if vae.latent_dim == 2 else None  # before any file is written
    os.makedirs(out_dir, exist_ok=True)
    converted = {v: p for v, p in (converted or {}).items() if v in quantize}
    todo = tuple(v for v in quantize if v not in converted)
    models = litert.export_litert(vae, out_dir, "vae", todo, overwrite, dataset,
                                  batch_sizes) if todo else {}
    for variant, source in converted.items():
        models[variant] = litert.litert_paths(out_dir, "vae", (variant,), overwrite=True)[variant]
        with open(source, "rb") as f:
            files.write_bytes(models[variant], f.read())
    if not todo:
        litert.write_metadata(vae, out_dir, "vae", dataset, batch_sizes)
    models = {variant: models[variant] for variant in quantize}
    written = list(models.values()) + [os.path.join(out_dir, "vae_metadata.json")]
    if runtime_source:
        target = os.path.join(out_dir, _LOCAL_RUNTIME)
        shutil.rmtree(target, ignore_errors=True)
        for package in ("core", "wasm-utils"):
            copy_regular_files(os.path.join(runtime_source, package),
                               os.path.join(target, package))
        written.append(target)
    described = page_metadata(vae, models, dataset, batch_sizes, box)
    files.write_bytes(page[0], json.dumps(described, indent=2).encode())
    for name in PAGE_FILES:
        text = index_html(runtime_urls) if name == "index.html" else _page_file(name)
        files.write_bytes(os.path.join(out_dir, name), text.encode())
    return written + page


def copy_regular_files(source, target, skip=(".map", ".d.ts", ".md")):
    """Copy the regular files under `source` into `target`, the same tree:
    never through a symbolic link (a link to /etc/passwd or to a home folder
    stays behind), nor a device or pipe; names ending in `skip` are left out."""
    root = os.path.realpath(source)
    for folder, subfolders, names in os.walk(root):  # walk follows no link
        subfolders[:] = [d for d in subfolders if not os.path.islink(os.path.join(folder, d))]
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(skip) or os.path.islink(path) or not os.path.isfile(path):
                continue
            destination = os.path.join(target, os.path.relpath(path, root))
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copyfile(path, destination, follow_symlinks=False)


def check_target(out_dir, quantize, overwrite=False, runtime=CDN_RUNTIME):
    """Refuse, before anything is written, a page that exists (unless
    `overwrite`), an unknown variant or a runtime that is neither a URL
    nor a LiteRT.js folder; return `resolve_runtime(runtime)`."""
    runtime_found = resolve_runtime(runtime)
    models = litert.litert_paths(out_dir, "vae", quantize, overwrite=True)
    page = [os.path.join(out_dir, name) for name in ("metadata.json",) + PAGE_FILES]
    existing = [p for p in [*models.values(), *page] if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exist(s). Pass overwrite=True "
                              "(--overwrite) to replace, or choose another output folder.")
    return runtime_found


def page_metadata(vae, models, dataset=None, batch_sizes=signatures.BATCH_SIZES, box=None):
    """What the page reads: the model's metadata, the variants with their
    files and sizes, the samplers, class names and, for a 2-D latent space,
    the box of the latent map (`latent_box`, None: no map)."""
    described = signatures.metadata(vae, dataset, batch_sizes=batch_sizes)
    described["variants"] = [
        {"name": litert.VARIANTS[variant], "file": os.path.basename(path),
         "bytes": os.path.getsize(path)} for variant, path in models.items()]
    described["samplers"] = sorted(vae.samplers)
    described["class_names"] = ([str(label) for label in range(vae.num_classes)]
                                if vae.num_classes else None)
    described["latent_box"] = box
    return described


def latent_box(vae, draws=4000):
    """`[[low, high], ...]` per latent dimension: the central 99% of draws
    from the prior, the region the latent map shows."""
    seed = keras.ops.convert_to_tensor([0, 0], "int32")  # TFP's stateless seed
    z = np.asarray(generation.draw(vae.sampler(None), draws, seed=seed))
    low, high = np.quantile(z, [0.005, 0.995], axis=0)
    return [[round(float(a), 4), round(float(b), 4)] for a, b in zip(low, high, strict=True)]


def resolve_runtime(runtime):
    """`(urls, local folder or None)`: the page's URLs of the runtime's
    two packages, and the folder to copy them from when local."""
    text = str(runtime)
    if re.match(r"https?://", text):
        others = sorted(set(re.findall(r"\{[^{}]*\}", text)) - {"{package}"})
        if "{package}" not in text or others:
            found = f" (it also has {', '.join(others)})" if others else ""
            raise ValueError(f"Expected a runtime URL with {{package}} where 'core' or "
                             f"'wasm-utils' goes, and no other {{placeholder}}{found}, such "
                             f"as {CDN_RUNTIME}. Received: {text}")
        urls = {p: text.replace("{package}", p) for p in ("core", "wasm-utils")}
        unsafe = re.search(r"[\s\"'<>`\\{}]", urls["core"])
        if unsafe:
            raise ValueError(f"The runtime URL {text!r} has the character "
                             f"{unsafe.group()!r}, which a URL written into the page must "
                             "not have (percent-encode it, e.g. %20 for a space).")
        return urls, None
    folder = text
    if os.path.isdir(os.path.join(folder, "@litertjs")):
        folder = os.path.join(folder, "@litertjs")
    missing = [p for p in ("core/dist/index.js", "core/wasm", "wasm-utils/dist/index.js")
               if not os.path.exists(os.path.join(folder, p))]
    if missing:
        raise ValueError(
            f"--web-runtime {text} is neither a URL nor a folder with LiteRT.js (missing "
            f"{', '.join(missing)}). Expected the node_modules/@litertjs folder of `npm "
            f"install @litertjs/core@{LITERTJS_VERSION}`, or a URL such as {CDN_RUNTIME}.")
    return {p: f"./{_LOCAL_RUNTIME}/{p}" for p in ("core", "wasm-utils")}, folder


def index_html(urls):
    """The page's HTML with its import map and the runtime's wasm folder,
    for the runtime URLs of `resolve_runtime`."""
    text = _page_file("index.html")
    imports = {f"@litertjs/{p}": f"{url}/dist/index.js" for p, url in urls.items()}
    # `<` escaped in the JSON: no URL can close the <script> that holds it.
    importmap = json.dumps({"imports": imports}, indent=2).replace("<", "\\u003c")
    return (text.replace("{{IMPORTMAP}}", importmap)
            .replace("{{WASM_URL}}", html.escape(urls["core"] + "/wasm/"))
            .replace("{{LITERTJS_VERSION}}", LITERTJS_VERSION))


def _page_file(name):
    with open(os.path.join(_PAGE_DIR, name), encoding="utf-8") as source:
        return source.read()
