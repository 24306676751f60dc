"""twinsearch: semantic document search with twin text encoders and Qdrant.

The public API is ``__all__``. Names load on first use, so that importing a submodule (as
the command line does) pays only for what it needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from twinsearch._version import __version__

if TYPE_CHECKING:
    from twinsearch.collection import open_for_search, open_for_write
    from twinsearch.encoders import DEFAULT_MODEL, Encoder, HashingEncoder, load_encoder
    from twinsearch.errors import (
        CollectionLocked,
        CollectionNotFound,
        ConfigError,
        EncoderMismatch,
        ModelError,
        SourceError,
        StoreError,
        TwinsearchError,
    )
    from twinsearch.nouns import Chunk, Document, Hit, Point, ScoredPoint
    from twinsearch.search import Searcher, retrieve, search
    from twinsearch.settings import Settings
    from twinsearch.stores import CollectionSpec, Match, Range, Store, connect

_HOMES = {
    "twinsearch.collection": ["open_for_search", "open_for_write"],
    "twinsearch.encoders": ["DEFAULT_MODEL", "Encoder", "HashingEncoder", "load_encoder"],
    "twinsearch.errors": [
        "CollectionLocked",
        "CollectionNotFound",
        "ConfigError",
        "EncoderMismatch",
        "ModelError",
        "SourceError",
        "StoreError",
        "TwinsearchError",
    ],
    "twinsearch.search": ["Searcher", "retrieve", "search"],
    "twinsearch.settings": ["Settings"],
    "twinsearch.stores": ["CollectionSpec", "Match", "Range", "Store", "connect"],
    "twinsearch.nouns": ["Chunk", "Document", "Hit", "Point", "ScoredPoint"],
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "Chunk",
    "CollectionLocked",
    "CollectionNotFound",
    "CollectionSpec",
    "ConfigError",
    "DEFAULT_MODEL",
    "Document",
    "Encoder",
    "EncoderMismatch",
    "HashingEncoder",
    "Hit",
    "Match",
    "ModelError",
    "Point",
    "Range",
    "ScoredPoint",
    "Searcher",
    "Settings",
    "SourceError",
    "Store",
    "StoreError",
    "TwinsearchError",
    "__version__",
    "connect",
    "load_encoder",
    "open_for_search",
    "open_for_write",
    "retrieve",
    "search",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME_OF:
        raise AttributeError(f"module 'twinsearch' has no attribute {name!r}")
    value = getattr(import_module(_HOME_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
