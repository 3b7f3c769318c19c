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


def test_the_runs_table_shows_each_runs_memory_once_computed():
    from rnnkit.compare import runs_table
    from rnnkit.runs import RunSummary

    def summary(run_id: str) -> RunSummary:
        return RunSummary(
            run_id, "complete", tiny_unmasked_config().to_dict(), 0.8, 2, 0.79, None, 9.0, 3, None
        )

    memory = {"0000000000000001": "37", "0000000000000003": "every position"}
    table = runs_table([summary(f"000000000000000{n}") for n in (1, 2, 3)], memory=memory)
    shown = table.set_index("run")["memory (steps)"]
    assert shown["0000000000000001"] == "37"
    assert shown.isna()["0000000000000002"]  # not computed: empty
    assert shown["0000000000000003"] == "every position"
    assert table.columns.tolist().index("memory (steps)") == 6  # after the epochs
