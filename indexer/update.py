"""Bringing a collection up to date with folders and files, as `twinsearch index` does.

Decided here: the model (the one named, else the collection's own, else the bundled one),
the chunking, and whether a re-index with another model builds a new collection and then
switches the name over (searches keep the old one until the new one is complete). What a
person should hear of it comes back as events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from twinsearch.errors import StoreError
from twinsearch.indexer.pipeline import IndexReport
from twinsearch.indexer.sources import Corpus, SourceOptions
from twinsearch.settings import Settings
from twinsearch.stores import Client, Store


@dataclass(frozen=True)
class Reindexing:
    """A re-index with another model builds ``target``; searches use ``current`` meanwhile."""

    name: str
    model: str
    target: str
    current: str


@dataclass(frozen=True)
class Switched:
    """``name`` now searches ``target``; ``previous`` is what it searched before."""

    name: str
    target: str
    previous: str | None


@dataclass(frozen=True)
class UpgradingIds:
    """A collection made by an earlier version gets its point ids upgraded, once."""

    name: str


@dataclass(frozen=True)
class Note:
    """A line to show as it is ("note: ..." or "warning: ...")."""

    text: str


Event = Reindexing | Switched | UpgradingIds | Note
Progress = Callable[[Corpus, IndexReport], None]


@contextmanager
def no_progress() -> Iterator[Progress]:
    yield lambda corpus, report: None


def write_batch(settings: Settings) -> int:
    """Chunks embedded and written per batch: a few encoder batches, so the reader thread
    and the encoder overlap."""
    return max(settings.batch_size * 4, 64)


def update(
    client: Client,
    settings: Settings,
    corpus: Corpus,
    report: IndexReport,
    *,
    reindex: bool = False,
    on_event: Callable[[Event], None] = lambda event: None,
    progress: Callable[[], AbstractContextManager[Progress]] = no_progress,
    ray: str | None = None,
) -> None:
    """Index ``corpus`` into the settings' collection: new and changed documents embedded,
    removed ones deleted (see ``pipeline.index_corpus``). With ``reindex`` and a model other
    than the collection's, into a new collection that then takes the name over. With
    ``ray``, the address of a Ray cluster, the documents are encoded there (``cluster``)."""
    from twinsearch.collection import recorded_model
    from twinsearch.encoders import DEFAULT_MODEL
    from twinsearch.indexer.chunking import ChunkSettings
    from twinsearch.indexer.pipeline import index_corpus
    from twinsearch.session import indexing_encoder

    store = client.collection(settings.collection)
    if store.exists():
        store.open()  # in use by another process: said now, not after the model loads
    name = settings.model or (recorded_model(store) if store.exists() else DEFAULT_MODEL)
    encoder = indexing_encoder(
        settings, name, lambda line: on_event(Note(line)), expected_bytes=corpus.total_bytes
    )
    target = _target(client, settings, encoder, reindex, on_event)
    chunking = ChunkSettings.for_model(settings.chunk_size, settings.chunk_overlap, encoder.window)

    def upgrading(moved: int) -> None:
        if moved == 0:
            on_event(UpgradingIds(target))

    with ExitStack() as stack:
        encoding = None
        if ray is not None:
            from twinsearch.indexer.cluster import ray_encoding

            encoding = stack.enter_context(
                ray_encoding(
                    ray,
                    settings,
                    name,
                    expected_bytes=corpus.total_bytes,
                    say=lambda line: on_event(Note(line)),
                )
            )
        with progress() as show:
            index_corpus(
                client,
                target,
                encoder,
                chunking,
                corpus,
                report,
                batch_size=write_batch(settings),
                on_progress=show,
                on_upgrade=upgrading,
                encoding=encoding,
            )
    remember_sources(client.collection(target), corpus)
    remember_runtime(client.collection(target), encoding or encoder, report)
    if target != settings.collection:
        previous = client.switch_alias(settings.collection, target)
        on_event(Switched(settings.collection, target, previous))


RUNTIME_KEY = "runtime"
"""Where a collection records what encoded its documents: the last run's runtime,
precision and gate cosine, and every runtime and precision that wrote to it."""


def remember_runtime(store: Store, encoder: Any, report: IndexReport | None = None) -> None:
    """Record in ``store``'s metadata (and ``report``) what encoded the run's documents."""
    from twinsearch.encoders.fast import Choice

    choice = getattr(encoder, "choice", None)
    if choice is None and hasattr(encoder, "model"):  # the model itself, on torch
        choice = Choice("torch", "fp32", 1.0)
    if choice is None and hasattr(encoder, "checked_cosine"):  # its export, in its stead
        choice = Choice(encoder.runtime, encoder.precision, round(encoder.checked_cosine, 6))
    if choice is None:
        return
    if report is not None:
        report.encoded_with = f"{choice.runtime} {choice.precision}"
    known = dict(store.metadata().get(RUNTIME_KEY) or {})
    used = set(known.get("used") or [])
    used.add(f"{choice.runtime} {choice.precision}")
    store.update_metadata({RUNTIME_KEY: {**choice.as_dict(), "used": sorted(used)}})


SOURCES_KEY = "sources"
"""Where a collection records its roots: root path -> the options it was read with."""


def remember_sources(store: Store, corpus: Corpus) -> None:
    """Record in ``store``'s metadata each root of ``corpus`` with its reading options, for
    `twinsearch update`; roots indexed before keep theirs."""
    known = dict(store.metadata().get(SOURCES_KEY) or {})
    options = corpus.options.as_dict()
    known.update({root: options for root in sorted(corpus.roots)})
    store.update_metadata({SOURCES_KEY: known})


def remembered_sources(metadata: Mapping[str, Any]) -> list[tuple[list[str], SourceOptions]]:
    """The roots a collection's ``metadata`` says it was indexed from, grouped by the options
    they were read with (so each group is one corpus, as one `twinsearch index` run made it)."""
    groups: dict[str, tuple[list[str], SourceOptions]] = {}
    for root, options in sorted((metadata.get(SOURCES_KEY) or {}).items()):
        key = json.dumps(options, sort_keys=True)
        groups.setdefault(key, ([], SourceOptions.from_dict(options)))[0].append(root)
    return list(groups.values())


def _target(
    client: Client, settings: Settings, encoder: Any, reindex: bool, on_event: Callable[..., None]
) -> str:
    """The collection to write: the settings' own, or, for a re-index with another model,
    a new one named after the model (a killed run resumes into the same one)."""
    from twinsearch.stores.base import versioned_name

    store = client.collection(settings.collection)
    switch = (
        reindex
        and store.exists()
        and store.metadata().get("encoder", {}).get("fingerprint") != encoder.fingerprint
    )
    if not switch:
        return settings.collection
    if client.aliased and settings.collection not in client.aliases():
        raise StoreError(
            f"{settings.collection!r} on {client.location} is a collection, not an alias, so a "
            "re-index cannot switch it in place: index into a new name with --collection, "
            f"then drop {settings.collection!r}"
        )
    target = versioned_name(settings.collection, encoder.fingerprint)
    on_event(Reindexing(settings.collection, encoder.name, target, store.name))
    return target
