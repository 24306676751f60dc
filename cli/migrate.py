"""`twinsearch migrate --to URL`"""

from __future__ import annotations

from typing import Annotated

import typer

from twinsearch.cli.common import (
    Collection,
    DataDir,
    err,
    errors_to_exit,
    progress_bar,
    settings_from,
)


@errors_to_exit
def migrate(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="URL of the Qdrant server to copy to (API key from TWINSEARCH_QDRANT_API_KEY)",
        ),
    ],
    collection: Collection = None,
    new_name: Annotated[
        str | None, typer.Option("--as", help="Name on the server [default: the same]")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Copy a collection from the embedded store to a Qdrant server: vectors, payloads and
    metadata; then check the point counts and the top-10 of sample queries match.

    Run it again to finish a copy that was interrupted. Afterwards, use the server with
    --qdrant-url URL (or TWINSEARCH_QDRANT_URL).
    """
    from twinsearch.migrate import TOP
    from twinsearch.migrate import migrate as copy
    from twinsearch.session import server_options
    from twinsearch.stores import connect

    settings = settings_from(collection=collection, data_dir=data_dir)
    name = new_name or settings.collection
    # The source is always the embedded store, whatever TWINSEARCH_QDRANT_URL says.
    source_client = connect(data_dir=settings.data_dir)
    target = connect(url=to, api_key=settings.qdrant_api_key, server=server_options(settings))
    progress = progress_bar("copying", "points", count=True)
    try:
        with progress:
            task = progress.add_task("copying", total=None)
            report = copy(
                source_client.collection(settings.collection),
                target,
                name,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    finally:
        target.close()
        source_client.close()
    err.print(
        f"copied {report.copied} points of {settings.collection!r} to {name!r} on {to} in "
        f"{report.seconds:.1f} s; the server holds {report.target_points} of "
        f"{report.source_points}; top-{TOP} identical for {report.identical} of "
        f"{report.queries} sample queries",
        markup=False,
    )
    report.check(to)
