"""Comparing stored runs, without Streamlit: which runs belong to a dataset, how their settings
differ, short labels for charts and choices, the runs table, and the padding experiment's
variants. `rnnkit.ui` shows what these return; the command line and notebooks may use them too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pandas as pd

from rnnkit.config import TrainConfig
from rnnkit.runs import Run, RunSummary

# The course's lesson in three runs: where the zeros go, and whether the RNN may skip them.
PADDING_VARIANTS: dict[str, dict[str, Any]] = {
    "post padding": {"data.padding": "post", "model.mask_padding": False},
    "pre padding": {"data.padding": "pre", "model.mask_padding": False},
    "post padding, masked": {"data.padding": "post", "model.mask_padding": True},
}
# A run's status in the runs table while a job of this server trains it, by the job's state.
JOB_STATUSES = {"running": "training", "queued": "queued"}


def duration_text(seconds: float | None) -> str:
    """A duration for people: "3 min 05 s", "1 h 02 min", or "–" for None."""
    if seconds is None:
        return "–"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def config_or_none(settings: object) -> TrainConfig | None:
    """A run's stored settings as a config; None when missing or no longer valid."""
    try:
        return TrainConfig.from_dict(settings) if settings is not None else None
    except (ValueError, TypeError):
        return None


def padding_variants(config: TrainConfig) -> dict[str, TrainConfig]:
    """The padding experiment: `config` with post padding, pre padding, and post padding masked.

    Args:
        config: the configuration to vary (its other settings are kept).

    Returns:
        Label to config, in `PADDING_VARIANTS` order; each config names a run of its own.
    """
    return {label: config.with_overrides(changes) for label, changes in PADDING_VARIANTS.items()}


def is_run_of(summary: RunSummary, fingerprint: str) -> bool:
    """Whether a stored run was trained on the data of `fingerprint` (its config, hashed with
    the fingerprint, gives its run id); False when its config is unreadable."""
    config = config_or_none(summary.config)
    return config is not None and config.run_id(fingerprint) == summary.run_id


def complete_runs(summaries: Sequence[RunSummary], fingerprint: str) -> list[RunSummary]:
    """The complete runs trained on the data of `fingerprint` (with any num_words), in the
    order given (`RunStore.list_runs()`: newest first).

    A run trained on other data (another archive, another shuffle) is left out: its vocabulary
    and test set are not these.
    """
    return [
        summary
        for summary in summaries
        if summary.status == "complete" and is_run_of(summary, fingerprint)
    ]


def stopped_runs(
    summaries: Sequence[RunSummary], fingerprint: str, active: Collection[str]
) -> list[tuple[RunSummary, TrainConfig]]:
    """The runs of this data that stopped part way (incomplete or failed) and that no job
    trains now: they can resume from their last finished epoch.

    Args:
        summaries: `RunStore.list_runs()`.
        fingerprint: the data's fingerprint (runs of other data cannot resume on it).
        active: run ids a job queues or trains now.

    Returns:
        (summary, config) pairs, in the order given.
    """
    return [
        (summary, TrainConfig.from_dict(summary.config))
        for summary in summaries
        if summary.status in ("incomplete", "failed")
        and summary.run_id not in active
        and is_run_of(summary, fingerprint)
    ]


def run_label(summary: RunSummary) -> str:
    """A complete run for a choice: "BiSimpleRNN 64-64 · ... · test 85.2% · <run id>"."""
    accuracy = "–" if summary.test_accuracy is None else f"{summary.test_accuracy:.1%}"
    config = config_or_none(summary.config)
    settings = config.summary() if config else "settings unreadable"
    return f"{settings} · test {accuracy} · {summary.run_id}"


def _setting_text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def _flat_settings(settings: Mapping[str, Any]) -> dict[str, str]:
    return {
        f"{section}.{name}": _setting_text(value)
        for section, values in settings.items()
        if isinstance(values, Mapping)
        for name, value in values.items()
    }


def config_differences(configs: Mapping[str, Mapping[str, Any] | None]) -> pd.DataFrame:
    """The settings on which runs differ.

    Args:
        configs: run id to its stored config (`RunSummary.config`); runs without one are left
            out.

    Returns:
        A row per differing setting (index "setting", dotted names in config order), a column
        per run id holding the values as text ("–" where a config lacks the setting); no rows
        when the runs agree on every setting.
    """
    flat = {run_id: _flat_settings(settings) for run_id, settings in configs.items() if settings}
    names = dict.fromkeys(name for settings in flat.values() for name in settings)
    rows = {}
    for name in names:
        values = [settings.get(name, "–") for settings in flat.values()]
        if len(set(values)) > 1:
            rows[name] = values
    frame = pd.DataFrame(list(rows.values()), index=list(rows), columns=list(flat), dtype=str)
    return frame.rename_axis("setting")


