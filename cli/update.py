"""`twinsearch update [NAME]`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from twinsearch.cli.common import (
    DataDir,
    QdrantUrl,
    err,
    errors_to_exit,
    index_progress,
    open_client,
    print_skips,
    settings_from,
)
from twinsearch.cli.index import JsonReport, print_outcome, say

Name = Annotated[
    str | None,
    typer.Argument(
        metavar="NAME",
        help="Collection to bring up to date [env: TWINSEARCH_COLLECTION; default: default]",
        show_default=False,
    ),
]


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
    import dataclasses

    from twinsearch.errors import ConfigError
    from twinsearch.indexer.update import remembered_sources

    settings = settings_from(collection=name, data_dir=data_dir, qdrant_url=qdrant_url)
    with open_client(settings) as client:
        store = client.collection(settings.collection)
        store.require()
        meta = store.metadata()
        groups = remembered_sources(store)
        if not groups:
            raise ConfigError(
                f"collection {settings.collection!r} records no folders or files (it was "
                "indexed before collections remembered them); index them once with "
                f"`twinsearch index PATH... -c {settings.collection}`"
            )
        # The collection's own chunking: other settings would be refused.
        chunking = meta.get("chunking", {})
        settings = dataclasses.replace(
            settings, chunk_size=chunking.get("window"), chunk_overlap=chunking.get("overlap")
        )
        for roots, options in groups:
            _update_roots(client, settings, roots, options, json_out)


def _update_roots(
    client: Any, settings: Any, roots: list[str], options: Any, json_out: bool
) -> None:
    """One `twinsearch index` run over ``roots``, which were indexed with ``options``."""
    from twinsearch.indexer.pipeline import IndexReport
    from twinsearch.indexer.sources import Corpus
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
    try:
        index_update(client, settings, corpus, report, on_event=say, progress=index_progress)
    finally:
        print_skips(report.skipped)
    print_outcome(corpus, report, settings.collection, json_out)
