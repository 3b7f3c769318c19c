"""rnnkit's Streamlit app: `streamlit run app.py`.

One page per script in `views/`; add a page by adding it to `rnnkit.ui.pages.PAGES` (the
navigation and Home's links both read it). The
folder is not called `pages/`: beside the entry point, Streamlit reads such a folder as its old
multipage layout until `st.navigation` has run once, so a shared link to a page would skip
app.py. The reviews are loaded here, under a status in the sidebar, before any page runs: the
first visit parses them, every later view (of any session) takes them from `st.cache_resource`.
"""

import streamlit as st

from rnnkit.ui.loading import data_sidebar
from rnnkit.ui.pages import APP_ICON, navigation


def main() -> None:
    """Set up the page, the navigation and the data sidebar, then run the chosen page."""
    st.set_page_config(page_title="rnnkit: RNNs on IMDB", page_icon=APP_ICON, layout="wide")
    page = navigation()
    data_sidebar()
    page.run()


main()
