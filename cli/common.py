"""What every command shares: options, consoles, the error boundary, opening things."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from twinsearch.errors import EmptyQuery, TwinsearchError
from twinsearch.nouns import SearchMode
from twinsearch.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console


class LazyConsole:
    """A rich console made on first use. Importing rich takes a few hundredths of a second
    that `twinsearch search` would rather spend after its query child has started."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)

    @contextmanager
    def options(self, **options: Any) -> Iterator[None]:
        """Made anew with ``options`` over its own while inside (one command of several run
        in one process, as tests run them, leaves the next its defaults)."""
        saved, console = self._options, self._console
        self._options, self._console = {**saved, **options}, None
        try:
            yield
        finally:
            self._options, self._console = saved, console


err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)
out = LazyConsole(highlight=False, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder of the embedded store "
        "[env: TWINSEARCH_DATA_DIR; default: per-user data folder]",
        show_default=False,
    ),
]
QdrantUrl = Annotated[
    str | None,
    typer.Option(
        "--qdrant-url",
        help="Use the Qdrant server at this URL instead of the embedded store "
        "[env: TWINSEARCH_QDRANT_URL; API key from TWINSEARCH_QDRANT_API_KEY]",
        show_default=False,
    ),
]
Collection = Annotated[
    str | None,
    typer.Option(
        "--collection",
        "-c",
        help="Collection name [env: TWINSEARCH_COLLECTION; default: default]",
        show_default=False,
    ),
]


def collection_argument(purpose: str) -> Any:
    """The optional NAME argument of a command that works on one collection."""
    return typer.Argument(
        metavar="NAME",
        help=f"Collection {purpose} [env: TWINSEARCH_COLLECTION; default: default]",
        show_default=False,
    )


Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model: a sentence-transformers folder or id [default: the collection's own model, "
        "else the bundled all-MiniLM-L6-v2]",
        show_default=False,
    ),
]


ModeOption = Annotated[
    SearchMode | None,
    typer.Option(
        "--mode",
        show_default=False,
        help="[default: hybrid, or dense for a collection without BM25 vectors] "
        "dense: the model (each hit shows the cosine similarity of its best passage to "
        "the query: 1 is the same meaning, around 0.1 unrelated); bm25: keywords (shows how "
        "many of the query's terms the passage holds); hybrid: both rankings fused by rank "
        "(shows both); --json adds the raw ranking score",
        case_sensitive=False,
    ),
]
Threads = Annotated[
    int | None, typer.Option(help="CPU threads for the encoder [default: free cores]")
]
Runtime = Annotated[
    str | None,
    typer.Option(
        help="What runs the document encoder: auto (the fastest path whose vectors keep a "
        "cosine of 0.9999 with the model's, timed on this machine), openvino, onnx or torch "
        "[default: auto]",
        show_default=False,
    ),
]
Precision = Annotated[
    str | None,
    typer.Option(
        help="Its precision: auto, fp32, bf16 (OpenVINO, on CPUs that compute in bf16), "
        "int8 (OpenVINO, quantized on the corpus's first chunks; needs twinsearch[int8]) or "
        "fp16 (on a GPU) [default: auto]",
        show_default=False,
    ),
]
EncoderBatch = Annotated[int | None, typer.Option(help="Texts per encoder batch [default: 32]")]


class Color(str, Enum):
    auto = "auto"
    always = "always"
    never = "never"


ColorOption = Annotated[
    Color,
    typer.Option(
        "--color",
        help="auto: colour on a terminal, unless NO_COLOR is set; always: even into a pipe "
        "or file; never",
        case_sensitive=False,
    ),
]


@contextmanager
def colored(choice: Color) -> Iterator[None]:
    """Both consoles as ``--color`` asks: ``auto`` leaves it to whether each writes to a
    terminal, and to NO_COLOR (any value but empty turns colour off, as no-color.org says)."""
    if choice is Color.always:
        # "standard": any terminal's 16 colours, whatever TERM says about this one.
        options: dict[str, Any] = {"force_terminal": True, "no_color": False}
        options["color_system"] = "standard"
    elif choice is Color.never or os.environ.get("NO_COLOR"):
        options = {"color_system": None}
    else:
        options = {}
    with out.options(**options), err.options(**options):
        yield


JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON on stdout, nothing else")]

F = TypeVar("F", bound=Callable[..., Any])


