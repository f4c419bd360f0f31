"""What of a saved program (an encoder file given to ``replab analyze``) is safe to open.

``torch.export.load`` unpickles payloads saved with pickle (and falls back to unrestricted
unpickling for sample inputs and its older formats), evaluates the shape expressions it
reads with sympy (Python ``eval``), ``exec``s the guard code it reads, and resolves graph
targets by name anywhere under ``torch``. ``check_pt2`` therefore reads the archive first
and refuses, unless the user passes ``trust_code``, everything but a graph of torch
operators over raw tensors.
"""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from pathlib import Path

import sympy
import torch
from torch.utils._sympy import functions

from replab.errors import ReplabError
from replab.registry import check_code

# The parts of a torch.export.save archive (torch 2.6+), under its one root folder.
_PT2_FILES = re.compile(
    r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/\w+\.json|data/sample_inputs/\w+\.pt|extra/[\w.-]+"
    r"|data/weights/(weight_\d+|\w+_weights_config\.json)"
    r"|data/constants/(tensor_\d+|\w+_constants_config\.json)"
)
# graph targets other than torch.ops.*: the symbolic-size arithmetic torch.export writes
_SYM_OPERATORS = "eq ne le ge lt gt neg pos mul add sub floordiv mod pow truediv and_ or_ getitem"
_SYM_TORCH = "sym_not sym_int sym_float sym_ite sym_max sym_min sym_sqrt _sym_sqrt"
_PT2_SYM_TARGETS = frozenset(
    [f"_operator.{n}" for n in _SYM_OPERATORS.split()]
    + [f"torch.{n}" for n in _SYM_TORCH.split()]
    + ["math.trunc"]
)
_PT2_OP = re.compile(r"torch\.ops\.([A-Za-z]\w*)\.([A-Za-z_]\w*)(\.[A-Za-z_]\w*)?")
# Operators that touch files (torch.save writes any path, from_file reads one) or call
# Python: a program is computation on the images, so these are refused in both formats.
_FILE_OPS = frozenset({"save", "from_file", "load_tensor", "PythonOp", "IgnoredPythonOp"})
_SCRIPT_REFUSED = re.compile(rf"\b({'|'.join(sorted(_FILE_OPS))})\b|torch\.classes\.")
_SYMPY_TEXT = re.compile(r"[\w\s+\-*/%()<>=!,.&|~^]*")
_SYMPY_CONSTANTS = frozenset({"oo", "zoo", "nan", "true", "false", "True", "False", "pi", "E", "I"})


