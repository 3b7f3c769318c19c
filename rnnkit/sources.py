"""Where the reviews come from: the aclImdb layout, read from an archive or a folder, and the
official archive's download.

The Large Movie Review Dataset (Maas et al., 2011) keeps each review in
`aclImdb/{train,test}/{pos,neg}/ID_RATING.txt`: the official `aclImdb_v1.tar.gz`, any tar of
that layout, or the unpacked folder. `rnnkit.data` parses what these functions read.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tarfile
import tempfile
import urllib.parse
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from rnnkit.settings import DATA_VARIABLE, get_settings

LABEL_NAMES = ("neg", "pos")  # label 0 is a negative review, 1 a positive one
SPLITS = ("train", "test")

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"


class DataError(Exception):
    """The data could not be loaded; the message names the file and the fix."""


class DataWarning(UserWarning):
    """The data loaded, but something in it was repaired or skipped."""


_REVIEW_PATH = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+)$")
_REVIEW_NAME = re.compile(r"(\d+)_(\d+)\.txt")
_LAYOUT_HINT = (
    "expected the aclImdb layout: aclImdb/{train,test}/{pos,neg}/ID_RATING.txt, as in the "
    f"official aclImdb_v1.tar.gz ({OFFICIAL_URL})"
)


@dataclass
class RawReview:
    split: str
    label: int
    review_id: int
    rating: int
    data: bytes  # valid UTF-8
    replaced: bool  # held bytes that were not UTF-8, now U+FFFD


class _ReviewCollector:
    """Turns (path inside the source, bytes) pairs into reviews, noting what it skips."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.reviews: list[RawReview] = []
        self.misnamed: list[str] = []
        self.first_replaced: str | None = None

    def add(self, name: str, read: Callable[[], bytes]) -> None:
        match = _REVIEW_PATH.search(name)
        if not match:
            return  # urls_*.txt, the unlabeled "unsup" reviews, .feat files, folders
        split, label_name, file_name = match.groups()
        name_match = _REVIEW_NAME.fullmatch(file_name)
        if not name_match:
            self.misnamed.append(name)
            return
        data = read()
        replaced = False
        if not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError:
                data = data.decode(errors="replace").encode()
                replaced = True
                self.first_replaced = self.first_replaced or name
        self.reviews.append(
            RawReview(
                split=split,
                label=LABEL_NAMES.index(label_name),
                review_id=int(name_match.group(1)),
                rating=int(name_match.group(2)),
                data=data,
                replaced=replaced,
            )
        )

    def finish(self) -> list[RawReview]:
        """The reviews in file order; raises DataError if a split or label has none."""
        if not self.reviews:
            raise DataError(f"No reviews found in {self.source}: {_LAYOUT_HINT}.")
        found = {(split, label): 0 for split in SPLITS for label in range(2)}
        for review in self.reviews:
            found[review.split, review.label] += 1
        empty = [f"{split}/{LABEL_NAMES[label]}" for (split, label), n in found.items() if not n]
        if empty:
            counts = ", ".join(f"{s}/{LABEL_NAMES[label]}: {n}" for (s, label), n in found.items())
            raise DataError(
                f"{self.source} has no reviews in {', '.join(empty)} ({counts}): the copy is "
                f"incomplete. Use the full aclImdb_v1.tar.gz or its unpacked folder."
            )
        if self.misnamed:
            warnings.warn(
                f"Skipped {len(self.misnamed)} file(s) in {self.source} not named ID_RATING.txt "
                f"(first: {self.misnamed[0]}).",
                DataWarning,
                stacklevel=3,
            )
        self.reviews.sort(key=lambda r: (SPLITS.index(r.split), r.label, r.review_id))
        return self.reviews


def read_archive(path: Path) -> list[RawReview]:
    collector = _ReviewCollector(path)
    try:
        # Streaming mode reads the archive once, front to back, whatever its compression.
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if member.isfile():
                    collector.add(member.name, archive.extractfile(member).read)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DataError(
            f"The archive {path} is damaged or incomplete ({type(error).__name__}: {error}). "
            f"Download aclImdb_v1.tar.gz again ({OFFICIAL_URL}, sha256 {OFFICIAL_SHA256[:12]}...) "
            f"or point {DATA_VARIABLE} at an unpacked aclImdb folder."
        ) from None
    return collector.finish()


def _folder_root(path: Path) -> Path:
    for root in (path, path / "aclImdb"):
        if (root / "train").is_dir() and (root / "test").is_dir():
            return root
    raise DataError(
        f"The folder {path} does not have the aclImdb layout: it has no train/ and test/ folders "
        f"(nor aclImdb/train and aclImdb/test); {_LAYOUT_HINT}."
    )


def _review_files(root: Path) -> Iterator[tuple[str, Path]]:
    for split in SPLITS:
        for label_name in LABEL_NAMES:
            folder = root / split / label_name
            if folder.is_dir():
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.is_file():
                            yield f"{split}/{label_name}/{entry.name}", Path(entry.path)


