"""rnnkit's Streamlit app: `streamlit run app.py`.

One page per script in `views/`; add a page by adding an `st.Page` to the list in `main`. The
folder is not called `pages/`: beside the entry point, Streamlit reads such a folder as its old
multipage layout until `st.navigation` has run once, so a shared link to a page would skip
app.py. The reviews are loaded here, under a status in the sidebar, before any page runs: the
first visit parses them, every later view (of any session) takes them from `st.cache_resource`.
"""

import streamlit as st

from rnnkit.ui.loading import data_sidebar


def main() -> None:
    """Set up the page, the navigation and the data sidebar, then run the chosen page."""
    st.set_page_config(page_title="rnnkit: RNNs on IMDB", page_icon="🎬", layout="wide")
    page = st.navigation(
        [
            st.Page("views/home.py", title="Home", icon="🏠", default=True),
            st.Page("views/vocabulary.py", title="Vocabulary", icon="🔤"),
            st.Page("views/reviews.py", title="Reviews", icon="📝"),
            st.Page("views/lengths.py", title="Lengths and padding", icon="📏"),
            st.Page("views/train.py", title="Train", icon="🏋️"),
            st.Page("views/curves.py", title="Learning curves", icon="📈"),
            st.Page("views/inside.py", title="Inside the RNN", icon=":material/neurology:"),
            st.Page("views/predictions.py", title="Predictions", icon="🔮"),
        ]
    )
    data_sidebar()
    page.run()


main()
