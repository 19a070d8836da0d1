"""The combination matrix's cells with several stochastic layers.

The cells of `keras_vae.compatibility.all_pairs()` whose `hierarchy` level
is "bottom_up" or "ladder", run as tests/test_combinations.py runs the
others (its `run_cell`), in a module of their own so that the two test
workers of `make test` share the matrix.
"""

import pytest
from test_combinations import HIERARCHICAL, _cell_id, dataset, run_cell  # noqa: F401


@pytest.mark.parametrize("levels", HIERARCHICAL, ids=_cell_id)
def test_cell(levels, dataset, tmp_path):  # noqa: F811  (the imported fixture)
    run_cell(levels, dataset, tmp_path)
