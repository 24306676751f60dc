"""Every failure twinsearch expects, as one tree. Each message says what to do next.

    TwinsearchError
    ├── ConfigError            a setting or argument that cannot work
    │   └── EmptyQuery             a search with no words to search for
    ├── SourceError            a path to index that is missing or holds nothing indexable
    ├── ModelError             a model that cannot be loaded
    └── StoreError             the vector store refused or failed
        ├── CollectionNotFound     no collection of that name
        ├── DocumentNotFound       no document of that id in the collection
        ├── CollectionLocked       another process holds the embedded collection
        └── EncoderMismatch        the collection was built with another encoder or chunker

Foreign errors (Qdrant, file system, model loading) are translated where they are raised,
through ``translated`` and a table of what becomes what, so callers catch
``TwinsearchError`` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


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


class DocumentNotFound(StoreError):
    pass


class CollectionLocked(StoreError):
    pass


class EncoderMismatch(StoreError):
    pass


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (foreign messages run to pages), or its
    type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


Kinds = type[BaseException] | tuple[type[BaseException], ...]
Translation = tuple[Kinds, Callable[[BaseException], TwinsearchError]]


@contextmanager
def translated(table: Sequence[Translation]) -> Iterator[None]:
    """Foreign errors raised inside become what the first row of ``table`` whose kinds they
    are makes of them (the foreign error chained as the cause); ``TwinsearchError`` and
    errors no row names pass through."""
    try:
        yield
    except TwinsearchError:
        raise
    except Exception as exc:
        for kinds, make in table:
            if isinstance(exc, kinds):
                raise make(exc) from exc
        raise