def read_folder(path: Path) -> list[RawReview]:
    collector = _ReviewCollector(path)
    for name, file_path in _review_files(_folder_root(path)):
        try:
            collector.add(name, file_path.read_bytes)
        except OSError as error:
            raise DataError(f"Could not read {file_path}: {error}.") from None
    return collector.finish()


def source_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        # Names, sizes and modification times: a changed or replaced review changes it.
        for name, file_path in sorted(_review_files(_folder_root(path))):
            stat = file_path.stat()
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the download ----------------------------------------------------------------------------


# (bytes received so far, bytes in all, or None where the server does not say)
DownloadProgress = Callable[[int, int | None], None]
_DOWNLOAD_BLOCK = 1 << 18  # 256 KiB: about 340 progress reports for the official 84 MB
_DOWNLOAD_TIMEOUT = 60  # seconds a stalled connection may wait before the download fails


def download_path(url: str | None = None) -> Path:
    """Where the archive downloaded from `url` is kept: `RNNKIT_CACHE_DIR/downloads`.

    Args:
        url: the archive's address; default `RNNKIT_DATA_URL`, else `OFFICIAL_URL`.

    Returns:
        The file's path (named after the address, so two addresses never share a file); it
        exists once a download has finished.
    """
    url = url or get_settings().data_url or OFFICIAL_URL
    name = Path(urllib.parse.urlsplit(url).path).name or "aclImdb.tar.gz"
    key = hashlib.sha256(url.encode()).hexdigest()[:10]
    return get_settings().cache_dir / "downloads" / f"{key}-{name}"


def _fetch(url: str, destination: Path, on_progress: DownloadProgress | None) -> None:
    with (
        urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response,
        open(destination, "wb") as file,
    ):
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if on_progress:
            on_progress(done, total)
        while block := response.read(_DOWNLOAD_BLOCK):
            file.write(block)
            done += len(block)
            if on_progress:
                on_progress(done, total)
    if total is not None and done != total:
        raise ValueError(f"the connection closed after {done:,} of {total:,} bytes")


def _check_download(url: str, path: Path) -> None:
    """Raise ValueError unless `path` is the whole archive: the official file by its sha256,
    any other (no checksum known) by reading it through as a tar archive."""
    if url == OFFICIAL_URL:
        digest = source_fingerprint(path)
        if digest != OFFICIAL_SHA256:
            raise ValueError(
                f"its sha256 is {digest[:12]}..., not the official {OFFICIAL_SHA256[:12]}...: "
                f"the file was damaged on the way"
            )
        return
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for _ in archive:  # stream mode reads every member's bytes to reach the next
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ValueError(
            f"it is not a complete tar archive ({type(error).__name__}: {error})"
        ) from None


def download_imdb(url: str | None = None, on_progress: DownloadProgress | None = None) -> Path:
    """Download the aclImdb archive once; later calls, from any process, return the kept copy.

    The bytes go to a hidden partial file beside `download_path(url)`, which is checked and
    then renamed into place: a failed or interrupted download leaves no archive behind, and a
    partial file left by a killed process is removed by the next download.

    Args:
        url: the archive's address; default `RNNKIT_DATA_URL`, else `OFFICIAL_URL`. Only the
            official file has a known sha256; any other is checked by reading it as a tar.
        on_progress: called with (bytes received, bytes in all or None) as the bytes arrive,
            first with 0; not called when the archive is there already.

    Returns:
        The archive's path in the cache folder.

    Raises:
        DataError: the download failed or is damaged; the message says why and how to point
            rnnkit at a local copy instead.
    """
    url = url or get_settings().data_url or OFFICIAL_URL
    target = download_path(url)
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # One process downloads; the others wait for it and then find the file.
        with FileLock(f"{target}.lock"):
            if target.is_file():
                return target
            for stale in target.parent.glob(f".partial-{target.name}-*"):
                stale.unlink(missing_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".partial-{target.name}-", dir=target.parent)
            os.close(handle)
            partial = Path(name)
            try:
                _fetch(url, partial, on_progress)
                _check_download(url, partial)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise DataError(
            f"No local copy of the IMDB reviews was given and downloading {url} failed "
            f"({error}). Point rnnkit at a copy you have: set {DATA_VARIABLE}=/path/to/"
            f"aclImdb_v1.tar.gz (or an unpacked aclImdb folder), or call "
            f"load_imdb(path=...)."
        ) from None
    return target


def resolve_source(path: str | os.PathLike | None) -> Path:
    given_by = "the path argument"
    if path is None:
        path = get_settings().data_path
        given_by = f"{DATA_VARIABLE}"
        if path is None:
            return download_imdb()
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            f"No IMDB data at {path} (given by {given_by}): the path does not exist. Give the "
            f"aclImdb_v1.tar.gz archive or its unpacked aclImdb folder, e.g. "
            f"{DATA_VARIABLE}=/data/aclImdb_v1.tar.gz."
        )
    return path
