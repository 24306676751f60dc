"""Every failure twinsearch expects, as one tree. Each message says what to do next.

    TwinsearchError
    ├── ConfigError            a setting or argument that cannot work
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


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or the name of its type where it has none: a
    foreign error's gist, for a message of ours that must stay one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
