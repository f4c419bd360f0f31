"""Your own images: a folder in torchvision's ImageFolder layout (one subfolder per class).

``data.root: DIR`` names the folder. ``DIR/<class>/**/*.png`` is a labelled set whose
classes are the subfolder names in sorted order; images directly in ``DIR`` with no
subfolders make an unlabelled set (self-supervised tasks only). When ``DIR`` holds both
``train/`` and ``test/``, each is such a tree and they are the official train and test
splits (validation is carved from train by seed); otherwise test and validation are carved
from the whole folder by seed (``data.test_fraction``, ``data.val_fraction``).

The walk stays inside ``DIR``: a link (class folder, subfolder or image) is followed only
when it resolves to a place inside ``DIR``; one that leads out of it (``/proc``, another
dataset) is an error naming the link, and so is one that leads to a folder already read (a
link to a parent or to another class: a cycle, or every image twice).

Images (PNG, JPEG, BMP, WebP, TIFF; any sizes) are decoded once, in parallel threads, into
one uint8 (N, C, H, W) tensor, each to the values Pillow decodes (torchvision's faster
decoder where it gives the same: 8-bit grey or colour JPEG), by these rules:

- grey modes (1, L, LA, I;16, I, F) give one channel, every other mode (P, RGB, RGBA,
  CMYK, YCbCr) three, converted as Pillow's ``convert("RGB")`` does; ``data.channels`` asks
  for 1 (luma, Pillow's ``convert("L")``) or 3;
- the alpha channel is dropped (not composited): LA gives its L, RGBA its RGB;
- 16-bit samples (I;16, 16-bit PNGs and TIFFs) keep their high byte, value // 256, as
  Pillow reads 16-bit colour: an 8-bit image stored as 16 bits (x * 257) comes back exactly;
  32-bit integer images (I) are read as 16-bit samples and must hold 0..65535; 32-bit float
  images (F) must be in [0, 1], scaled by 255 and rounded, like float arrays of an npz;
- a file of several frames (an animated GIF or PNG, a multi-page TIFF) is refused, naming the
  file and its frame count: replab reads still images;
- an image declaring more pixels than ``REPLAB_MAX_IMAGE_PIXELS`` (default Pillow's
  89,478,485) is refused before it is decoded, and so is a folder whose declared images
  would not fit the memory available (``replab.data.limits``).

Every file is checked; the refused ones then stop the load with one error that counts them
and names the first few (an empty file included), or, with ``data.skip_corrupt``, are
skipped and counted. The decoded tensor is cached under the replab cache keyed by each
file's path, size and a hash of its bytes (so a rewritten image is decoded again even when
its size and modification time were restored) and the decoding options; a second run hashes
the files and reads the tensor back instead of decoding.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from replab.data.base import UNLABELLED, DatasetSource, ImageSet
from replab.data.convert import cache_key, read_cached, to_channels, write_cached
from replab.data.limits import PIXELS_VARIABLE, available_memory, gib, max_image_pixels
from replab.data.load import cache_dir
from replab.data.registry import DATASETS
from replab.errors import DataError
from replab.io import warn

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
FORMATS = "PNG, JPEG, BMP, WebP or TIFF"
CACHE_VERSION = 2  # bump when the decoded form changes, so old cache files are not reused
CACHE_FOLDER = "image_folder"
HASH_BLOCK = 1 << 20
DEPRECATED = "The image decoding and encoding capabilities of TorchVision are deprecated"
GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;16S")
SKIP = "set data.skip_corrupt=true to skip unusable images"


def is_image(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS and not path.name.startswith(".")


@DATASETS.register("image_folder")
class ImageFolder(DatasetSource):
    name = "image_folder"
    title = "image folder"
    shape = ()  # type: ignore[assignment]  # whatever the images are
    has_test_split = False
    user_path = True

    def locate(self, root: Path) -> Path | None:
        return root if root.is_dir() else None

    def test_split(self, folder: Path | None) -> bool:
        assert folder is not None
        return (folder / "train").is_dir() and (folder / "test").is_dir()

    def load_split(self, folder: Path | None, split: str) -> ImageSet:
        assert folder is not None
        tree = folder if split == "all" else folder / split
        classes = None
        if split == "test":  # labelled by train's classes, so label i means one class in both
            classes = _class_names(folder / "train")
        files, labels, names = scan(tree, classes, root=folder)
        return self._decode_cached(tree, files, labels, names)

    def _decode_cached(
        self, tree: Path, files: list[Path], labels: list[int], classes: list[str]
    ) -> ImageSet:
        sizes = [f.stat().st_size for f in files]
        key = cache_key(
            {
                "version": CACHE_VERSION,
                "tree": str(tree.resolve()),
                # the bytes' hash, not the modification time: a rewritten image whose size and
                # mtime were restored (os.utime) is still a different image
                "files": [
                    [str(f.relative_to(tree)), size, digest]
                    for f, size, digest in zip(files, sizes, digests(files), strict=True)
                ],
                "labels": labels,
                "classes": classes,
                "image_size": self.image_size,
                "channels": self.channels,
                "skip_corrupt": self.skip_corrupt,
                "max_pixels": max_image_pixels(),  # a lowered limit checks every image again
            }
        )
        path = cache_dir() / CACHE_FOLDER / f"{key}.pt"
        what = f"{len(classes)} classes" if classes else "unlabelled"
        cached = read_cached(path)
        if cached is not None and _valid(cached):
            images, kept = cached["images"], cached["labels"]
            skipped = cached["skipped"]
            how = f"decoded images read from the cache {path}"
        else:
            start = time.perf_counter()
            images, index, skipped = decode(
                files, self.image_size, self.channels, self.skip_corrupt
            )
            kept = torch.tensor(labels, dtype=torch.int64)[index]
            seconds = time.perf_counter() - start
            rate = len(files) / max(seconds, 1e-9)
            saved = write_cached(path, {"images": images, "labels": kept, "skipped": skipped})
            how = f"decoded in {seconds:.1f} s ({rate:,.0f} images/s)" + (
                "; cached for the next run" if saved else "; the cache could not be written"
            )
        skip = ""
        if skipped:
            skip = (
                f"; skipped {len(skipped)} unreadable image(s) (data.skip_corrupt), "
                f"first {skipped[0]}"
            )
            warn(f"{tree}: {skip[2:]}")
        return ImageSet(
            images,
            kept,
            list(classes),
            source=f"image folder {tree} ({len(kept):,} images, {what}; {how}{skip})",
        )


def _valid(cached: dict) -> bool:
    images, labels = cached.get("images"), cached.get("labels")
    return (
        isinstance(images, torch.Tensor)
        and isinstance(labels, torch.Tensor)
        and images.dtype == torch.uint8
        and images.ndim == 4
        and len(images) == len(labels)
        and isinstance(cached.get("skipped"), list)
    )


def digest(path: Path) -> str:
    """A hash of the file's bytes (read in chunks); "" when it cannot be read (the decode
    then names the file)."""
    hasher = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb", buffering=0) as file:
            while block := file.read(HASH_BLOCK):
                hasher.update(block)
    except OSError:
        return ""
    return hasher.hexdigest()


def digests(files: list[Path]) -> list[str]:
    """``digest`` of every file, in parallel threads (hashlib releases the GIL)."""
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        return list(pool.map(digest, files, chunksize=64))


# --- walking the folder: never out of it, never twice into one folder ------------------------


def _visible(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise DataError(
            f"cannot read the image folder {str(folder)!r}: {err.strerror or err}",
            "check the path and its permissions (data.root)",
        ) from None


def _class_names(tree: Path) -> list[str]:
    return [p.name for p in _visible(tree) if p.is_dir()]


def _real(path: Path) -> Path:
    """Where ``path`` leads, every link followed; an error for a loop or a missing target."""
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError) as err:
        raise DataError(
            f"{str(path)!r} is a link that cannot be followed "
            f"({getattr(err, 'strerror', None) or err}: a link loop or a missing target)",
            "remove the link, or point it at a file or folder inside data.root",
        ) from None


def _contained(path: Path, top: Path) -> Path:
    """``path`` resolved, refused unless it lies inside ``top`` (the resolved data.root)."""
    real = _real(path)
    if not real.is_relative_to(top):
        raise DataError(
            f"{str(path)!r} is a link to {str(real)!r}, outside the image folder {str(top)!r}",
            "replace the link with a copy of what it points to, or remove it: "
            "replab reads only what lies inside data.root",
        )
    return real


def _enter(folder: Path, seen: set[Path]) -> None:
    """Mark ``folder`` as read; an error when it was read before (a cycle, or a duplicate)."""
    real = _real(folder)
    if real in seen:
        raise DataError(
            f"{str(folder)!r} leads to {str(real)!r}, a folder already read "
            "(a link to a parent or to another class folder: its images would be read twice)",
            "remove that link, so that every image is reached once",
        )
    seen.add(real)


def _images_under(folder: Path, top: Path, seen: set[Path]) -> list[Path]:
    """The image files under ``folder`` (hidden names skipped), following only the links that
    stay inside ``top`` and entering no folder twice."""
    found: list[Path] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        _enter(current, seen)
        for path in _visible(current):
            is_dir = path.is_dir()  # follows links
            if path.is_symlink() and (is_dir or is_image(path)):
                _contained(path, top)  # also refuses a loop or a missing target
            if is_dir:
                stack.append(path)
            elif is_image(path) and path.is_file():
                found.append(path)
    return sorted(found)


def scan(
    tree: Path, classes: list[str] | None = None, root: Path | None = None
) -> tuple[list[Path], list[int], list[str]]:
    """The image files of ``tree``, their labels and the class names (none: unlabelled).

    Nothing outside ``root`` (default ``tree``; data.root when ``tree`` is its train/ or
    test/) is read: links leading out of it are refused, and so is a second way into a folder.
    """
    if not tree.is_dir():
        raise DataError(f"{str(tree)!r} is not a folder", "point data.root at a folder of images")
    top = _real(root if root is not None else tree)
    seen = {_contained(tree, top)}
    entries = _visible(tree)
    folders = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if p.is_file() and is_image(p)]
    for path in folders + loose:
        if path.is_symlink():
            _contained(path, top)
    if not folders:
        if not loose:
            raise DataError(
                f"no images in {str(tree)!r} (looked for {FORMATS} files)",
                "put the images in one subfolder per class (DIR/cat/1.png), "
                "or directly in the folder for an unlabelled set",
            )
        return loose, [UNLABELLED] * len(loose), []
    if loose:
        raise DataError(
            f"{str(tree)!r} holds both class subfolders and {len(loose)} image(s) outside them "
            f"(e.g. {loose[0].name})",
            "move every image into its class's subfolder, or remove the subfolders "
            "for an unlabelled set",
        )
    names = classes if classes is not None else [p.name for p in folders]
    files: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        if folder.name not in names:
            raise DataError(
                f"{str(folder)!r} is a class that {str(tree.parent / 'train')!r} does not have",
                "give train/ a subfolder for every class of test/ (or remove this one)",
            )
        found = _images_under(folder, top, seen)
        if not found:
            raise DataError(
                f"the class folder {str(folder)!r} holds no images (looked for {FORMATS} files)",
                "add its images, or delete the empty folder",
            )
        files += found
        labels += [names.index(folder.name)] * len(found)
    return files, labels, list(names)


# --- decoding: every image to its values, memory bounded by what the files declare -----------


def workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Unusable(Exception):
    """One image that cannot be used: ``problem`` names it, ``reason`` is the short form
    listed among the skipped images."""

    def __init__(self, path: Path, reason: str, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.path, self.reason, self.problem, self.fix = path, reason, problem, fix


class OverBudget(Exception):
    """The images decoded so far and this one declare more than the memory allows."""


@dataclass
class Budget:
    """Bytes the decoded images may take together; each image takes its share before it is
    decoded, from its header, so a folder that would not fit stops at the first image over."""

    limit: int
    used: int = 0
    over: Path | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def take(self, nbytes: int, path: Path) -> None:
        with self._lock:
            if self.over is not None or self.used + nbytes > self.limit:
                self.over = self.over or path
                raise OverBudget
            self.used += nbytes


def decode(
    files: list[Path], size: int | None, channels: int | None, skip_corrupt: bool = False
) -> tuple[torch.Tensor, list[int], list[str]]:
    """Decode ``files`` in parallel threads into one uint8 (N, C, H, W) tensor.

    Returns the images, the indices of ``files`` they came from, and the files skipped as
    unusable (only with ``skip_corrupt``; otherwise the first one is a DataError).
    """
    limit = max_image_pixels()
    _pillow_allows(limit)
    memory = available_memory()
    # the decoded images and the one tensor they are stacked into: half the memory each
    budget = Budget(memory // 2)

    def one(path: Path) -> torch.Tensor | Unusable | None:
        try:
            if path.stat().st_size == 0:
                return Unusable(
                    path,
                    "empty file, 0 bytes",
                    f"the image {path} is an empty file (0 bytes)",
                    f"replace or delete that file, or {SKIP}",
                )
            return _read(path, size, channels, limit, budget)
        except Unusable as err:
            return err
        except OverBudget:
            return None
        except (OSError, ValueError, SyntaxError, RuntimeError, EOFError) as err:
            reason = _plain(err)
            return Unusable(
                path,
                reason,
                f"cannot decode the image {path}: {reason} (corrupt, truncated or not an image)",
                f"replace or delete that file, or {SKIP}",
            )

    # Pillow's decoders and torchvision's resize run in C without the GIL, so threads decode
    # in parallel; chunks keep each task large enough that the pool's own overhead stays small.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's palette and bomb warnings: refused or fine
        with ThreadPoolExecutor(max_workers=workers()) as pool:
            results = list(pool.map(one, files, chunksize=64))
    if budget.over is not None:
        raise DataError(
            f"the {len(files):,} images declare more than {gib(budget.limit)} once decoded "
            f"(half the memory available, {gib(memory)}); the image over the limit is "
            f"{budget.over}",
            "pack the folder into shards and stream it (replab data pack image_folder --root "
            "DIR --out SHARDS, then data.dataset=shards data.root=SHARDS), set "
            "data.image_size=N to shrink every image as it is decoded, or use fewer images",
        )
    return _kept(files, results, skip_corrupt)


def _kept(
    files: list[Path], results: list, skip_corrupt: bool
) -> tuple[torch.Tensor, list[int], list[str]]:
    images: list[torch.Tensor] = []
    index: list[int] = []
    skipped: list[str] = []
    unusable = [result for result in results if isinstance(result, Unusable)]
    if unusable and not skip_corrupt:
        _refuse(unusable, len(files))
    for i, result in enumerate(results):
        if isinstance(result, Unusable):
            skipped.append(f"{result.path}: {result.reason}")
        else:
            images.append(result)
            index.append(i)
    if not images:
        raise DataError(
            f"none of the {len(files):,} images could be decoded (first: {skipped[0]})",
            f"check that the files are {FORMATS} images",
        )
    return _stack(images, [files[i] for i in index]), index, skipped


NAMED = 5  # the unusable images a message names; the count says how many there are in all


def _refuse(unusable: list[Unusable], total: int) -> None:
    """One error for every unusable image of the folder (each file was checked), so a second
    run does not find the next one: the count, the first few with their reasons, the way out."""
    if len(unusable) == 1:
        raise DataError(unusable[0].problem, unusable[0].fix)
    named = "; ".join(f"{u.path} ({u.reason})" for u in unusable[:NAMED])
    more = f"; and {len(unusable) - NAMED:,} more" if len(unusable) > NAMED else ""
    raise DataError(
        f"{len(unusable):,} of the {total:,} images cannot be used: {named}{more}",
        f"replace or delete those files, or {SKIP}",
    )


def _pillow_allows(limit: int) -> None:
    """Pillow refuses images over twice its own limit in ``Image.open``; a limit raised with
    REPLAB_MAX_IMAGE_PIXELS raises Pillow's too (replab checks its own, below)."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit


