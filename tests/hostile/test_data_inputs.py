"""Hostile data (issue 30): images that decode to their values whatever their mode, own folders
walked without leaving them, memory bounded by what a file declares, and user strings drawn
in figures as they are. Each refusal is one clear ReplabError naming the file and the fix."""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from replab.cli import main
from replab.data import load_splits
from replab.data.registry import DATASETS
from replab.errors import ConfigError, DataError
from replab.reporting import figures
from tests.test_hostile_inputs import snapshot

# --- C: user strings in figures are drawn as text, never as mathtext ---------------------------

HOSTILE_NAMES = ["a$b$c", "$\\frac{$", "$\\frac{", "$", "plain"]


def test_plain_escapes_every_dollar_so_matplotlib_draws_the_text_as_it_is():
    from matplotlib.text import Text

    for name in HOSTILE_NAMES:
        text, math = Text()._preprocess_math(figures.plain(name))
        assert (text, math) == (name, False)


def test_figures_with_dollar_class_names_and_titles_render():
    n = len(HOSTILE_NAMES)
    matrix = [[int(i == j) for j in range(n)] for i in range(n)]
    assert figures.confusion(matrix, HOSTILE_NAMES).startswith(b"\x89PNG")
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}]
    assert figures.curves(history, title="$\\frac{$").startswith(b"\x89PNG")
    grid = figures.image_grid([torch.rand(2, 1, 4, 4)], ["$\\frac{$"], title="a$b$c")
    assert grid.startswith(b"\x89PNG")
    sweep = figures.sweep_plot({"$\\frac{": [("a$b$c", 1.0), ("$", 2.0)]}, "$x$", "$\\frac{$")
    assert sweep.startswith(b"\x89PNG")


def test_the_same_names_unescaped_are_what_broke():
    """The hazard is real: matplotlib parses a raw name with two dollars as maths, draws
    ``a$b$c`` as italic ``abc`` and fails the whole figure on ``$\\frac{$``."""
    from matplotlib.text import Text

    assert Text()._preprocess_math("a$b$c")[1] is True
    fig, ax = figures.plt.subplots()
    ax.set_xticks([0], ["$\\frac{$"])
    with pytest.raises(ValueError):
        figures.to_png(fig)


# --- helpers: one image per folder, loaded through replab's own image-folder source ---------


def load_one(root: Path, **options) -> torch.Tensor:
    """The decoded images of ``root`` (one class folder ``a``), in file order."""
    source = DATASETS.get("image_folder")()
    for name, value in options.items():
        setattr(source, name, value)
    return source.load_split(root, "all").images


def folder_with(tmp_path: Path, name: str, save: Callable[[Path], None]) -> tuple[Path, Path]:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True, exist_ok=True)
    path = root / "a" / name
    save(path)
    return root, path


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, bit_depth: int, colour: int, raw: bytes) -> bytes:
    """A PNG written by hand: ``raw`` is the filtered scanlines (a 0 filter byte per row)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def bomb_png(width: int, height: int) -> bytes:
    """A 100-byte grey PNG declaring ``width`` x ``height`` pixels (its data is a few rows)."""
    return png_bytes(width, height, 8, 0, b"\x00" * (width + 1) * 2)


def pillow_values(path: Path, channels: int | None = None) -> np.ndarray:
    """The rule replab documents, from Pillow's own decoding of the file: (C, H, W) uint8."""
    with Image.open(path) as img:
        mode = img.mode
        if mode in ("I", "F") or mode.startswith("I;16"):
            raw = np.asarray(img)
            grey = np.rint(raw * 255) if mode == "F" else raw.astype(np.int64) >> 8
            array = grey.astype(np.uint8)
            if channels == 3:
                array = np.repeat(array[..., None], 3, axis=2)
        else:
            grey = mode in ("1", "L", "LA")
            want = {1: "L", 3: "RGB"}.get(channels or 0) or ("L" if grey else "RGB")
            colour = img.convert("RGB") if want == "L" and not grey else img
            array = np.asarray(colour.convert(want))
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


