"""twinsearch: semantic document search with twin text encoders and Qdrant.

The public API is ``__all__``; heavy libraries load only when a model or server is used.
"""

from twinsearch._version import __version__
from twinsearch.collections import open_for_search, open_for_write
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
from twinsearch.search import Searcher, retrieve, search
from twinsearch.settings import Settings
from twinsearch.stores import CollectionSpec, Match, Range, Store, connect
from twinsearch.types import Chunk, Document, Hit, Point, ScoredPoint

__all__ = [
    "DEFAULT_MODEL",
    "Chunk",
    "CollectionLocked",
    "CollectionNotFound",
    "CollectionSpec",
    "ConfigError",
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
