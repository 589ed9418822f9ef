"""The app's UI layer, the one module pages import: workspace, caching, URL state, widgets.

Pages import this module and ``fle_core``; nothing in ``fle_core`` imports
streamlit. Rules kept here so pages stay thin:

* **Workspace**: ``Workspace.open`` with Streamlit secrets passed in (source
  passwords), opened per run (cheap) so config edits show up at once.
* **Caching**: every query result is cached with ``st.cache_data`` keyed on the
  warehouse data version (or the version a shared view pins), so a new sync
  invalidates exactly what changed. No DuckDB connection is held open between
  runs: the sync process must be able to take the write lock.
* **Errors**: ``guard()`` renders a ``FleError`` as message + hint, never a
  traceback. Anything else is a bug and propagates.
* **URL state**: ``url_*`` widgets read their initial value from
  ``st.query_params`` (keys prefixed per page), validate it (bad or stale values
  give a clear warning and fall back to defaults) and write the value back, so
  copying the URL reproduces the view.
* **Permalinks**: ``apply_view`` / ``share_button`` over ``fle_core.saved_views``.
* **Read-only mode**: ``FLE_READ_ONLY=1`` or ``[app] read_only = true`` hides
  every action that runs or changes something (launch, sync, resume, cancel).

The code lives in four parts, each under the pages' size limit:
``_ui_core`` (workspace, read-only, errors, empty states), ``_ui_state`` (URL
state, shared views), ``_ui_data`` (cached loaders and computations) and
``_ui_widgets`` (shared renderers). Pages import only this facade.
"""

from pages._frames import (fmt, headline, parse_traj_key, same_task, sources_view,  # noqa: F401
                           sweeps_view, sync_result_text, to_csv, trajectory_labels,
                           trajectory_row)
from pages._ui_core import *  # noqa: F401,F403
from pages._ui_data import *  # noqa: F401,F403
from pages._ui_state import *  # noqa: F401,F403
from pages._ui_widgets import *  # noqa: F401,F403