# where a C++ library raised its error ("decode_jpeg, /__w/vision/.../decode_jpeg.cpp:171, "):
# a reader needs what is wrong with the file, not where the decoder noticed it
_CODE_PLACE = re.compile(r"^\w+, \S+\.(?:cpp|cc|c|h):\d+, ")


def _plain(err: BaseException) -> str:
    """The first line of a decoder's error, without its source location."""
    if type(err).__name__ == "UnidentifiedImageError":  # its text repeats the path
        return f"not a {FORMATS} image"
    first = (str(err).splitlines() or [""])[0]
    return _CODE_PLACE.sub("", first).strip() or type(err).__name__


def _too_large(path: Path, declared: str, limit: int) -> Unusable:
    return Unusable(
        path,
        f"declares {declared} pixels, over the limit of {limit:,}",
        f"the image {path} declares {declared} pixels, more than the {limit:,} "
        "an image may have (a decompression bomb, or a very large image)",
        f"shrink or delete it, {SKIP}, or raise the limit with {PIXELS_VARIABLE}=N",
    )


def _read(
    path: Path, size: int | None, channels: int | None, limit: int, budget: Budget
) -> torch.Tensor:
    """One image as uint8 (C, H, W): checked from its header (pixels, frames, memory) before
    its pixels are decoded."""
    from PIL import Image

    try:
        img = Image.open(path)
    except Image.DecompressionBombError as err:  # over twice Pillow's own limit
        found = re.search(r"\((\d+) pixels\)", str(err))
        raise _too_large(path, f"{int(found[1]):,}" if found else "too many", limit) from None
    with img:
        width, height = img.size
        if width * height > limit:
            raise _too_large(path, f"{width}x{height} = {width * height:,}", limit)
        frames = getattr(img, "n_frames", 1)
        if frames > 1:
            raise Unusable(
                path,
                f"{frames} frames ({img.format})",
                f"the image {path} holds {frames} frames (an animated or multi-page "
                f"{img.format}, whatever its name); replab reads still images",
                f"save the frame you want as an image of its own, or {SKIP}",
            )
        grey = img.mode in GREY_MODES
        out = (channels or (1 if grey else 3)) * (size or height) * (size or width)
        budget.take(out, path)
        fast = _fast(img, channels)
        array = None if fast else _values(img, path, channels)
    if array is None:
        image = _decode_fast(path, channels)
    else:
        image = torch.from_numpy(array)
        image = image[None] if image.ndim == 2 else image.permute(2, 0, 1).contiguous()
    if size is not None and tuple(image.shape[1:]) != (size, size):
        from torchvision.transforms.v2 import functional as tvf

        image = tvf.resize(image, [size, size], antialias=True)
    return image


