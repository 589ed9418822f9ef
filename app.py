"""FLE evaluation workbench: the Streamlit entry point.

It only builds the page list and runs ``st.navigation``. Shared helpers live in
the ``pages/_ui`` package (its ``__init__`` is the facade pages import); the pages call ``fle_core`` and render. Run it with
``streamlit run app.py`` (workspace: ``$FLE_CORE_HOME`` or ``./.fle``).
"""

import streamlit as st

st.set_page_config(page_title="FLE workbench", page_icon=":material/factory:", layout="wide")

PAGES = {
    "Workbench": [
        st.Page(
            "pages/overview.py", title="Overview", icon=":material/home:", url_path="overview", default=True
        ),
        st.Page("pages/sources.py", title="Sources & sync", icon=":material/sync:", url_path="sources"),
    ],
    "Sweeps": [
        st.Page("pages/sweeps.py", title="Sweeps", icon=":material/rocket_launch:", url_path="sweeps"),
        st.Page("pages/monitor.py", title="Monitor", icon=":material/monitor_heart:", url_path="monitor"),
    ],
    "Analysis": [
        st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:", url_path="compare"),
        st.Page("pages/tasks.py", title="Tasks", icon=":material/grid_on:", url_path="tasks"),
        st.Page(
            "pages/trajectories.py", title="Trajectories", icon=":material/timeline:", url_path="trajectories"
        ),
    ],
}

st.navigation(PAGES).run()
