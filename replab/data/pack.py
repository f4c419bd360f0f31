"""``replab data pack``: any dataset replab reads, written as WebDataset tar shards.

The splits are carved exactly as a resident run with the same seed carves them
(``load_splits``; for an image folder, ``stratified_split`` on the same labels), then each
split is written in a seeded shuffled order (``sample_order``) to ``{split}-{i:06d}.tar``
shards beside one ``index.json`` (``replab.data.shard_index``). Tensors are written as
lossless PNG; an image folder's files keep their bytes, each checked by a full decode first.

A pack is deterministic: the same source, options and seed give byte-identical shards and
index. Nothing is written to the output folder before every image has been read or checked;
shards are written under temporary names and the index is written last, atomically, so an
interrupted pack never leaves an index naming missing or half-written shards.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
import tarfile
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from replab.data.base import ImageSet
from replab.data.image_folder import GREY_MODES, NAMED, ImageFolder, Unusable, scan, workers
from replab.data.limits import PIXELS_VARIABLE, max_image_pixels
from replab.data.load import load_splits, locate_or_fetch
from replab.data.registry import DATASETS
from replab.data.shard_index import (
    IMAGE_EXTENSIONS,
    INDEX,
    SPLITS,
    ShardEntry,
    ShardIndex,
    SplitIndex,
)
from replab.data.splits import stratified_split
from replab.errors import ConfigError, DataError
from replab.io import (
    LOCK_FILE,
    TMP_SUFFIX,
    atomic_write_text,
    folder_lock,
    progress_bar,
    warn,
    write_error,
)

# tar's unit and the record a tar file is padded to (tarfile's BLOCKSIZE and RECORDSIZE)
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
MIN_SHARD_BYTES = RECORD  # the smallest tar file there is: a shard below it is one sample each
SHARD_NAME = re.compile(r"^(train|val|test)-\d{6}\.tar$")
SKIP_FIX = "pass --skip-corrupt (skip_corrupt=True) to leave them out"


def pack(
    dataset: str,
    out: Path,
    *,
    root: str | None = None,
    shard_bytes: int = 1 << 30,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    classes: list[str] | None = None,
    skip_corrupt: bool = False,
    progress: bool = True,
) -> ShardIndex:
    """Pack ``dataset`` (a registered name; ``root`` as data.root) into shards in ``out``.

    Validation (and test, where the source has no test split) is carved as a run with
    ``seed``, ``val_fraction`` and ``test_fraction`` carves it; ``classes`` keeps those
    classes only (relabelled 0..n-1 in that order). A shard is closed before the next sample
    would take it past ``shard_bytes``; it always holds at least one sample. Unreadable
    images of an image folder stop the pack before ``out`` is touched, or with
    ``skip_corrupt`` are left out and counted. Returns the index written to ``out/index.json``.
    """
    out = Path(out).expanduser()
    _check_options(shard_bytes, val_fraction, test_fraction)
    _check_out(out)
    kwargs = dict(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    source = DATASETS.get(dataset)()
    if source.name == "shards":  # streamed, not held: and packing a pack is only a copy
        raise ConfigError(
            f"{dataset!r} is a packed dataset already",
            "copy its folder, or pack the dataset it was packed from (its index.json's source)",
        )
    if isinstance(source, ImageFolder):
        plan = _folder_plan(source, root, classes, skip_corrupt, progress, **kwargs)
    else:
        plan = _tensor_plan(dataset, root, classes, skip_corrupt, **kwargs)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "packed dataset"):
        return _write(out, plan, shard_bytes, progress)


def sample_order(count: int, seed: int, split: str) -> torch.Tensor:
    """The order a split of ``count`` samples is written in: the sample with key ``k`` is
    image ``sample_order(count, seed, split)[k]`` of the split as a run carves it (the
    ``load_splits`` split with the same seed). Seeded by ``seed`` and the split's name, so the
    head of every split is a random sample of it and a pack is reproducible."""
    mixed = hashlib.sha256(f"replab-pack:{seed}:{split}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(mixed[:8], "big") >> 1)
    return torch.randperm(count, generator=generator)


# --- checks made before anything is read or written ------------------------------------------


def _check_options(shard_bytes: int, val_fraction: float, test_fraction: float) -> None:
    if shard_bytes < MIN_SHARD_BYTES:
        raise ConfigError(
            f"a shard size of {shard_bytes:,} bytes is below the smallest tar file "
            f"({MIN_SHARD_BYTES:,} bytes)",
            "give a shard size such as 512MB or 1GB (at least 10KB)",
        )
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise ConfigError(
                f"{name}={value} is not a fraction between 0 and 1", "give e.g. 0.1 or 0.2"
            )
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} leave no training "
            "images",
            "lower one of them so that they sum to less than 1",
        )


def _ours(path: Path) -> bool:
    """A file a pack writes: its index, a shard, a temporary shard or index, the lock."""
    name = path.name
    temporary = name.startswith(".") and name.endswith(TMP_SUFFIX)
    return name in (INDEX, LOCK_FILE) or bool(SHARD_NAME.match(name)) or temporary


def _check_out(out: Path) -> None:
    """``out`` may be new, empty, a previous pack (it has an index) or what an interrupted
    pack left (only shards and temporary files); anything else is someone's folder."""
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"--out {out} is a file, not a folder", "name a new or empty folder for the shards"
        )
    if not out.is_dir() or (out / INDEX).is_file():
        return
    others = sorted(p.name for p in out.iterdir() if not _ours(p))
    if others:
        raise ConfigError(
            f"--out {out} is a folder that holds other files ({', '.join(others[:3])}"
            + (", ..." if len(others) > 3 else "")
            + f") and no {INDEX}: it is not a packed dataset",
            "name a new or empty folder (a previous pack's folder is overwritten)",
        )


