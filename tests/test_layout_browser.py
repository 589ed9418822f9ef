"""Layout in real headless Chromium: every page and tab, at three window sizes, on six data shapes.

For warehouses with 1, 6 and 30 models × 2 and 24 tasks (``layout_data.build``), one
app server and one browser per shape check every page and tab at 1024×768,
1400×900 and 1920×1080, running ``layout_check.js`` on every visible chart and table.
It fails when a plot area is smaller than a readable minimum, a title or legend is
clipped or shortened, axis labels of different series are identical after
truncation (or overprint, or are dropped), a chart runs past its column, a chart
has no marks, points sit outside their plot, or a table wider than its column does
not say that it scrolls. Every view is saved as a screenshot under
``artifacts/layout/<shape>/`` so a person can flip through them.

How it stays fast (it was 44% of the suite): the pages of a shape are checked in
parallel browser tabs (one tab per page, loaded at once: the server runs their
sessions side by side while the test checks the tab that is ready); a page's tabs
are opened by clicking them in its session, as a user does; each view is checked at
the three sizes by resizing the window (Streamlit and Vega lay the page out again
in the browser; the server never sees the window's size), not by loading it three
times. Pages whose content does not depend on a dimension of the shape are checked
on the shapes that differ in it only (``Group.shapes``): Sources and Sweeps show the
same layout for every shape, Overview's tables do not depend on the number of
tasks, nor do Compare's charts (one row or series per model). Locally it skips without Chromium; under CI a skip is a failure (conftest).
The 30-model shapes run from ``test_layout_browser_30_models.py``, so the two
halves can run on different test workers.
"""

from __future__ import annotations

import pytest
from browser_helpers import browser
from layout_helpers import check_shape, shape_ids

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

__all__ = ["browser"]  # the module-scoped Chromium fixture

SHAPES = [(1, 2), (1, 24), (6, 2), (6, 24)]


@pytest.mark.parametrize(("n_models", "n_tasks"), SHAPES, ids=shape_ids(SHAPES))
def test_every_page_reads_well(browser, tmp_path, n_models, n_tasks):
    check_shape(browser, tmp_path, n_models, n_tasks)
