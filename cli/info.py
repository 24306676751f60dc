"""`twinsearch info` and `twinsearch drop`"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from twinsearch.cli.common import (
    DataDir,
    JsonOut,
    QdrantUrl,
    counted,
    err,
    errors_to_exit,
    out,
    settings_from,
)
from twinsearch.session import open_client


def _chunking(settings: dict[str, Any] | None) -> str:
    if not settings:
        return "chunking unknown"
    if settings.get("truncate"):
        return "one vector per document (truncated)"
    return f"chunks of {settings['window']} tokens, overlap {settings['overlap']}"


def _runtime(runtime: dict[str, Any] | None) -> str:
    """``encoded with openvino bf16 (cosine 0.99998 to fp32), `` or nothing before runtimes
    were recorded."""
    if not runtime:
        return ""
    used = ", ".join(runtime.get("used") or [f"{runtime['runtime']} {runtime['precision']}"])
    return f"encoded with {used} (least cosine to fp32 {runtime.get('min_cosine', 1):.5f}), "


@errors_to_exit
def info(
    json_out: JsonOut = False,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Where the data lives, and each collection: chunks, model and its fingerprint."""
    settings = settings_from(data_dir=data_dir, qdrant_url=qdrant_url)
    from twinsearch.collection import describe_all

    with open_client(settings) as client:
        described = describe_all(client)
    if json_out:
        print(json.dumps(described, indent=2))
        return
    collections = described["collections"]
    out.print(f"data: {described['location']}", markup=False)
    if not collections:
        out.print("no collections yet; create one with `twinsearch index PATH`", markup=False)
    for c in collections:
        out.print(
            f"{c['name']}: {c['documents']} documents, {c['chunks']} chunks "
            f"in {counted(c['segments'], 'segment')}{', int8-quantized' if c['quantized'] else ''}"
            f", model {c['model']} "
            f"(fingerprint {str(c['fingerprint'])[:12]}, dim {c['dim']}), "
            f"{_chunking(c['chunking'])}, {_runtime(c.get('runtime'))}created {c['created']}"
            + (f"; searched as {', '.join(c['aliases'])}" if c["aliases"] else ""),
            markup=False,
        )


@errors_to_exit
def drop(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="Collection to delete (an alias: the collection it stands for)"
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Delete a collection and all its vectors."""
    settings = settings_from(data_dir=data_dir, qdrant_url=qdrant_url)
    with open_client(settings) as client:
        store = client.collection(name)
        count = store.count()
        # A name may be an alias: say which collection goes.
        what = repr(name) if store.name == name else f"{store.name!r} (which {name!r} names)"
        if not yes and not typer.confirm(f"delete collection {what} ({count} chunks)?", err=True):
            err.print(f"kept {what}; nothing dropped", markup=False)
            return
        client.drop(name)
    err.print(f"dropped {what} ({count} chunks)", markup=False)


@errors_to_exit
def alias(
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="The name searches use")
    ] = None,
    target: Annotated[
        str | None,
        typer.Argument(metavar="TARGET", help="The collection it should stand for from now on"),
    ] = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Point a name at another collection in one step (e.g. back to the one before a
    re-index); without arguments, list the names and what they stand for."""
    settings = settings_from(data_dir=data_dir, qdrant_url=qdrant_url)
    with open_client(settings) as client:
        if name is None or target is None:
            if name is not None:
                raise typer.BadParameter("give both NAME and TARGET, or neither")
            aliases = sorted(client.aliases().items())
            for alias_name, collection in aliases:
                print(f"{alias_name}\t{collection}")
            if not aliases:
                err.print(
                    "no aliases yet; `twinsearch alias NAME TARGET` makes NAME stand for "
                    "the collection TARGET",
                    markup=False,
                )
            return
        previous = client.switch_alias(name, target)
    was = f" (was {previous!r})" if previous is not None and previous != target else ""
    err.print(f"{name!r} now searches {target!r}{was}", markup=False)
