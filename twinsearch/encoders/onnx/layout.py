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
# 2: the weights in WEIGHTS_FILE, beside the graph. Exports of an older format are redone.
FORMAT = 2
CONFIG_FILE = "onnx.json"
TOKENIZER_FILE = "tokenizer.json"
HEADS_FILE = "heads.npz"
# The least cosine between the export's vectors and torch's for the export to be used.
MIN_COSINE = 0.999


def folder_for(models_dir: Path, fingerprint: str) -> Path:
    return models_dir / fingerprint


def format_of(folder: Path) -> int:
    """The format of the export in ``folder``: 0 if there is none, 1 before formats."""
    try:
        return int(json.loads((folder / CONFIG_FILE).read_text()).get("format", 1))
    except (OSError, ValueError, AttributeError):
        return 0


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
