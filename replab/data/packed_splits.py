"""``data.dataset: shards``: a packed dataset's splits, held or streamed.

Validation (and test, where the source had none) were carved when the data was packed
(``index.json`` says with which seed and fraction); the run takes them as they are. The
training split is held in memory when ``data.resident`` says so or, with ``auto``, when the
decoded splits fit ``data.resident_budget`` of the memory free now; otherwise it streams.
Validation and test are held: they are what a run measures on every epoch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from replab.data.base import DatasetSource, ImageSet
from replab.data.limits import available_memory
from replab.data.registry import DATASETS
from replab.data.shard_index import INDEX
from replab.data.shards import Packed, is_url, open_packed
from replab.data.splits import stratified_head
from replab.data.stream import StreamSet
from replab.errors import ConfigError, DataError


@DATASETS.register("shards")
class Shards(DatasetSource):
    """Listed by ``replab datasets``; read by ``load_packed``, not through ``load_split``."""

    name = "shards"
    title = "packed shards (replab data pack; a folder or an http(s):// URL)"
    shape = ()  # type: ignore[assignment]  # the index says, per packed dataset
    user_path = True

    def locate(self, root: Path) -> Path | None:
        return root if (root / INDEX).is_file() else None


@dataclass(frozen=True)
class Residency:
    """Which splits are streamed (the others are held), and the figures that decided it."""

    streamed: tuple[str, ...]
    reason: str


def load_packed(
    root: str | None,
    *,
    verify: bool = True,
    val_fraction: float = 0.1,
    limit_train: int | None = None,
    limit_eval: int | None = None,
    seed: int = 0,
    classes: list[str] | None = None,
    refit: bool = False,
    train_split: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    resident: bool | str = "auto",
    budget: float = 0.5,
    free: int | None = None,
    workers: int = 2,
) -> tuple[dict[str, ImageSet | StreamSet], Residency]:
    """train/val/test of the packed dataset at ``root``, each held (decoded into memory) or
    streamed as ``decide`` rules. ``free``: bytes the budget is a share of (default the memory
    available now)."""
    _refuse_options(root, classes, train_split, refit, limit_train)
    packed = open_packed(str(root), verify=verify)
    index = packed.index
    if abs(index.val_fraction - val_fraction) > 1e-9:
        raise ConfigError(
            f"data.val_fraction={val_fraction} but these shards were packed with "
            f"validation {index.val_fraction} (seed {index.seed})",
            f"set data.val_fraction={index.val_fraction}, or pack again with "
            f"--val-fraction {val_fraction}",
        )
    parts = {s: _stream(packed, s, image_size, channels) for s in ("train", "val", "test")}
    if limit_train is not None:
        parts["train"] = parts["train"].head(limit_train)
    decision = decide(parts, resident, budget, free)
    out: dict[str, ImageSet | StreamSet] = {}
    for name, part in parts.items():
        evaluated = name != "train" and limit_eval is not None
        if name in decision.streamed:
            out[name] = part.head(limit_eval) if evaluated else part  # type: ignore[arg-type]
        else:
            out[name] = _held(part, limit_eval if evaluated else None, seed, workers)
    return out, decision


def _refuse_options(
    root: str | None,
    classes: list[str] | None,
    train_split: str | None,
    refit: bool,
    limit_train: int | None,
) -> None:
    if not root:
        raise ConfigError(
            "data.dataset=shards reads a packed dataset, and data.root does not say where",
            "add data.root=DIR (the folder `replab data pack` wrote) or data.root=URL",
        )
    for name, value, fix in (
        ("data.classes", classes, "pack only those classes: replab data pack --classes ..."),
        ("data.train_split", train_split, "pack the split you want to train on"),
        ("data.refit", refit or None, "pack with a smaller --val-fraction instead"),
    ):
        if value is not None:
            raise ConfigError(f"{name} does not apply to packed shards", fix)
    scheme = root.split(":", 1)[0] if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+:", root) else ""
    if scheme and not is_url(root):
        raise ConfigError(
            f"data.root {root!r}: replab opens packed shards from a folder or http(s):// only "
            f"({scheme}: URLs are not opened; WebDataset's pipe: would run a shell command)",
            "give the storage's HTTPS address (e.g. https://BUCKET.s3.REGION.amazonaws.com/"
            "PREFIX/), or copy the shards to a local folder",
        )
    if not is_url(root) and not Path(root).expanduser().exists():
        raise DataError(
            f"data.root {root!r} does not exist",
            "point data.root at the folder `replab data pack` wrote, or an http(s):// URL",
        )


def _stream(packed: Packed, split: str, image_size: int | None, channels: int | None) -> StreamSet:
    index = packed.index
    known = tuple(index.shape) if index.shape else None
    if known is None and image_size is None:
        raise ConfigError(
            f"the images packed in {packed.root} have different sizes",
            "set data.image_size=N (and data.channels) to bring them to one shape",
        )
    c = channels or (known[0] if known else 3)
    h, w = (image_size, image_size) if image_size else (known[1], known[2])  # type: ignore[index]
    part = index.splits[split]
    shape = (c, h, w)
    return StreamSet(
        packed,
        tuple(part.shards),
        list(index.classes),
        shape,
        part.count,
        f"{index.title} {split} ({part.count:,} images in {len(part.shards)} shards of "
        f"{packed.root}, packed with seed {index.seed})",
        resize=shape != known,
    )


def _held(part: StreamSet, limit: int | None, seed: int, workers: int) -> ImageSet:
    images = part.decoded(workers)
    return images if limit is None else stratified_head(images, limit, seed)


def decide(
    parts: dict[str, StreamSet],
    resident: bool | str,
    budget: float,
    free: int | None = None,
) -> Residency:
    """Which splits stream: none (``data.resident=true``), all (``false``), or with ``auto``
    those that do not fit what the budget leaves, held in the order test, val, train (the
    small splits measured every epoch first)."""
    free = available_memory() if free is None else free
    allowed = int(budget * free)
    need = {name: part.nbytes for name, part in parts.items()}
    figures = (
        "decoded: "
        + ", ".join(f"{name} {size(need[name])}" for name in ("train", "val", "test"))
        + f"; the budget is {budget:.0%} of {size(free)} free = {size(allowed)}"
    )
    if resident is True:
        return Residency((), f"every split held: data.resident=true ({figures})")
    if resident is False:
        return Residency(tuple(parts), f"every split streamed: data.resident=false ({figures})")
    held, used = [], 0
    for name in ("test", "val", "train"):
        if used + need[name] <= allowed:
            held.append(name)
            used += need[name]
    streamed = tuple(n for n in ("train", "val", "test") if n not in held)
    if not streamed:
        return Residency((), f"every split held: they fit ({figures})")
    return Residency(streamed, f"{' and '.join(streamed)} streamed: over the budget ({figures})")


def size(nbytes: int) -> str:
    """Bytes in the unit that keeps a few digits: 12.3 MiB, 4.56 GiB."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if nbytes >= scale:
            return (
                f"{nbytes / scale:,.3g} {unit}"
                if nbytes < 1000 * scale
                else f"{nbytes / scale:,.0f} {unit}"
            )
    return f"{nbytes / 1024:,.3g} KiB"
