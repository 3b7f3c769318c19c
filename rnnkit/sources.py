"""Where the reviews come from: the aclImdb layout, read from an archive or a folder, and the
official archive's download.

The Large Movie Review Dataset (Maas et al., 2011) keeps each review in
`aclImdb/{train,test}/{pos,neg}/ID_RATING.txt`: the official `aclImdb_v1.tar.gz`, any tar of
that layout, or the unpacked folder. `rnnkit.data` parses what these functions read.

What a source holds is checked as it is read. A review's rating must be 1 to 10 and its id fit
the dataset's integer type (0 to 2,147,483,647), else the file is named in a `DataError`. What is
usable but short is a `DataWarning` kept with the reviews (`SourceReviews.warnings`): a tar
archive that ends without tar's end-of-archive marker (cut short: it may hold fewer reviews than
it did), a split and label with another number of reviews than its `urls_pos.txt` or
`urls_neg.txt` lists (one line per review; 12,500 in the official archive), files skipped for
their names. A device, a pipe or a socket is refused at once: reading one never ends.
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
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from rnnkit.settings import (
    CACHE_VARIABLE,
    DATA_VARIABLE,
    folder_problem,
    get_settings,
    source_problem,
)

LABEL_NAMES = ("neg", "pos")  # label 0 is a negative review, 1 a positive one
SPLITS = ("train", "test")

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"


class DataError(Exception):
    """The data could not be loaded; the message names the file and the fix."""


class DataWarning(UserWarning):
    """The data loaded, but something in it was repaired or skipped."""


_REVIEW_PATH = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+)$")
_REVIEW_NAME = re.compile(r"(\d+)_(\d+)\.txt", re.ASCII)
_URLS_PATH = re.compile(r"(?:^|/)(train|test)/urls_(pos|neg)\.txt$")
MAX_REVIEW_ID = 2**31 - 1  # review ids are kept as int32
RATINGS = range(1, 11)  # IMDb's stars; aclImdb keeps 1-4 (neg) and 7-10 (pos)
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


@dataclass
class SourceReviews:
    """What a source held: its reviews, and the DataWarnings they come with."""

    reviews: list[RawReview]  # by split, label, then review id
    warnings: list[str]


def _whole_number(digits: str, highest: int) -> int | None:
    """The number written by ASCII `digits`, or None when it is over `highest`."""
    if len(digits.lstrip("0")) > len(str(highest)):  # int() of thousands of digits is slow
        return None
    number = int(digits)
    return number if number <= highest else None


class _ReviewCollector:
    """Turns (path inside the source, bytes) pairs into reviews, noting what it skips and how
    many reviews the source's `urls_*.txt` files list."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.reviews: list[RawReview] = []
        self.misnamed: list[str] = []
        self.listed: dict[tuple[str, int], int] = {}  # (split, label) -> lines of its urls file
        self.warnings: list[str] = []

    def add(self, name: str, read: Callable[[], bytes]) -> None:
        urls = _URLS_PATH.search(name)
        if urls:
            split, label_name = urls.groups()
            self.listed[split, LABEL_NAMES.index(label_name)] = len(read().splitlines())
            return
        match = _REVIEW_PATH.search(name)
        if not match:
            return  # the unlabeled "unsup" reviews, .feat files, folders
        split, label_name, file_name = match.groups()
        name_match = _REVIEW_NAME.fullmatch(file_name)
        if not name_match:
            self.misnamed.append(name)
            return
        review_id = _whole_number(name_match.group(1), MAX_REVIEW_ID)
        rating = _whole_number(name_match.group(2), RATINGS[-1])
        if review_id is None or rating not in RATINGS:
            raise DataError(
                f"{name} in {self.source} is no aclImdb review: a review's file is named "
                f"ID_RATING.txt with an id from 0 to {MAX_REVIEW_ID:,} and a rating from 1 to "
                f"10. Remove or rename the file, or use the official aclImdb_v1.tar.gz "
                f"({OFFICIAL_URL})."
            )
        data = read()
        replaced = False
        if not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError:
                data = data.decode(errors="replace").encode()
                replaced = True
        self.reviews.append(
            RawReview(
                split=split,
                label=LABEL_NAMES.index(label_name),
                review_id=review_id,
                rating=rating,
                data=data,
                replaced=replaced,
            )
        )

    def _count_warnings(self) -> list[str]:
        """A warning for each split and label whose reviews are not the ones its urls file
        lists (line N is review N - 1)."""
        found: dict[tuple[str, int], set[int]] = {key: set() for key in self.listed}
        for review in self.reviews:
            if (review.split, review.label) in found:
                found[review.split, review.label].add(review.review_id)
        notes = []
        for (split, label), listed in sorted(self.listed.items()):
            ids = found[split, label]
            missing = sorted(set(range(listed)) - ids)
            extra = len([review_id for review_id in ids if review_id >= listed])
            if not missing and not extra:
                continue
            group = f"{split}/{LABEL_NAMES[label]}"
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            notes.append(
                f"{self.source}: {group} holds {len(ids):,} reviews where its urls_"
                f"{LABEL_NAMES[label]}.txt lists {listed:,} (the official archive has 12,500 in "
                f"each)"
                + (f"; {len(missing):,} missing (review id {shown})" if missing else "")
                + (f"; {extra:,} beyond the list" if extra else "")
                + ". The reviews there are used; for all of them, use the full "
                f"aclImdb_v1.tar.gz ({OFFICIAL_URL})."
            )
        return notes

    def finish(self) -> SourceReviews:
        """The reviews in file order with the source's warnings; raises DataError if a split
        or label has none."""
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
        warnings_found = list(self.warnings)
        if self.misnamed:
            warnings_found.append(
                f"Skipped {len(self.misnamed)} file(s) in {self.source} not named ID_RATING.txt "
                f"(first: {self.misnamed[0]})."
            )
        warnings_found += self._count_warnings()
        self.reviews.sort(key=lambda r: (SPLITS.index(r.split), r.label, r.review_id))
        return SourceReviews(self.reviews, warnings_found)


