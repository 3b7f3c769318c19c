"""Shared fixtures: every test gets its own cache folder and no data source from the environment.

Tiny corpora are written by the tests in the aclImdb layout, in words of their own
(`tests.helpers`). Tests marked `real_data` read the real archive named by RNNKIT_DATA as the
test run started (CI sets it). Tests marked `cluster` train on a Ray cluster: the one whose
address RNNKIT_TEST_RAY_ADDRESS gives (`.ci/run` starts one), or a head and one more node that
the session starts itself on this machine and stops at its end.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from rnnkit import jobs as jobs_module
from rnnkit import load_imdb
from tests.helpers import (
    GatedTrain,
    RayCluster,
    TinyRuns,
    local_ray_cluster,
    require_ray,
    tiny_reviews,
    train_tiny_runs,
    write_archive,
    write_corpus,
)

REAL_DATA = os.environ.get("RNNKIT_DATA", "").strip()
TEST_RAY_ADDRESS = os.environ.get("RNNKIT_TEST_RAY_ADDRESS", "").strip()


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Send every cache to tmp_path and forget the environment's data source."""
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNKIT_DATA", raising=False)
    monkeypatch.delenv("RNNKIT_FUSED_RNN", raising=False)
    # Jobs train on this machine unless a test hands them to its cluster.
    monkeypatch.delenv("RNNKIT_RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RNNKIT_RAY_JOB_CPUS", raising=False)
    # No training process on standby (TensorFlow loading in the background) unless a test asks.
    monkeypatch.setenv("RNNKIT_STANDBY", "0")


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    """TINY_REVIEWS (8 reviews) as an unpacked aclImdb folder."""
    return write_corpus(tmp_path / "data")


@pytest.fixture
def tiny_archive(tmp_path) -> Path:
    """TINY_REVIEWS (8 reviews) as a .tar.gz."""
    return write_archive(tmp_path / "tiny.tar.gz")


@pytest.fixture
def corpus(tmp_path) -> Path:
    """tiny_reviews() (100 generated reviews, enough to train on) as a .tar.gz."""
    return write_archive(tmp_path / "corpus.tar.gz", tiny_reviews())


@pytest.fixture
def data(corpus):
    """The corpus loaded with num_words=100, the vocabulary of the tiny configs."""
    return load_imdb(num_words=100, path=corpus)


@pytest.fixture
def gated(monkeypatch) -> GatedTrain:
    """Jobs of the job board run `GatedTrain` in a thread instead of training in a child
    process; at the end every gate opens and every job thread is joined."""
    fake = GatedTrain()
    monkeypatch.setattr(jobs_module, "train_in_child", fake)
    yield fake
    fake.released = True  # let every worker end before the next test
    for gate in list(fake.gates.values()):
        gate.set()
    for thread in threading.enumerate():
        if thread.name.startswith("rnnkit-job-"):
            thread.join(10)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> TinyRuns:
    """Two tiny runs on a generated corpus, trained once for the session (`train_tiny_runs`):
    open the app on a copy of them (`app_on_a_copy`)."""
    return train_tiny_runs(tmp_path_factory.mktemp("tiny-runs"))


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory) -> RayCluster:
    """A Ray cluster of two nodes on this machine: the one RNNKIT_TEST_RAY_ADDRESS and
    RNNKIT_TEST_RAY_CLIENT_ADDRESS name, or one started for the session. This process may
    connect to it (`rnnkit.cluster.connect`) until the session ends."""
    require_ray()
    from rnnkit import cluster

    if TEST_RAY_ADDRESS:
        host = TEST_RAY_ADDRESS.rpartition(":")[0]
        client = os.environ.get("RNNKIT_TEST_RAY_CLIENT_ADDRESS") or f"ray://{host}:10001"
        yield RayCluster(TEST_RAY_ADDRESS, client)
        cluster.disconnect()
        return
    with local_ray_cluster(tmp_path_factory.mktemp("ray")) as started:
        yield started
        cluster.disconnect()


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    if not REAL_DATA:
        if os.environ.get("CI"):
            pytest.fail("CI must set RNNKIT_DATA to the aclImdb archive (.ci/run does)")
        pytest.skip("RNNKIT_DATA is not set: the real-data tests need the aclImdb archive")
    return Path(REAL_DATA)


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """One cache for the whole session, so the real archive is parsed once."""
    return tmp_path_factory.mktemp("real-cache")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failed test
    (the browser tests save a screenshot then)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
