"""`twinsearch watch [NAME]`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from twinsearch.cli.common import (
    DataDir,
    QdrantUrl,
    err,
    errors_to_exit,
    settings_from,
)
from twinsearch.cli.update import Name, remembered, update_roots
from twinsearch.session import open_client

Debounce = Annotated[
    int,
    typer.Option(
        min=50,
        help="Milliseconds of quiet before changes are indexed (an editor's save is "
        "often several events)",
    ),
]


@errors_to_exit
def watch(
    name: Name = None,
    debounce: Debounce = 1600,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Keep a collection current while its files change: every folder and file it was
    indexed from is watched, and what changed is indexed as `twinsearch update` would.

    The collection is held only while changes are indexed, so other commands can use it
    in between. Ctrl-C stops once what is being indexed is written (a second Ctrl-C at
    once); a document is never left half written.
    """
    import logging

    import watchfiles

    logging.getLogger("watchfiles").setLevel(logging.ERROR)  # its own note on Ctrl-C
    settings = settings_from(collection=name, data_dir=data_dir, qdrant_url=qdrant_url)
    with open_client(settings) as client:
        settings, groups = remembered(client, settings)
    watched = sorted({root for roots, _ in groups for root in roots if Path(root).exists()})
    ready = False
    stop = _stop_on_interrupt()
    # Yielding on a timeout tells when the watcher is running: only then is what changed
    # while nobody watched indexed, and "watching" said, so that no change falls between.
    for changes in watchfiles.watch(
        *watched,
        debounce=debounce,
        stop_event=stop,
        raise_interrupt=False,
        yield_on_timeout=True,
        rust_timeout=250,
    ):
        if stop.is_set():
            break
        touched = {Path(path) for _, path in changes}
        if ready and not touched:
            continue
        with open_client(settings) as client:
            for roots, options in groups:
                if not ready or any(_under(path, roots) for path in touched):
                    update_roots(client, settings, roots, options, quiet=ready)
        if not ready:
            err.print(f"watching {', '.join(watched)}; Ctrl-C stops", markup=False)
            ready = True
    err.print("stopped", markup=False)


def _stop_on_interrupt() -> Any:
    """An event Ctrl-C sets: the watcher stops at its next look, or once the changes being
    indexed are written; a second Ctrl-C stops at once (what was written is kept, and no
    document is ever half written)."""
    import signal
    import threading

    stop = threading.Event()

    def interrupted(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, interrupted)
    return stop


def _under(path: Path, roots: Any) -> bool:
    return any(path == Path(root) or Path(root) in path.parents for root in roots)