# --- what to write: each split's labels and samples, in the order they are written -----------


@dataclass
class _Part:
    """One split, in written order: its labels and a reader of its k-th sample."""

    labels: list[int]
    read: Callable[[int], tuple[str, bytes]]  # k -> (extension, encoded image)


@dataclass
class _Plan:
    title: str
    source: str
    classes: list[str]
    shape: list[int] | None
    seed: int
    val_fraction: float
    test_fraction: float | None  # None: the source's own test split was packed
    skipped: int
    parts: dict[str, _Part]


def _tensor_plan(
    dataset: str,
    root: str | None,
    classes: list[str] | None,
    skip_corrupt: bool,
    **split: Any,
) -> _Plan:
    """A source read into memory as a run reads it, each image to be written as PNG."""
    splits = load_splits(dataset, root=root, classes=classes, skip_corrupt=skip_corrupt, **split)
    train = splits.train
    assert isinstance(train, ImageSet)  # only packed shards stream, and they are no source
    source = DATASETS.get(dataset)()
    official = source.test_split(locate_or_fetch(source, root, download=False))
    parts = {
        name: _tensor_part(part, split["seed"], name)
        for name, part in (("train", train), ("val", splits.val), ("test", splits.test))
        if isinstance(part, ImageSet)
    }
    return _Plan(
        title=splits.title,
        source=splits.source,
        classes=list(train.classes),
        shape=list(train.shape),
        seed=split["seed"],
        val_fraction=split["val_fraction"],
        test_fraction=None if official else split["test_fraction"],
        skipped=0,
        parts=parts,
    )


def _tensor_part(part: ImageSet, seed: int, split: str) -> _Part:
    order = sample_order(len(part), seed, split)
    images = part.images

    def read(k: int) -> tuple[str, bytes]:
        return "png", png(images[int(order[k])])

    return _Part([int(part.labels[i]) for i in order], read)


