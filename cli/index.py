"""`twinsearch index PATH...`"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from twinsearch.cli.common import (
    Collection,
    DataDir,
    EncoderBatch,
    Model,
    Precision,
    QdrantUrl,
    Runtime,
    Threads,
    err,
    errors_to_exit,
    index_progress,
    print_index_summary,
    print_skips,
    settings_from,
)
from twinsearch.session import open_client

Paths = Annotated[
    list[Path],
    typer.Argument(
        metavar="PATH...",
        help="Folders (.txt .md .rst .html .pdf, text files without an extension such as "
        "README, and gzipped text, found recursively), or files: any text file, or "
        ".jsonl[.gz] .json .csv .tsv record files (BEIR corpora are .jsonl)",
    ),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="List what would change; touch nothing")]
All = Annotated[
    bool, typer.Option("--all", help="With --dry-run: list the unchanged documents too")
]
Reindex = Annotated[
    bool,
    typer.Option(
        "--reindex",
        help="With a --model other than the collection's: build a new collection with it, "
        "then switch the name over once complete (see `twinsearch alias` to switch back)",
    ),
]
Include = Annotated[
    list[str] | None,
    typer.Option(help="Only files matching this glob (repeatable; gitignore syntax)"),
]
Exclude = Annotated[
    list[str] | None, typer.Option(help="Leave out files matching this glob (repeatable)")
]
Gitignore = Annotated[
    bool, typer.Option("--gitignore/--no-gitignore", help="Honour .gitignore files")
]
IdField = Annotated[str, typer.Option(help="Record field (or column) with the id")]
TitleField = Annotated[str, typer.Option(help="Record field with the title")]
TextField = Annotated[str, typer.Option(help="Record field with the text")]
MaxFileMb = Annotated[float, typer.Option(help="Skip files larger than this many MiB")]
ChunkSize = Annotated[
    int | None,
    typer.Option(help="Tokens per chunk [default: the model's window]", show_default=False),
]
ChunkOverlap = Annotated[
    int | None, typer.Option(help="Tokens shared by consecutive chunks [default: 32]")
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Encode the documents on the Ray cluster at this address (HOST:PORT, as "
        "`ray start --head` prints it); this process writes the collection. Needs "
        "pip install 'twinsearch[ray]' here and on every node",
        show_default=False,
    ),
]
JsonReport = Annotated[
    bool, typer.Option("--json", help="Also print what was done as JSON on stdout")
]


@errors_to_exit
def index(
    paths: Paths,
    collection: Collection = None,
    model: Model = None,
    dry_run: DryRun = False,
    all_: All = False,
    reindex: Reindex = False,
    include: Include = None,
    exclude: Exclude = None,
    gitignore: Gitignore = True,
    id_field: IdField = "_id",
    title_field: TitleField = "title",
    text_field: TextField = "text",
    max_file_mb: MaxFileMb = 64.0,
    chunk_size: ChunkSize = None,
    chunk_overlap: ChunkOverlap = None,
    batch_size: EncoderBatch = None,
    threads: Threads = None,
    runtime: Runtime = None,
    precision: Precision = None,
    ray: RayAddress = None,
    json_out: JsonReport = False,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Embed new and changed documents, skip unchanged ones, delete removed ones.

    Documents are compared by content hash with what the collection holds from the same
    folders or files; an interrupted run resumes where it stopped when run again.
    """
    from twinsearch.indexer.chunking import ChunkSettings
    from twinsearch.indexer.formats import Fields
    from twinsearch.indexer.pipeline import IndexReport
    from twinsearch.indexer.sources import Corpus, SourceOptions

    settings = settings_from(
        collection=collection,
        model=model,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        batch_size=batch_size,
        threads=threads,
        runtime=runtime,
        precision=precision,
        data_dir=data_dir,
        qdrant_url=qdrant_url,
    )
    options = SourceOptions(
        fields=Fields(id=id_field, title=title_field, text=text_field),
        include=tuple(include or ()),
        exclude=tuple(exclude or ()),
        gitignore=gitignore,
        max_bytes=int(max_file_mb * 2**20),
    )
    ChunkSettings.check_flags(settings.chunk_size, settings.chunk_overlap)
    if ray is not None and not dry_run:  # said before any model loads
        from twinsearch.indexer.cluster import check_installed, check_reachable

        check_installed()
        check_reachable(ray)
    report = IndexReport()
    corpus = Corpus(list(paths), options, on_skip=report.skip)  # bad paths fail before any work
    try:
        with open_client(settings) as client:
            if dry_run:
                chunks = (settings.chunk_size, settings.chunk_overlap)
                _dry_run(client, settings.collection, corpus, all_, chunks)
            else:
                _index(client, settings, corpus, report, reindex, ray)
    finally:  # the reasons, also when nothing could be indexed
        print_skips(report.skipped)
    print_outcome(corpus, report, None if dry_run else settings.collection, json_out)


