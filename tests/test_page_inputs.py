"""Every page opened under AppTest with hostile values in each URL parameter it reads: the text
shows as text (escaped; never a link, an image or HTML) and numbers are clamped into their
widget's range or ignored with a notice; nothing raises.

The app runs on the generated corpus with the session's two tiny runs, so that the Predictions
and Learning curves pages show everything they can.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from rnnkit.config import LIMITS
from rnnkit.ui.untrusted import escape_markdown
from rnnkit.vocabulary import SPECIAL_TOKENS
from tests.helpers import (
    HOSTILE_TEXT,
    HOSTILE_TEXTS,
    TEXT_KINDS,
    URL_NUMBER_WIDGETS,
    URL_NUMBERS,
    URL_PARAMETERS,
    URL_TEXTS,
    app_on_a_copy,
    open_page,
    open_train_page,
    render_markdown,
    texts,
)

ROOT = Path(__file__).resolve().parents[1]

# Where a page repeats a text parameter: what it shows (before escaping) for a value.
ECHOES = {
    "views/vocabulary.py": lambda value: value.strip().lower(),
    "views/reviews.py": lambda value: value.strip(),
    "views/predictions.py": repr,  # "the model has no embedding for '...'"
}


# Helpers that read the URL parameter their caller names, and the position of that name among
# their arguments; their own bodies read a parameter they are given, not a page's.
URL_READERS = {"number_from_url": 0, "run_choice": 1}


def _constant(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return constants.get(node.id) if isinstance(node, ast.Name) else None


def _parameters_read(call: ast.Call, constants: dict[str, str]) -> list[str | None]:
    keywords = {keyword.arg: keyword.value for keyword in call.keywords}
    name = getattr(call.func, "attr", None) or getattr(call.func, "id", None)
    if "bind" in keywords and _constant(keywords["bind"], constants) == "query-params":
        return [_constant(keywords["key"], constants)]
    if name in URL_READERS and len(call.args) > URL_READERS[name]:
        return [_constant(call.args[URL_READERS[name]], constants)]
    if name in ("get", "get_all") and "query_params" in ast.unparse(call.func) and call.args:
        return [_constant(call.args[0], constants)]
    return []


def url_parameters_in_code() -> set[str | None]:
    """The URL parameters the pages' code reads: keys of widgets bound to the URL, look-ups in
    `st.query_params`, and the parameters named to the URL_READERS helpers. A parameter whose
    name is not a constant is None, except in the Train form, whose settings are LIMITS'."""
    found = set()
    for path in [*ROOT.glob("views/*.py"), *ROOT.glob("rnnkit/ui/*.py")]:
        before = set(found)
        tree = ast.parse(path.read_text())
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        helpers = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name in URL_READERS
        ]
        inside_helpers = {id(node) for helper in helpers for node in ast.walk(helper)}
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            if id(call) not in inside_helpers:
                found.update(_parameters_read(call, constants))
        if path.name == "train.py" and path.parent.name == "ui" and None in found - before:
            # The Train form reads every setting by its name, in a loop over LIMITS.
            found = (found - {None}) | set(LIMITS) | (before & {None})
    return found


def test_the_parameter_lists_name_every_parameter_the_pages_read():
    listed = {name for names in URL_PARAMETERS.values() for name in names}
    assert url_parameters_in_code() == listed
    assert set(URL_NUMBER_WIDGETS) <= listed
    assert sorted(URL_PARAMETERS) == sorted(
        str(path.relative_to(ROOT)) for path in ROOT.glob("views/*.py")
    )


@pytest.fixture
def app_with_runs(tiny_runs, tmp_path, monkeypatch):
    with app_on_a_copy(tiny_runs, tmp_path / "runs", monkeypatch) as runs:
        yield runs


def hostile_markup(app: AppTest) -> list[str]:
    """What the page's text elements (alerts, captions, Markdown, metrics) would show as a
    link, an image or HTML, or give to Streamlit's colour directive or math, when rendered.
    The pages name the special tokens (`<UNK>`) in Markdown, which shows them as text."""
    sources = [str(element.value) for kind in TEXT_KINDS for element in app.get(kind)]
    sources += [text for metric in app.metric for text in (metric.label, metric.value)]
    found = []
    for source in sources:
        rendered = render_markdown(source)
        found += rendered.targets
        found += [html for html in rendered.html if html not in SPECIAL_TOKENS.values()]
        found += [text for text in HOSTILE_TEXTS if text in source]  # unescaped
    return found


def numbers_out_of_range(app: AppTest, page: str) -> list[str]:
    found = []
    for name in URL_PARAMETERS[page]:
        kind = URL_NUMBER_WIDGETS.get(name)
        widgets = [widget for widget in app.get(kind) if widget.key == name] if kind else []
        for widget in widgets:
            if not widget.min <= widget.value <= widget.max:
                found.append(f"{name} = {widget.value!r}, not in {widget.min}..{widget.max}")
    return found


@pytest.mark.parametrize("page", URL_PARAMETERS)
def test_hostile_text_in_every_parameter_is_shown_as_text(app_with_runs, page):
    app = open_page(page, **{name: HOSTILE_TEXT for name in URL_PARAMETERS[page]})
    assert hostile_markup(app) == []
    assert numbers_out_of_range(app, page) == []
    if page in ECHOES:
        assert escape_markdown(ECHOES[page](HOSTILE_TEXT)) in texts(app)


@pytest.mark.parametrize("page", [page for page, names in URL_PARAMETERS.items() if names])
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_values_in_every_parameter_raise_nothing_and_stay_in_range(
    app_with_runs, page, data
):
    values = {
        name: data.draw(URL_NUMBERS if name in URL_NUMBER_WIDGETS else URL_TEXTS, label=name)
        for name in URL_PARAMETERS[page]
    }
    app = open_page(page, **values)  # fails on an exception
    assert hostile_markup(app) == []
    assert numbers_out_of_range(app, page) == []


@pytest.mark.parametrize(
    ("name", "value", "used"),
    [
        ("index", "inf", 79),  # 80 training reviews
        ("index", "1e400", 79),
        ("index", "-inf", 0),
        ("batch", "inf", 4),  # 5 batches of 16
        ("num_words", "inf", 10000),  # the encoding's num_words: above the 24 ids
        ("id", "-inf", 0),
        ("top_n", "nan", 30),
        ("max_length", "99999999999999999999999", 500),
        ("predict_threshold", "inf", 1.0),
    ],
)
def test_absurd_numbers_are_clamped_with_a_notice(app_with_runs, name, value, used):
    page = next(page for page, names in URL_PARAMETERS.items() if name in names)
    app = open_page(page, **{name: value})
    (widget,) = [widget for widget in app.get(URL_NUMBER_WIDGETS[name]) if widget.key == name]
    assert widget.value == used
    (notice,) = [info.value for info in app.info if f"The link's {name} " in info.value]
    assert value not in notice


def test_a_hostile_setting_typed_on_the_train_page_is_shown_as_text(app_with_runs):
    app = open_train_page(**{"model.rnn_units": HOSTILE_TEXT})
    assert hostile_markup(app) == []
    assert escape_markdown(repr(HOSTILE_TEXT)) in texts(app)