RNG = np.random.default_rng(30)
GREY8 = RNG.integers(0, 256, (6, 7), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (6, 7, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (6, 7), dtype=np.uint8)
DEEP = np.concatenate([np.arange(0, 65536, 257 * 37), RNG.integers(0, 65536, 35)])
DEEP16 = DEEP[:42].reshape(6, 7).astype(np.uint16)
UNIT = RNG.random((6, 7), dtype=np.float32)


def pil_image(mode: str) -> Image.Image:
    if mode == "L":
        return Image.fromarray(GREY8)
    if mode == "LA":
        return Image.merge("LA", [Image.fromarray(GREY8), Image.fromarray(ALPHA)])
    if mode == "RGB":
        return Image.fromarray(RGB8)
    if mode == "RGBA":
        return Image.fromarray(np.dstack([RGB8, ALPHA]))
    if mode == "P":
        return Image.fromarray(RGB8).quantize(16)
    if mode == "CMYK":
        return Image.fromarray(np.dstack([RGB8, ALPHA]), "RGBA").convert("RGB").convert("CMYK")
    if mode == "I;16":
        return Image.fromarray(DEEP16)
    if mode == "I":
        return Image.fromarray(DEEP16.astype(np.int32))
    if mode == "F":
        return Image.fromarray(UNIT)
    raise AssertionError(mode)


# every mode Pillow reads, in every format here that writes it
MODES = [
    ("L", "png"),
    ("L", "tiff"),
    ("L", "jpg"),
    ("L", "bmp"),
    ("LA", "png"),
    ("LA", "tiff"),
    ("P", "png"),
    ("P", "bmp"),
    ("P", "tiff"),
    ("RGB", "png"),
    ("RGB", "jpg"),
    ("RGB", "tiff"),
    ("RGB", "webp"),
    ("RGBA", "png"),
    ("RGBA", "tiff"),
    ("RGBA", "webp"),
    ("CMYK", "jpg"),
    ("CMYK", "tiff"),
    ("I;16", "png"),
    ("I;16", "tiff"),
    ("I", "tiff"),
    ("F", "tiff"),
]
# what the decoded image must equal, from the array written (lossless formats)
TRUTH = {
    "L": GREY8[None],
    "LA": GREY8[None],  # alpha dropped, not composited
    "RGB": RGB8.transpose(2, 0, 1),
    "RGBA": RGB8.transpose(2, 0, 1),
    "I;16": (DEEP16 >> 8).astype(np.uint8)[None],  # the high byte
    "I": (DEEP16 >> 8).astype(np.uint8)[None],
    "F": np.rint(UNIT * 255).astype(np.uint8)[None],
}


# --- A: images decode to their values ---------------------------------------------------------


def save_mode(mode: str, fmt: str) -> Callable[[Path], None]:
    def save(path: Path) -> None:
        options: dict[str, Any] = {"lossless": True, "exact": True} if fmt == "webp" else {}
        if fmt == "jpg":
            options = {"quality": 95}
        pil_image(mode).save(path, **options)
        with Image.open(path) as written:  # the file holds the mode meant, not a conversion
            assert written.mode == mode or (mode, fmt) in WIDENED, (mode, fmt, written.mode)

    return save


# formats that store a mode as a wider one (WebP has no palette: P is written as RGB)
WIDENED = {("RGB", "webp"), ("P", "bmp")}


@pytest.mark.parametrize("mode, fmt", MODES, ids=[f"{m}-{f}" for m, f in MODES])
def test_every_mode_decodes_to_its_values(tmp_path, mode, fmt):
    root, path = folder_with(tmp_path, f"x.{fmt}", save_mode(mode, fmt))
    images = load_one(root)
    assert images.dtype == torch.uint8 and images.shape[0] == 1
    assert np.array_equal(images[0].numpy(), pillow_values(path)), (mode, fmt)
    if mode in TRUTH and fmt != "jpg":
        assert np.array_equal(images[0].numpy(), TRUTH[mode])
    if mode == "P" and fmt != "jpg":  # the palette's colours
        assert np.array_equal(
            images[0].numpy(), np.asarray(pil_image("P").convert("RGB")).transpose(2, 0, 1)
        )


@pytest.mark.parametrize("mode", ["CMYK", "RGB", "I;16", "LA", "P"])
@pytest.mark.parametrize("channels", [1, 3])
def test_data_channels_converts_each_mode_as_pillow_does(tmp_path, mode, channels):
    fmt = "jpg" if mode == "CMYK" else "png"
    root, path = folder_with(tmp_path, f"x.{fmt}", save_mode(mode, fmt))
    images = load_one(root, channels=channels)
    assert images.shape[1] == channels
    assert np.array_equal(images[0].numpy(), pillow_values(path, channels))


def test_a_cmyk_jpeg_is_its_colours_not_white(tmp_path):
    """CMYK came out (nearly) white unless data.channels was set: its K channel was read as
    alpha and its C, M, Y as R, G, B."""
    root, path = folder_with(tmp_path, "x.jpg", save_mode("CMYK", "jpg"))
    image = load_one(root)[0].numpy()
    with Image.open(path) as img:
        assert img.mode == "CMYK"
        expected = np.asarray(img.convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(image, expected)
    assert np.abs(image.astype(int) - RGB8.transpose(2, 0, 1)).mean() < 8  # close to what was saved


def test_a_16_bit_colour_png_keeps_its_high_byte_not_the_value_modulo_256(tmp_path):
    rgb16 = RNG.integers(0, 65536, (5, 4, 3)).astype(">u2")
    rgb16[0, 0] = [257 * 200, 65535, 256]  # 200, 255, 1 (modulo 256 they were 200, 255, 0)
    raw = b"".join(b"\x00" + row.tobytes() for row in rgb16)
    root, _ = folder_with(
        tmp_path, "deep.png", lambda p: p.write_bytes(png_bytes(4, 5, 16, 2, raw))
    )
    image = load_one(root)[0].numpy()
    assert np.array_equal(image, (rgb16.astype(np.int64) >> 8).astype(np.uint8).transpose(2, 0, 1))
    assert image[:, 0, 0].tolist() == [200, 255, 1]


def test_a_16_bit_grey_png_is_scaled_not_wrapped(tmp_path):
    root, _ = folder_with(tmp_path, "deep.png", lambda p: Image.fromarray(DEEP16).save(p))
    image = load_one(root)[0, 0].numpy()
    assert np.array_equal(image, (DEEP16 >> 8).astype(np.uint8))
    # an 8-bit image stored as 16 bits (x * 257) comes back exactly
    assert np.array_equal(image.ravel()[:7], np.arange(0, 256, 37, dtype=np.uint8))


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((4, 4), 70_000, np.int32), "values from 70000 to 70000"),
        (np.full((4, 4), -5, np.int32), "values from -5 to -5"),
        (np.full((4, 4), 2.5, np.float32), "float images must be in [0, 1]"),
        (np.full((4, 4), np.nan, np.float32), "float images must be in [0, 1]"),
    ],
    ids=["I-over-16-bit", "I-negative", "F-over-1", "F-nan"],
)
def test_deep_values_outside_the_documented_range_are_one_clear_error(tmp_path, array, expected):
    root, path = folder_with(tmp_path, "x.tiff", lambda p: Image.fromarray(array).save(p))
    with pytest.raises(DataError) as caught:
        load_one(root)
    assert str(path) in str(caught.value) and expected in str(caught.value)
    assert "data.skip_corrupt=true" in caught.value.fix


