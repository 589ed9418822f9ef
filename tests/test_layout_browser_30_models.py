"""The browser layout test on the 30-model warehouses (2 and 24 tasks).

The same checks as ``test_layout_browser.py``; a module of its own so that these
two slowest shapes run on another test worker than the other four.
"""

from __future__ import annotations

import pytest
from browser_helpers import browser
from layout_helpers import check_shape, shape_ids

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

SHAPES = [(30, 2), (30, 24)]
__all__ = ["browser"]  # the module-scoped Chromium fixture, used by the test below


@pytest.mark.parametrize(("n_models", "n_tasks"), SHAPES, ids=shape_ids(SHAPES))
def test_every_page_reads_well(browser, tmp_path, n_models, n_tasks):
    check_shape(browser, tmp_path, n_models, n_tasks)