def png(image: torch.Tensor) -> bytes:
    """A uint8 (C, H, W) image as lossless PNG bytes (1 channel: mode L, 3: RGB); Pillow's
    encoder gives the same bytes on every call."""
    from PIL import Image

    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise DataError(
            f"an image of shape {tuple(image.shape)} ({image.dtype}) cannot be written as PNG",
            "pack images of 1 or 3 uint8 channels (data.channels converts them)",
        )
    array = image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array, "L" if image.shape[0] == 1 else "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


# --- an image folder: files kept as they are, each checked by decoding it --------------------

Sample = tuple[Path, int]  # an image file and its label
Shape = tuple[int, int, int]


def _folder_plan(
    source: ImageFolder,
    root: str | None,
    classes: list[str] | None,
    skip_corrupt: bool,
    progress: bool,
    **split: Any,
) -> _Plan:
    """The folder's files, carved as ``load_splits`` carves the decoded folder (the same
    labels in the same order), each checked by a full decode first."""
    folder = locate_or_fetch(source, root, download=False)
    assert folder is not None  # a user_path source always has one, or an error said why
    official = source.test_split(folder)
    files, labels, names = scan(folder / "train" if official else folder, root=folder)
    pool = _pick(list(zip(files, labels, strict=True)), names, classes)
    test: list[Sample] | None = None
    if official:
        files, labels, _ = scan(folder / "test", names, root=folder)
        test = _pick(list(zip(files, labels, strict=True)), names, classes)
    names = list(classes) if classes is not None else names
    everything = [path for path, _ in pool + (test or [])]
    shapes, bad = _check_images(everything, progress)
    _refuse_or_skip(bad, len(everything), skip_corrupt)
    pool = [sample for sample in pool if sample[0] not in bad]
    test = None if test is None else [sample for sample in test if sample[0] not in bad]
    carved = _carve(pool, test, split["val_fraction"], split["test_fraction"], split["seed"])
    kept = len(everything) - len(bad)
    what = f"{len(names)} classes" if names else "unlabelled"
    return _Plan(
        title=source.title,
        source=f"image folder {folder}{' (train/ and test/)' if official else ''} "
        f"({kept:,} images, {what})",
        classes=names,
        shape=_common_shape([shape for path, shape in shapes.items() if path not in bad]),
        seed=split["seed"],
        val_fraction=split["val_fraction"],
        test_fraction=None if official else split["test_fraction"],
        skipped=len(bad),
        parts={name: _folder_part(part, split["seed"], name) for name, part in carved.items()},
    )


def _pick(samples: list[Sample], names: list[str], classes: list[str] | None) -> list[Sample]:
    """Only the samples of ``classes``, relabelled 0..n-1 in that order, by the rules (and
    errors) of ``ImageSet.select_classes``: the "images" handed to it are the samples'
    indices, so what it keeps says which samples to keep."""
    if classes is None:
        return samples
    if not names:
        raise ConfigError(
            f"--classes {' '.join(classes)} picks classes, but the folder has no labels",
            "remove --classes, or put the images in one subfolder per class",
        )
    index = torch.arange(len(samples)).view(-1, 1, 1, 1)
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    picked = ImageSet(index, labels, names).select_classes(classes)
    return [
        (samples[int(i)][0], int(label))
        for i, label in zip(picked.images.flatten(), picked.labels, strict=True)
    ]


def _carve(
    pool: list[Sample],
    test: list[Sample] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, list[Sample]]:
    """train/val/test as ``load_splits`` cuts them: val from the pool, and test too where
    the folder has no test/ of its own."""
    labels = torch.tensor([label for _, label in pool], dtype=torch.int64)
    if test is not None:
        val_idx, train_idx = stratified_split(labels, [val_fraction], seed)
    else:
        test_idx, val_idx, train_idx = stratified_split(labels, [test_fraction, val_fraction], seed)
        test = [pool[int(i)] for i in test_idx]
    carved = {
        "train": [pool[int(i)] for i in train_idx],
        "val": [pool[int(i)] for i in val_idx],
        "test": test,
    }
    for name, part in carved.items():
        if not part:
            raise DataError(
                f"the {name} split of the image folder is empty ({len(pool):,} images to carve "
                f"with val_fraction {val_fraction} and test_fraction {test_fraction})",
                "use more images, or raise the fraction so that every class gives one",
            )
    return carved