def _fast(img, channels: int | None) -> bool:
    """Whether torchvision's decoder (C++, without the GIL: twice Pillow's rate on small
    JPEGs) gives the very values Pillow would: 8-bit grey or RGB JPEG, with no conversion to
    grey. PNGs go through Pillow: on a damaged PNG torchvision lets libpng print its own
    `libpng error` line to stderr, and in torchvision 0.29 it then crashes the process."""
    mode = img.mode
    ok = img.format == "JPEG" and mode in ("L", "RGB")
    native = 1 if mode == "L" else 3
    return ok and (channels is None or channels == native or channels == 3)


def _decode_fast(path: Path, channels: int | None) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image, read_file

    # torchvision 0.29 deprecates its decoders in favour of TorchCodec (which replab does not
    # depend on) and warns on every image; they still decode correctly, so say it never.
    warnings.filterwarnings("ignore", DEPRECATED, DeprecationWarning)
    image = decode_image(read_file(str(path)), mode=ImageReadMode.UNCHANGED)
    if image.shape[0] in (2, 4):  # the alpha channel is dropped
        image = image[: image.shape[0] - 1]
    if channels == 3 and image.shape[0] == 1:
        image = image.expand(3, -1, -1).contiguous()
    return image


def _values(img, path: Path, channels: int | None) -> np.ndarray:
    """The pixels of the open Pillow image as uint8 (H, W) or (H, W, 3), as the module's
    docstring says: alpha dropped, 16-bit by its high byte, float from [0, 1]."""
    mode = img.mode
    if mode == "I" or mode == "F" or mode.startswith("I;16"):
        grey = _deep(np.asarray(img), path, mode)
        return np.repeat(grey[..., None], 3, axis=2) if channels == 3 else grey
    want = {1: "L", 3: "RGB"}.get(channels or 0) or ("L" if mode in GREY_MODES else "RGB")
    if mode != want:
        try:
            img = img.convert(want)
        except ValueError as err:  # a mode Pillow reads but cannot convert (LAB, HSV)
            raise Unusable(
                path,
                f"mode {mode}",
                f"the image {path} is in mode {mode}, which Pillow cannot convert to {want} "
                f"({err})",
                f"save it as RGB or greyscale, or {SKIP}",
            ) from None
    return np.asarray(img)


