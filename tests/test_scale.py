"""keras_vae.distributions.scale: the positive scale of every distribution."""

import numpy as np
import pytest
from reference import numpy_scale

from keras_vae.distributions import scale as scale_lib


def test_positive_scale_is_floor_plus_shifted_softplus():
    raw = np.array([-30.0, -2.0, 0.0, 0.7, 40.0], "float32")
    got = np.asarray(scale_lib.positive_scale(raw))
    np.testing.assert_allclose(got, numpy_scale(raw.astype("float64")), rtol=1e-6)
    assert got[2] == pytest.approx(1.0 + 1e-4, rel=1e-6)  # about 1 at raw = 0
    assert got[0] >= 1e-4  # never below the floor
    np.testing.assert_allclose(np.asarray(scale_lib.positive_scale(raw, floor=0.5)),
                               numpy_scale(raw.astype("float64"), 0.5), rtol=1e-6)