def is_pt2(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/archive_format") for n in archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def check_pt2(path: Path) -> None:
    """Refuse (UntrustedCodeError) a .pt2 holding anything torch.export.load would run as
    Python: pickled weights or constants, custom or opaque objects, sample inputs beyond
    tensors, guard code, shape expressions beyond sympy arithmetic, targets other than
    torch operators, compiled (AOTInductor) libraries or files of other formats."""
    found: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            roots = {n.split("/", 1)[0] for n in names}
            for name in names:
                rel = name.split("/", 1)[1] if "/" in name else ""
                if len(roots) != 1 or not _PT2_FILES.fullmatch(rel):
                    found.append(f"file {name}")
                elif rel.endswith("_config.json"):
                    found += _pt2_payloads(rel, json.loads(archive.read(name)))
                elif rel.startswith("models/"):
                    found += _pt2_program(rel, json.loads(archive.read(name)))
                elif rel.startswith("data/sample_inputs/") and not _tensors_only(
                    archive.read(name)
                ):
                    found.append(f"{rel} (pickled objects)")
    except (OSError, zipfile.BadZipFile, ValueError, RecursionError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise ReplabError(
            f"{str(path)!r} is not a readable torch.export program ({first})",
            "save it again with torch.export.save",
        ) from None
    check_code(found, f"the program {str(path)!r}")


def is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in n for n in archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def check_torchscript(path: Path) -> None:
    """Refuse (UntrustedCodeError) a TorchScript archive whose code calls an operator that
    touches files or Python (``torch.save`` to any path, ``torch.from_file``) or a TorchBind
    class. torch.jit.load compiles the archive's TorchScript: no Python module is imported and
    its unpickler makes no Python objects, but the code runs whatever torch operators it
    names when the encoder is called."""
    found: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if "/code/" in name and name.endswith(".py"):
                    text = archive.read(name).decode("utf-8", errors="replace")
                    found += [f"{name}: {m.group()}" for m in _SCRIPT_REFUSED.finditer(text)]
    except (OSError, zipfile.BadZipFile, ValueError) as err:
        first = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise ReplabError(
            f"{str(path)!r} is not a readable TorchScript file ({first})",
            "save it again with torch.jit.save",
        ) from None
    check_code(found, f"the program {str(path)!r}")


def _pt2_payloads(rel: str, config: object) -> list[str]:
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        return [f"{rel} (not a payload table)"]
    found = []
    for fqn, meta in entries.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            found.append(f"{rel}: {fqn} (pickled)")
        elif not re.fullmatch(r"(weight|tensor)_\d+", str(meta.get("path_name"))):
            found.append(f"{rel}: {fqn} ({meta.get('path_name')})")
    return found


def _pt2_program(rel: str, program: object) -> list[str]:
    if not isinstance(program, dict):
        return [f"{rel} (not a program)"]
    found = [f"{rel}: guard code {g!r:.60}" for g in program.get("guards_code") or []]
    ranges = program.get("range_constraints") or {}
    expressions = list(ranges) if isinstance(ranges, dict) else [repr(ranges)]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            target = node.get("target")
            if isinstance(target, str) and "inputs" in node and not _torch_op(target):
                found.append(f"{rel}: target {target[:80]}")
            if isinstance(node.get("expr_str"), str):
                expressions.append(node["expr_str"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(program)
    found += [f"{rel}: expression {e!r:.60}" for e in expressions if not _sympy_arithmetic(e)]
    return found


def _torch_op(target: str) -> bool:
    if target in _PT2_SYM_TARGETS:
        return True
    match = _PT2_OP.fullmatch(target)
    if match is None or "__" in target or match.group(2) in _FILE_OPS:
        return False
    # torch.ops' own methods (import_module, load_library) are not operator namespaces
    return not hasattr(type(torch.ops), match.group(1))


def _sympy_arithmetic(text: str) -> bool:
    """Whether ``text`` is a shape expression torch.export writes (``Max(2, s0)``,
    ``FloorDiv(Symbol('s77', positive=True), Integer(2))``): numbers, operators, quoted size
    symbols, assumptions and sympy's classes. sympy evaluates it as Python, so nothing else."""
    text = re.sub(r"'[a-z]+\d+'", "s0", text)  # the quoted names of size symbols
    if not _SYMPY_TEXT.fullmatch(text) or "__" in text or re.search(r"\.[A-Za-z_]", text):
        return False
    for match in re.finditer(r"[A-Za-z_]\w*", text):
        name = match.group()
        if re.fullmatch(r"[a-z]+\d+", name) or name in _SYMPY_CONSTANTS:
            continue
        if re.match(r"\s*=(?!=)", text[match.end() :]) and re.fullmatch(r"[a-z]+", name):
            continue  # an assumption: Symbol(..., positive=True)
        cls = getattr(functions, name, None) or getattr(sympy, name, None)
        if name.startswith("_") or not (isinstance(cls, type) and issubclass(cls, sympy.Basic)):
            return False
    return True


def _tensors_only(data: bytes) -> bool:
    """Whether torch's restricted unpickler reads ``data`` (torch.export.load would fall back
    to the unrestricted one)."""
    try:
        with warnings.catch_warnings():  # "pickle protocol 4": refused below if it matters
            warnings.simplefilter("ignore")
            torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception:
        return False
    return True
