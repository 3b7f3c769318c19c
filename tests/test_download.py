"""Downloading the archive when no local copy is given: from a local HTTP server thread, through
`RNNKIT_DATA_URL`, with progress, one download per cache, and no half-written file on failure."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections import Counter

import pytest
from streamlit.testing.v1 import AppTest

from rnnkit import sources as sources_module
from rnnkit.data import load_imdb
from rnnkit.sources import DataError, download_imdb, download_path
from tests.helpers import APP, TINY_RANKED, metrics, shown, write_archive


class ArchiveServer(http.server.ThreadingHTTPServer):
    """Serves `archive` at /aclImdb_v1.tar.gz, and the ways a download goes wrong."""

    def __init__(self, archive: bytes) -> None:
        super().__init__(("127.0.0.1", 0), ArchiveHandler)
        self.archive = archive
        self.requests: Counter[str] = Counter()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


class ArchiveHandler(http.server.BaseHTTPRequestHandler):
    server: ArchiveServer

    def do_GET(self) -> None:
        self.server.requests[self.path] += 1
        archive = self.server.archive
        if self.path == "/missing.tar.gz":
            self.send_error(404)
            return
        body = {
            "/aclImdb_v1.tar.gz": archive,
            "/truncated.tar.gz": archive[: len(archive) // 2],  # then the connection closes
            "/corrupt.tar.gz": b"\x1f\x8b not an archive " * 40,
        }[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        length = len(archive) if self.path == "/truncated.tar.gz" else len(body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *arguments) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def server(tmp_path):
    archive = write_archive(tmp_path / "served.tar.gz").read_bytes()
    server = ArchiveServer(archive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def use_url(monkeypatch, url: str) -> None:
    monkeypatch.setenv("RNNKIT_DATA_URL", url)


def left_in_cache(url: str) -> list[str]:
    """What a download left beside its file, leaving out the lock file."""
    folder = download_path(url).parent
    if not folder.exists():
        return []
    return sorted(path.name for path in folder.iterdir() if not path.name.endswith(".lock"))


def test_the_reviews_load_through_the_download_once(server, monkeypatch):
    url = server.url("aclImdb_v1.tar.gz")
    use_url(monkeypatch, url)
    imdb = load_imdb()
    assert imdb.vocab.words == TINY_RANKED
    assert imdb.source.path == download_path(url)
    assert download_path(url).read_bytes() == server.archive
    assert server.requests["/aclImdb_v1.tar.gz"] == 1
    again = load_imdb()  # another load, as another process would do it: no second download
    assert again.vocab.words == TINY_RANKED
    assert server.requests["/aclImdb_v1.tar.gz"] == 1
    assert download_imdb() == download_path(url)
    assert server.requests["/aclImdb_v1.tar.gz"] == 1
    assert left_in_cache(url) == [download_path(url).name]


def test_progress_grows_to_the_total(server, monkeypatch):
    monkeypatch.setattr(sources_module, "_DOWNLOAD_BLOCK", 64)  # many reports from a tiny file
    url = server.url("aclImdb_v1.tar.gz")
    reports = []
    download_imdb(url, on_progress=lambda received, total: reports.append((received, total)))
    total = len(server.archive)
    assert reports[0] == (0, total)  # the bar appears before the first bytes arrive
    assert reports[-1] == (total, total)
    received = [done for done, _ in reports]
    assert received == sorted(received) and len(set(received)) == len(received)
    assert len(reports) == 1 + -(-total // 64)  # one report per block after the first
    assert {reported_total for _, reported_total in reports} == {total}

    reports.clear()
    download_imdb(url, on_progress=lambda received, total: reports.append((received, total)))
    assert reports == []  # kept: nothing to report


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("missing.tar.gz", r"HTTP Error 404: Not Found"),
        ("truncated.tar.gz", r"the connection closed after [\d,]+ of [\d,]+ bytes"),
        ("corrupt.tar.gz", r"it is not a complete tar archive \(ReadError"),
    ],
)
def test_a_failed_download_names_the_problem_and_the_fix_and_leaves_nothing(
    server, monkeypatch, name, problem
):
    url = server.url(name)
    use_url(monkeypatch, url)
    with pytest.raises(DataError, match=rf"downloading {url} failed \({problem}.*\)") as caught:
        load_imdb()
    assert "set RNNKIT_DATA=/path/to/aclImdb_v1.tar.gz" in str(caught.value)
    assert left_in_cache(url) == []
    with pytest.raises(DataError):  # nothing was kept: the next load tries again
        load_imdb()
    assert server.requests[f"/{name}"] == 2


def test_without_a_server_the_error_says_how_to_point_at_a_local_copy(server, monkeypatch):
    url = server.url("aclImdb_v1.tar.gz")
    server.shutdown()
    server.server_close()  # the port refuses connections now
    use_url(monkeypatch, url)
    with pytest.raises(DataError, match=r"downloading http://.*failed.*set RNNKIT_DATA="):
        load_imdb()
    assert left_in_cache(url) == []


def test_the_official_address_is_checked_by_its_sha256(server, monkeypatch):
    url = server.url("aclImdb_v1.tar.gz")
    monkeypatch.setattr(sources_module, "OFFICIAL_URL", url)  # served here, not from Stanford
    monkeypatch.delenv("RNNKIT_DATA_URL", raising=False)
    official = sources_module.OFFICIAL_SHA256[:12]
    with pytest.raises(DataError, match=rf"its sha256 is \w+\.\.\., not the official {official}"):
        load_imdb()
    assert left_in_cache(url) == []

    served_sha256 = hashlib.sha256(server.archive).hexdigest()
    monkeypatch.setattr(sources_module, "OFFICIAL_SHA256", served_sha256)
    assert load_imdb().vocab.words == TINY_RANKED


def test_a_partial_file_left_by_a_killed_download_is_removed(server):
    url = server.url("aclImdb_v1.tar.gz")
    target = download_path(url)
    target.parent.mkdir(parents=True)
    stale = target.parent / f".partial-{target.name}-killed"
    stale.write_bytes(server.archive[:10])
    assert download_imdb(url) == target
    assert left_in_cache(url) == [target.name]


def test_the_app_downloads_the_archive_then_shows_the_reviews(server, monkeypatch):
    use_url(monkeypatch, server.url("aclImdb_v1.tar.gz"))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert not app.error
    assert metrics(app)["Training reviews"] == "6"
    assert "downloads" in app.sidebar.caption[0].value  # read from the downloaded copy
    assert not app.get("progress")  # the bar is gone once the download is done
    assert server.requests["/aclImdb_v1.tar.gz"] == 1


def test_the_app_shows_a_failed_download_with_its_fix(server, monkeypatch):
    use_url(monkeypatch, server.url("missing.tar.gz"))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert "HTTP Error 404" in shown(app.error[0].value)
    assert "set RNNKIT_DATA=" in shown(app.error[0].value)
    app.run()  # a failed download is not cached: the next run tries again
    assert server.requests["/missing.tar.gz"] == 2
