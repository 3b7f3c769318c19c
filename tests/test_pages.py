"""Each page runs under Streamlit's AppTest on a tiny corpus and shows what it should.

The tiny corpus (conftest.TINY_REVIEWS): training words ranked bad, great, a, film, acting, it,
story, and, boring, don't, dull, fun, hate, i, it's, loved (ids 4 to 19); training lengths 6, 5,
7 (pos) and 8, 4, 5 (neg) tokens with <START>, 35 in all.
"""

from __future__ import annotations

import ast
import html
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rnnkit import load_imdb
from rnnkit.ui.pages import APP_ICON, PAGES
from tests.helpers import (
    APP,
    TINY_REVIEWS,
    chart_data,
    chips,
    metrics,
    open_page,
    shown,
    write_archive,
)


@pytest.fixture
def data_path(tiny_archive, monkeypatch) -> Path:
    monkeypatch.setenv("RNNKIT_DATA", str(tiny_archive))
    return tiny_archive


# AppTest gives no key to a dataframe without selections: the pages' tables go by position.


NEG_0 = ["<START>", "a", "bad", "film", "bad", "acting", "bad", "story"]  # neg/0_2.txt decoded


ROOT = Path(__file__).resolve().parents[1]


def chart_specs(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in app.get("vega_lite_chart")]


# --- app and home -----------------------------------------------------------------------------


def test_home_shows_the_dataset_in_numbers(data_path):
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    shown = metrics(app)
    assert shown["Training reviews"] == "6"
    assert shown["Test reviews"] == "2"
    assert shown["Words in training"] == "16"
    assert shown["Median length (tokens)"] == "5.5"  # lengths 8, 4, 5, 6, 5, 7 with <START>
    assert shown["Mean length (tokens)"] == "5.8"  # 35 / 6


def test_home_links_every_other_page_with_its_material_icon(data_path):
    app = AppTest.from_file(APP, default_timeout=60).run()
    links = [(link.value.split("**")[1], link.proto.icon) for link in app.page_link]
    assert links == [
        ("Vocabulary", ":material/menu_book:"),
        ("Reviews", ":material/rate_review:"),
        ("Lengths and padding", ":material/straighten:"),
        ("Train", ":material/model_training:"),
        ("Learning curves", ":material/show_chart:"),
        ("Inside the RNN", ":material/neurology:"),
        ("Predictions", ":material/psychology:"),
    ]
    assert [page.title for page in PAGES[1:]] == [title for title, _ in links]


def test_every_icon_is_a_material_symbol_not_an_emoji():
    # Emoji need an emoji font, which Debian's Chromium lacks: it draws an empty box.
    icons = [APP_ICON, *(page.icon for page in PAGES)]
    for path in [ROOT / "app.py", *ROOT.glob("views/*.py"), *ROOT.glob("rnnkit/ui/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            named = isinstance(node, ast.keyword) and node.arg in ("icon", "page_icon")
            if named and isinstance(node.value, ast.Constant):
                icons.append(node.value.value)
    assert icons and all(re.fullmatch(r":material/[a-z_]+:", icon) for icon in icons), icons


def test_sidebar_shows_the_source_and_its_state_on_every_page(data_path):
    for page in ("views/home.py", "views/vocabulary.py", "views/reviews.py", "views/lengths.py"):
        app = open_page(page)
        status = app.sidebar.status[0].proto
        assert status.label.startswith("IMDB reviews ready (parsed")
        assert "tiny.tar.gz" in app.sidebar.caption[0].value
        assert "6 train / 2 test reviews" in app.sidebar.caption[0].value


def test_home_explains_a_missing_source(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "missing.tar.gz"))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert "missing.tar.gz" in shown(app.error[0].value)
    assert "does not exist" in shown(app.error[0].value)


def test_a_page_explains_a_missing_source_too(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "missing.tar.gz"))
    app = open_page("views/reviews.py")
    assert "does not exist" in shown(app.error[0].value)
    assert not app.title  # the page stopped before rendering


# --- vocabulary -------------------------------------------------------------------------------


