"""`twinsearch get ID[:LINE]`"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from twinsearch.cli.common import (
    Collection,
    DataDir,
    JsonOut,
    QdrantUrl,
    err,
    errors_to_exit,
    settings_from,
)
from twinsearch.nouns import AROUND_LINES
from twinsearch.session import open_client


@errors_to_exit
def get(
    wanted: Annotated[
        str,
        typer.Argument(
            metavar="ID[:LINE]",
            help="A document as search shows it: its id (FOLDER/ID where ids repeat), or "
            "FILE:LINE; with :LINE, only the lines from there",
        ),
    ],
    lines: Annotated[
        int | None,
        typer.Option(
            "--lines",
            "-l",
            min=1,
            help=f"Lines to print, numbered [default: {AROUND_LINES} with :LINE, else all]",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOut = False,
    collection: Collection = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Print a document: from its file while that holds what was indexed, else as the
    collection holds it (stderr says which)."""
    from pathlib import Path

    from twinsearch.documents import described, fetch_at, numbered
    from twinsearch.indexer.sources import read_again

    settings = settings_from(collection=collection, data_dir=data_dir, qdrant_url=qdrant_url)
    with open_client(settings) as client:
        store = client.collection(settings.collection)
        store.require()
        fetched, line = fetch_at(store, wanted, read_again, Path.cwd())
    shown = described(fetched, line, lines)
    err.print(
        "from the file" if fetched.origin == "file" else f"from the index: {fetched.why}",
        markup=False,
    )
    if json_out:
        print(json.dumps(shown, ensure_ascii=False, indent=2))
    elif "text" in shown:
        print("\n".join(fetched.lines))
    else:
        print("\n".join(numbered(shown["lines"], shown["start_line"])))
