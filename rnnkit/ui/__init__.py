"""The Streamlit side of rnnkit, and the only code that imports Streamlit.

One module per page that needs more than a short script, named after its view
(`rnnkit.ui.train` serves `views/train.py`), and one per widget that several pages share:
`loading` (the reviews and the sidebar), `padding` (the padding controls), `tokens` (token
chips), `board` (the server's job board) and `runs` (picking and loading stored runs). What a
page computes without Streamlit lives in the library below (`rnnkit.explore`,
`rnnkit.compare`, `rnnkit.evaluation`).

Widgets that shape a page's view are bound to the URL (`bind="query-params"`, the widget's key
naming the parameter): a copied URL reopens the same view, and a parameter with a bad value is
ignored, so the widget keeps its default.
"""
