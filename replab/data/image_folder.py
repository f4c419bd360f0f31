"""Your own images: a folder in torchvision's ImageFolder layout (one subfolder per class).

``data.root: DIR`` names the folder. ``DIR/<class>/**/*.png`` is a labelled set whose
classes are the subfolder names in sorted order; images directly in ``DIR`` with no
subfolders make an unlabelled set (self-supervised tasks only). When ``DIR`` holds both
``train/`` and ``test/``, each is such a tree and they are the official train and test
splits (validation is carved from train by seed); otherwise test and validation are carved
from the whole folder by seed (``data.test_fraction``, ``data.val_fraction``).

Images (PNG, JPEG, BMP, WebP; grey or colour; any sizes) are decoded once, in parallel
threads, into one uint8 (N, C, H, W) tensor, and that tensor is cached under the replab
cache keyed by the folder's file list, sizes and modification times and the decoding
options, so a second run reads it back instead of decoding.
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from replab.data.base import UNLABELLED, DatasetSource, ImageSet
from replab.data.convert import cache_key, read_cached, to_channels, write_cached
from replab.data.load import cache_dir
from replab.data.registry import DATASETS
from replab.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
FORMATS = "PNG, JPEG, BMP or WebP"
CACHE_VERSION = 1  # bump when the decoded form changes, so old cache files are not reused
CACHE_FOLDER = "image_folder"
DEPRECATED = "The image decoding and encoding capabilities of TorchVision are deprecated"


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
        files, labels, names = scan(tree, classes)
        return self._decode_cached(tree, files, labels, names)

    def _decode_cached(
        self, tree: Path, files: list[Path], labels: list[int], classes: list[str]
    ) -> ImageSet:
        stats = [f.stat() for f in files]
        key = cache_key(
            {
                "version": CACHE_VERSION,
                "tree": str(tree.resolve()),
                "files": [
                    [str(f.relative_to(tree)), s.st_size, s.st_mtime_ns]
                    for f, s in zip(files, stats, strict=True)
                ],
                "labels": labels,
                "classes": classes,
                "image_size": self.image_size,
                "channels": self.channels,
                "skip_corrupt": self.skip_corrupt,
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


def scan(tree: Path, classes: list[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    """The image files of ``tree``, their labels and the class names (none: unlabelled)."""
    if not tree.is_dir():
        raise DataError(f"{str(tree)!r} is not a folder", "point data.root at a folder of images")
    entries = _visible(tree)
    folders = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if p.is_file() and is_image(p)]
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
        found = sorted(
            p
            for p in folder.rglob("*")
            if is_image(p)
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        if not found:
            raise DataError(
                f"the class folder {str(folder)!r} holds no images (looked for {FORMATS} files)",
                "add its images, or delete the empty folder",
            )
        files += found
        labels += [names.index(folder.name)] * len(found)
    return files, labels, list(names)


def workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def decode(
    files: list[Path], size: int | None, channels: int | None, skip_corrupt: bool = False
) -> tuple[torch.Tensor, list[int], list[str]]:
    """Decode ``files`` in parallel threads into one uint8 (N, C, H, W) tensor.

    Returns the images, the indices of ``files`` they came from, and the files skipped as
    unreadable (only with ``skip_corrupt``; otherwise the first one is a DataError).
    """
    from torchvision.io import ImageReadMode

    # torchvision 0.29 deprecates its decoders in favour of TorchCodec (which replab does not
    # depend on) and warns on every image; they still decode correctly, so say it never.
    warnings.filterwarnings("ignore", DEPRECATED, DeprecationWarning)

    mode = {1: ImageReadMode.GRAY, 3: ImageReadMode.RGB}.get(channels or 0, ImageReadMode.UNCHANGED)

    def one(path: Path) -> torch.Tensor | str:
        try:
            image = _read(path, mode, channels)
        except (RuntimeError, OSError, ValueError, SyntaxError) as err:
            return f"{path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        if image.shape[0] in (2, 4):  # the alpha channel is not part of the image
            image = image[: image.shape[0] - 1]
        if size is not None and tuple(image.shape[1:]) != (size, size):
            from torchvision.transforms.v2 import functional as tvf

            image = tvf.resize(image, [size, size], antialias=True)
        return image

    # torchvision's decoders and resize run in C++ without the GIL, so threads decode in
    # parallel; chunks keep each task large enough that the pool's own overhead stays small.
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        results = list(pool.map(one, files, chunksize=64))
    images: list[torch.Tensor] = []
    index: list[int] = []
    skipped: list[str] = []
    for i, result in enumerate(results):
        if isinstance(result, str):
            if not skip_corrupt:
                raise DataError(
                    f"cannot decode the image {result} (corrupt, truncated or not an image)",
                    "replace or delete that file, "
                    "or set data.skip_corrupt=true to skip unreadable images",
                )
            skipped.append(result)
        else:
            images.append(result)
            index.append(i)
    if not images:
        raise DataError(
            f"none of the {len(files):,} images could be decoded (first: {skipped[0]})",
            "check that the files are PNG, JPEG, BMP or WebP images",
        )
    return _stack(images, [files[i] for i in index]), index, skipped


def _read(path: Path, mode, channels: int | None) -> torch.Tensor:
    if path.suffix.lower() == ".bmp":  # torchvision's decoders do not read BMP; PIL does
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            want = {1: "L", 3: "RGB"}.get(channels or 0)
            if want is None:
                want = "L" if img.mode in ("1", "L", "I;16", "I", "LA") else "RGB"
            array = np.asarray(img.convert(want))
        tensor = torch.from_numpy(array.copy())
        return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
    from torchvision.io import decode_image, read_file

    return decode_image(read_file(str(path)), mode=mode)


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
