"""Downloads through torchvision's own code: its URLs, its md5s, its ``download_url``.

The datasets that torchvision already knows (SVHN, STL-10, CIFAR-100, EMNIST) are fetched
with the URL and md5 its dataset class carries, so replab checks exactly what torchvision
checks. The file is downloaded under a ``.part`` name and renamed only once verified, so a
corrupt download never looks complete; archives are unpacked with replab's own extractor,
which refuses paths that escape the cache. Reading the files is replab's (no pickle
executes: CIFAR-100 goes through the restricted unpickler).
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

from replab.data.download import md5sum
from replab.errors import DataError


def fetch_url(url: str, md5: str, dest_dir: Path, mirrors: list[str] | None = None) -> Path:
    """Download ``url`` into ``dest_dir`` with torchvision's ``download_url``, md5-checked.

    ``mirrors`` (``$REPLAB_MIRROR``) replaces the host: the same file name is asked of it.
    """
    from torchvision.datasets.utils import check_integrity, download_url

    name = url.rsplit("/", 1)[-1]
    dest = dest_dir / name
    if check_integrity(str(dest), md5):
        return dest
    if mirrors:
        url = mirrors[0].rstrip("/") + "/" + name
    part = dest_dir / (name + ".part")
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        download_url(url, str(dest_dir), part.name, md5)
    except RuntimeError:
        got = md5sum(part) if part.is_file() else "no file"
        part.unlink(missing_ok=True)
        raise DataError(
            f"checksum mismatch for {name} downloaded from {url}: expected md5 {md5}, got {got}; "
            "the download is corrupt or the mirror serves a different file",
            "run the command again to retry the download; if it keeps failing, "
            "fetch the file by hand and point data.root at it",
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        part.unlink(missing_ok=True)
        raise DataError(
            f"could not download {name} from {url}: {getattr(err, 'reason', err)}",
            "check the network connection, or copy the dataset into a folder and pass "
            "data.root=FOLDER (or set REPLAB_DATA)",
        ) from None
    os.replace(part, dest)
    return dest


def verify(folder: Path, files: list[tuple[str, str]], archive: Path) -> None:
    """Check the md5 of every unpacked file torchvision lists; a mismatch is an error."""
    from torchvision.datasets.utils import check_integrity

    for name, md5 in files:
        if not check_integrity(str(folder / name), md5):
            raise DataError(
                f"{folder / name} unpacked from {archive} "
                f"{'fails its md5 check' if (folder / name).exists() else 'is missing'}",
                f"delete {archive} and {folder} and run again to download them afresh",
            )
