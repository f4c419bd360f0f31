"""``replab data pack``: shards that hold exactly the splits a resident run carves, written
the same way every time, and refused or skipped images before anything is written."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from replab.cli import main
from replab.data import load_splits
from replab.data.pack import pack, sample_order
from replab.data.shard_index import INDEX, SPLITS, ShardIndex
from replab.errors import ConfigError, DataError, ReplabWarning

SHARD = 40 * 1024  # digits' samples take 2 KiB each in a tar: several shards per split


@pytest.fixture(scope="module")
def digits_pack(tmp_path_factory) -> tuple[Path, ShardIndex]:
    out = tmp_path_factory.mktemp("digits") / "packed"
    return out, pack("digits", out, shard_bytes=SHARD, progress=False)


def read_shard(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def samples(out: Path, index: ShardIndex, split: str) -> list[tuple[str, str, bytes, int]]:
    """(key, extension, image bytes, label) of every sample of ``split``, in written order;
    each tar's members checked: image then label, one key each, fixed metadata."""
    found = []
    for shard in index.splits[split].shards:
        members = read_shard(out / shard.name)
        assert len(members) == 2 * shard.count
        for (image, data), (label, cls) in zip(members[::2], members[1::2], strict=True):
            key, ext = image.name.split(".")
            assert label.name == f"{key}.cls"
            for m in (image, label):
                assert (m.mtime, m.mode, m.uid, m.gid, m.uname, m.gname) == (0, 0o444, 0, 0, "", "")
            found.append((key, ext, data, int(cls.decode("ascii"))))
    assert [key for key, *_ in found] == [f"{k:09d}" for k in range(len(found))]
    return found


def pixels(data: bytes, mode: str = "L") -> np.ndarray:
    """The image as uint8 (C, H, W), converted to ``mode`` (L or RGB) as Pillow converts."""
    with Image.open(io.BytesIO(data)) as img:
        array = np.asarray(img.convert(mode))
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def test_digits_shards_hold_the_resident_splits_image_for_image(digits_pack):
    out, index = digits_pack
    assert ShardIndex.model_validate_json((out / INDEX).read_text()) == index
    resident = load_splits("digits", seed=0)
    assert (index.title, index.shape, index.classes) == (
        resident.title,
        [1, 8, 8],
        list("0123456789"),
    )
    assert (index.seed, index.val_fraction, index.test_fraction, index.skipped) == (0, 0.1, 0.2, 0)
    assert sum(part.count for part in index.splits.values()) == 1797
    for split in SPLITS:
        part, expected = index.splits[split], getattr(resident, split)
        order = sample_order(len(expected), 0, split)
        labels = expected.labels[order]
        assert part.count == len(expected)
        assert part.counts == {str(c): int((labels == c).sum()) for c in range(10)}
        found = samples(out, index, split)
        assert [label for *_, label in found] == labels.tolist()
        assert all(ext == "png" for _, ext, _, _ in found)
        decoded = torch.from_numpy(np.stack([pixels(data) for _, _, data, _ in found]))
        assert torch.equal(decoded, expected.images[order])
        for shard in part.shards:
            data = (out / shard.name).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (shard.bytes, shard.sha256)
            assert shard.bytes <= SHARD  # no sample is larger than a shard here
        assert len(part.shards) > 1
    urls = [str(out / s.name) for s in index.splits["val"].shards]
    streamed = list(wds.WebDataset(urls, shardshuffle=False))
    assert [int(s["cls"]) for s in streamed] == [label for *_, label in samples(out, index, "val")]
    assert all(set(s) >= {"png", "cls", "__key__"} for s in streamed)


def folder_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_packing_twice_gives_the_same_bytes_and_another_seed_another_order(digits_pack, tmp_path):
    out, index = digits_pack
    again = pack("digits", tmp_path / "again", shard_bytes=SHARD, progress=False)
    assert again == index and folder_bytes(tmp_path / "again") == folder_bytes(out)
    other = pack("digits", tmp_path / "seed1", shard_bytes=SHARD, seed=1, progress=False)
    assert other.seed == 1 and other.splits["train"].count == index.splits["train"].count
    first = lambda folder, idx: samples(folder, idx, "train")[:20]  # noqa: E731
    assert first(tmp_path / "seed1", other) != first(out, index)
    # a previous pack's folder is replaced: fewer, larger shards, and none of the old left
    bigger = pack("digits", tmp_path / "seed1", progress=False)
    assert sorted(p.name for p in (tmp_path / "seed1").iterdir()) == [
        INDEX,
        "test-000000.tar",
        "train-000000.tar",
        "val-000000.tar",
    ]
    assert bigger.splits["train"].shards[0].count == index.splits["train"].count


