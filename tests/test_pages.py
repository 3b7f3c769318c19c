"""Each page runs under Streamlit's AppTest on a tiny corpus and shows what it should."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_home_shows_the_dataset_in_numbers(tiny_archive, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tiny_archive))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Training reviews"] == "6"
    assert metrics["Test reviews"] == "2"
    assert metrics["Words in training"] == "16"
    assert metrics["Median length (tokens)"] == "5.5"  # lengths 8, 4, 5, 6, 5, 7 with <START>


def test_home_explains_a_missing_source(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "missing.tar.gz"))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert "missing.tar.gz" in app.error[0].value
    assert "does not exist" in app.error[0].value
