"""The `twinsearch` command. Each command group lives in its own module and loads what it
needs when it runs, so `twinsearch --help` imports no model or store code."""

from __future__ import annotations

import typer

from twinsearch._version import __version__
from twinsearch.cli.eval import eval_
from twinsearch.cli.get import get
from twinsearch.cli.index import index
from twinsearch.cli.info import alias, drop, info
from twinsearch.cli.mcp_server import mcp
from twinsearch.cli.migrate import migrate
from twinsearch.cli.optimize import optimize
from twinsearch.cli.search import search
from twinsearch.cli.serve import serve
from twinsearch.cli.shell import shell
from twinsearch.cli.train import compare, train
from twinsearch.cli.update import update
from twinsearch.cli.watch import watch

app = typer.Typer(
    name="twinsearch",
    help="Semantic document search with twin text encoders and Qdrant.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help as Markdown: "[default: ...]" and "[env: ...]" in help texts would be read as
    # Rich markup and vanish, and docstrings' line breaks would be kept as they are typed.
    rich_markup_mode="markdown",
)
app.command()(index)
app.command()(update)
app.command()(watch)
app.command()(search)
app.command()(get)
app.command()(info)
app.command("eval")(eval_)
app.command()(shell)
app.command()(train)
app.command()(compare)
app.command()(drop)
app.command()(alias)
app.command()(serve)
app.command()(mcp)
app.command()(migrate)
app.command()(optimize)


def _version(value: bool) -> None:
    if value:
        print(f"twinsearch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit"
    ),
) -> None:
    """Semantic document search with twin text encoders and Qdrant."""


def main() -> None:
    from twinsearch.stores.base import leave_open_at_exit

    leave_open_at_exit()
    app()
