"""`twinsearch update [NAME]`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from twinsearch.cli.common import (
    DataDir,
    QdrantUrl,
    collection_argument,
    err,
    errors_to_exit,
    index_progress,
    print_skips,
    settings_from,
)
from twinsearch.cli.index import JsonReport, print_outcome, say
from twinsearch.session import open_client

Name = Annotated[str | None, collection_argument("to bring up to date")]


@errors_to_exit
def update(
    name: Name = None,
    json_out: JsonReport = False,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Index again every folder and file the collection was indexed from, each with the
    options it was indexed with: new and changed documents embedded, removed ones deleted.
    """
    settings = settings_from(collection=name, data_dir=data_dir, qdrant_url=qdrant_url)
    with open_client(settings) as client:
        settings, groups = remembered(client, settings)
        for roots, options in groups:
            update_roots(client, settings, roots, options, json_out)


def remembered(client: Any, settings: Any) -> tuple[Any, list[tuple[list[str], Any]]]:
    """The settings' collection's remembered roots, grouped by their reading options, and
    the settings with the collection's own chunking (other settings would be refused)."""
    import dataclasses

    from twinsearch.errors import ConfigError
    from twinsearch.indexer.update import remembered_sources

    store = client.collection(settings.collection)
    meta = store.metadata()  # refuses a collection that does not exist
    groups = remembered_sources(meta)
    if not groups:
        raise ConfigError(
            f"collection {settings.collection!r} records no folders or files (it was "
            "indexed before collections remembered them); index them once with "
            f"`twinsearch index PATH... -c {settings.collection}`"
        )
    chunking = meta.get("chunking", {})
    settings = dataclasses.replace(
        settings, chunk_size=chunking.get("window"), chunk_overlap=chunking.get("overlap")
    )
    return settings, groups


def update_roots(
    client: Any,
    settings: Any,
    roots: list[str],
    options: Any,
    json_out: bool = False,
    quiet: bool = False,
) -> None:
    """One `twinsearch index` run over ``roots``, which were indexed with ``options``.
    ``quiet``: no progress bar, no list of what is left out, and no word of files that
    vanished while being read (a watcher hears of their removal next)."""
    from twinsearch.indexer.pipeline import IndexReport
    from twinsearch.indexer.sources import Corpus
    from twinsearch.indexer.update import no_progress
    from twinsearch.indexer.update import update as index_update

    present = [root for root in roots if Path(root).exists()]
    for root in sorted(set(roots) - set(present)):
        err.print(
            f"warning: {root} no longer exists; its documents stay in the collection "
            "(drop it and index again to remove them)",
            markup=False,
        )
    if not present:
        return
    report = IndexReport()
    corpus = Corpus([Path(root) for root in present], options, on_skip=report.skip)
    progress = no_progress if quiet else index_progress
    try:
        index_update(client, settings, corpus, report, on_event=say, progress=progress)
    finally:
        gone = {where for where, _ in report.skipped if quiet and not Path(where).exists()}
        print_skips([(where, why) for where, why in report.skipped if where not in gone])
    # A watcher says what is left out once, not at every change.
    print_outcome(corpus, report, settings.collection, json_out, left_out=not quiet)
