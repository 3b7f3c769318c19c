"""Shared fixtures: every test gets its own cache folder and no data source from the environment.

Tiny corpora are written by the tests in the aclImdb layout, in words of their own. Tests marked
`real_data` read the real archive named by RNNKIT_DATA as the test run started (CI sets it).
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

REAL_DATA = os.environ.get("RNNKIT_DATA", "").strip()

# (split, label) -> [(review id, rating, text)]: 6 training and 2 test reviews.
TINY_REVIEWS = {
    ("train", "pos"): [
        (0, 9, "A great film, great acting."),
        (1, 8, "Great story<br /><br />great fun!"),
        (2, 10, "I don't hate it: loved it."),
    ],
    ("train", "neg"): [
        (0, 2, "A bad film. Bad acting, bad story."),
        (1, 1, "Boring and bad."),
        (2, 3, "It's a dull film."),
    ],
    ("test", "pos"): [(0, 7, "Great fun, a gem.")],
    ("test", "neg"): [(0, 4, "Dull, boring, awful.")],
}


def write_corpus(root: Path, reviews: dict = TINY_REVIEWS) -> Path:
    """Write reviews as root/aclImdb/{split}/{label}/ID_RATING.txt; return root/aclImdb."""
    for (split, label), items in reviews.items():
        folder = root / "aclImdb" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for review_id, rating, text in items:
            data = text if isinstance(text, bytes) else text.encode()
            (folder / f"{review_id}_{rating}.txt").write_bytes(data)
    return root / "aclImdb"


def write_archive(path: Path, reviews: dict = TINY_REVIEWS) -> Path:
    """Write reviews as a .tar.gz of the aclImdb layout at `path`."""
    with tarfile.open(path, "w:gz") as archive:
        for (split, label), items in reviews.items():
            for review_id, rating, text in items:
                data = text if isinstance(text, bytes) else text.encode()
                member = tarfile.TarInfo(f"aclImdb/{split}/{label}/{review_id}_{rating}.txt")
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
    return path


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Send every cache to tmp_path and forget the environment's data source."""
    monkeypatch.setenv("RNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNKIT_DATA", raising=False)
    monkeypatch.delenv("RNNKIT_FUSED_RNN", raising=False)


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    return write_corpus(tmp_path / "data")


@pytest.fixture
def tiny_archive(tmp_path) -> Path:
    return write_archive(tmp_path / "tiny.tar.gz")


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
