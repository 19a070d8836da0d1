"""What a request costs, estimated before it is paid.

A command that can be asked for any amount of work (importance samples,
pictures of many images or interpolation steps, an evaluation's batch, a
model's image size and batch size) first estimates its time and memory on
this machine, and refuses a request over its limits with the estimate and
the flag that raises them: `--max-minutes` (60 by default) and
`--max-memory` in GiB (80% of this machine's memory by default).

Times come from the run's decoder, measured on this machine
(`decodes_per_second`), and from the measured speed of drawing a PNG
(`PNG_PIXELS_PER_SECOND`); memory from the arrays the work holds at once.
"""

import functools
import math
import os
import time

import numpy as np

#: The longest work a command starts unless told otherwise (`--max-minutes`).
MAX_MINUTES = 60.0
#: The share of this machine's memory that a command may plan to use
#: unless told otherwise (`--max-memory`).
MEMORY_SHARE = 0.8
#: Pixels a second that matplotlib rasterises and writes as PNG: 1.1 to 1.3
#: million on a busy 2-core machine (64 to 4096 images of 28×28, 2026-12-06).
PNG_PIXELS_PER_SECOND = 1.0e6
#: The raster pixels of one image in a picture grid: one inch at 80 dpi.
PNG_PIXELS_PER_IMAGE = 80 * 80
#: The widest raster that matplotlib's Agg renderer draws.
PNG_MAX_SIDE = 2**23


class CostError(ValueError):
    """A request whose estimated time or memory is over its limit."""


class Limits:
    """The most time and memory a command may plan to use.

    Args:
        max_minutes: minutes (a positive number), or inf for no limit of time.
        max_memory: GiB (a positive number), or None for `MEMORY_SHARE` of
            this machine's memory.
    """

    def __init__(self, max_minutes=MAX_MINUTES, max_memory=None):
        for name, value in (("max_minutes", max_minutes), ("max_memory", max_memory)):
            if (value is None and name == "max_memory") or (
                    name == "max_minutes" and value == float("inf")):  # no limit
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 < value < float("inf")):
                raise ValueError(
                    f"Invalid {name}: {value!r}. Expected a positive number of "
                    f"{'minutes, e.g. 60' if name == 'max_minutes' else 'GiB, e.g. 16'} "
                    f"(--{name.replace('_', '-')}).")
        self.max_minutes = float(max_minutes)
        self.max_memory = max_memory

    @property
    def memory_bytes(self):
        if self.max_memory is not None:
            return self.max_memory * 2**30
        have = machine_memory_bytes()
        return MEMORY_SHARE * have if have else float("inf")

    def check(self, what, seconds=None, nbytes=0, fewer=""):
        """Raise `CostError` if `what` would take over `max_minutes` or need
        over the memory limit; `fewer` says how to ask for less. `seconds`
        None: a request whose time is not estimated here (training's is
        what its epochs and minutes ask)."""
        slow = seconds is not None and seconds > 60 * self.max_minutes
        large = nbytes > self.memory_bytes
        if not (slow or large):
            return
        over = []
        if slow:
            over.append(f"the limit is {self.max_minutes:g} minutes: raise it with "
                        "--max-minutes (max_minutes=)")
        if large:
            stated = ("" if self.max_memory is not None
                      else f", {MEMORY_SHARE:.0%} of this machine's")
            over.append(f"the memory limit is {size(self.memory_bytes)}{stated}: "
                        "raise it with --max-memory GIB (max_memory=)")
        cost = (f"need about {size(nbytes)} of memory" if seconds is None else
                f"take about {duration(seconds)} and {size(nbytes)} of memory")
        raise CostError(f"{what} would {cost} on this machine; {'; '.join(over)}"
                        + (f"; or {fewer}" if fewer else "") + ".")


def machine_memory_bytes():
    """This machine's physical memory in bytes, or None where unknown."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


#: The share of NumPy's float32 matrix-product speed that a Keras training
#: step reaches: the README's MNIST MLP (10 epochs in 0.8 minutes) trains at
#: 81 GFLOP/s where a 512 × 512 product ran at 199 (2 cores, 2026-12-06);
#: convolutions and small layers reach less, so their estimates are low by a
#: factor of a few.
TRAINING_EFFICIENCY = 0.4


@functools.cache
def matmul_flops():
    """Floating-point operations a second of a 512 × 512 float32 matrix
    product with NumPy on this machine (the best of 3)."""
    a = np.random.default_rng(0).standard_normal((512, 512)).astype("float32")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * 512**3 / max(best, 1e-9)


def training_seconds(flops):
    """Seconds to train through `flops` floating-point operations."""
    return flops / (matmul_flops() * TRAINING_EFFICIENCY)


def decodes_per_second(vae, count=256):
    """Codes a second that `vae.decode` turns into images on this machine."""
    z = np.zeros((count, vae.latent_dim), "float32")
    inputs = (z, np.zeros(count, "int32")) if vae.num_classes else (z,)
    vae.decode(*inputs)  # the first call traces
    start = time.perf_counter()
    vae.decode(*inputs)
    return count / max(time.perf_counter() - start, 1e-9)


def picture(vae, images, codes, columns):
    """`(seconds, bytes)` of a picture of `images` tiles in rows of `columns`
    that decodes `codes` codes: the decodes at the measured speed, and the
    raster written as PNG. A picture wider than PNG_MAX_SIDE is refused."""
    if columns * math.sqrt(PNG_PIXELS_PER_IMAGE) >= PNG_MAX_SIDE:
        raise CostError(
            f"A picture of {images} images in rows of {columns} would be "
            f"{columns * math.sqrt(PNG_PIXELS_PER_IMAGE):,.0f} pixels wide, and matplotlib "
            f"writes at most {PNG_MAX_SIDE:,} (2^23) a side. Ask for fewer, or use the "
            "exported model (keras-vae export) for many images.")
    pixels = int(np.prod(vae.data_shape))
    raster = images * PNG_PIXELS_PER_IMAGE
    seconds = (codes / decodes_per_second(vae, min(max(codes, 1), 256))
               + raster / PNG_PIXELS_PER_SECOND)
    # float32 images, their mosaic, and the RGBA raster with a copy for the PNG.
    return seconds, 4 * (2 * (images + codes) * pixels + 3 * raster)


def duration(seconds):
    for unit, length in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * length:
            return f"{seconds / length:,.0f} {unit}"
    return f"{seconds:.0f} seconds"


def size(nbytes):
    for unit, length in (("GiB", 2**30), ("MiB", 2**20)):
        if nbytes >= length:
            return f"{nbytes / length:,.1f} {unit}"
    return f"{nbytes / 1024:,.0f} KiB"