def _folder_part(samples: list[Sample], seed: int, split: str) -> _Part:
    ordered = [samples[int(i)] for i in sample_order(len(samples), seed, split)]

    def read(k: int) -> tuple[str, bytes]:
        path = ordered[k][0]
        try:
            return path.suffix.lower()[1:], path.read_bytes()
        except OSError as err:
            raise DataError(
                f"cannot read the image {path} while packing: {err.strerror or err}",
                "leave the folder unchanged while it is packed, then pack again",
            ) from None

    return _Part([label for _, label in ordered], read)


def _common_shape(shapes: list[Shape]) -> list[int] | None:
    """The (C, H, W) the images decode to as a run decodes the folder (colour wins when grey
    and colour are mixed); None when their sizes differ."""
    sizes = {shape[1:] for shape in shapes}
    if len(sizes) != 1:
        return None
    (height, width), channels = sizes.pop(), max(shape[0] for shape in shapes)
    return [channels, height, width]


# --- checking an image: decoded in full by Pillow, under image_folder's rules ----------------


def _check_images(
    files: list[Path], progress: bool
) -> tuple[dict[Path, Shape], dict[Path, Unusable]]:
    """Each file's (C, H, W), or why it cannot be used; decoded in parallel threads (Pillow
    decodes without the GIL), one image at a time per thread, none of them kept."""
    limit = max_image_pixels()
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit  # a limit raised with REPLAB_MAX_IMAGE_PIXELS
    shapes: dict[Path, Shape] = {}
    bad: dict[Path, Unusable] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's palette and bomb warnings: refused or fine
        with ThreadPoolExecutor(max_workers=workers()) as pool:
            results = pool.map(lambda path: _inspect(path, limit), files, chunksize=16)
            bar = _bar(results, progress, total=len(files), desc="check")
            for path, result in zip(files, bar, strict=True):
                if isinstance(result, Unusable):
                    bad[path] = result
                else:
                    shapes[path] = result
    return shapes, bad


def _inspect(path: Path, limit: int) -> Shape | Unusable:
    """``path``'s (C, H, W) after a full decode, or why it cannot be used."""
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size == 0:
            return _unusable(path, "empty file, 0 bytes")
        with Image.open(path) as img:
            width, height = img.size
            if width * height > limit:
                return _unusable(path, f"declares {width}x{height} pixels, over {limit:,}")
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                return _unusable(path, f"{frames} frames ({img.format}): not a still image")
            img.load()  # every pixel: a truncated or damaged file fails here
            return _channels(img), height, width
    except Image.DecompressionBombError:
        return _unusable(path, f"declares more than {limit:,} pixels ({PIXELS_VARIABLE})")
    except UnidentifiedImageError:
        return _unusable(path, f"not an image ({', '.join(IMAGE_EXTENSIONS)})")
    except (OSError, ValueError, SyntaxError, RuntimeError, EOFError) as err:
        return _unusable(path, (str(err).splitlines() or [""])[0] or type(err).__name__)


def _channels(img: Any) -> int:
    """1 for grey modes, 3 for the rest, as image_folder decodes them; a ValueError for an
    image it refuses (float or integer values out of range, a mode without an RGB form)."""
    if img.mode in ("I", "F"):
        low, high = img.getextrema()
        top = 1.0 if img.mode == "F" else 65535
        if low < 0 or high > top:
            raise ValueError(f"mode {img.mode} values from {low} to {high}, not 0 to {top}")
    if img.mode in GREY_MODES:
        return 1
    if img.mode not in ("RGB", "RGBA", "P"):
        img.convert("RGB")  # LAB, HSV: modes Pillow reads but cannot convert
    return 3


