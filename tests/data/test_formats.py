"""File formats: the IDX reader and the restricted unpickler behind the CIFAR-10 batches."""

from __future__ import annotations

import builtins
import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from replab.data.cifar10 import CIFAR10
from replab.data.idx import read_idx
from replab.data.safe_pickle import load_pickle
from replab.errors import DataError


def idx_bytes(array: np.ndarray) -> bytes:
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(50, 28, 28), dtype=np.uint8)


# --- IDX -------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [True, False])
def test_read_idx_round_trips(tmp_path, images, compressed):
    raw = idx_bytes(images)
    path = tmp_path / ("x-idx3-ubyte.gz" if compressed else "x-idx3-ubyte")
    path.write_bytes(gzip.compress(raw) if compressed else raw)

    out = read_idx(path)

    assert out.dtype == np.uint8
    assert out.shape == (50, 28, 28)
    np.testing.assert_array_equal(out, images)


def test_read_idx_reads_labels(tmp_path):
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(read_idx(path), labels)


def test_truncated_gzip_raises_data_error(tmp_path, images):
    whole = gzip.compress(idx_bytes(images))
    path = tmp_path / "half-idx3-ubyte.gz"
    path.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(DataError) as info:
        read_idx(path)

    message = str(info.value)
    assert repr(str(path)) in message
    assert "cannot be decompressed" in message
    assert "download it again" in message


def test_gzip_of_truncated_content_raises_data_error(tmp_path, images):
    raw = idx_bytes(images)
    path = tmp_path / "short-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(raw[: len(raw) // 2]))

    with pytest.raises(DataError) as info:
        read_idx(path)

    message = str(info.value)
    assert repr(str(path)) in message
    assert "truncated or corrupt" in message
    assert f"header announces {images.size:,}" in message


def test_trailing_bytes_are_corrupt_too(tmp_path, images):
    path = tmp_path / "long-idx3-ubyte"
    path.write_bytes(idx_bytes(images) + b"\x00")
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(path)


def test_not_gzip_at_all_raises_data_error(tmp_path, images):
    path = tmp_path / "plain-idx3-ubyte.gz"
    path.write_bytes(idx_bytes(images))  # named .gz but not compressed
    with pytest.raises(DataError, match="cannot be decompressed"):
        read_idx(path)


@pytest.mark.parametrize(
    "head",
    [b"\x00\x00\x0d\x03", b"\x01\x00\x08\x03", b"PK\x03\x04", b"\x00\x00"],
    ids=["float-dtype", "bad-first-byte", "zip", "too-short"],
)
def test_bad_magic_raises_data_error(tmp_path, images, head):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(head + idx_bytes(images)[len(head) :] if len(head) == 4 else head)

    with pytest.raises(DataError) as info:
        read_idx(path)

    assert "does not start with an IDX header" in str(info.value)
    assert repr(str(path)) in str(info.value)


def test_truncated_header_raises_data_error(tmp_path):
    path = tmp_path / "hdr-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big"))
    with pytest.raises(DataError, match="truncated inside its header"):
        read_idx(path)


# --- restricted unpickler ----------------------------------------------------------------