def animated(fmt: str, frames: int = 3) -> Callable[[Path], None]:
    def save(path: Path) -> None:
        images = [Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)) for i in range(frames)]
        images[0].save(path, format=fmt, save_all=True, append_images=images[1:])

    return save


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "TIFF"])
def test_a_file_of_several_frames_is_refused_naming_its_frames_and_format(tmp_path, fmt):
    """A GIF named .png made 'the images differ in size'; now: its name, frames and format."""
    root, path = folder_with(tmp_path, "anim.png", animated(fmt))
    Image.fromarray(GREY8).save(root / "a" / "still.png")
    with pytest.raises(DataError) as caught:
        load_one(root)
    message = str(caught.value)
    assert str(path) in message and "3 frames" in message and fmt in message, message
    assert "differ in size" not in message
    kept = DATASETS.get("image_folder")()
    kept.skip_corrupt = True
    split = kept.load_split(root, "all")
    assert len(split) == 1 and "skipped 1" in split.source and "3 frames" in split.source


# --- D: memory bounded by what the data declares ----------------------------------------------


@pytest.mark.parametrize(
    "width, height, declared",
    [(30000, 30000, "900,000,000"), (10000, 10000, "10000x10000 = 100,000,000")],
    ids=["over-twice-pillows-limit", "over-the-limit"],
)
def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path, width, height, declared):
    bomb = bomb_png(width, height)
    assert len(bomb) < 1000
    root, path = folder_with(tmp_path, "bomb.png", lambda p: p.write_bytes(bomb))
    Image.fromarray(GREY8).save(root / "a" / "ok.png")
    with pytest.raises(DataError) as caught:
        load_one(root)
    message = str(caught.value)
    assert str(path) in message and declared in message and "89,478,485" in message, message
    assert "REPLAB_MAX_IMAGE_PIXELS" in message and "data.skip_corrupt=true" in message
    kept = DATASETS.get("image_folder")()
    kept.skip_corrupt = True
    split = kept.load_split(root, "all")
    assert len(split) == 1 and "bomb.png" in split.source