def print_outcome(
    corpus: Any, report: Any, collection: str | None, json_out: bool, left_out: bool = True
) -> None:
    """What was left out (unless not ``left_out``), and (unless a dry run, with no
    ``collection``) what was done."""
    from twinsearch.indexer.sources import describe_left_out

    if left_out and corpus.left_out:
        by_type = any(why.startswith(".") for why in corpus.left_out)
        err.print(
            f"left out {sum(corpus.left_out.values())} files and folders: "
            f"{describe_left_out(corpus.left_out)}"
            + ("; add a type with --include '*.EXT'" if by_type else ""),
            markup=False,
        )
    if collection is not None:
        print_index_summary(report, collection)
        if json_out:
            print(json.dumps(report.as_dict(collection, corpus.left_out), indent=2))


def _index(
    client: Any, settings: Any, corpus: Any, report: Any, reindex: bool, ray: str | None = None
) -> None:
    from twinsearch.indexer.update import update

    update(
        client,
        settings,
        corpus,
        report,
        reindex=reindex,
        on_event=say,
        progress=index_progress,
        ray=ray,
    )


def say(event: Any) -> None:
    """One line on stderr for each thing `index` does that a person should know of."""
    from twinsearch.indexer.update import Note, Reindexing, Switched, UpgradingIds

    if isinstance(event, Reindexing):
        line = (
            f"re-indexing {event.name!r} with {event.model} into {event.target!r}; "
            f"searches use {event.current!r} until it is complete"
        )
    elif isinstance(event, Switched):
        line = (
            f"{event.name!r} now searches {event.target!r}; switch back with: "
            f"twinsearch alias {event.name} {event.previous}"
        )
    elif isinstance(event, UpgradingIds):
        line = (
            "upgrading the collection's point ids, once (documents are now told apart by the "
            "folder they were indexed from; nothing is embedded again)"
        )
    else:
        assert isinstance(event, Note)
        line = event.text
    err.print(line, markup=False)


def _dry_run(
    client: Any, name: str, corpus: Any, everything: bool, chunking: tuple[int | None, int]
) -> None:
    """Lines of ``CHANGE<TAB>DOC_ID`` on stdout for what would change (``everything``: for
    the unchanged too); counts on stderr. Loads no model."""
    from twinsearch.indexer.changes import Change
    from twinsearch.indexer.chunking import ChunkSettings
    from twinsearch.indexer.pipeline import plan

    store = client.collection(name)
    if store.exists():
        # What the real run would refuse, refused here too.
        from twinsearch.collection import check_chunking

        meta = store.metadata()
        size, overlap = chunking
        wanted = ChunkSettings.for_model(size, overlap, int(meta["encoder"]["window"]))
        check_chunking(store, meta, wanted.as_dict())
    from twinsearch.documents import shown_id

    changes = plan(corpus, store if store.exists() else None)
    several = len({root for ids in changes.values() for root, _ in ids}) > 1
    for change, keys in changes.items():
        if change is Change.unchanged and not everything:
            continue
        for root, doc_id in keys:
            print(f"{change.value}\t{shown_id(root, doc_id) if several else doc_id}")
    counts = ", ".join(f"{len(ids)} {change.value}" for change, ids in changes.items())
    hint = "" if everything or not changes[Change.unchanged] else " (--all lists the unchanged)"
    err.print(f"dry run, nothing changed: {counts}{hint}", markup=False)
