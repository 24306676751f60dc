"""``--where`` expressions: ``key=value``, ``key>=value``, ``key<value`` and so on.

Keys are the payload fields every chunk has (``doc_id``, ``title``, ``source``, ``root``,
``ext``, ``modified``, ``chunk``) or a user field of the document (a JSONL key, a CSV column).
Values are numbers, dates (``2026-01-31`` or a full RFC 3339 time), ``true``/``false``, or
text; ``a,b,c`` after ``=`` matches any of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timezone

from twinsearch.errors import ConfigError
from twinsearch.stores import Condition, Match, Missing, Range, Store

BUILTIN = ("doc_id", "title", "source", "root", "ext", "modified", "chunk")
_EXPR = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")
_OPS = {">=": "gte", ">": "gt", "<=": "lte", "<": "lt"}


def _key(name: str) -> str:
    return name if name in BUILTIN or name.startswith("fields.") else f"fields.{name}"


def _datetime(text: str) -> str | None:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None


def _value(text: str) -> str | int | bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    number = _number(text)
    return int(number) if isinstance(number, int) else text


def parse_where(expressions: Sequence[str]) -> list[Condition]:
    """All expressions must hold. Bad syntax raises ``ConfigError`` naming the expression."""
    conditions: list[Condition] = []
    for expression in expressions:
        found = _EXPR.match(expression)
        if not found or not found.group(3):
            raise ConfigError(
                f"cannot read --where {expression!r}: write KEY=VALUE, KEY>=VALUE, KEY<VALUE "
                "(dates as 2026-01-31), or KEY=A,B for any of several values"
            )
        name, op, raw = found.groups()
        key = _key(name)
        if op == "!=":
            raise ConfigError(f"--where {expression!r}: '!=' is not supported; use = with a list")
        if op == "=":
            values = [_value(v.strip()) for v in raw.split(",")]
            if key == "ext":
                values = [v if str(v).startswith(".") else f".{v}" for v in map(str, values)]
            if len(values) == 1:
                conditions.append(Match(key, values[0]))
            elif all(isinstance(v, str) for v in values) or all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                conditions.append(Match(key, tuple(values)))  # type: ignore[arg-type]
            else:
                raise ConfigError(f"--where {expression!r}: mix no numbers and words in a list")
            continue
        bound: float | str | None = _number(raw)
        if bound is None:
            bound = _datetime(raw)
        if bound is None:
            raise ConfigError(
                f"--where {expression!r}: {op} needs a number or a date such as 2026-01-31"
            )
        conditions.append(Range(key, **{_OPS[op]: bound}))
    return conditions


SAMPLED = 2000
"""Points whose values decide the kind of index a user field gets."""


def field_kind(store: Store, name: str) -> str:
    """The payload index a user field's stored values call for, read from up to ``SAMPLED``
    points that have it: ``integer``, ``float``, ``bool``, ``datetime`` (dates as `--where`
    writes them), or ``keyword`` (text, or lists of it). ``ConfigError`` for a field no
    document has, or one whose values mix kinds, which no one index can serve."""
    key = _key(name)
    values: list[object] = []
    for _, payload in store.scroll([key]):
        value: object = payload
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            values += value if isinstance(value, list) else [value]
        if len(values) >= SAMPLED:
            break
    if not values:
        raise ConfigError(
            f"no document has a field {name!r}; built-in fields are indexed already, other "
            "fields come from JSONL keys or CSV columns"
        )
    kinds = {_kind(v) for v in values}
    if len(kinds) == 1:
        return kinds.pop()
    if kinds == {"integer", "float"}:
        return "float"
    raise ConfigError(
        f"field {name!r} holds values of several kinds ({', '.join(sorted(kinds))}); one index "
        "cannot serve them: make them one kind in the source and index it again"
    )


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}", value) and _datetime(value):
        return "datetime"
    return "keyword" if isinstance(value, str) else type(value).__name__


def index_fields(store: Store, names: Sequence[str]) -> dict[str, str]:
    """Give each named user field a payload index of the kind its values call for; the
    fields and kinds, also recorded in the collection's metadata as ``indexed_fields``."""
    kinds = {name.removeprefix("fields."): field_kind(store, name) for name in names}
    for name, kind in kinds.items():
        store.index_field(_key(name), kind)
    if kinds:
        indexed = dict(store.metadata().get("indexed_fields") or {})
        store.update_metadata({"indexed_fields": {**indexed, **kinds}})
    return kinds


def _shown(cond: Condition) -> str:
    return cond.key.removeprefix("fields.")


def why_nothing_matched(store: Store, conditions: Sequence[Condition]) -> list[str]:
    """Why a filtered search found nothing, where the filter is the likely cause: a field
    that no document has, or a value that differs from stored ones only by case (values
    are matched exactly). Costs a few counts; meant for the empty result only."""
    said: list[str] = []
    total = store.count()
    matching = [store.count([cond]) for cond in conditions]
    for cond, matched in zip(conditions, matching, strict=True):
        if matched:
            continue
        if store.count([Missing(cond.key)]) == total:
            said.append(
                f"no document has a field {_shown(cond)!r}; built-in fields are "
                f"{', '.join(BUILTIN)}, other fields come from JSONL keys or CSV columns"
            )
            continue
        if not isinstance(cond, Match):
            continue
        values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
        for value in values:
            if not isinstance(value, str):
                continue
            for other in dict.fromkeys((value.lower(), value.upper(), value.capitalize())):
                found = store.count([Match(cond.key, other)]) if other != value else 0
                if found:
                    said.append(
                        f"no document has {_shown(cond)}={value!r}, but {found} have "
                        f"{other!r}: values are matched exactly, case included"
                    )
                    break
    if not said and len(conditions) > 1 and all(matching):
        said.append("each filter matches some documents, but no document matches all of them")
    return said