def _unusable(path: Path, reason: str) -> Unusable:
    return Unusable(
        path, reason, f"cannot use the image {path}: {reason}", f"replace it, or {SKIP_FIX}"
    )


def _refuse_or_skip(bad: dict[Path, Unusable], total: int, skip_corrupt: bool) -> None:
    """One error naming every unusable image's count and the first few (each was checked, so
    a second pack does not find the next), or with ``skip_corrupt`` one warning."""
    if not bad:
        return
    unusable = list(bad.values())
    named = "; ".join(f"{u.path} ({u.reason})" for u in unusable[:NAMED])
    more = f"; and {len(unusable) - NAMED:,} more" if len(unusable) > NAMED else ""
    if len(unusable) == total:
        raise DataError(
            f"none of the {total:,} images can be used: {named}{more}",
            "check that the folder holds PNG, JPEG, BMP, WebP or TIFF images",
        )
    if not skip_corrupt:
        raise DataError(
            f"{len(unusable):,} of the {total:,} images cannot be used: {named}{more}",
            f"replace or delete those files, or {SKIP_FIX}",
        )
    warn(
        f"skipped {len(unusable):,} unusable image(s) of {total:,} (--skip-corrupt): {named}{more}"
    )


# --- writing: shards under temporary names, then the index, last and atomically --------------


def _watched(progress: bool) -> bool:
    """Whether to draw a bar: asked for, and a person watches (a terminal or a notebook)."""
    off = os.environ.get("REPLAB_PROGRESS", "").lower() == "off"
    return progress and not off and (sys.stderr.isatty() or "ipykernel" in sys.modules)


def _bar(iterable: Any, progress: bool, **options: Any) -> Any:
    return progress_bar(
        iterable, unit="img", leave=False, disable=not _watched(progress), **options
    )


def _write(out: Path, plan: _Plan, shard_bytes: int, progress: bool) -> ShardIndex:
    """Every split's shards, then the index naming them."""
    total = sum(len(part.labels) for part in plan.parts.values())
    bar = _bar(None, progress, total=total, desc="pack")
    shards: list[_Shard] = []
    try:
        splits = {}
        for name in SPLITS:
            part = plan.parts[name]
            entries = _write_split(out, name, part, shard_bytes, shards, bar.update)
            splits[name] = SplitIndex(
                count=len(part.labels), counts=_counts(part.labels, plan.classes), shards=entries
            )
        index = ShardIndex(
            title=plan.title,
            source=plan.source,
            classes=plan.classes,
            shape=plan.shape,
            seed=plan.seed,
            val_fraction=plan.val_fraction,
            test_fraction=plan.test_fraction,
            skipped=plan.skipped,
            splits=splits,
        )
        _publish(out, shards, index)
    finally:
        bar.close()
        for shard in shards:
            shard.discard()  # what an error left half-written; nothing once published
    return index


def _counts(labels: list[int], classes: list[str]) -> dict[str, int]:
    """Images per class name, in class order; empty for an unlabelled split."""
    counted = Counter(labels)
    return {name: counted[i] for i, name in enumerate(classes)}


def _write_split(
    out: Path,
    split: str,
    part: _Part,
    shard_bytes: int,
    shards: list[_Shard],
    advance: Callable[[], Any],
) -> list[ShardEntry]:
    """``part``'s samples in key order into ``{split}-{i:06d}.tar`` shards (temporary names
    until published), a new shard begun where the next sample would pass ``shard_bytes``."""
    entries: list[ShardEntry] = []
    shard: _Shard | None = None
    for key, label in enumerate(part.labels):
        ext, data = part.read(key)
        assert ext in IMAGE_EXTENSIONS, ext  # image_folder reads no other kind of file
        members = {f"{key:09d}.{ext}": data, f"{key:09d}.cls": str(label).encode("ascii")}
        if shard is not None and not shard.fits(members, shard_bytes):
            entries.append(shard.close())
            shard = None
        if shard is None:
            shard = _Shard(out, f"{split}-{len(entries):06d}.tar")
            shards.append(shard)
        shard.add(members)
        advance()
    assert shard is not None  # an empty split was refused before
    entries.append(shard.close())
    return entries


