"""Fetching dataset files from their official mirrors, verified by checksum."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from replab.data.base import Resource
from replab.errors import DataError

CHUNK = 1 << 20
TIMEOUT_S = 60


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(resource: Resource, mirrors: list[str], dest_dir: Path, md5: str | None = None) -> Path:
    """Download ``resource`` from the first mirror that serves it with the right checksum.

    The file is written beside its final name and renamed only once verified, so an
    interrupted or corrupt download never leaves a file that looks complete.
    """
    made = [p for p in (dest_dir, *dest_dir.parents) if not p.exists()]
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _fetch(resource, mirrors, dest_dir, md5)
    except DataError:
        # a failed first download leaves no empty cache folders behind (only ones it made)
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _fetch(resource: Resource, mirrors: list[str], dest_dir: Path, md5: str | None) -> Path:
    dest = dest_dir / resource.filename
    expected = md5 or resource.md5
    if dest.exists() and md5sum(dest) == expected:
        return dest
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + resource.filename
        part = dest.with_name(dest.name + ".part")
        try:
            _stream(url, part)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            failures.append(f"{url}: {getattr(err, 'reason', err)}")
            part.unlink(missing_ok=True)
            continue
        got = md5sum(part)
        if got != expected:
            part.unlink(missing_ok=True)
            raise DataError(
                f"checksum mismatch for {resource.filename} downloaded from {url}: "
                f"expected md5 {expected}, "
                f"got {got}; the download is corrupt or the mirror serves a different file",
                "run the command again to retry the download; "
                "if it keeps failing, fetch the file by hand and point data.root at it",
            )
        os.replace(part, dest)
        return dest
    raise DataError(
        f"could not download {resource.filename}: " + "; ".join(failures),
        "check the network connection, "
        "or copy the dataset into a folder and pass data.root=FOLDER (or set REPLAB_DATA)",
    )


def _stream(url: str, dest: Path) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "replab"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out, CHUNK)


def extract_tar(archive: Path, dest: Path) -> None:
    """Extract a .tar.gz refusing absolute paths, links out of ``dest`` and device files."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(
            f"cannot extract {str(archive)!r}: {err}",
            f"delete {str(archive)!r} and run again to download it afresh",
        ) from None