def _deep(array: np.ndarray, path: Path, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer and float samples as uint8 (see the module's docstring)."""
    lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if array.dtype.kind == "f":
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 1:
            raise _out_of_range(path, mode, lo, hi, "float images must be in [0, 1]")
        return np.rint(array * 255).astype(np.uint8)
    if lo < 0 or hi > 65535:
        raise _out_of_range(path, mode, lo, hi, "integer images are read as 16-bit, 0..65535")
    return (array.astype(np.uint16) >> 8).astype(np.uint8)


def _out_of_range(path: Path, mode: str, lo: float, hi: float, rule: str) -> Unusable:
    return Unusable(
        path,
        f"mode {mode} values from {lo:g} to {hi:g}",
        f"the image {path} (mode {mode}) has values from {lo:g} to {hi:g}; {rule}",
        f"save it as an 8-bit or 16-bit image, or {SKIP}",
    )


def _stack(images: list[torch.Tensor], files: list[Path]) -> torch.Tensor:
    """One tensor: colour wins when grey and colour images are mixed; sizes must agree."""
    sizes: dict[tuple[int, int], Path] = {}
    for image, path in zip(images, files, strict=True):
        sizes.setdefault(tuple(image.shape[1:]), path)  # type: ignore[arg-type]
        if len(sizes) > 1:
            (a, pa), (b, pb) = list(sizes.items())[:2]
            raise DataError(
                f"the images differ in size: {pa} is {a[1]}x{a[0]} but {pb} is {b[1]}x{b[0]}",
                "set data.image_size=N to resize every image to NxN",
            )
    channels = max(image.shape[0] for image in images)
    out = torch.empty((len(images), channels, *images[0].shape[1:]), dtype=torch.uint8)
    for i, image in enumerate(images):
        out[i] = image if image.shape[0] == channels else to_channels(image[None], channels)[0]
    return out