class _Payload:
    """Pickles as a call to ``func(*args)``: what a malicious pickle does on load."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _evil_pickles(target: Path) -> dict[str, bytes]:
    shell = f"echo pwned > {target}"
    return {
        "os.system": pickle.dumps(_Payload(os.system, shell)),
        "builtins.exec": pickle.dumps(
            _Payload(builtins.exec, f"open({str(target)!r}, 'w').write('pwned')")
        ),
        # the evil call hidden inside a legitimate-looking batch dict, protocol 2 like CIFAR
        "nested-in-batch": pickle.dumps(
            {
                b"data": np.zeros((1, 3072), np.uint8),
                b"labels": [0],
                b"x": _Payload(os.system, shell),
            },
            protocol=2,
        ),
    }


def test_the_evil_payloads_are_live(tmp_path):
    """Control: unpickled with the stock unpickler, each payload does write the file."""
    for name, payload in _evil_pickles(tmp_path / "control").items():
        target = tmp_path / "control"
        target.unlink(missing_ok=True)
        pickle.loads(payload)
        assert target.exists(), name


@pytest.mark.parametrize("kind", ["os.system", "builtins.exec", "nested-in-batch"])
def test_restricted_unpickler_refuses_code(tmp_path, kind):
    target = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(_evil_pickles(target)[kind])

    with pytest.raises(DataError) as info:
        load_pickle(path)

    message = str(info.value)
    assert "not allowed" in message
    assert repr(str(path)) in message
    assert ("system" if kind != "builtins.exec" else "builtins.exec") in message
    assert not target.exists()


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_restricted_unpickler_loads_a_legitimate_batch(tmp_path, protocol):
    data = np.random.default_rng(protocol).integers(0, 256, size=(4, 3072), dtype=np.uint8)
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [0, 9, 3, 3],
        b"data": data,
        b"filenames": [b"a.png"] * 4,
    }
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))

    out = load_pickle(path)

    assert set(out) == set(batch)
    assert out[b"labels"] == [0, 9, 3, 3]
    assert out[b"batch_label"] == b"training batch 1 of 5"
    assert out[b"data"].dtype == np.uint8
    np.testing.assert_array_equal(out[b"data"], data)


def test_truncated_pickle_raises_data_error(tmp_path):
    whole = pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 4}, protocol=2)
    path = tmp_path / "data_batch_1"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError) as info:
        load_pickle(path)
    # A cut-off download is not an attack: the message must say so and suggest re-downloading.
    assert "truncated or corrupt" in str(info.value)
    assert "download CIFAR-10 again" in str(info.value)
    assert "tampered" not in str(info.value)


@pytest.mark.parametrize(
    "junk", [b"", b"\x00" * 64, b"not a pickle at all"], ids=["empty", "zeros", "text"]
)
def test_junk_pickle_raises_data_error(tmp_path, junk):
    path = tmp_path / "data_batch_1"
    path.write_bytes(junk)
    with pytest.raises(DataError, match=r"cannot read .*data_batch_1"):
        load_pickle(path)


# --- CIFAR batches ------------------------------------------------------------------------


def _write_batches(folder: Path, make) -> None:
    """Write data_batch_1..5 and test_batch, each ``make(i)`` pickled with protocol 2."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        (folder / name).write_bytes(pickle.dumps(make(i), protocol=2))


def _batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"labels": rng.integers(0, 10, n).tolist(),
    }


def test_cifar_batches_load_in_channel_row_column_order(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    batches = [_batch(3 + i, i) for i in range(6)]
    _write_batches(folder, lambda i: batches[i])
    assert CIFAR10().locate(tmp_path) == folder

    train = CIFAR10().load_split(folder, "train")
    test = CIFAR10().load_split(folder, "test")

    assert len(train) == 3 + 4 + 5 + 6 + 7
    assert len(test) == 8
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    first = batches[0][b"data"][0]
    c, h, w = 2, 5, 17
    assert train.images[0, c, h, w].item() == first[c * 1024 + h * 32 + w]
    assert train.labels.tolist() == sum((b[b"labels"] for b in batches[:5]), [])
    assert "a subset of the full 10,000" in test.source


@pytest.mark.parametrize(
    "broken, says",
    [
        ({b"data": np.zeros((4, 3071), np.uint8), b"labels": [0] * 4}, "(N, 3072)"),
        ({b"data": np.zeros((4, 3072), np.float32), b"labels": [0] * 4}, "(N, 3072)"),
        ({b"data": np.zeros((4, 3, 32, 32), np.uint8), b"labels": [0] * 4}, "(N, 3072)"),
        ({b"labels": [0] * 4}, "(N, 3072)"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3}, "one class 0-9 per image"),
        (
            {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]},
            "one class 0-9 per image",
        ),
        ([np.zeros((4, 3072), np.uint8)], "not a dict"),
    ],
    ids=["3071-columns", "float", "4d", "no-data", "short-labels", "label-10", "list"],
)
def test_malformed_cifar_batch_raises_data_error(tmp_path, broken, says):
    folder = tmp_path / "cifar-10-batches-py"
    _write_batches(folder, lambda i: broken if i == 2 else _batch(4, i))

    with pytest.raises(DataError) as info:
        CIFAR10().load_split(folder, "train")

    assert says in str(info.value)
    assert "data_batch_3" in str(info.value)
