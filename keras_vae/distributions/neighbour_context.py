"""What a pixel's causal neighbours change in the autoregressive logistic
mixture (`neighbour_mixture`): its locations and, optionally, its scales.

For the N nearest causal neighbours (`NEIGHBOURS`, nearest first; values
centred, v = x − ½, and 0 outside the image, which is mid-grey), with
coefficients that the decoder gives per pixel, component k and channel c:

- *the same channel* (`cross_channel=False`):
  loc_kc += Σ_n b_kcn · v_c(n), N blocks of K·C coefficients;
- *every channel* (`cross_channel=True`):
  loc_kc += Σ_n Σ_d b_kcnd · v_d(n), N·C blocks (n, then d), so that a
  pixel's green is predicted from its neighbours' red and blue too (the
  colour correlation a codec's colour transform removes);
- *local scales* (`local_scales=True`): each logistic widened by the local
  gradients of its channel, s_kc += Σ_m softplus(e_kcm) · 255 |v_c(a_m) −
  v_c(b_m)| over the pairs `GRADIENTS`, M blocks of K·C, as a codec's
  context model expects larger errors where the image changes fast.

The locations stay linear in the neighbours (the mean of `decode` stays
exact, as the module `neighbour_mixture` explains); the scales do not enter
a component's mean. Every block is `batch + (H, W, K, C)`: at most rank 5,
as LiteRT's XNNPack delegate needs.
"""

import dataclasses
import functools

import numpy as np
import tensorflow as tf

from keras_vae.distributions import scale as scale_lib

#: Causal neighbours as (row, column) offsets, nearest first.
NEIGHBOURS = ((0, -1), (-1, 0), (-1, -1), (-1, 1),
              (0, -2), (-1, -2), (-1, 2), (-2, -2), (-2, -1), (-2, 0), (-2, 1), (-2, 2))

#: The local gradients of `local_scales`, pairs of causal offsets (a, b):
#: left − up-left, up − up-left, up-right − up, left − left-left, up − up-up.
GRADIENTS = (((0, -1), (-1, -1)), ((-1, 0), (-1, -1)), ((-1, 1), (-1, 0)),
             ((0, -1), (0, -2)), ((-1, 0), (-2, 0)))

LEVELS = 255.0


@functools.cache
def passes(height, width, offsets):
    """T: the longest chain of causal `offsets` (a tuple of (row, column)
    pairs) in a `height` × `width` image (a pixel with none inside: 1)."""
    depth = np.zeros((height, width), int)
    for i in range(height):
        for j in range(width):
            before = [depth[i + dy, j + dx] for dy, dx in offsets
                      if 0 <= i + dy and 0 <= j + dx < width]
            depth[i, j] = 1 + max(before, default=0)
    return int(depth.max())


def shifted(x, offsets):
    """A list of images, `batch + (H, W, C)`: each channel's value at each
    causal offset in images `x` (in [0, 1]), centred (0 outside)."""
    rank = len(x.shape)
    padded = tf.pad(x - 0.5, [[0, 0]] * (rank - 3) + [[2, 0], [2, 2], [0, 0]])
    h, w = x.shape[-3], x.shape[-2]
    return [padded[..., 2 + dy:2 + dy + h, 2 + dx:2 + dx + w, :] for dy, dx in offsets]


@dataclasses.dataclass(frozen=True)
class Context:
    """Which neighbours shift the locations and whether they widen the
    scales (module docstring)."""

    neighbours: int
    cross_channel: bool = False
    local_scales: bool = False

    def blocks(self, channels):
        """How many blocks of K·C decoder outputs per pixel it needs."""
        return (self.neighbours * (channels if self.cross_channel else 1)
                + (len(GRADIENTS) if self.local_scales else 0))

    def offsets(self):
        """Every causal offset a pixel's distribution reads."""
        extra = {offset for pair in GRADIENTS for offset in pair} if self.local_scales else set()
        return tuple(sorted(set(NEIGHBOURS[:self.neighbours]) | extra))

    def passes(self, height, width):
        """T: the longest chain of pixels that depend on each other."""
        return passes(height, width, self.offsets())

    def prepare(self, blocks):
        """The decoder's `blocks` of coefficients (`blocks(C)` tensors,
        `batch + (H, W, K, C)`, in the order of the module docstring) as
        `apply` takes them: each scale block e as 255 · softplus(e). Done
        once for all the passes of a draw or the mean."""
        blocks = list(blocks)
        if not self.local_scales:
            return blocks
        first = len(blocks) - len(GRADIENTS)
        return blocks[:first] + [LEVELS * scale_lib.softplus(block) for block in blocks[first:]]

    def apply(self, locs, scales, blocks, x):
        """`(locs, scales)` given the neighbours in images `x` (in [0, 1]),
        for `blocks` from `prepare`. `scales` None: the locations alone
        (and None back)."""
        x = tf.cast(x, tf.float32)
        offsets = self.offsets() if scales is not None else NEIGHBOURS[:self.neighbours]
        at = dict(zip(offsets, shifted(x, offsets), strict=True))
        blocks = iter(blocks)
        for offset in NEIGHBOURS[:self.neighbours]:
            if self.cross_channel:
                for channel in range(x.shape[-1]):  # (…, H, W, 1, 1): no rank-6 slice
                    value = tf.expand_dims(at[offset][..., channel:channel + 1], -1)
                    locs = locs + next(blocks) * value
            else:
                locs = locs + next(blocks) * at[offset][..., None, :]
        if self.local_scales and scales is not None:
            for a, b in GRADIENTS:
                scales = scales + next(blocks) * tf.abs(at[a] - at[b])[..., None, :]
        return locs, scales