def test_vocabulary_shows_the_words(data_path):
    app = open_page("views/vocabulary.py")
    shown = metrics(app)
    assert shown["Training words"] == "16"
    assert shown["Words kept"] == "16"  # num_words 10,000 keeps all 16
    assert shown["Out of vocabulary"] == "0.0%"
    table = app.dataframe[0].value
    assert len(table) == 16
    assert table.iloc[1][["id", "word", "count", "documents"]].tolist() == [5, "great", 4, 2]
    special = app.table[0].value  # a static table: its long meanings wrap, none is cut
    assert special["token"].tolist() == ["<PAD>", "<START>", "<UNK>", "<UNUSED>"]
    assert special["id"].tolist() == [0, 1, 2, 3]
    assert special.loc[2, "meaning"].endswith("or that never occurs in training")
    assert "*bad*, is 4" in app.markdown[0].value  # rank 1 + index_from 3


def test_vocabulary_looks_up_words_and_ids(data_path):
    app = open_page("views/vocabulary.py")
    app.text_input(key="word").set_value("Great").run()
    assert any("id **5** (rank 2), **4** times in 2" in md.value for md in app.markdown)
    app.number_input(key="id").set_value(19).run()
    assert any(md.value.startswith("19 is *loved*: **1** times") for md in app.markdown)
    app.number_input(key="id").set_value(1).run()
    assert any("`<START>`, a special id" in md.value for md in app.markdown)
    app.text_input(key="word").set_value("gem").run()  # only in the test split
    assert any("*gem* never occurs in the training reviews" in md.value for md in app.markdown)


def test_vocabulary_num_words_moves_the_cut(data_path):
    app = open_page("views/vocabulary.py")
    app.number_input(key="num_words").set_value(6).run()  # ids 4 and 5 kept: bad, great
    shown = metrics(app)
    assert shown["Words kept"] == "2"
    assert shown["Tokens covered"] == "27.6%"  # 8 of the 29 training words
    assert shown["Out of vocabulary"] == "72.4%"
    assert app.dataframe[0].value["kept"].sum() == 2
    choice = next(frame for frame in chart_data(app, 0) if len(frame) == 1)
    assert choice["num_words"].tolist() == [6]
    app.text_input(key="word").set_value("a").run()
    assert any("encoded as 2 (`<UNK>`) with num_words = 6" in md.value for md in app.markdown)


def test_vocabulary_table_searches_and_sorts(data_path):
    app = open_page("views/vocabulary.py")
    app.text_input(key="search").set_value("it").run()
    assert app.dataframe[0].value["word"].tolist() == ["it", "it's"]
    app.text_input(key="search").set_value("").run()
    app.selectbox(key="sort").set_value("word").run()
    assert app.dataframe[0].value["word"].iloc[0] == "a"
    app.toggle(key="descending").set_value(True).run()
    assert app.dataframe[0].value["word"].iloc[0] == "story"
    app.slider(key="top_n").set_value(5).run()
    assert [len(frame) for frame in chart_data(app, 1)] == [5]


def test_vocabulary_reads_its_view_from_the_url(data_path):
    app = open_page("views/vocabulary.py", num_words="6", word="great", search="it", sort="word")
    assert metrics(app)["Words kept"] == "2"
    assert app.text_input(key="word").value == "great"
    assert app.dataframe[0].value["word"].tolist() == ["it", "it's"]
    assert app.selectbox(key="sort").value == "word"
    bad = open_page("views/vocabulary.py", num_words="abc", sort="foo", id="-3", top_n="x")
    assert metrics(bad)["Words kept"] == "16"  # num_words back to 10,000
    assert bad.number_input(key="num_words").value == 10000
    assert bad.selectbox(key="sort").value == "id"
    assert bad.number_input(key="id").value == 0  # clamped into 0 to 19
    assert bad.slider(key="top_n").value == 30
    assert [info.value for info in bad.info] == [
        "The link's num_words is not a number: it is ignored.",
        "The link's id is out of range (0 to 19): 0 is used.",
        "The link's top_n is not a number: it is ignored.",
    ]


# --- reviews ----------------------------------------------------------------------------------


