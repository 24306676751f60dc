"""`twinsearch shell`: an interactive prompt that keeps the model and the store open."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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
    Threads,
    err,
    errors_to_exit,
    open_searcher,
    out,
    settings_from,
)
from twinsearch.nouns import MAX_K

HELP = (
    "Type a query. Commands: :k N (results to show), :mode dense|bm25|hybrid, "
    ":where KEY=VALUE (adds a filter; all must hold; :where - clears them); "
    ":k, :mode or :where alone shows the setting; :help, :quit (or Ctrl-D)."
)


def _say(line: str) -> None:
    err.print(line, markup=False)


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
    """The loop, apart from the terminal, so that tests can drive it line by line.

    Settings are checked as they are typed, so a mistake is named once, at the command that
    made it, and the setting before it stays; each accepted one is confirmed in one line.
    """

    def __init__(
        self,
        searcher: Any,
        k: int,
        mode: str,
        show: Callable[[list[Any]], None],
        where: Sequence[str] = (),
    ):
        from twinsearch.filters import parse_where

        self.searcher = searcher
        self.k = k
        self.mode = mode
        self.conditions: list[Any] = parse_where(where)
        self.where: list[str] = list(where)
        """The filter expressions, as typed; all must hold."""
        self.show = show

    def handle(self, line: str) -> bool:
        """Run one line; False when the session should end."""
        from twinsearch.errors import TwinsearchError

        line = line.strip()
        if not line:
            return True
        if line.startswith(":"):
            return self._command(line)
        try:
            started = time.perf_counter()
            hits = self.searcher.search(line, self.k, self.mode, self.conditions or None)
            elapsed = (time.perf_counter() - started) * 1000
        except TwinsearchError as exc:
            _say(f"error: {exc}")
            return True
        self.show(hits)
        err.print(f"{len(hits)} results in {elapsed:.1f} ms", markup=False, style="dim")
        if not hits and self.conditions:
            from twinsearch.cli.search import warn_empty_filter

            warn_empty_filter(self.searcher.store, self.conditions)
        return True

    def _command(self, line: str) -> bool:
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        if name in ("q", "quit", "exit"):
            return False
        if name == "k":
            self._set_k(arg)
        elif name == "mode":
            self._set_mode(arg)
        elif name == "where":
            self._add_where(arg)
        elif name in ("help", "h", "?"):
            _say(HELP)
        else:
            _say(f"error: unknown command :{name}; :help lists them")
        return True

    def _set_k(self, arg: str) -> None:
        if arg:
            k = int(arg) if arg.isdecimal() else 0
            if not 1 <= k <= MAX_K:
                _say(f"error: :k takes a whole number from 1 to {MAX_K}, got {arg!r}")
                return
            self.k = k
        _say(f"k = {self.k}")

    def _set_mode(self, arg: str) -> None:
        if arg:
            modes = [m.value for m in SearchMode]
            if arg.lower() not in modes:
                _say(f"error: :mode takes {', '.join(modes[:-1])} or {modes[-1]}, got {arg!r}")
                return
            if arg.lower() != "dense" and self.searcher.bm25 is None:
                _say(
                    f"error: collection {self.searcher.store.name!r} has no BM25 vectors, so "
                    "only :mode dense works on it; index it again into a new collection for "
                    "bm25 or hybrid"
                )
                return
            self.mode = arg.lower()
        _say(f"mode = {self.mode}")

    def _add_where(self, arg: str) -> None:
        from twinsearch.errors import ConfigError
        from twinsearch.filters import parse_where

        if arg == "-":
            self.where, self.conditions = [], []
            _say("filter cleared")
            return
        if arg and arg not in self.where:
            try:
                conditions = parse_where([*self.where, arg])
            except ConfigError as exc:
                _say(f"error: {str(exc).replace('--where', ':where')}")
                return
            self.where, self.conditions = [*self.where, arg], conditions
        _say(f"filter: {self.filter}" if self.where else "no filter")

    @property
    def filter(self) -> str:
        return " and ".join(self.where)

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
    mode: ModeOption = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=MAX_K)] = 10,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            "-w",
            help="Start with this filter, as in search (repeatable, all must hold; "
            ":where changes it)",
        ),
    ] = None,
    threads: Threads = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Search interactively: the model and the collection stay loaded between queries."""
    from twinsearch.cli.search import print_hits
    from twinsearch.filters import parse_where

    parse_where(where or [])  # a bad filter is named before the model loads
    settings = settings_from(
        collection=collection,
        model=model,
        threads=threads,
        data_dir=data_dir,
        qdrant_url=qdrant_url,
    )
    with open_searcher(settings) as searcher:
        chosen = mode.value if mode else searcher.default_mode
        searcher.search("warm up", 1, chosen)
        name = searcher.encoder.name
        session = Session(
            searcher,
            top_k,
            chosen,
            lambda hits: print_hits(out, hits, searcher.shared_ids(hits)),
            where or [],
        )
        filtered = f", filter: {session.filter}" if session.where else ""
        err.print(
            f"collection {settings.collection!r}, model {name}{filtered}. {HELP}", markup=False
        )
        session.run(_readline_input(settings.data_dir / "shell_history"))
