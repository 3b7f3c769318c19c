"""The Streamlit side of rnnkit, and the only code that imports Streamlit.

One module per page that needs more than a short script, named after its view
(`rnnkit.ui.train` serves `views/train.py`), and one per widget that several pages share:
`loading` (the reviews and the sidebar), `padding` (the padding controls), `tokens` (token
chips), `board` (the server's job board), `runs` (picking and loading stored runs), `pages`
(the pages, their icons and links) and `untrusted` (visitor text and URL numbers). What a
page computes without Streamlit lives in the library below (`rnnkit.explore`,
`rnnkit.compare`, `rnnkit.evaluation`).

Widgets that shape a page's view are bound to the URL (`bind="query-params"`, the widget's key
naming the parameter): a copied URL reopens the same view, and a parameter with a bad value is
ignored, so the widget keeps its default. Number widgets read theirs with
`untrusted.number_from_url` instead, which clamps NaN, infinities and huge values that
Streamlit's binding cannot parse; text from the URL or a visitor is shown through
`untrusted.escape_markdown`.
"""
