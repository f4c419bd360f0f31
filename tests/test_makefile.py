"""`make setup` takes torch and torchvision at the versions pyproject.toml pins: from PyTorch's
CPU wheel index on a machine without an NVIDIA driver (falling back to the default index, with
one line saying so, when that index cannot serve them), from the index TORCH_INDEX or
TORCH_INDEX_URL names when given, from the default index otherwise."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import threading
import zipfile
from base64 import urlsafe_b64encode
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CPU = "https://download.pytorch.org/whl/cpu"


def dry_setup(tmp_path: Path, *variables: str) -> str:
    """The commands `make setup` would run for a fresh venv (nothing is run or downloaded)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    command = ["make", "-n", "-B", "setup", f"VENV={tmp_path / 'venv'}", *variables]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout


def pinned() -> set[str]:
    text = (REPO / "pyproject.toml").read_text()
    return set(re.findall(r'"(torch(?:vision)?==[0-9.]+)"', text))


def torch_index(out: str) -> str:
    """The index the first torch install of ``out`` reads from."""
    (line,) = [x for x in out.splitlines() if "--index-url" in x]
    assert set(re.findall(r"torch(?:vision)?==[0-9.]+", line.split("||")[0])) == pinned() != set()
    assert out.index("--index-url") < out.index("-e '.[dev,notebook]'")  # torch, then replab
    return line.split("--index-url ")[1].split()[0]


def test_the_torch_index_passes_through_with_the_pinned_versions(tmp_path):
    for driver in ("NVIDIA_DRIVER=yes", "NVIDIA_DRIVER="):
        for variables in (["TORCH_INDEX=cpu"], [f"TORCH_INDEX_URL={CPU}"]):
            assert torch_index(dry_setup(tmp_path, driver, *variables)) == CPU


def test_without_an_nvidia_driver_torch_comes_from_the_cpu_index(tmp_path):
    out = dry_setup(tmp_path, "NVIDIA_DRIVER=")
    assert torch_index(out) == CPU
    # and the default index serves it when the CPU index cannot
    fallback = out.split("||")[1]
    assert "--index-url" not in fallback and "default index" in fallback


def test_with_an_nvidia_driver_everything_comes_from_the_usual_index(tmp_path):
    out = dry_setup(tmp_path, "NVIDIA_DRIVER=yes")
    assert "--index-url" not in out and "-e '.[dev,notebook]'" in out


def test_an_empty_torch_index_means_the_usual_index_even_without_a_driver(tmp_path):
    for variable in ("TORCH_INDEX=", "TORCH_INDEX_URL="):
        out = dry_setup(tmp_path, "NVIDIA_DRIVER=", variable)
        assert "--index-url" not in out and "-e '.[dev,notebook]'" in out


def test_the_driver_is_detected_on_this_machine(tmp_path):
    out = dry_setup(tmp_path)
    has_driver = Path("/proc/driver/nvidia/version").exists()
    assert ("--index-url" in out) is not has_driver


# --- the two branches run for real: pip against a wheel index served on loopback ------------


def stub_wheel(folder: Path, pin: str) -> None:
    """A tiny real wheel ``name==version`` under ``folder/name/`` (an index's layout)."""
    name, version = pin.split("==")
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}_stub.py": b"",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [
        f"{path},sha256={urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()}"
        f",{len(data)}"
        for path, data in files.items()
    ]
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    (folder / name).mkdir(parents=True)
    with zipfile.ZipFile(folder / name / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        for path, data in files.items():
            whl.writestr(path, data)


@pytest.fixture
def wheel_index(tmp_path):
    """A PEP 503 index on loopback serving the pinned torch and torchvision as stub wheels."""
    root = tmp_path / "index"
    for pin in sorted(pinned()):
        stub_wheel(root, pin)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_torch(tmp_path: Path, default_index: str, *variables: str):
    """``make VENV/.torch`` for real, the default index being ``default_index``."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {
        "PIP_CONFIG_FILE": os.devnull,  # this machine's own pip settings (mirrors) stay out
        "PIP_INDEX_URL": default_index,
        "PIP_CACHE_DIR": str(tmp_path / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    command = ["make", f"{venv}/.torch", f"VENV={venv}", *variables]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return done, {x for x in listed.splitlines() if x.startswith("torch")}


def test_an_unreachable_cpu_index_falls_back_to_the_default_one_with_one_line(
    tmp_path, wheel_index
):
    down = f"http://127.0.0.1:{closed_port()}/"
    done, installed = install_torch(
        tmp_path, wheel_index, "NVIDIA_DRIVER=", f"TORCH_INDEX_URL={down}"
    )
    assert installed == pinned()
    said = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(said) == 1 and said[0].startswith(
        f"replab: torch could not be installed from {down}"
    )
    assert "default index" in said[0]


def test_a_reachable_index_serves_torch_without_a_word(tmp_path, wheel_index):
    done, installed = install_torch(
        tmp_path,
        f"http://127.0.0.1:{closed_port()}/",
        "NVIDIA_DRIVER=",
        f"TORCH_INDEX_URL={wheel_index}",
    )
    assert installed == pinned()
    assert "replab:" not in done.stderr
