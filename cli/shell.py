"""`twinsearch shell`: an interactive prompt that keeps the model and the store open."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from twinsearch.cli.common import (
    Collection,
    DataDir,
    Model,
    ModeOption,
    QdrantUrl,
    SearchMode,
    err,
    errors_to_exit,
    open_searcher,
    out,
    settings_from,
)

HELP = (
    "Type a query. Commands: :k N (results to show), :mode dense|bm25|hybrid, "
    ":where KEY=VALUE (:where alone clears), :help, :quit (or Ctrl-D)."
)


def _readline_input(history: Path) -> Callable[[str], str]:
    """``input`` with line editing and a history kept between sessions, where available."""
    try:
        import readline
    except ImportError:  # pragma: no cover - not on this platform
        return input
    import atexit

    history.parent.mkdir(parents=True, exist_ok=True)
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)

    def save() -> None:
        try:
            readline.write_history_file(history)
        except OSError:
            pass  # the data folder went away; the history is not worth an error

    atexit.register(save)
    return input


class Session:
    """The loop, apart from the terminal, so that tests can drive it line by line."""

    def __init__(self, searcher: Any, k: int, mode: str, show: Callable[[list[Any]], None]):
        self.searcher = searcher
        self.k = k
        self.mode = mode
        self.where: list[str] = []
        self.show = show

    def handle(self, line: str) -> bool:
        """Run one line; False when the session should end."""
        from twinsearch.errors import TwinsearchError
        from twinsearch.filters import parse_where

        line = line.strip()
        if not line:
            return True
        if line.startswith(":"):
            return self._command(line)
        try:
            started = time.perf_counter()
            hits = self.searcher.search(line, self.k, self.mode, parse_where(self.where) or None)
            elapsed = (time.perf_counter() - started) * 1000
        except TwinsearchError as exc:
            err.print(f"error: {exc}", markup=False)
            return True
        self.show(hits)
        err.print(f"{len(hits)} results in {elapsed:.1f} ms", markup=False, style="dim")
        return True

    def _command(self, line: str) -> bool:
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        if name in ("q", "quit", "exit"):
            return False
        if name == "k" and arg.isdigit() and 0 < int(arg) <= 1000:
            self.k = int(arg)
        elif name == "mode" and arg in (m.value for m in SearchMode):
            self.mode = arg
        elif name == "where":
            self.where = [arg] if arg else []
        else:
            err.print(HELP, markup=False)
        return True

    def run(self, read: Callable[[str], str]) -> None:
        while True:
            try:
                line = read("twinsearch> ")
            except EOFError:  # Ctrl-D
                err.print()
                return
            except KeyboardInterrupt:  # Ctrl-C drops the line, as a shell does
                err.print("^C")
                continue
            if not self.handle(line):
                return


@errors_to_exit
def shell(
    collection: Collection = None,
    model: Model = None,
    mode: ModeOption = SearchMode.dense,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=1000)] = 10,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the encoder")] = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Search interactively: the model and the collection stay loaded between queries."""
    from twinsearch.cli.search import print_hits

    settings = settings_from(
        collection=collection,
        model=model,
        threads=threads,
        data_dir=data_dir,
        qdrant_url=qdrant_url,
    )
    with open_searcher(settings) as searcher:
        searcher.search("warm up", 1, mode.value)
        name = searcher.encoder.name
        err.print(f"collection {settings.collection!r}, model {name}. {HELP}", markup=False)
        session = Session(searcher, top_k, mode.value, lambda hits: print_hits(out, hits))
        session.run(_readline_input(settings.data_dir / "shell_history"))
