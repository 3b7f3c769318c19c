"""Comparing stored runs without Streamlit: how the settings of runs differ."""

from __future__ import annotations

from rnnkit.compare import config_differences
from tests.helpers import tiny_unmasked_config


def test_config_differences_compares_stored_configs():
    first = tiny_unmasked_config().to_dict()
    second = tiny_unmasked_config(**{"model.rnn_units": "8, 8", "training.epochs": "4"}).to_dict()
    differences = config_differences({"a": first, "b": second, "c": None})
    assert differences.index.tolist() == ["model.rnn_units", "training.epochs"]
    assert differences.to_dict("list") == {"a": ["8", "3"], "b": ["8, 8", "4"]}
    assert config_differences({"a": first, "b": first}).empty
