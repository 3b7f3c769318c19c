"""The server's one job board, shared by every session, and what pages read of it."""

from __future__ import annotations

import gc

import streamlit as st

from rnnkit.jobs import ACTIVE_STATES, JobBoard, JobView
from rnnkit.runs import RunStore
from rnnkit.settings import get_limits, ray_address, ray_job_cpus, standby_enabled


@st.cache_resource(show_spinner=False)
def job_board() -> JobBoard:
    """The server's one job board: every session sees, and attaches to, the same jobs; they
    train on the Ray cluster of `RNNKIT_RAY_ADDRESS` when it is set."""
    return JobBoard(
        RunStore(),
        get_limits(),
        standby=standby_enabled(),
        ray_address=ray_address(),
        job_cpus=ray_job_cpus(),
    )


def active_view(run_id: str) -> JobView | None:
    """The job that queues or trains `run_id` on this server, or None."""
    view = job_board().view(run_id)
    return view if view is not None and view.state in ACTIVE_STATES else None


def job_states() -> dict[str, str]:
    """Run id to the state of each job this server queues or trains ("queued", "running")."""
    return {view.run_id: view.state for view in job_board().active()}


def freeze_heap() -> None:
    """Take every object alive now out of the garbage collector's rounds (`gc.freeze`).

    Once Keras is imported, Streamlit calls `keras.backend.clear_session()` after every script
    run, and with it a full collection, which walks TensorFlow's 400,000 objects holding the
    interpreter lock, on every page view of every session; frozen objects are skipped. Call it
    after loading Keras, before making objects that must be freed some day (a frozen cycle is
    never collected).
    """
    gc.freeze()
