"""Every failure twinsearch expects, as one tree. Each message says what to do next.

    TwinsearchError
    ├── ConfigError            a setting or argument that cannot work
    │   └── EmptyQuery             a search with no words to search for
    ├── SourceError            a path to index that is missing or holds nothing indexable
    ├── ModelError             a model that cannot be loaded
    └── StoreError             the vector store refused or failed
        ├── CollectionNotFound     no collection of that name
        ├── CollectionLocked       another process holds the embedded collection
        └── EncoderMismatch        the collection was built with another encoder or chunker

Foreign errors (Qdrant, file system, model loading) are translated where they are raised,
so callers catch ``TwinsearchError`` alone.
"""

from __future__ import annotations


class TwinsearchError(Exception):
    """Base of every error twinsearch raises on purpose."""


class ConfigError(TwinsearchError):
    pass


class EmptyQuery(ConfigError):
    pass


class SourceError(TwinsearchError):
    pass


class ModelError(TwinsearchError):
    pass


class StoreError(TwinsearchError):
    pass


class CollectionNotFound(StoreError):
    pass


class CollectionLocked(StoreError):
    pass


class EncoderMismatch(StoreError):
    pass
