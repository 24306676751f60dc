"""`twinsearch search QUERY`"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from twinsearch.cli.common import (
    Collection,
    DataDir,
    JsonOut,
    Model,
    ModeOption,
    QdrantUrl,
    Threads,
    errors_to_exit,
    open_searcher,
    out,
    settings_from,
    shown_id,
)
from twinsearch.nouns import MAX_K

SNIPPET_CHARS = 240


def _one_line(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@errors_to_exit
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for, in plain words")],
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", min=1, max=MAX_K, help="Documents to show")
    ] = 10,
    collection: Collection = None,
    model: Model = None,
    mode: ModeOption = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            "-w",
            help="Only documents whose field matches: KEY=VALUE, KEY>=VALUE, KEY<DATE, "
            "KEY=A,B (fields: title, source, ext, modified, or a JSONL/CSV field; "
            "repeatable, all must hold)",
        ),
    ] = None,
    json_out: JsonOut = False,
    threads: Threads = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Find the documents nearest in meaning to QUERY, best first, with the passage that matched."""
    from twinsearch.filters import parse_where

    conditions = parse_where(where or [])
    settings = settings_from(
        collection=collection,
        model=model,
        threads=threads,
        data_dir=data_dir,
        qdrant_url=qdrant_url,
    )
    with open_searcher(settings, first_query=query) as searcher:
        hits = searcher.search(query, top_k, mode and mode.value, conditions or None)
        # Shown before the collection closes, which takes a few hundredths of a second.
        if json_out:
            print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=2))
        else:
            print_hits(out, hits, searcher.shared_ids(hits))
        sys.stdout.flush()
        if not hits and conditions:
            warn_empty_filter(searcher.store, conditions)


def warn_empty_filter(store: Any, conditions: list[Any]) -> None:
    """Say so when the filter, not the query, is why nothing was found."""
    from twinsearch.cli.common import err
    from twinsearch.filters import why_nothing_matched

    for reason in why_nothing_matched(store, conditions):
        err.print(f"warning: {reason}", markup=False)


def print_hits(console: Any, hits: list[Any], shared: list[bool] | None = None) -> None:
    """Each hit, with the name of the folder it was indexed from where its id is ``shared``
    with documents of another (``Searcher.shared_ids``; by default, within ``hits``)."""
    if not hits:
        console.print("no results")
        return
    if shared is None:
        from collections import Counter

        repeated = Counter(hit.doc_id for hit in hits)
        shared = [repeated[hit.doc_id] > 1 for hit in hits]
    for hit, ambiguous in zip(hits, shared, strict=True):
        doc_id = shown_id(hit.root, hit.doc_id) if ambiguous else hit.doc_id
        console.print(
            f"{hit.rank:>3}. {readable_score(hit)}  {_escape(doc_id)}  "
            f"[bold]{_escape(hit.title)}[/bold]"
        )
        console.print(f"     {_escape(_one_line(hit.snippet))}")
        console.print()


def readable_score(hit: Any) -> str:
    """What a person can read of a hit's match, whatever the mode: the cosine similarity
    of its best passage, the query terms it holds, or both; the fusion score of a hybrid
    search only orders the hits (0.033 for the first three reads as a tie)."""
    parts = []
    if hit.similarity is not None:
        parts.append(f"{hit.similarity:.3f}")
    if hit.terms is not None:
        parts.append(f"{hit.terms[0]}/{hit.terms[1]} terms")
    return " · ".join(parts) or f"{hit.score:.3f}"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
