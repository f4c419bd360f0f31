"""Packed shards read back: held or streamed, from a folder or a loopback web server; every
planted problem one clear error before a run folder exists; ranks and workers on disjoint
shards with the same number of steps."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch

from replab.cli import main
from replab.data import ImageSet, load_splits
from replab.data.pack import pack
from replab.data.packed_splits import decide
from replab.data.shard_index import INDEX, ShardEntry, ShardIndex
from replab.data.shards import Packed, open_packed, samples
from replab.data.stream import ReadPlan, StreamLoader, StreamSet, deal_shards
from replab.errors import ConfigError, DataError

SMALL = 60_000  # bytes a shard: digits' train split becomes a few dozen shards


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "digits"
    pack("digits", out, shard_bytes=SMALL, progress=False)
    return out


def copy_of(packed: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    out.mkdir()
    for f in packed.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    return out


def rows(images: torch.Tensor, labels: torch.Tensor) -> list[tuple]:
    """The (image, label) pairs of a split as a sorted list: equal whatever the order."""
    return sorted(zip(map(tuple, images.flatten(1).tolist()), labels.tolist(), strict=True))


def streamed(root: Path | str, **options) -> object:
    return load_splits(
        "shards", root=str(root), streaming={"resident": False, **options}, val_fraction=0.1
    )


def test_held_and_streamed_splits_are_the_packed_dataset(packed):
    resident = load_splits("digits", seed=0)
    held = load_splits("shards", root=str(packed), streaming={"resident": True})
    for name in ("train", "val", "test"):
        want, got = getattr(resident, name), getattr(held, name)
        assert isinstance(got, ImageSet)
        assert rows(got.images, got.labels) == rows(want.images, want.labels)
    assert held.residency.startswith("every split held: data.resident=true")
    train = streamed(packed).train
    assert isinstance(train, StreamSet) and len(train) == len(resident.train)
    x, y = (
        torch.cat([b[0] for b in StreamLoader(train, 100, shuffle=False).raw()]),
        torch.cat([b[1] for b in StreamLoader(train, 100, shuffle=False).raw()]),
    )
    assert rows(x, y) == rows(resident.train.images, resident.train.labels)


def test_a_training_epoch_is_whole_global_batches_seeded_and_resumable(packed):
    train = streamed(packed).train
    loader = StreamLoader(train, 64, seed=5, workers=2, buffer=50)
    assert len(loader) == len(train) // 64
    first = [(x.clone(), y.clone()) for x, y in loader]
    assert len(first) == len(loader) and all(x.shape == (64, 1, 8, 8) for x, _ in first)
    assert all(x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1 for x, _ in first)
    seen = rows(torch.cat([x for x, _ in first]).mul(255).round(), torch.cat([y for _, y in first]))
    assert len(set(seen)) >= 0.98 * len(seen)  # an epoch reads each sample about once
    state = loader.state_dict()
    second = [y for _, y in loader]
    again = StreamLoader(train, 64, seed=5, workers=2, buffer=50)
    assert all(torch.equal(a, b) for a, (_, b) in zip([y for _, y in again], first, strict=True))
    again.load_state_dict(state)  # resumed after the first epoch: the same second epoch
    assert all(torch.equal(a, b) for a, b in zip([y for _, y in again], second, strict=True))
    other = StreamLoader(train, 64, seed=6, workers=2, buffer=50)
    assert not all(
        torch.equal(a, b) for a, (_, b) in zip([y for _, y in other], first, strict=False)
    )


@pytest.mark.parametrize(("world", "workers", "shards"), [(2, 2, 9), (2, 1, 3), (4, 2, 13)])
def test_every_rank_and_worker_reads_its_own_shards(packed, world, workers, shards):
    data = streamed(packed).train
    names = [f"s{i}" for i in range(shards)]
    dealt = [
        deal_shards(list(names), ReadPlan(data, 8, seed=11, rank=r, world=world), w, workers)
        for r in range(world)
        for w in range(workers)
    ]
    flat = [s for part in dealt for s in part]
    assert sorted(flat) == sorted(names) and len(set(flat)) == len(flat)


def test_every_rank_steps_the_same_number_of_batches_on_uneven_shards(packed):
    data = streamed(packed).train
    assert len(data.shards) % 2 == 1 or len({s.count for s in data.shards}) > 1  # uneven
    steps = []
    for rank in range(2):
        loader = StreamLoader(data, 64, seed=1, workers=2, buffer=10)
        loader.shard(rank, 2)
        batches = [y for _, y in loader]
        assert all(len(y) == 32 for y in batches)
        steps.append(len(batches))
    assert steps[0] == steps[1] == len(data) // 64


def test_limit_train_keeps_the_first_images_of_the_shuffled_split(packed):
    train = load_splits(
        "shards", root=str(packed), limit_train=300, streaming={"resident": False}
    ).train
    assert isinstance(train, StreamSet) and len(train) == 300
    assert len(train.decoded()) == 300


def test_auto_holds_what_fits_and_streams_what_does_not(packed):
    s = streamed(packed)
    parts = {"train": s.train, "val": s.val, "test": s.test}
    total = sum(p.nbytes for p in parts.values())
    fits = decide(parts, "auto", 0.5, free=2 * total)
    assert fits.streamed == () and fits.reason.startswith("every split held: they fit")
    small = 2 * (s.val.nbytes + s.test.nbytes) + 1000  # test and val fit, train does not
    assert decide(parts, "auto", 0.5, free=small).streamed == ("train",)
    none = decide(parts, "auto", 0.5, free=10)
    assert none.streamed == ("train", "val", "test") and "budget is 50%" in none.reason
    assert decide(parts, True, 0.5, free=10).streamed == ()
    assert decide(parts, False, 0.5, free=10**12).streamed == ("train", "val", "test")


def served(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_shards_stream_from_a_web_server(packed):
    server = served(packed)
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        splits = streamed(url)
        test, local = splits.test.decoded(), streamed(packed).test.decoded()
        assert rows(test.images, test.labels) == rows(local.images, local.labels)
        ys = [y for _, y in StreamLoader(splits.train, 64, seed=2, workers=2)]
        assert len(ys) == len(splits.train) // 64
    finally:
        server.shutdown()


def planted(kind: str, folder: Path) -> str:
    index = ShardIndex.model_validate_json((folder / INDEX).read_text())
    shard = folder / index.splits["train"].shards[1].name
    if kind == "missing":
        shard.unlink()
        return "missing"
    data = bytearray(shard.read_bytes())
    if kind == "truncated":
        shard.write_bytes(bytes(data[: len(data) // 2]))
        return "truncated or replaced"
    data[700] ^= 0xFF  # same size, one byte changed
    shard.write_bytes(bytes(data))
    return "SHA-256 does not match"


@pytest.mark.parametrize("kind", ["missing", "truncated", "checksum"])
def test_a_planted_problem_is_one_error_and_no_run_folder(packed, tmp_path, kind, capsys):
    folder = copy_of(packed, tmp_path)
    said = planted(kind, folder)
    with pytest.raises(DataError, match=said):
        open_packed(str(folder))
    runs = tmp_path / "runs"
    args = ["run", "digits-autoencoder", "data.dataset=shards", f"data.root={folder}"]
    assert main([*args, "data.val_fraction=0.1", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert said in err and "Fix:" in err and "Traceback" not in err
    assert not runs.exists() or not any(runs.iterdir())


def test_a_server_that_does_not_answer_is_one_error(tmp_path):
    server = served(tmp_path)
    port = server.server_port
    server.shutdown()
    server.server_close()
    with pytest.raises(DataError, match="cannot read|cannot be reached"):
        open_packed(f"http://127.0.0.1:{port}/")


def test_a_shard_changed_while_streaming_is_caught_as_it_is_read(packed, tmp_path):
    folder = copy_of(packed, tmp_path)
    train = load_splits(
        "shards", root=str(folder), streaming={"resident": False, "workers": 0}
    ).train
    planted("checksum", folder)  # after the start-up checks: the stream's own hash sees it
    with pytest.raises(DataError, match="damaged or was replaced"):
        list(StreamLoader(train, 64, shuffle=False, workers=0).raw())


def test_options_that_do_not_apply_to_shards_are_refused(packed):
    with pytest.raises(ConfigError, match="data.classes"):
        load_splits("shards", root=str(packed), classes=["1"])
    with pytest.raises(ConfigError, match="val_fraction"):
        load_splits("shards", root=str(packed), val_fraction=0.2)
    for url in ("pipe:cat shards/{0..3}.tar", "s3://bucket/shards/"):
        with pytest.raises(ConfigError, match="http"):
            load_splits("shards", root=url)
    with pytest.raises(ConfigError, match="data.resident=false streams packed shards"):
        load_splits("digits", streaming={"resident": False})
    with pytest.raises(DataError, match="no index.json"):
        load_splits("shards", root=str(packed.parent))
    index = json.loads((packed / INDEX).read_text())
    assert index["format"] == "replab-shards"


def test_a_streamed_run_trains_probes_and_says_why_it_streamed(packed, tmp_path):
    runs = tmp_path / "runs"
    args = ["run", "digits-autoencoder", "data.dataset=shards", f"data.root={packed}"]
    extra = ["data.val_fraction=0.1", "data.resident=false", "trainer.epochs=4"]
    assert main([*args, *extra, "trainer.progress=false", "--runs-dir", str(runs)]) == 0
    (run,) = runs.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data_residency"].startswith("every split streamed: data.resident=false")
    assert summary["metrics"]["probe.test_accuracy"] > 0.8  # measured 0.96 after 2 epochs
    assert "image.linear_probe.test_accuracy" not in summary["metrics"]


def test_reconstruction_errors_of_a_streamed_split_equal_the_held_ones(packed):
    from torch import nn

    from replab.data import Normalizer
    from replab.evaluation import reconstruct, reconstruction_metrics
    from replab.evaluation.embed import streamed_reconstruction_metrics

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.Unflatten(1, (1, 8, 8)))
    test = streamed(packed).test
    norm = Normalizer(torch.tensor([0.3]).view(1, 1, 1, 1), torch.tensor([0.4]).view(1, 1, 1, 1))
    images = test.decoded().images
    want = reconstruction_metrics(reconstruct(model, images, norm, torch.device("cpu")), images)
    loader = StreamLoader(test, 50, shuffle=False, normalizer=norm, workers=2)
    got = streamed_reconstruction_metrics(model, loader, norm, torch.device("cpu"))
    for name in ("mae", "mse", "psnr"):
        assert getattr(got, name) == pytest.approx(getattr(want, name), rel=1e-5)


def shard_of(tmp_path: Path, members: list[tuple[str, bytes]]) -> tuple[object, ShardEntry]:
    """A plain ustar shard holding ``members``, and its entry (the reader checks the hash)."""
    import hashlib
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    (tmp_path / "s.tar").write_bytes(data)
    entry = ShardEntry(
        name="s.tar", count=1, bytes=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    return Packed(str(tmp_path), None), entry  # type: ignore[arg-type]


def test_the_reader_groups_files_by_webdatasets_key_rule(tmp_path):
    import webdataset as wds

    members = [
        ("a/0001.png", b"img1"), ("a/0001.cls", b"3"), ("README", b"no extension"),
        ("a/0002.PNG", b"img2"), ("a/0002.cls", b"7"), ("b.c/0003.jpg", b"img3"),
        ("b.c/0003.cls", b" 1\n"),
    ]  # fmt: skip
    got = list(samples(*shard_of(tmp_path, members)))
    assert got == [
        ("a/0001", "png", b"img1", 3), ("a/0002", "png", b"img2", 7),
        ("b.c/0003", "jpg", b"img3", 1),
    ]  # fmt: skip
    theirs = wds.WebDataset(str(tmp_path / "s.tar"), shardshuffle=False)
    assert [s["__key__"] for s in theirs] == [key for key, *_ in got]


@pytest.mark.parametrize(
    ("members", "says"),
    [
        ([("0001.png", b"i"), ("0001.png", b"j"), ("0001.cls", b"1")], "holds 0001.png twice"),
        ([("0001.png", b"i"), ("0001.jpg", b"j"), ("0001.cls", b"1")], "one image and one"),
        ([("0001.png", b"i")], r"\['png'\]"),
        ([("0001.png", b"i"), ("0001.cls", b"one")], "not a number"),
    ],
)
def test_a_malformed_sample_is_one_error(tmp_path, members, says):
    with pytest.raises(DataError, match=says):
        list(samples(*shard_of(tmp_path, members)))


def test_a_tar_header_with_a_wrong_checksum_is_refused(tmp_path):
    import hashlib

    packed_, entry = shard_of(tmp_path, [("0001.png", b"i"), ("0001.cls", b"1")])
    data = bytearray((tmp_path / "s.tar").read_bytes())
    data[0] = ord("1")  # the first name changes; its header's checksum no longer holds
    (tmp_path / "s.tar").write_bytes(bytes(data))
    entry = entry.model_copy(update={"sha256": hashlib.sha256(data).hexdigest()})
    with pytest.raises(DataError, match="checksum fails"):
        list(samples(packed_, entry))


def test_the_loader_gives_freed_heap_back_as_it_goes(packed, monkeypatch):
    """glibc keeps freed batch buffers in a heap that only grows; trimming it every few
    batches is what keeps a long streamed epoch's memory flat (benchmarks/streaming.py)."""
    import replab.data.stream as stream

    trims = []
    monkeypatch.setattr(stream, "trim_heap", lambda: trims.append(1))
    monkeypatch.setattr(stream, "TRIM_EVERY", 3)
    train = streamed(packed).train
    batches = list(StreamLoader(train, 16, seed=0, workers=0).raw())
    # the loader's trims, and the in-process reader's (workers=0), which the loader leaves
    # suspended at its last batch, before that batch's trim
    assert len(trims) == len(batches) // 3 + (len(batches) - 1) // 3
