"""Streamed splits: batches decoded from packed shards by DataLoader workers.

The resident path (``loader.DeviceLoader``) holds a split as one uint8 tensor; a streamed
split (``StreamSet``) is a list of shards read again each epoch. Workers read and decode;
each batch arrives as uint8 (N, C, H, W) and goes through the same ``Normalizer`` on the
device, and the task's augmentations after it, as a resident batch: one augmentation path.

Training order: each epoch draws a seed from the loader's generator (its state is what a
checkpoint keeps, so ``--resume`` continues the same sequence of epochs). The shards are
shuffled by that seed and dealt out, rank ``r`` of ``W`` taking every ``W``-th and each of its
workers every ``workers``-th of those, so no two readers share a shard; inside a worker a
seeded shuffle buffer mixes the samples. Every rank steps exactly ``len(loader)`` batches
an epoch (the split's count over the global batch): a rank whose shards run out reads them
again, so no rank waits at a gradient sync the others never reach.
"""

from __future__ import annotations

import ctypes
import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from replab.data.base import ImageSet
from replab.data.convert import conform
from replab.data.loader import DeviceLoader, Normalizer, check_global_batch
from replab.data.shard_index import ShardEntry
from replab.data.shards import Packed, samples
from replab.errors import DataError

GRAY_MODES = ("png", "jpg", "jpeg")  # torchvision decodes these itself; the rest go to Pillow


@dataclass(frozen=True)
class StreamSet:
    """A split read from shards: the counterpart of ``ImageSet`` without its tensors.

    ``shape`` is what every decoded image is brought to (C, H, W); ``limit`` keeps the samples
    whose key (position in the split) is below it, the first ``limit`` of a shuffled split.
    """

    packed: Packed
    shards: tuple[ShardEntry, ...]
    classes: list[str]
    shape: tuple[int, int, int]
    count: int
    source: str = ""
    limit: int | None = None
    resize: bool = False  # images are brought to ``shape`` (data.image_size / channels)

    def __len__(self) -> int:
        return self.count

    @property
    def labelled(self) -> bool:
        return bool(self.classes)

    @property
    def nbytes(self) -> int:
        """Bytes the split takes decoded: what holding it resident would cost."""
        c, h, w = self.shape
        return self.count * c * h * w

    def head(self, n: int) -> StreamSet:
        """The first ``n`` samples: a seeded random sample, as the pack shuffled the split."""
        if n >= self.count:
            return self
        kept, total = [], 0
        for shard in self.shards:
            if total >= n:
                break
            kept.append(shard)
            total += shard.count
        return replace(self, shards=tuple(kept), count=n, limit=n)

    def decoded(self, workers: int = 2) -> ImageSet:
        """The whole split decoded into memory, in shard order: the resident form."""
        c, h, w = self.shape
        images = torch.empty((self.count, c, h, w), dtype=torch.uint8)
        labels = torch.empty(self.count, dtype=torch.int64)
        at = 0
        for x, y in StreamLoader(self, 1024, shuffle=False, workers=workers).raw():
            images[at : at + len(y)], labels[at : at + len(y)] = x, y
            at += len(y)
        if at != self.count:
            raise DataError(
                f"the shards of {self.source} gave {at:,} images, the index says {self.count:,}",
                "pack the dataset again with `replab data pack SOURCE --out DIR`",
            )
        return ImageSet(images, labels, self.classes, self.source)


@dataclass
class _Failure:
    """A ``DataError`` raised in a worker, carried to the main process whole (DataLoader
    would re-raise it with the worker's traceback as its message)."""

    problem: str
    fix: str


@dataclass
class ReadPlan:
    """What one pass of a loader reads: shards per rank, batch size, order and buffer."""

    data: StreamSet
    batch: int  # this rank's batch
    seed: int | None  # None: in index order, once (evaluation)
    rank: int = 0
    world: int = 1
    buffer: int = 0
    per_worker: list[list[ShardEntry]] = field(default_factory=list)