def _member_bytes(data: bytes) -> int:
    """What a file takes in a tar: its header block and its data padded to whole blocks."""
    return BLOCK + -(-len(data) // BLOCK) * BLOCK


def _tar_bytes(content: int) -> int:
    """A tar file's size for ``content`` bytes of members: two closing zero blocks, then
    padded to a whole record, as tarfile writes it."""
    return -(-(content + 2 * BLOCK) // RECORD) * RECORD


class _Shard:
    """One tar file written under a temporary name, its bytes counted and hashed on the way.

    Every member has the same metadata (mtime 0, owner 0 without names, mode 0444) in the
    USTAR format, so the same samples always give the same bytes."""

    def __init__(self, out: Path, name: str) -> None:
        # not ``name``: tarfile takes a file object's ``name`` for the archive's path
        self.filename, self.final = name, out / name
        self.temp = out / f".{name}{TMP_SUFFIX}"
        self.count = self.content = self.size = 0
        self.digest = hashlib.sha256()
        try:
            self.file: BinaryIO = open(self.temp, "wb")  # noqa: SIM115 (closed by close/discard)
        except OSError as err:
            raise _write_failed(self.temp, err) from None
        # typeshed asks the file object for read and seek too, which mode "w" never calls
        self.tar = tarfile.TarFile(
            fileobj=self,  # type: ignore[arg-type]
            mode="w",
            format=tarfile.USTAR_FORMAT,
        )

    # the file object tarfile writes to
    def write(self, data: bytes) -> int:
        try:
            self.file.write(data)
        except OSError as err:
            raise _write_failed(self.temp, err) from None
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def fits(self, members: dict[str, bytes], limit: int) -> bool:
        added = sum(_member_bytes(data) for data in members.values())
        return _tar_bytes(self.content + added) <= limit

    def add(self, members: dict[str, bytes]) -> None:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self.tar.addfile(info, io.BytesIO(data))
            self.content += _member_bytes(data)
        self.count += 1

    def close(self) -> ShardEntry:
        self.tar.close()  # the closing blocks and the record's padding, through write()
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
        except OSError as err:
            raise _write_failed(self.temp, err) from None
        assert self.size == _tar_bytes(self.content), (self.size, self.content)
        return ShardEntry(
            name=self.filename, count=self.count, bytes=self.size, sha256=self.digest.hexdigest()
        )

    def discard(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)


def _write_failed(path: Path, err: OSError) -> Exception:
    error = write_error(path, err)  # a full disk named as such
    return type(error)(error.problem, "free some space or choose another --out, then pack again")


def _publish(out: Path, shards: list[_Shard], index: ShardIndex) -> None:
    """The shards under their names, then the index. The old index goes first: from then
    until the new one is written the folder is no pack, so no index ever names a shard that
    is missing or has been replaced."""
    try:
        (out / INDEX).unlink(missing_ok=True)
        for shard in shards:
            os.replace(shard.temp, shard.final)
        names = {shard.filename for shard in shards}
        for path in out.iterdir():  # a previous pack's shards beyond this one's, and its temps
            stale = path.name.startswith(".") and path.name.endswith(TMP_SUFFIX)
            if (SHARD_NAME.match(path.name) and path.name not in names) or (
                stale and SHARD_NAME.match(path.name[1 : -len(TMP_SUFFIX)])
            ):
                path.unlink()
    except OSError as err:
        raise _write_failed(out, err) from None
    atomic_write_text(out / INDEX, index.model_dump_json(indent=2) + "\n")
