"""`twinsearch search QUERY`"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from twinsearch.cli.common import (
    Collection,
    Color,
    ColorOption,
    DataDir,
    JsonOut,
    Model,
    ModeOption,
    QdrantUrl,
    Threads,
    colored,
    errors_to_exit,
    open_searcher,
    out,
    settings_from,
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
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score",
            help="Leave out hits scoring under this: the cosine similarity of the best passage "
            "in dense and hybrid modes (0 to 1), the raw BM25 score in bm25 mode (as --json's "
            "score; it grows with the query's length)",
            show_default=False,
        ),
    ] = None,
    files: Annotated[
        bool,
        typer.Option("--files", help="Print each matching file once, one a line, nothing else"),
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Show each hit's whole passage, not one line of it")
    ] = False,
    json_out: JsonOut = False,
    color: ColorOption = Color.auto,
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
    with colored(color), open_searcher(settings, first_query=query) as searcher:
        hits = searcher.search(query, top_k, mode and mode.value, conditions or None)
        if min_score is not None:
            from twinsearch.search import at_least

            hits = at_least(hits, min_score)
        # Shown before the collection closes, which takes a few hundredths of a second.
        if files:
            sources = list(dict.fromkeys(shown_path(hit.source) for hit in hits))
            print(json.dumps(sources, ensure_ascii=False) if json_out else "\n".join(sources))
        elif json_out:
            print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=2))
        else:
            print_hits(out, hits, searcher.shared_ids(hits), full=full)
        sys.stdout.flush()
        if not hits and conditions:
            warn_empty_filter(searcher.store, conditions)


def warn_empty_filter(store: Any, conditions: list[Any]) -> None:
    """Say so when the filter, not the query, is why nothing was found."""
    from twinsearch.cli.common import err
    from twinsearch.filters import why_nothing_matched

    for reason in why_nothing_matched(store, conditions):
        err.print(f"warning: {reason}", markup=False)


def print_hits(
    console: Any, hits: list[Any], shared: list[bool] | None = None, full: bool = False
) -> None:
    """Each hit: where it is, as ``FILE:LINE`` (which editors and terminals open there)
    where its place in lines is known, else its id, with the name of the folder it was
    indexed from where the id is ``shared`` with documents of another
    (``Searcher.shared_ids``; by default, within ``hits``); then its passage, on one line
    or ``full``."""
    if not hits:
        console.print("no results")
        return
    from twinsearch.documents import shown_id

    if shared is None:
        from collections import Counter

        repeated = Counter(hit.doc_id for hit in hits)
        shared = [repeated[hit.doc_id] > 1 for hit in hits]
    for hit, ambiguous in zip(hits, shared, strict=True):
        if hit.line is not None and hit.source:
            where = f"{shown_path(hit.source)}:{hit.line}"
        else:
            where = shown_id(hit.root, hit.doc_id) if ambiguous else hit.doc_id
        console.print(
            f"{hit.rank:>3}. {readable_score(hit)}  [magenta]{_escape(where)}[/magenta]  "
            f"[bold]{_escape(hit.title)}[/bold]"
        )
        if full:
            for line in hit.snippet.splitlines():
                console.print(f"     {_escape(line)}")
        elif hit.passage:
            console.print(f"     {marked(hit.passage, hit.highlights)}")
        else:
            console.print(f"     {_escape(_one_line(hit.snippet))}")
        console.print()


def marked(passage: str, highlights: Any) -> str:
    """``passage`` on one line as console markup, its ``highlights`` (the query's terms)
    in bold."""
    import re

    pieces, at = [], 0
    for start, end in highlights:
        pieces.append(_escape(re.sub(r"\s+", " ", passage[at:start])))
        pieces.append(f"[bold yellow]{_escape(passage[start:end])}[/bold yellow]")
        at = end
    pieces.append(_escape(re.sub(r"\s+", " ", passage[at:])))
    return "".join(pieces).strip()


def shown_path(source: str) -> str:
    """A file's path, relative to the current folder when it is under it."""
    from pathlib import Path

    path = Path(source)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return source


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
