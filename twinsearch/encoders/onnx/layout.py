"""An export on disk: the files of one, and whether the one found may be used.

An export is a folder named after the model's fingerprint, kept beside the collections.
Its config file is written last, once the export agrees with torch: a folder without one
is no export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twinsearch.errors import ModelError

MODEL_FILE = "query.onnx"
WEIGHTS_FILE = "query.onnx.data"
# 2: the weights in WEIGHTS_FILE, beside the graph. 3: the model's own vectors of the check
# texts in CHECK_FILE. Exports of an older format are redone.
FORMAT = 3
CONFIG_FILE = "onnx.json"
TOKENIZER_FILE = "tokenizer.json"
HEADS_FILE = "heads.npz"
CHECK_FILE = "check.npz"
"""The texts the export was checked on, and the model's vectors of them made with torch."""
INT8_DIR = "int8"
"""The export quantized to int8 for OpenVINO (``onnx.quantized``)."""
SOURCES_FILE = "sources.json"
"""Beside the exports: which model folder (as its files stood) has which fingerprint."""
# The least cosine between the export's vectors and torch's for the export to be used.
MIN_COSINE = 0.999
REFERENCE_COSINE = 0.99999
"""The least, for the export in fp32 to stand in for the model on torch as the yardstick of
the document encoder's gate (measured: 0.9999998)."""


def folder_for(models_dir: Path, fingerprint: str) -> Path:
    return models_dir / fingerprint


def format_of(folder: Path) -> int:
    """The format of the export in ``folder``: 0 if there is none, 1 before formats."""
    try:
        return int(json.loads((folder / CONFIG_FILE).read_text()).get("format", 1))
    except (OSError, ValueError, AttributeError):
        return 0


def files_hash(folder: Path) -> str:
    """A hash of the export's graph and weights as they are on disk (about 0.2 s)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for name in (MODEL_FILE, WEIGHTS_FILE):
        with open(folder / name, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
    return h.hexdigest()


def intact(folder: Path) -> bool:
    """Whether ``folder`` holds an export of the current format whose graph and weights are
    still those it was made and checked with."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        return is_current(folder) and config.get("files_hash") == files_hash(folder)
    except (OSError, ValueError, AttributeError):
        return False


def is_current(folder: Path) -> bool:
    """Whether ``folder`` holds an export of the current format (an older one is redone)."""
    return format_of(folder) >= FORMAT


def checked_config(folder: Path, fingerprint: str) -> dict[str, Any]:
    """The config of the export in ``folder``; ``ModelError`` if there is none, or it is not
    of the model with ``fingerprint``, or it did not agree with torch."""
    try:
        config: dict[str, Any] = json.loads((folder / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise ModelError(f"no ONNX export in {folder}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable ONNX export in {folder}: {exc}") from None
    if config.get("fingerprint") != fingerprint or config.get("min_cosine", 0) < MIN_COSINE:
        raise ModelError(f"the ONNX export in {folder} does not match the model")
    return config


def _source_key(path: Path) -> str | None:
    """A key for the model folder ``path`` as its files stand now (names, sizes, times);
    None if it is not a folder (a hub id)."""
    import hashlib

    if not path.is_dir():
        return None
    h = hashlib.blake2b(digest_size=16)
    h.update(str(path.resolve()).encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        h.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def remember_source(models_dir: Path, path: str, fingerprint: str) -> None:
    """Note that the model in folder ``path`` has ``fingerprint`` (which only loading it
    computes), so that a later run finds its export without loading it."""
    key = _source_key(Path(path))
    if key is None:
        return
    file = models_dir / SOURCES_FILE
    try:
        known = json.loads(file.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict) or known.get(key) == fingerprint:
        return
    known[key] = fingerprint
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(known, indent=2))
    except OSError:
        pass  # only a quicker start lost


def known_fingerprint(models_dir: Path, path: str) -> str | None:
    """The fingerprint of the model in folder ``path``, if it was noted and the folder has
    not changed since; else None."""
    key = _source_key(Path(path))
    if key is None:
        return None
    try:
        known = json.loads((models_dir / SOURCES_FILE).read_text())
    except (OSError, ValueError):
        return None
    found = known.get(key) if isinstance(known, dict) else None
    return str(found) if found else None
