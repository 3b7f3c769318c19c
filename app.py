"""rnnkit's Streamlit app: `streamlit run app.py`.

One page per script in `views/`; add a page by adding it to `rnnkit.ui.pages.PAGES` (the
navigation and Home's links both read it). The
folder is not called `pages/`: beside the entry point, Streamlit reads such a folder as its old
multipage layout until `st.navigation` has run once, so a shared link to a page would skip
app.py. The environment's settings are checked first: a bad `RNNKIT_*` variable stops every page
with an error naming it. The reviews are loaded here, under a status in the sidebar, before any
page runs: the first visit parses them, every later view (of any session) takes them from
`st.cache_resource`.
"""

import streamlit as st

from rnnkit.settings import SettingsError, check_environment
from rnnkit.ui.loading import data_sidebar
from rnnkit.ui.pages import APP_ICON, navigation


def main() -> None:
    """Set up the page, the navigation and the data sidebar, then run the chosen page."""
    st.set_page_config(page_title="rnnkit: RNNs on IMDB", page_icon=APP_ICON, layout="wide")
    try:
        check_environment()  # every page, before any of it runs: no page works with these
    except SettingsError as error:
        # The operator's own variables, listed one a line: shown as the message lays them out.
        st.error(f"This server's settings cannot be used.\n\n{error}")
        st.stop()
    page = navigation()
    data_sidebar()
    page.run()


main()