def test_reviews_shows_a_review_as_text_ids_and_words(data_path):
    # The first training review in file order (neg/0_2.txt) is the only negative one with "acting".
    app = open_page("views/reviews.py", label="neg", word="acting")
    assert metrics(app) == {"Label": "neg", "Rating": "2/10", "Tokens": "8", "<UNK> tokens": "0"}
    assert shown(app.main.caption[1].value) == "aclImdb/train/neg/0_2.txt"
    original, decoded, padded = (element.value for element in app.html)
    assert "A bad film. Bad acting, bad story." in original
    assert app.code[0].value == "1 6 4 7 4 8 4 10"  # <START> a bad film bad acting bad story
    assert chips(decoded) == NEG_0
    assert 'class="rk-match"' in decoded  # the searched word is highlighted
    assert chips(padded)[:8] == NEG_0
    assert chips(padded)[8:] == ["·"] * 492  # padding='post' to 500


def test_reviews_show_the_whole_of_a_long_review(tmp_path, monkeypatch):
    long_review = " ".join(f"word{index % 50}" for index in range(2500)) + " theend"
    reviews = {**TINY_REVIEWS, ("train", "pos"): [(0, 9, long_review)]}
    monkeypatch.setenv("RNNKIT_DATA", str(write_archive(tmp_path / "long.tar.gz", reviews)))
    app = open_page("views/reviews.py", label="pos")
    original, decoded, _ = (element.value for element in app.html)
    assert original.endswith("theend</div>")
    assert len(chips(decoded)) == 2502 and chips(decoded)[-1] == "theend"  # <START> and 2,501
    for markup in (original, decoded):
        assert "max-height" not in markup and "overflow" not in markup  # no box hides the end


def test_reviews_default_is_x_train_0(data_path):
    first = load_imdb(path=data_path).train
    app = open_page("views/reviews.py")
    assert "this is `x_train[0]`" in app.main.caption[0].value
    assert app.code[0].value == " ".join(map(str, first.sequences[0].tolist()))
    assert app.html[0].value.count(first.texts[0]) == 1


def test_reviews_mark_out_of_vocabulary_words(data_path):
    app = open_page("views/reviews.py", split="test", label="pos")  # "Great fun, a gem."
    decoded = app.html[1].value
    assert chips(decoded) == ["<START>", "great", "fun", "a", "<UNK>"]
    assert "<small>gem</small>" in decoded
    assert "'gem' is out of the vocabulary" in html.unescape(decoded)
    assert metrics(app)["<UNK> tokens"] == "1"
    assert app.main.caption[-1].value == "Out of the vocabulary, so `<UNK>`: gem"


def test_reviews_padded_view_shows_padding_and_the_cut(data_path):
    app = open_page("views/reviews.py", label="neg", word="acting")  # 8 tokens
    app.slider(key="max_length").set_value(5).run()
    cut, row = (chips(part) for part in app.html[2].value.split("the row the model reads"))
    assert cut == ["<START>", "a", "bad"]  # truncating='pre' drops the first tokens
    assert row == ["film", "bad", "acting", "bad", "story"]
    app.segmented_control(key="truncating").set_value("post").run()
    row, cut = (chips(part) for part in app.html[2].value.split("cut off (truncating='post')"))
    assert row == ["<START>", "a", "bad", "film", "bad"]
    assert cut == ["acting", "bad", "story"]
    app.slider(key="max_length").set_value(10).run()
    app.segmented_control(key="padding").set_value("pre").run()
    assert chips(app.html[2].value) == ["·", "·", *NEG_0]
    app.toggle(key="show_ids").set_value(True).run()
    assert chips(app.html[2].value) == ["0", "0", "1", "6", "4", "7", "4", "8", "4", "10"]


def test_reviews_widgets_pick_reviews(data_path):
    app = open_page("views/reviews.py")
    app.number_input(key="index").set_value(3).run()
    assert "this is `x_train[3]`" in app.main.caption[0].value
    app.segmented_control(key="label").set_value("pos").run()
    assert app.number_input(key="index").value == 0  # a new choice starts at its first review
    assert "3 reviews match" in app.main.caption[0].value
    assert metrics(app)["Label"] == "pos"
    app.button(key="random").click().run()
    assert 0 <= app.number_input(key="index").value < 3
    assert metrics(app)["Label"] == "pos"
    app.text_input(key="word").set_value("loved").run()
    assert "1 reviews match" in app.main.caption[0].value
    assert "loved" in chips(app.html[1].value)
    app.text_input(key="word").set_value("gem").run()  # never in training: all <UNK>
    assert "try another word" in app.warning[0].value
    app.text_input(key="word").set_value("great").run()
    app.segmented_control(key="label").set_value("neg").run()
    assert "No review matches" in app.info[0].value