def test_a_folder_that_is_not_a_pack_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a packed dataset"):
        pack("digits", tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# --- an image folder: its files' bytes kept, the unreadable refused or skipped ----------------


def image(path: Path, mode: str, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (size, size) if mode == "L" else (size, size, 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


@pytest.fixture
def photos(tmp_path) -> Path:
    """Three classes of six 16x16 images: JPEGs (.jpg, .JPEG) and PNGs, one of them grey."""
    root = tmp_path / "photos"
    for c, name in enumerate(("bird", "cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(6):
            suffix = (".jpg", ".JPEG", ".png")[i % 3]
            mode = "L" if (c, i) == (1, 2) else "RGB"
            image(root / name / f"{i}{suffix}", mode, 16, seed=10 * c + i)
    return root


def test_an_image_folder_is_packed_byte_for_byte_as_a_run_carves_it(photos, tmp_path):
    out = tmp_path / "packed"
    index = pack("image_folder", out, root=str(photos), progress=False)
    assert (index.classes, index.shape, index.test_fraction) == (
        ["bird", "cat", "dog"],
        [3, 16, 16],
        0.2,
    )
    files = {p.read_bytes(): p for p in photos.rglob("*.*")}
    resident = load_splits("image_folder", root=str(photos), seed=0)
    for split in SPLITS:
        found = samples(out, index, split)
        for _, ext, data, label in found:  # every file's own bytes, extension and class
            path = files.pop(data)
            assert (ext, index.classes[label]) == (path.suffix.lower()[1:], path.parent.name)
        expected = getattr(resident, split)
        order = sample_order(len(expected), 0, split)
        assert [label for *_, label in found] == expected.labels[order].tolist()
        decoded = np.stack([pixels(data, "RGB") for _, _, data, _ in found])  # grey: 3 alike
        assert torch.equal(torch.from_numpy(decoded), expected.images[order])
    assert not files, "every image is packed once"


def test_a_corrupt_image_stops_the_pack_before_anything_is_written(photos, tmp_path):
    whole = (photos / "cat" / "0.jpg").read_bytes()
    (photos / "cat" / "0.jpg").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "packed"
    with pytest.raises(DataError, match=r"0\.jpg.*--skip-corrupt"):
        pack("image_folder", out, root=str(photos), progress=False)
    assert not out.exists()
    with pytest.warns(ReplabWarning, match="skipped 1 unusable"):
        index = pack("image_folder", out, root=str(photos), skip_corrupt=True, progress=False)
    assert index.skipped == 1
    assert sum(part.count for part in index.splits.values()) == 17


def test_sizes_that_vary_and_a_sample_larger_than_a_shard(tmp_path):
    """Unlabelled noise images of several sizes: no common shape, labels -1, and each image
    (over 10 KiB) a shard of its own."""
    root = tmp_path / "noise"
    root.mkdir()
    for i in range(10):
        image(root / f"{i}.png", "RGB", 64 + i, seed=i)
    index = pack(
        "image_folder", tmp_path / "out", root=str(root), shard_bytes=10_240, progress=False
    )
    assert (index.shape, index.classes) == (None, [])
    for split in SPLITS:
        part = index.splits[split]
        assert part.counts == {} and len(part.shards) == part.count
        assert all(shard.bytes > 10_240 for shard in part.shards)
        assert {label for *_, label in samples(tmp_path / "out", index, split)} == {-1}


# --- the command line ---------------------------------------------------------------------


def test_the_command_packs_and_says_what_it_wrote(tmp_path, capsys):
    assert main(["data", "pack", "digits", "--out", str(tmp_path / "p"), "--seed", "3"]) == 0
    index = ShardIndex.model_validate_json((tmp_path / "p" / INDEX).read_text())
    assert index.seed == 3
    assert "packed 1,259 train / 179 val / 359 test images into 3 shards" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("size", "said"), [("lots", "'lots' is not a size"), ("1KB", "below the smallest tar file")]
)
def test_a_bad_shard_size_is_refused(tmp_path, capsys, size, said):
    args = ["data", "pack", "digits", "--out", str(tmp_path / "p"), "--shard-size", size]
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors exit from inside parse_args
        code = exit_.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2 and said in err and "Fix:" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()


def test_shuffled_keys_put_a_random_sample_first():
    order = sample_order(1000, 0, "train")
    assert sorted(order.tolist()) == list(range(1000))
    assert not torch.equal(order, sample_order(1000, 0, "val"))
    assert torch.equal(order, sample_order(1000, 0, "train"))