class _Epoch(torch.utils.data.IterableDataset):
    """The samples of one epoch, as this worker reads and decodes them."""

    def __init__(self, plan: ReadPlan) -> None:
        self.plan = plan

    def __iter__(self) -> Iterator:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        try:
            yield from self._batches(worker, workers)
        except DataError as err:
            yield _Failure(err.problem, err.fix)

    def _batches(self, worker: int, workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches decoded straight into one preallocated tensor (a list then a stack would
        hold every image twice), written through its numpy view: torch's indexing costs 5 us
        an image, a fifth of decoding an MNIST-sized PNG."""
        p = self.plan
        images = torch.empty((p.batch, *p.data.shape), dtype=torch.uint8)
        rows, labels = images.numpy(), list[int]()
        batches = 0
        for image, label in self._decoded(worker, workers):
            rows[len(labels)] = image.numpy()
            labels.append(label)
            if len(labels) == p.batch:
                yield images, torch.tensor(labels)
                batches += 1
                if batches % TRIM_EVERY == 0:
                    trim_heap()
                images = torch.empty_like(images)  # the yielded one now belongs to the loader
                rows, labels = images.numpy(), list[int]()
        if labels and p.seed is None:  # evaluation keeps its last partial batch
            yield images[: len(labels)].clone(), torch.tensor(labels)

    def _decoded(self, worker: int, workers: int) -> Iterator[tuple[torch.Tensor, int]]:
        p = self.plan
        stream = self._samples(worker, workers)
        if p.seed is not None and p.buffer > 1:
            from webdataset.filters import shuffle

            rng = random.Random(hash((p.seed, p.rank, worker)))
            stream = shuffle(p.buffer, min(p.buffer, 100), rng=rng)(stream)
        for key, ext, data, label in stream:
            yield decode(data, ext, p.data, key), label

    def _samples(self, worker: int, workers: int) -> Iterator[tuple[str, str, bytes, int]]:
        """This worker's shards, read in a loop while training (a new order each pass)."""
        p = self.plan
        mine = deal_shards(list(p.data.shards), p, worker, workers)
        stride = p.world if len(p.data.shards) < p.world else 1  # fewer shards than ranks
        passes = 0
        while True:
            order = list(mine)
            if p.seed is not None:
                random.Random(hash((p.seed, p.rank, worker, passes))).shuffle(order)
            for shard in order:
                for key, ext, data, label in samples(p.data.packed, shard):
                    position = int(key)
                    if p.data.limit is not None and position >= p.data.limit:
                        continue
                    if stride > 1 and position % stride != p.rank:
                        continue
                    yield key, ext, data, label
            passes += 1
            if p.seed is None or not order:
                return


def deal_shards(
    shards: list[ShardEntry], p: ReadPlan, worker: int, workers: int
) -> list[ShardEntry]:
    """The shards this rank's ``worker`` reads: disjoint from every other reader's."""
    if p.seed is not None:
        random.Random(p.seed).shuffle(shards)  # one order for all ranks this epoch
        if len(shards) >= p.world:
            shards = shards[p.rank :: p.world]
    return shards[worker::workers]


def decode(data: bytes, ext: str, split: StreamSet, key: str = "") -> torch.Tensor:
    """One encoded image -> uint8 (C, H, W) of ``split.shape``: torchvision's decoder for PNG
    and JPEG, Pillow for the rest; grey or colour as the shape asks."""
    channels = split.shape[0]
    try:
        if ext in GRAY_MODES:
            image = _decode_op()(torch.frombuffer(bytearray(data), dtype=torch.uint8), channels)
        else:
            image = _pillow(data, channels)
    except (RuntimeError, OSError, ValueError) as err:
        raise DataError(
            f"image {key}.{ext} of {split.source} cannot be decoded ({err})",
            "pack the dataset again; `replab data pack --skip-corrupt` leaves such images out",
        ) from None
    if tuple(image.shape) != split.shape:
        if not split.resize:
            raise DataError(
                f"image {key}.{ext} of {split.source} is {tuple(image.shape)} (C x H x W), "
                f"not {split.shape} like the others",
                "set data.image_size (and data.channels) to bring every image to one shape",
            )
        image = conform(image[None], split.shape[1], channels)[0]
    return image


@functools.cache
def _decode_op() -> Callable[[torch.Tensor, int], torch.Tensor]:
    """torchvision's decoding operator itself, taking the bytes and 1 or 3 channels: its
    Python wrapper (``io.decode_image``) logs API usage and issues a warning on every call,
    a third of the time an MNIST-sized PNG takes (measured 10 of 30 us)."""
    from torchvision.io import ImageReadMode

    op = torch.ops.image.decode_image
    modes = {1: ImageReadMode.GRAY.value, 3: ImageReadMode.RGB.value}
    return lambda data, channels: op(data, modes[channels], False)  # False: no EXIF rotation


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 128 << 10  # glibc's default, held fixed


@functools.cache
def fix_mmap_threshold() -> bool:
    """Keep glibc's mmap threshold at its default instead of letting it rise: after the first
    large buffer is freed glibc serves later ones (1 MB shard chunks, decoded batches) from a
    heap that fragments, so without a trim (``trim_heap``) a streamed run's memory grew with
    the images it read (A3, peak 1.06 GiB for 20,000 64x64 JPEGs, 1.39 GiB for 200,000;
    trimmed every 20 batches: 1.01-1.02 and 1.19-1.29; held fixed: 0.85 and 0.86). Set here,
    in the process the readers fork from, it holds in them too. Its price: every large
    tensor is a fresh mapping, which slowed A3's training 1.3-1.4x on 2 cores, so only a
    streamed training split with ``data.flat_memory`` sets it. False where the C library is
    not glibc (nothing to fix there)."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


# batches between two heap trims: glibc keeps freed batch buffers in a heap it rarely gives
# back, so without them a reader's memory grew with the images it read (A3, 64x64 JPEGs: a
# reader's peak 0.37 GiB at 20,000 images, 0.61 GiB at 200,000; trimmed 0.37 and 0.34)
TRIM_EVERY = 20


def trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@functools.cache
def warm_codecs() -> None:
    """Decode one tiny PNG and JPEG here, before workers fork: the first decode in a process
    loads torchvision's codec libraries (measured 1.5 s), which each worker would pay again."""
    from torchvision.io import decode_image, encode_jpeg, encode_png

    pixel = torch.zeros((3, 8, 8), dtype=torch.uint8)
    for encoded in (encode_png(pixel), encode_jpeg(pixel)):
        decode_image(encoded)


def _pillow(data: bytes, channels: int) -> torch.Tensor:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        array = np.asarray(img.convert("L" if channels == 1 else "RGB"))
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


PREFETCH_BYTES = 64 << 20  # decoded batches a worker may hold ready: memory, not data, bounds it


def prefetch(batch: int, shape: tuple[int, int, int]) -> int:
    """Batches each worker keeps ready: up to 4, fewer when they are large (an evaluation
    batch of 4,096 64x64 colour images is 48 MiB), so memory does not follow the batch."""
    c, h, w = shape
    return max(1, min(4, PREFETCH_BYTES // max(1, batch * c * h * w)))


class StreamLoader:
    """Mini-batches of ``(x, y)`` from a ``StreamSet``, decoded by ``workers`` processes and
    moved to ``device``: the streamed counterpart of ``DeviceLoader``, with its interface
    (``len``, iteration, ``shard``, ``state_dict``)."""

    def __init__(
        self,
        data: StreamSet,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        normalizer: Normalizer | None = None,
        device: torch.device | str = "cpu",
        workers: int = 2,
        buffer: int = 10_000,
        flat_memory: bool = False,
    ) -> None:
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle
        self.normalizer = normalizer or Normalizer()
        self.device = torch.device(device)
        self.workers, self.buffer, self.flat_memory = workers, buffer, flat_memory
        self.generator = torch.Generator().manual_seed(seed)
        self.rank, self.world_size = 0, 1
        warm_codecs()  # here, while the run sets up: not in its first epoch's time

    def shard(self, rank: int, world_size: int) -> None:
        """Rank ``rank`` reads its own shards and yields its ``batch_size / world_size`` rows
        of each global batch."""
        check_global_batch(self.batch_size, world_size)
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        if self.shuffle:  # training: whole global batches, the same count on every rank
            return max(1, self.data.count // self.batch_size)
        return -(-self.data.count // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.raw():
            yield self.normalizer(x.to(self.device, non_blocking=True)), y.to(self.device)

    def raw(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """uint8 batches on the CPU, exactly ``len(self)`` of them when training."""
        seed = None
        if self.shuffle:
            seed = int(torch.randint(2**62, (1,), generator=self.generator))
        plan = ReadPlan(
            self.data,
            self.batch_size // self.world_size if self.shuffle else self.batch_size,
            seed,
            self.rank,
            self.world_size if self.shuffle else 1,
            self.buffer,
        )
        if self.shuffle and self.flat_memory:
            fix_mmap_threshold()
        workers = max(0, min(self.workers, len(self.data.shards)))
        loader = torch.utils.data.DataLoader(
            _Epoch(plan),
            batch_size=None,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=prefetch(plan.batch, self.data.shape) if workers else None,
        )
        wanted = len(self) if self.shuffle else None
        for taken, item in enumerate(loader, 1):
            if isinstance(item, _Failure):
                raise DataError(item.problem, item.fix)
            yield item
            if taken % TRIM_EVERY == 0:
                trim_heap()
            if wanted is not None and taken >= wanted:
                break

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])


Batches = DeviceLoader | StreamLoader  # what a trainer steps through: held or streamed