def errors_to_exit(func: F) -> F:
    """Expected failures become one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EmptyQuery as exc:  # a usage error, as a missing argument is
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(2) from None
        except TwinsearchError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted; everything written before now is kept", markup=False)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def progress_bar(label: str, *texts: str, percent: bool = False, count: bool = False) -> Any:
    """A rich progress bar on stderr: ``label``, the bar, its percentage and/or M/N count,
    the ``texts`` (rich column formats over the task), the time taken and the time left.
    It vanishes when done, and is off when stderr is not a terminal (a bar is only noise
    there, and a stopped one leaves a blank line)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn(label), BarColumn()]
    columns += [TaskProgressColumn()] if percent else []
    columns += [MofNCompleteColumn()] if count else []
    columns += [TextColumn(text) for text in texts]
    columns += [TimeElapsedColumn(), TextColumn("elapsed,"), TimeRemainingColumn(), "left"]
    return Progress(*columns, console=err.rich, transient=True, disable=not err.rich.is_terminal)


def expected_chunks(corpus: Any, report: Any) -> float | None:
    """The chunks a run will embed: those known so far, plus, while the reader is still
    going, the rest of the corpus at the rate of chunks per byte read so far."""
    known = report.chunks_planned
    if corpus.done_bytes >= corpus.total_bytes:
        return known
    if not corpus.done_bytes or not known:
        return None
    return known + (corpus.total_bytes - corpus.done_bytes) * known / corpus.done_bytes


@contextmanager
def index_progress() -> Iterator[Callable[[Any, Any], None]]:
    """A progress bar on stderr over the chunks embedded, the encoder's work (the reader runs
    ahead and finishes early), out of those expected, with their rate and the time left."""
    progress = progress_bar(
        "embedding",
        "{task.completed:,.0f}/{task.fields[expected]} chunks",
        "{task.fields[rate]}",
        percent=True,
    )
    with progress:
        task = progress.add_task("embedding", total=None, expected="?", rate="")

        def show(corpus: Any, report: Any) -> None:
            expected = expected_chunks(corpus, report)
            estimated = expected is not None and corpus.done_bytes < corpus.total_bytes
            speed = progress.tasks[0].speed
            progress.update(
                task,
                total=max(expected, report.chunks) if expected is not None else None,
                completed=report.chunks,
                expected="?" if expected is None else f"{'~' if estimated else ''}{expected:,.0f}",
                rate=f"{speed:.1f} chunks/s" if speed else "",
            )

        yield show


MAX_SKIP_LINES = 20


def print_skips(skipped: list[tuple[str, str]]) -> None:
    """A warning for each file or record skipped, the first ``MAX_SKIP_LINES`` of them."""
    for where, why in skipped[:MAX_SKIP_LINES]:
        err.print(f"warning: skipped {where}: {why}", markup=False)
    if len(skipped) > MAX_SKIP_LINES:
        err.print(f"warning: ... and {len(skipped) - MAX_SKIP_LINES} more skipped", markup=False)


def print_index_summary(report: Any, collection: str) -> None:
    """The last line of an indexing run: what was embedded, how fast, what changed."""
    changes = ", ".join(f"{n} {change}" for change, n in report.changes.items())
    rate = report.chunks / report.seconds if report.seconds else 0.0
    err.print(
        f"indexed {counted(report.documents, 'document')} "
        f"({counted(report.chunks, 'chunk')}) into {collection!r} in "
        f"{report.seconds:.1f} s, {rate:.1f} chunks/s"
        + (f" on {report.encoded_with}" if report.encoded_with else "")
        + f"; {changes}"
        + (f"; skipped {len(report.skipped)}" if report.skipped else "")
        + (f"; {report.refreshed} with a new modification time" if report.refreshed else ""),
        markup=False,
    )


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 document``, ``2 documents``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def settings_from(**flags: Any) -> Settings:
    from twinsearch.cli.config import build_settings

    return build_settings(flags)


# What every command opens, from the library (twinsearch.session), with its notes printed.


def open_searcher(settings: Settings, first_query: str | None = None) -> Any:
    from twinsearch import session

    # Given a first query, rich loads while the child embeds it.
    return session.open_searcher(settings, first_query, say, _load_console)


def _load_console() -> None:
    out.rich  # noqa: B018  # made now, while the query child works


def indexing_encoder(settings: Settings, model: str) -> Any:
    """``model`` to encode documents with (see ``session.indexing_encoder``), notes said."""
    from twinsearch import session

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return session.indexing_encoder(settings, model, say)


def say(line: str) -> None:
    """A note or warning line, on stderr as it is."""
    err.print(line, markup=False)