def test_reviews_read_their_view_from_the_url(data_path):
    test = load_imdb(path=data_path).test
    app = open_page("views/reviews.py", split="test", index="1", max_length="3", padding="pre")
    assert "this is `x_test[1]`" in app.main.caption[0].value
    assert app.code[0].value == " ".join(map(str, test.sequences[1].tolist()))
    assert app.slider(key="max_length").value == 3
    assert app.segmented_control(key="padding").value == "pre"
    past_the_end = open_page("views/reviews.py", index="99")
    assert "this is `x_train[5]`" in past_the_end.main.caption[0].value
    assert past_the_end.info[0].value == "The link's index is out of range (0 to 5): 5 is used."
    bad = open_page(
        "views/reviews.py", split="foo", index="abc", label="maybe", max_length="-4", padding="x"
    )
    assert "this is `x_train[0]`" in bad.main.caption[0].value
    assert bad.segmented_control(key="split").value == "train"
    assert bad.segmented_control(key="label").value == "any"
    assert bad.slider(key="max_length").value == 1  # clamped into 1 to 500
    assert bad.segmented_control(key="padding").value == "post"


# --- lengths and padding ----------------------------------------------------------------------


def test_lengths_shows_what_max_length_costs(data_path):
    app = open_page("views/lengths.py")
    shown = metrics(app)
    assert shown["Reviews truncated"] == "0.0%"
    assert shown["Pad steps (wasted RNN work)"] == "98.8%"  # 35 tokens in 6 x 500 steps
    app.slider(key="max_length").set_value(5).run()
    shown = metrics(app)
    assert shown["Reviews truncated"] == "50.0%"  # 6, 7 and 8 tokens: 3 of 6 reviews
    assert shown["Tokens lost"] == "17.1%"  # 1 + 2 + 3 of 35 tokens
    assert shown["Pad steps (wasted RNN work)"] == "3.3%"  # only the 4-token review: 1 of 30
    assert shown["Pad steps after the last word"] == "0.2"  # post: 1 step / 6 reviews
    app.segmented_control(key="padding").set_value("pre").run()
    assert metrics(app)["Pad steps after the last word"] == "0.0"


def test_lengths_table_and_charts(data_path):
    app = open_page("views/lengths.py")
    table = app.dataframe[0].value
    assert table.index.tolist() == ["train / neg", "train / pos", "test / neg", "test / pos"]
    assert table.loc["train / neg", "p50"] == 5.0  # 8, 4, 5
    assert table.loc["train / pos", "max"] == 7
    histogram, batch = chart_specs(app)
    assert batch["facet"]["column"]["sort"] == ["pre", "post"]
    assert histogram["spec"]["layer"][1]["encoding"]["x"]["datum"] == 500
    assert "type" not in histogram["spec"]["layer"][0]["encoding"]["x"]["scale"]
    assert chart_data(app, 0)[0].groupby("split")["count"].sum().to_dict() == {
        "test": 2,
        "train": 6,
    }
    (layout,) = chart_data(app, 1)
    assert set(layout["padding"]) == {"pre", "post"}
    assert layout["review"].nunique() == 6  # the tiny corpus is one batch of 6
    app.toggle(key="log_scale").set_value(True).run()
    histogram, _ = chart_specs(app)
    assert histogram["spec"]["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"


def test_lengths_read_their_view_from_the_url(data_path):
    app = open_page("views/lengths.py", max_length="5", batch_size="32", log_scale="true")
    assert metrics(app)["Reviews truncated"] == "50.0%"
    assert app.selectbox(key="batch_size").value == 32
    assert app.toggle(key="log_scale").value is True
    bad = open_page("views/lengths.py", max_length="abc", batch_size="7", truncating="middle")
    assert metrics(bad)["Reviews truncated"] == "0.0%"
    assert bad.slider(key="max_length").value == 500
    assert bad.selectbox(key="batch_size").value == 128
    assert bad.segmented_control(key="truncating").value == "pre"
