"""Where documents come from: folders of files, single files, and record files (JSONL, JSON,
CSV, TSV; BEIR corpora are JSONL).

Files that cannot be read are skipped and reported through ``on_skip`` with the reason; they
never stop a run. Paths that cannot work at all (missing, or holding nothing indexable)
raise ``SourceError`` before any work starts. Walking a folder honours ``.gitignore`` files,
leaves hidden files out, and applies include/exclude globs to paths relative to the folder.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from twinsearch.errors import SourceError
from twinsearch.indexer.formats import (
    DOCUMENT_SUFFIXES,
    GZIP_SUFFIX,
    HTML_SUFFIXES,
    PDF_SUFFIXES,
    RECORD_SUFFIXES,
    SNIFF_BYTES,
    Fields,
    Parsed,
    Skip,
    is_text,
    read_gzipped_text,
    read_html,
    read_pdf,
    read_records,
    read_text,
    suffix_of,
)
from twinsearch.nouns import Document

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

    def as_dict(self) -> dict[str, Any]:
        """As a collection records it, for `twinsearch update` to read its roots again."""
        return {
            "fields": {"id": self.fields.id, "title": self.fields.title, "text": self.fields.text},
            "include": list(self.include),
            "exclude": list(self.exclude),
            "gitignore": self.gitignore,
            "max_bytes": self.max_bytes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceOptions:
        return cls(
            fields=Fields(**data.get("fields", {})),
            include=tuple(data.get("include", ())),
            exclude=tuple(data.get("exclude", ())),
            gitignore=bool(data.get("gitignore", True)),
            max_bytes=int(data.get("max_bytes", cls.max_bytes)),
        )


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


def _sniffed_text(path: Path) -> bool:
    """Whether ``path`` holds text (gzip-compressed text, for a ``.gz`` file)."""
    try:
        with path.open("rb") as fh:
            if suffix_of(path) == GZIP_SUFFIX:
                import gzip

                with gzip.GzipFile(fileobj=fh) as inflated:
                    return is_text(inflated.read(SNIFF_BYTES))
            return is_text(fh.read(SNIFF_BYTES))
    except (OSError, EOFError):
        return suffix_of(path) != GZIP_SUFFIX  # else let the read say why, as a skip


HIDDEN = "hidden"
IGNORED = "in .gitignore"
EXCLUDED = "--exclude"
NOT_INCLUDED = "not --include"
BINARY = "binary"
LINKED = "links to a file read already"
LINKED_FOLDER = "linked folders, not followed"


def _walk(root: Path, options: SourceOptions, left_out: Counter[str]) -> Iterator[Path]:
    """The files to read under ``root``; each one left out is counted in ``left_out`` by
    why (its type, or hidden, ignored, excluded), a folder left out counting once.

    Without ``--include``: the document types, and files without an extension whose content
    is text (README, INSTALL, copyright). With it: what matches, read as text when it is
    not of a known type, binary files aside.
    """
    include = _spec(list(options.include)) if options.include else None
    exclude = _spec(list(options.exclude)) if options.exclude else None
    ignores = _Ignores(root, options.gitignore)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        ignores.load(here)
        kept = []
        for d in sorted(dirs):
            why = (
                HIDDEN
                if d.startswith(".")
                else IGNORED
                if ignores.ignored(here / d, True)
                else EXCLUDED
                if exclude and exclude.match_file((here / d).relative_to(root).as_posix() + "/")
                else LINKED_FOLDER
                if (here / d).is_symlink()  # not followed (nor by os.walk): no loops
                else None
            )
            if why:
                left_out[why] += 1
            else:
                kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            path = here / name
            rel = path.relative_to(root).as_posix()
            suffix = suffix_of(path)
            if name.startswith("."):
                left_out[HIDDEN] += 1
            elif ignores.ignored(path, False):
                left_out[IGNORED] += 1
            elif exclude and exclude.match_file(rel):
                left_out[EXCLUDED] += 1
            elif include and not include.match_file(rel):
                left_out[NOT_INCLUDED] += 1
            elif suffix in (SUPPORTED if include else DOCUMENT_SUFFIXES):
                yield path
            elif not (include or suffix in ("", GZIP_SUFFIX)):
                left_out[suffix] += 1
            elif _sniffed_text(path):
                yield path
            else:
                left_out[f"{BINARY} {suffix or '(no extension)'}"] += 1


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


def describe_left_out(left_out: Counter[str], most: int = 8) -> str:
    """``1663 .gz, 83 .c, 12 hidden, ... (3 more kinds)``, most frequent first."""
    common = left_out.most_common()
    shown = ", ".join(f"{n} {why}" for why, n in common[:most])
    rest = len(common) - most
    return shown + (f" and {rest} more kinds" if rest > 0 else "")


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
    left_out: Counter[str] = field(default_factory=Counter)
    """Files not read, by type (``.gz``) or why (``hidden``, ``binary .dat``...)."""
    _plan: list[_Source] = field(default_factory=list)
    _read_paths: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        for raw in self.paths:
            path = Path(raw).expanduser()
            if not path.exists():
                raise SourceError(f"no such file or folder: {raw}")
            if path.is_dir():
                here: Counter[str] = Counter()
                path = path.resolve()
                files = list(_walk(path, self.options, here))
                self.left_out.update(here)
                if not files:
                    kinds = ", ".join(DOCUMENT_SUFFIXES)
                    raise SourceError(
                        f"no {kinds}, gzipped text or text files without an extension under {raw}"
                        + (f" (left out: {describe_left_out(here)})" if here else "")
                        + "; add other types with --include '*.EXT', or name a .jsonl/.csv corpus"
                    )
                for file in files:
                    real = file.resolve()
                    if real in self._read_paths:
                        self.left_out[LINKED] += 1  # a second name of one file: read once
                        continue
                    self._read_paths.add(real)
                    self._plan.append(_Source(path, file, False))
            elif suffix_of(path) in SUPPORTED or _sniffed_text(path):
                real = path.resolve()
                if real in self._read_paths:
                    self.left_out[LINKED] += 1  # named twice, or by a link: read once
                    continue
                self._read_paths.add(real)
                self._plan.append(_Source(real, real, True))
            else:
                raise SourceError(
                    f"cannot index {raw}: not a text file; supported are text files (with no "
                    f"extension or any other) and {', '.join(SUPPORTED)}"
                )
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
                    yield _document(parsed, source, doc_id, modified)
            return
        reader = _reader(suffix)
        for parsed in reader(path, path.read_bytes()):
            yield _document(parsed, source, rel, modified, lines=_has_lines(reader))


def _reader(suffix: str) -> Callable[[Path, bytes], Iterator[Parsed]]:
    """How a file that is one document is read."""
    if suffix in HTML_SUFFIXES:
        return read_html
    if suffix in PDF_SUFFIXES:
        return read_pdf
    if suffix == GZIP_SUFFIX:
        return read_gzipped_text
    return read_text  # the text types, and text files of any other name


def _has_lines(reader: Callable[..., Any]) -> bool:
    """Whether the text read keeps the lines of the file (of the text a .gz holds)."""
    return reader in (read_text, read_gzipped_text)


def _document(
    parsed: Parsed, source: _Source, doc_id: str, modified: str, lines: bool = False
) -> Document:
    return Document(
        doc_id=doc_id,
        text=parsed.text,
        title=parsed.title,
        source=str(source.path),
        root=str(source.root),
        modified=modified,
        fields=parsed.fields or {},
        lines=lines,
    )


def read_again(source: str, root: str) -> Document | None:
    """The document of file ``source``, indexed from ``root``, as indexing reads it now;
    None for a record file, or a file that no longer reads as a document. Raises
    ``OSError`` when it cannot be read (``FileNotFoundError`` when it is gone)."""
    path, base = Path(source), Path(root)
    suffix = suffix_of(path)
    if suffix in RECORD_SUFFIXES:
        return None
    single = path == base
    rel = path.name if single else path.relative_to(base).as_posix()
    reader = _reader(suffix)
    try:
        [parsed] = reader(path, path.read_bytes())
    except (Skip, ValueError):
        return None
    return _document(parsed, _Source(base, path, single), rel, "", lines=_has_lines(reader))