def run_labels(configs: Mapping[str, Mapping[str, Any] | None]) -> dict[str, str]:
    """Chart labels: a run id's first 8 characters and what sets the run apart.

    Args:
        configs: run id to its stored config.

    Returns:
        Run id to label: "1a2b3c4d · padding pre, mask_padding True" (up to three differing
        settings), or the config's summary when nothing differs or the run is alone.
    """
    differences = config_differences(configs)
    labels = {}
    for run_id, settings in configs.items():
        if len(differences) and run_id in differences.columns:
            shown = [
                f"{name.split('.')[-1]} {differences.at[name, run_id]}"
                for name in differences.index[:3]
            ]
            detail = ", ".join(shown) + (", …" if len(differences) > 3 else "")
        else:
            config = config_or_none(settings)
            detail = config.summary() if config else "settings unreadable"
        labels[run_id] = f"{run_id[:8]} · {detail}"
    return labels


def choice_labels(summaries: Sequence[RunSummary]) -> dict[str, str]:
    """Labels for a choice of runs: `run_labels` (a short id and what sets the run apart from
    the others) and its test accuracy, or its status when it has none.

    Args:
        summaries: the runs to choose from.

    Returns:
        Run id to label: "1a2b3c4d · padding pre · test 85.2%".
    """
    labels = run_labels({summary.run_id: summary.config for summary in summaries})
    return {
        summary.run_id: f"{labels[summary.run_id]} · "
        + (
            f"test {summary.test_accuracy:.1%}"
            if summary.test_accuracy is not None
            else summary.status
        )
        for summary in summaries
    }


def runs_table(
    summaries: Sequence[RunSummary],
    job_states: Mapping[str, str] | None = None,
    memory: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every stored run in a row: status and results first, then the settings.

    Args:
        summaries: `RunStore.list_runs()`.
        job_states: run id to the state of the job that queues or trains it on this server
            ("queued", "running"); such a run's status reads "queued" or "training".
        memory: run id to how far back it remembers (`inside.stored_memory_texts`), for the
            runs whose memory profile is computed.

    Returns:
        Columns run, status, test accuracy, best val accuracy, best epoch, epochs (done /
        asked), memory (steps) (empty until computed), training time, created (a UTC
        timestamp; NaT when unknown), problem (a failed run's error, or what is damaged) and
        settings (the config's summary, the widest).
    """
    job_states = job_states or {}
    memory = memory or {}
    rows = []
    for summary in summaries:
        config = config_or_none(summary.config)
        job_state = job_states.get(summary.run_id)
        rows.append(
            {
                "run": summary.run_id,
                "status": JOB_STATUSES.get(job_state, job_state) or summary.status,
                "test accuracy": summary.test_accuracy,
                "best val accuracy": summary.best_val_accuracy,
                "best epoch": summary.best_epoch,
                "epochs": f"{summary.epochs_done} / {config.training.epochs if config else '?'}",
                "memory (steps)": memory.get(summary.run_id),
                "training time": duration_text(summary.seconds),
                "created": summary.created,
                "problem": summary.error or "",
                "settings": config.summary() if config else "–",
            }
        )
    table = pd.DataFrame(rows)
    table["best epoch"] = table["best epoch"].astype("Int64")
    table["created"] = pd.to_datetime(table["created"], utc=True, errors="coerce")
    table["memory (steps)"] = table["memory (steps)"].astype("string")
    return table.astype({"best val accuracy": "Float64", "test accuracy": "Float64"})


def variant_results(runs: Mapping[str, Run]) -> pd.DataFrame:
    """The padding experiment's results table: a row per completed variant.

    Args:
        runs: variant label (`PADDING_VARIANTS`) to its complete run.

    Returns:
        Columns variant, test accuracy, best val accuracy, epochs (trained), training time
        (text), in the order given.
    """
    return pd.DataFrame(
        {
            "variant": list(runs),
            "test accuracy": [run.metrics["test_accuracy"] for run in runs.values()],
            "best val accuracy": [run.summary.get("best_val_accuracy") for run in runs.values()],
            "epochs": [len(run.history) for run in runs.values()],
            "training time": [duration_text(run.summary.get("seconds")) for run in runs.values()],
        }
    )
