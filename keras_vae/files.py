"""Writing files so that a crash never leaves half of one.

Every file the package writes goes to a temporary name beside its target
and is renamed over the target only when complete (`os.replace` is atomic on
POSIX and Windows); on an error the temporary file is removed and the target
is untouched. (`keras_vae.edge` keeps its own copy of this for PNGs: it runs
on devices without TensorFlow and cannot import the package.)
"""

import contextlib
import os


@contextlib.contextmanager
def replacing(path, suffix=".partial"):
    """Yield a temporary path beside `path`; rename it over `path` when the
    block succeeds, remove it when the block raises."""
    root, extension = os.path.splitext(str(path))
    # Keep the extension last: some writers (Keras, matplotlib) insist on it.
    temporary = f"{root}{suffix}{extension}"
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_bytes(path, content):
    """Write `content` to `path` atomically, flushed to the disk."""
    try:
        with replacing(path) as temporary, open(temporary, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
    except OSError as error:
        if error.filename is None:  # a write or flush names no file: name it
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    return path


def check_no_link(base, *paths):
    """Refuse to write under `base` where a symbolic link between `base` and
    one of `paths` (a folder or file to be written) would lead the writes
    somewhere else: name the link and where it points."""
    base = os.path.abspath(base)
    for path in paths:
        current = base
        for part in os.path.relpath(os.path.abspath(path), base).split(os.sep):
            if part in (os.curdir, os.pardir):
                continue
            current = os.path.join(current, part)
            if os.path.islink(current):
                raise ValueError(
                    f"{current} is a symbolic link (to {os.readlink(current)}): keras-vae "
                    f"writes only inside {base}, and would write through it. Remove the "
                    "link (or choose another --out).")


def check_writable(folder, why):
    """Create and remove a file in `folder`, or raise a ValueError that names
    it and `why` it must be writable (a read-only mount, an immutable
    folder, or permissions, which root too meets in the first two)."""
    import tempfile

    try:
        handle, probe = tempfile.mkstemp(prefix=".keras-vae-probe-", dir=folder)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"Cannot write in {folder}: {error.strerror or error}. {why} Make it writable "
            "again (chmod u+w, chattr -i, a writable mount), or copy it elsewhere."
        ) from None


def write_text(path, text):
    """Write `text` (UTF-8) to `path` atomically, flushed to the disk."""
    return write_bytes(path, text.encode("utf-8"))


def save_model(model, path):
    """`model.save(path)` through a temporary `.keras` file renamed over `path`."""
    with replacing(path) as temporary:
        model.save(temporary)
    return path


def readable_h5(path):
    """Whether `path` is an HDF5 file that opens and whose objects list."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            f.visit(lambda name: None)
        return True
    except (OSError, ValueError):
        return False