def test_the_pixel_limit_is_a_setting(tmp_path, monkeypatch):
    root, path = folder_with(tmp_path, "x.png", lambda p: Image.fromarray(GREY8).save(p))
    monkeypatch.setenv("REPLAB_MAX_IMAGE_PIXELS", "41")
    with pytest.raises(DataError, match=r"7x6 = 42 pixels, more than the 41"):
        load_one(root)
    monkeypatch.setenv("REPLAB_MAX_IMAGE_PIXELS", "42")
    assert load_one(root).shape == (1, 1, 6, 7)
    monkeypatch.setenv("REPLAB_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ConfigError, match="REPLAB_MAX_IMAGE_PIXELS"):
        load_one(root)


def test_a_folder_that_would_not_fit_memory_stops_before_decoding_it(tmp_path, monkeypatch):
    import replab.data.image_folder as image_folder

    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    for i in range(12):
        Image.fromarray(RGB8).save(root / "a" / f"{i:02d}.png")  # 126 bytes each decoded
    monkeypatch.setattr(image_folder, "available_memory", lambda: 2000)  # 1000 for the images
    with pytest.raises(DataError) as caught:
        load_one(root)
    assert "half the memory available" in str(caught.value)
    assert "data.image_size" in caught.value.fix
    # shrinking as they are decoded makes them fit: 3 x 4 x 4 = 48 bytes each
    assert load_one(root, image_size=4).shape == (12, 3, 4, 4)


def forged_npz(path: Path, shape: tuple[int, ...], payload: bytes = b"") -> None:
    """An npz whose x.npy header declares ``shape`` (uint8) over only ``payload``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", header.getvalue() + payload)
        archive.writestr("y.npy", npy_bytes(np.zeros(4, np.int64)))


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_an_npz_declaring_more_than_it_holds_is_refused_without_allocating(tmp_path):
    path = tmp_path / "forged.npz"
    forged_npz(path, (1_000_000, 3, 1024, 1024), b"\x00" * 1000)  # 3 TB declared, 1 kB held
    assert path.stat().st_size < 5000
    with pytest.raises(DataError) as caught:
        load_splits("npz", root=str(path))
    message = str(caught.value)
    assert str(path) in message and "(1000000, 3, 1024, 1024)" in message
    assert "truncated or forged" in message


def test_an_npz_that_expands_past_the_memory_available_is_refused_before_reading(
    tmp_path, monkeypatch
):
    import replab.data.npz as npz

    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, x=np.zeros((2000, 32, 32), np.uint8), y=np.zeros(2000, np.int64))
    assert path.stat().st_size < 50_000  # 2 MB of images inside
    monkeypatch.setattr(npz, "available_memory", lambda: 1 << 20)
    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", read_before_the_check)
    with pytest.raises(DataError) as caught:
        load_splits("npz", root=str(path))
    message = str(caught.value)
    assert "x of shape (2000, 32, 32) uint8" in message and "memory available" in message
    assert "fewer or smaller images" in caught.value.fix


def read_before_the_check(self, key):
    raise AssertionError(f"{key} was read before the memory check")


@pytest.mark.parametrize(
    "y, expected",
    [
        (np.array([0, 100_000_000]), "100,000,001 classes"),
        (np.array([0, 1, 2, 20]), "21 classes (0..20) for 4 images"),
    ],
    ids=["10^8", "more-classes-than-images"],
)
def test_absurd_labels_are_refused_before_naming_classes(tmp_path, y, expected):
    path = tmp_path / "labels.npz"
    np.savez(path, x=np.zeros((len(y), 4, 4), np.uint8), y=y)
    started = time.perf_counter()
    with pytest.raises(DataError) as caught:
        load_splits("npz", root=str(path))
    assert time.perf_counter() - started < 5
    assert expected in str(caught.value) and "'classes'" in caught.value.fix
    # with the names given, a class without images is the user's choice
    names = np.array([f"c{i}" for i in range(21)])
    np.savez(path, x=np.zeros((4, 4, 4), np.uint8), y=np.array([0, 1, 2, 20]), classes=names)
    assert len(DATASETS.get("npz")().load_split(path, "all").classes) == 21


# --- B: own folders walked without leaving them, and a cache that sees changed pixels ----------


def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(GREY8 + i).save(root / name / f"{i}.png")
    return root


def outside(tmp_path: Path) -> Path:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    Image.fromarray(255 - GREY8).save(foreign / "stranger.png")
    return foreign


LINKS = {
    # name: (link relative to the root, its target: a function of (root, tmp), expected)
    "class folder linked to its parent": ("c", lambda r, t: r, "a folder already read"),
    "class folder linked to another class": ("c", lambda r, t: r / "a", "a folder already read"),
    "class folder linked outside the root": ("c", lambda r, t: outside(t), "outside the image"),
    "class folder linked to /proc": ("c", lambda r, t: Path("/proc"), "outside the image"),
    "subfolder linked to its class (a cycle)": ("a/sub", lambda r, t: r / "a", "already read"),
    "subfolder linked to the root": ("b/up", lambda r, t: r, "already read"),
    "image linked outside the root": (
        "a/x.png",
        lambda r, t: outside(t) / "stranger.png",
        "outside the image",
    ),
    "link loop": ("a/loop.png", lambda r, t: r / "a" / "loop.png", "cannot be followed"),
}


@pytest.mark.parametrize("name", list(LINKS))
def test_a_link_that_leaves_the_root_or_reads_a_folder_twice_is_refused(tmp_path, name, capsys):
    rel, target, expected = LINKS[name]
    root = tree(tmp_path)
    (root / rel).symlink_to(target(root, tmp_path))
    before = snapshot(tmp_path)
    code = main(
        [
            "run",
            "digits-autoencoder",
            "data.dataset=image_folder",
            f"data.root={root}",
            "trainer.epochs=1",
            "--runs-dir",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.strip()]
    assert line.startswith("replab: error:") and "Fix:" in line, line
    assert str(root / rel) in line and expected in line, line
    assert snapshot(tmp_path) == before, "the refused run changed the folder"


def test_links_that_stay_inside_the_root_are_followed_once(tmp_path):
    root = tree(tmp_path)
    store = root / ".store"  # hidden: not a class of its own
    store.mkdir()
    Image.fromarray(GREY8).save(store / "kept.png")
    (root / "c").symlink_to(store)
    (root / "a" / "more").symlink_to(store, target_is_directory=True)  # a second way into it
    with pytest.raises(DataError, match="already read"):
        load_one(root)
    (root / "a" / "more").unlink()
    (root / "a" / "again.png").symlink_to(root / "b" / "0.png")  # a file link stays inside
    split = DATASETS.get("image_folder")().load_split(root, "all")
    assert split.classes == ["a", "b", "c"] and len(split) == 8


def test_a_linked_data_root_is_its_target(tmp_path):
    root = tree(tmp_path)
    link = tmp_path / "linked"
    link.symlink_to(root)
    assert len(DATASETS.get("image_folder")().load_split(link, "all")) == 6


def test_the_cache_sees_new_pixels_behind_the_same_size_and_mtime(tmp_path):
    root, path = folder_with(tmp_path, "x.bmp", lambda p: Image.fromarray(GREY8).save(p))
    # BMP is uncompressed: other pixels, the same size

    def load():
        return DATASETS.get("image_folder")().load_split(root, "all")

    assert "decoded in" in load().source
    assert "read from the cache" in load().source
    stat = path.stat()
    Image.fromarray(255 - GREY8).save(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    changed = load()
    assert "decoded in" in changed.source
    assert torch.equal(changed.images[0, 0], torch.from_numpy(255 - GREY8))
    assert "read from the cache" in load().source
