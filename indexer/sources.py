"""Where documents come from: folders of files, single files, and record files (JSONL, JSON,
CSV, TSV; BEIR corpora are JSONL).

Files that cannot be read are skipped and reported through ``on_skip`` with the reason; they
never stop a run. Paths that cannot work at all (missing, or holding nothing indexable)
raise ``SourceError`` before any work starts. Walking a folder honours ``.gitignore`` files,
leaves hidden files out, and applies include/exclude globs to paths relative to the folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from twinsearch.errors import SourceError
from twinsearch.indexer.formats import (
    DOCUMENT_SUFFIXES,
    HTML_SUFFIXES,
    PDF_SUFFIXES,
    RECORD_SUFFIXES,
    TEXT_SUFFIXES,
    Fields,
    Parsed,
    Skip,
    read_html,
    read_pdf,
    read_records,
    read_text,
    suffix_of,
)
from twinsearch.types import Document

SkipHandler = Callable[[str, str], None]
"""Called with (where, why) for each file or record that is skipped."""

SUPPORTED = DOCUMENT_SUFFIXES + RECORD_SUFFIXES
STREAMED_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv", ".tsv")
"""Read record by record, so their size is no limit; other files are read whole."""


@dataclass(frozen=True)
class SourceOptions:
    fields: Fields = Fields()
    include: tuple[str, ...] = ()
    """Globs (gitignore syntax, relative to the folder); if given, only matching files."""
    exclude: tuple[str, ...] = ()
    gitignore: bool = True
    max_bytes: int = 64 * 1024 * 1024
    """Files read whole (documents, .json) larger than this are skipped."""


@dataclass(frozen=True)
class _Source:
    root: Path
    path: Path
    single: bool
    """Named on the command line (not found by walking a folder)."""


def _spec(lines: list[str]) -> Any:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


class _Ignores:
    """The .gitignore files met on the way down, the deepest deciding first."""

    def __init__(self, root: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.specs: dict[Path, Any] = {}
        self.root = root

    def load(self, folder: Path) -> None:
        gitignore = folder / ".gitignore"
        if self.enabled and gitignore.is_file():
            try:
                self.specs[folder] = _spec(gitignore.read_text(errors="replace").splitlines())
            except (OSError, ValueError):
                pass  # an unreadable .gitignore ignores nothing

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for base in sorted(
            (b for b in self.specs if b in path.parents), key=lambda b: -len(b.parts)
        ):
            rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
            decision = self.specs[base].check_file(rel).include
            if decision is not None:
                return bool(decision)
        return False


def _walk(root: Path, options: SourceOptions) -> Iterator[Path]:
    include = _spec(list(options.include)) if options.include else None
    exclude = _spec(list(options.exclude)) if options.exclude else None
    ignores = _Ignores(root, options.gitignore)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        ignores.load(here)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and not ignores.ignored(here / d, True)
            and not (exclude and exclude.match_file((here / d).relative_to(root).as_posix() + "/"))
        )
        for name in sorted(files):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if name.startswith(".") or ignores.ignored(path, False):
                continue
            if exclude and exclude.match_file(rel):
                continue
            wanted = include.match_file(rel) if include else suffix_of(path) in DOCUMENT_SUFFIXES
            if wanted and suffix_of(path) in SUPPORTED:
                yield path


def _modified(path: Path) -> str:
    try:
        stamp = path.stat().st_mtime
    except OSError:
        return ""
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass
class Corpus:
    """Documents from the given paths, streamed; ``done_bytes`` of ``total_bytes`` read so far.

    ``unread`` holds the files skipped whole this time, so that their documents from an
    earlier run are kept rather than taken for deleted.
    """

    paths: list[Path]
    options: SourceOptions = SourceOptions()
    on_skip: SkipHandler = lambda where, why: None
    total_bytes: int = 0
    done_bytes: int = 0
    unread: set[str] = field(default_factory=set)
    _plan: list[_Source] = field(default_factory=list)

    def __post_init__(self) -> None:
        for raw in self.paths:
            path = Path(raw).expanduser()
            if not path.exists():
                raise SourceError(f"no such file or folder: {raw}")
            if path.is_dir():
                files = list(_walk(path, self.options))
                if not files:
                    kinds = ", ".join(DOCUMENT_SUFFIXES)
                    raise SourceError(
                        f"no {kinds} files under {raw} (after .gitignore and --include/--exclude); "
                        "point twinsearch at a folder of documents, or name a .jsonl/.csv corpus"
                    )
                self._plan.extend(_Source(path.resolve(), f.resolve(), False) for f in files)
            elif suffix_of(path) in SUPPORTED:
                self._plan.append(_Source(path.resolve(), path.resolve(), True))
            else:
                raise SourceError(f"cannot index {raw}: supported files are {', '.join(SUPPORTED)}")
        self.total_bytes = sum(_size(s.path) for s in self._plan)

    @property
    def roots(self) -> set[str]:
        """What the user indexed: each folder, and each file named on its own."""
        return {str(s.root) for s in self._plan}

    def __iter__(self) -> Iterator[Document]:
        for source in self._plan:
            start = self.done_bytes
            try:
                yield from self._read(source, start)
            except Skip as exc:
                self._skip_file(source, str(exc))
            except OSError as exc:
                self._skip_file(source, f"unreadable: {exc.strerror or exc}")
            except (UnicodeDecodeError, EOFError, ValueError) as exc:
                self._skip_file(source, f"unreadable: {exc}")
            self.done_bytes = start + _size(source.path)

    def _skip_file(self, source: _Source, why: str) -> None:
        self.unread.add(str(source.path))
        self.on_skip(str(source.path), why)

    def _read(self, source: _Source, start: int) -> Iterator[Document]:
        path = source.path
        size = _size(path)
        streamed = suffix_of(path) in STREAMED_SUFFIXES
        if size > self.options.max_bytes and not streamed:
            mib = self.options.max_bytes / 2**20
            raise Skip(f"too large ({size / 2**20:.1f} MiB > {mib:.0f} MiB)")
        suffix = suffix_of(path)
        rel = path.name if source.single else path.relative_to(source.root).as_posix()
        modified = _modified(path)
        if suffix in RECORD_SUFFIXES:
            with path.open("rb") as raw:
                records = read_records(path, raw, self.options.fields, self.on_skip)
                for parsed in records:
                    self.done_bytes = start + raw.tell()
                    doc_id = parsed.key or f"{rel}:{parsed.number}"
                    yield self._document(parsed, source, doc_id, modified)
            return
        reader = (
            read_html
            if suffix in HTML_SUFFIXES
            else read_pdf
            if suffix in PDF_SUFFIXES
            else read_text
        )
        assert suffix in TEXT_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES
        for parsed in reader(path, path.read_bytes()):
            yield self._document(parsed, source, rel, modified)

    def _document(self, parsed: Parsed, source: _Source, doc_id: str, modified: str) -> Document:
        return Document(
            doc_id=doc_id,
            text=parsed.text,
            title=parsed.title,
            source=str(source.path),
            root=str(source.root),
            modified=modified,
            fields=parsed.fields or {},
        )