_REDOWNLOAD = (
    f"Download aclImdb_v1.tar.gz again ({OFFICIAL_URL}, sha256 {OFFICIAL_SHA256[:12]}...) or "
    f"point {DATA_VARIABLE} at an unpacked aclImdb folder."
)


def read_archive(path: Path) -> SourceReviews:
    """Read the reviews of a tar archive (any compression) of the aclImdb layout.

    Args:
        path: the archive.

    Returns:
        The reviews, with a warning where the archive ends without tar's end-of-archive marker
        (Python's tarfile takes such an archive as whole: it was cut short at a file's end).

    Raises:
        DataError: the archive is damaged, or not of the aclImdb layout.
    """
    collector = _ReviewCollector(path)
    last_header: list[bytes] = [b""]  # the last 512-byte block read where a header belongs

    class RecordingTarInfo(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:
            last_header[0] = buf
            return super().frombuf(buf, encoding, errors)

    members = 0
    try:
        # Streaming mode reads the archive once, front to back, whatever its compression.
        with tarfile.open(path, mode="r|*", tarinfo=RecordingTarInfo) as archive:
            for member in archive:
                members += 1
                if member.isfile():
                    collector.add(member.name, archive.extractfile(member).read)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise DataError(
            f"The archive {path} is damaged or incomplete ({type(error).__name__}: {error}). "
            f"{_REDOWNLOAD}"
        ) from None
    # A tar ends with a block of zeros; tarfile stops silently at the end of the bytes, at a
    # header cut short, or at one that is not a header.
    if last_header[0] != bytes(tarfile.BLOCKSIZE):
        collector.warnings.append(
            f"The archive {path} ends without tar's end-of-archive marker, after {members:,} "
            f"files: it was cut short or is damaged there, and may hold fewer reviews than it "
            f"should ({len(collector.reviews):,} read). {_REDOWNLOAD}"
        )
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


def _urls_files(root: Path) -> Iterator[tuple[str, Path]]:
    for split in SPLITS:
        for label_name in LABEL_NAMES:
            path = root / split / f"urls_{label_name}.txt"
            if path.is_file():
                yield f"{split}/urls_{label_name}.txt", path


def read_folder(path: Path) -> SourceReviews:
    """Read the reviews of an unpacked aclImdb folder (`path` or `path/aclImdb`).

    Returns:
        The reviews, with the warnings they come with.

    Raises:
        DataError: a file cannot be read, or the folder is not of the aclImdb layout.
    """
    collector = _ReviewCollector(path)
    root = _folder_root(path)
    for name, file_path in [*_urls_files(root), *_review_files(root)]:
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
    check_cache_folder()
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


def check_cache_folder() -> Path:
    """The cache folder (`RNNKIT_CACHE_DIR`), made if need be.

    Returns:
        The folder.

    Raises:
        DataError: a file stands where it belongs, or it cannot be made; the message names
            the file and the fix.
    """
    folder = get_settings().cache_dir
    problem = folder_problem(folder)
    try:
        if problem is None:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        problem = f"{folder} cannot be made ({error.strerror or error})"
    if problem is not None:
        raise DataError(
            f"The cache folder {folder} ({CACHE_VARIABLE}) cannot be used: {problem}. Point "
            f"{CACHE_VARIABLE} at a folder this process can write."
        )
    return folder


def resolve_source(path: str | os.PathLike | None) -> Path:
    given_by = "the path argument"
    if path is None:
        path = get_settings().data_path
        given_by = f"{DATA_VARIABLE}"
        if path is None:
            return download_imdb()
    path = Path(path).expanduser()
    problem = source_problem(path)
    if problem is not None:  # reading a device or a pipe would never end: refused at once
        raise DataError(
            f"No IMDB data at {path} (given by {given_by}): {problem}. Give the "
            f"aclImdb_v1.tar.gz archive or its unpacked aclImdb folder."
        )
    if not path.exists():
        raise DataError(
            f"No IMDB data at {path} (given by {given_by}): the path does not exist. Give the "
            f"aclImdb_v1.tar.gz archive or its unpacked aclImdb folder, e.g. "
            f"{DATA_VARIABLE}=/data/aclImdb_v1.tar.gz."
        )
    return path
