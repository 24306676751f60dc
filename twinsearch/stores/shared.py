"""One embedded store, several processes: while `twinsearch serve` holds a data folder's
collections, other twinsearch processes reach them through it.

The embedded engine runs inside one process, which must hold a collection to read or write
it. A server holds its collections for as long as it runs, so every other command would
find them locked. Instead, the serving process also listens on a Unix socket (in a private
folder of the temporary directory, the socket's path recorded in ``serve.json`` in the
data folder), and ``connect`` hands other processes a ``SharedClient`` whose stores send
each operation there. The server runs them one at a time on the collections it has open,
between its own searches; so nothing is written by two processes at once. A collection is
written by one client at a time (``CollectionLocked`` for a second writer, as the embedded
store itself says), until that client closes it or its process ends.

What crosses the socket: JSON, with vectors as base64 float32 (exact, and a third the size
of decimal text). The client speaks HTTP/1.1 with the standard library's ``http.client``:
nothing to import that a quick search would wait for.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from twinsearch import errors
from twinsearch.errors import CollectionLocked, StoreError, TwinsearchError
from twinsearch.nouns import Point, ScoredPoint, SparseVector
from twinsearch.stores.base import (
    SERVE_RECORD,
    Client,
    CollectionSpec,
    Condition,
    Filter,
    Match,
    Missing,
    Range,
    Store,
)

PATH_PREFIX = "/store/"


# -- finding the server -------------------------------------------------------------------
def socket_path(data_dir: Path) -> Path:
    """Short enough for a Unix socket (about 100 bytes) however deep the data folder is."""
    digest = hashlib.blake2b(str(data_dir.resolve()).encode(), digest_size=8).hexdigest()
    return Path(tempfile.gettempdir()) / f"twinsearch-{os.getuid()}" / f"{digest}.sock"


def make_socket(data_dir: Path) -> socket.socket:
    """The server's listening socket, in a folder only this user can enter."""
    path = socket_path(data_dir)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path.parent, 0o700)
    path.unlink(missing_ok=True)  # a stale one: a live server's is refused by register
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(64)
    return sock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find(data_dir: Path) -> Path | None:
    """The socket of a live server holding ``data_dir``, if any (not this process)."""
    try:
        record = json.loads((Path(data_dir) / SERVE_RECORD).read_text())
        pid, path = int(record["pid"]), Path(record["socket"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or not _alive(pid) or not path.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return None  # stopping, or stopped without a word
    return path


def register(data_dir: Path, sock: socket.socket) -> Callable[[], None]:
    """Record this process as the server of ``data_dir``; returns what undoes it."""
    other = find(data_dir)
    if other is not None:
        raise StoreError(
            f"another twinsearch serve already holds {data_dir}; stop it, or serve another "
            "data folder with --data-dir"
        )
    record = Path(data_dir) / SERVE_RECORD
    path = Path(sock.getsockname())  # read now: the server closes the socket as it stops
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "socket": str(path)}))
    os.replace(tmp, record)

    def unregister() -> None:
        try:
            if json.loads(record.read_text()).get("pid") == os.getpid():
                record.unlink()
        except (OSError, ValueError):
            pass
        path.unlink(missing_ok=True)

    return unregister


# -- what crosses the socket ----------------------------------------------------------------
def _vector(values: Any) -> str:
    import numpy as np

    return base64.b64encode(np.asarray(values, dtype=np.float32).tobytes()).decode()


def _unvector(text: str) -> Any:
    import numpy as np

    return np.frombuffer(base64.b64decode(text), dtype=np.float32)


def _filter(filter: Filter | None) -> list[dict[str, Any]] | None:
    if filter is None:
        return None
    out: list[dict[str, Any]] = []
    for cond in filter:
        if isinstance(cond, Missing):
            out.append({"missing": cond.key})
        elif isinstance(cond, Match):
            value = list(cond.value) if isinstance(cond.value, tuple) else cond.value
            out.append({"match": cond.key, "value": value, "any": isinstance(cond.value, tuple)})
        else:
            out.append({"range": cond.key, **{k: v for k, v in asdict(cond).items() if k != "key"}})
    return out


def _unfilter(data: list[dict[str, Any]] | None) -> list[Condition] | None:
    if data is None:
        return None
    conditions: list[Condition] = []
    for cond in data:
        if "missing" in cond:
            conditions.append(Missing(cond["missing"]))
        elif "match" in cond:
            value = tuple(cond["value"]) if cond["any"] else cond["value"]
            conditions.append(Match(cond["match"], value))
        else:
            bounds = {k: cond.get(k) for k in ("gte", "gt", "lte", "lt")}
            conditions.append(Range(cond["range"], **bounds))
    return conditions


def _sparse(vector: SparseVector | None) -> dict[str, Any] | None:
    return None if vector is None else {"indices": vector.indices, "values": vector.values}


def _unsparse(data: dict[str, Any] | None) -> SparseVector | None:
    return None if data is None else SparseVector(list(data["indices"]), list(data["values"]))


def _point(point: Point) -> dict[str, Any]:
    return {
        "id": point.id,
        "vector": _vector(point.vector),
        "payload": point.payload,
        "sparse": _sparse(point.sparse),
    }


def _unpoint(data: dict[str, Any]) -> Point:
    return Point(
        data["id"], _unvector(data["vector"]), data["payload"], _unsparse(data.get("sparse"))
    )


# -- the server's side ----------------------------------------------------------------------
class StoreService:
    """Runs the operations clients send on ``client``'s collections, one at a time (under
    ``lock``, which the server's own searches hold too)."""

    def __init__(self, client: Client, lock: AbstractContextManager[Any] | None = None) -> None:
        self.client = client
        self.lock = lock if lock is not None else threading.Lock()
        self._writers: dict[str, tuple[str, int]] = {}
        """Collection -> (session, pid) of the client writing it."""

    def handle(self, op: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        """(HTTP status, JSON answer) for one operation."""
        try:
            with self.lock:
                return 200, {"result": self._run(op, body)}
        except TwinsearchError as exc:
            return 409, {"error": type(exc).__name__, "message": str(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"error": "StoreError", "message": f"bad request for {op}: {exc}"}

    def _claim(self, name: str, body: Mapping[str, Any]) -> None:
        session, pid = str(body["session"]), int(body["pid"])
        holder = self._writers.get(name)
        if holder and holder[0] != session and _alive(holder[1]):
            raise CollectionLocked(
                f"collection {name!r} is being written by another twinsearch process "
                f"(pid {holder[1]}); wait for it to finish"
            )
        self._writers[name] = (session, pid)

    def _run(self, op: str, body: Mapping[str, Any]) -> Any:
        client = self.client
        if op == "collections":
            return client.collections()
        if op == "aliases":
            return client.aliases()
        if op == "switch_alias":
            return client.switch_alias(body["alias"], body["target"])
        if op == "drop":
            self._claim(client.collection(body["name"]).name, body)
            client.drop(body["name"])
            return None
        if op == "resolve":
            return client.collection(body["name"]).name
        store = client.collection(body["name"], resolve=False)
        if op in WRITES:
            self._claim(store.name, body)
        if op == "release":
            if self._writers.get(store.name, ("",))[0] == body["session"]:
                del self._writers[store.name]
            return None
        return STORE_OPS[op](store, body)


def _page(store: Store, body: Mapping[str, Any]) -> dict[str, Any]:
    page, offset = store.page(  # type: ignore[attr-defined]
        body.get("offset"), body.get("fields"), _unfilter(body.get("filter")), body["vectors"]
    )
    return {
        "points": [
            {"id": pid, "payload": payload, **({} if point is None else _point(point))}
            for pid, payload, point in page
        ],
        "offset": offset if offset is None or isinstance(offset, int) else str(offset),
    }


STORE_OPS: dict[str, Callable[[Store, Mapping[str, Any]], Any]] = {
    "exists": lambda s, b: s.exists(),
    "require": lambda s, b: s.require(),
    "create": lambda s, b: s.create(CollectionSpec(**{**b["spec"], **_spec_tuples(b["spec"])})),
    "metadata": lambda s, b: s.metadata(),
    "update_metadata": lambda s, b: s.update_metadata(b["changes"]),
    "upsert": lambda s, b: s.upsert([_unpoint(p) for p in b["points"]]),
    "delete": lambda s, b: s.delete(_unfilter(b["filter"]) or []),
    "delete_points": lambda s, b: s.delete_points(b["ids"]),
    "set_payload": lambda s, b: s.set_payload(b["payload"], _unfilter(b["filter"]) or []),
    "search": lambda s, b: [
        {
            "id": p.id,
            "score": p.score,
            "payload": p.payload,
            "vector": None if p.vector is None else _vector(p.vector),
        }
        for p in s.search(
            b["k"],
            dense=None if b.get("dense") is None else _unvector(b["dense"]).tolist(),
            sparse=_unsparse(b.get("sparse")),
            filter=_unfilter(b.get("filter")),
            exact=b.get("exact", False),
            with_vectors=b.get("with_vectors", False),
        )
    ],
    "count": lambda s, b: s.count(_unfilter(b.get("filter"))),
    "page": _page,
    "open": lambda s, b: s.open(),
    "finish": lambda s, b: s.finish(),
    "segments": lambda s, b: s.segments(),
    "quantized": lambda s, b: s.quantized(),
    "index_field": lambda s, b: s.index_field(b["key"], b["kind"]),
    "release": lambda s, b: None,
}
WRITES = {
    "create",
    "index_field",
    "update_metadata",
    "upsert",
    "delete",
    "delete_points",
    "set_payload",
    "finish",
}


def _spec_tuples(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) for k, v in spec.items() if k.endswith("_fields")}


def asgi_app(service: StoreService) -> Callable[..., Any]:
    """The service as an ASGI app: ``POST /store/OP`` with a JSON body."""
    from starlette.concurrency import run_in_threadpool

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if scope["method"] != "POST" or not path.startswith(PATH_PREFIX):
            status, answer = 404, {"error": "StoreError", "message": f"no operation {path}"}
        else:
            op = path[len(PATH_PREFIX) :]
            known = op in STORE_OPS or op in CLIENT_OPS
            status, answer = (
                await run_in_threadpool(service.handle, op, json.loads(body or b"{}"))
                if known
                else (404, {"error": "StoreError", "message": f"no operation {op}"})
            )
        data = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return app


CLIENT_OPS = {"collections", "aliases", "switch_alias", "drop", "resolve"}


# -- the client's side ----------------------------------------------------------------------
class _Connection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=None)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


class _Channel:
    """One connection to the server, kept open, one request at a time. The server closes a
    connection left idle (by `index` while its model loads, say); a request that fails on
    it never reached the server, and is sent again on a new connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.session = uuid.uuid4().hex
        self._connection = _Connection(path)
        self._lock = threading.Lock()

    def call(self, op: str, **body: Any) -> Any:
        payload = json.dumps({**body, "session": self.session, "pid": os.getpid()})
        with self._lock:
            try:
                try:
                    answer = self._exchange(op, payload)
                except _STALE:
                    self._connection.close()
                    answer = self._exchange(op, payload)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._connection.close()
                raise StoreError(
                    f"lost the twinsearch serve process that holds this data folder ({exc}); "
                    "run the command again once it is back, or after it has stopped"
                ) from None
        if "error" in answer:
            kind = getattr(errors, str(answer["error"]), StoreError)
            if not (isinstance(kind, type) and issubclass(kind, TwinsearchError)):
                kind = StoreError
            raise kind(answer["message"])
        return answer["result"]

    def _exchange(self, op: str, payload: str) -> Any:
        self._connection.request(
            "POST", PATH_PREFIX + op, payload, {"Content-Type": "application/json"}
        )
        return json.loads(self._connection.getresponse().read())

    def close(self) -> None:
        self._connection.close()


_STALE = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)
"""How a connection the server has closed fails when it is used again."""


class SharedStore:
    """A collection held by a `twinsearch serve` process, used through it."""

    def __init__(self, channel: _Channel, name: str) -> None:
        self._channel = channel
        self.name = name
        self._wrote = False

    def _call(self, op: str, **body: Any) -> Any:
        if op in WRITES:
            self._wrote = True
        return self._channel.call(op, name=self.name, **body)

    def exists(self) -> bool:
        return bool(self._call("exists"))

    def require(self) -> None:
        self._call("require")

    def create(self, spec: CollectionSpec) -> None:
        self._call("create", spec=asdict(spec))

    def metadata(self) -> dict[str, Any]:
        return dict(self._call("metadata"))

    def update_metadata(self, changes: Mapping[str, Any]) -> None:
        self._call("update_metadata", changes=dict(changes))

    def upsert(self, points: Sequence[Point]) -> None:
        if points:
            self._call("upsert", points=[_point(p) for p in points])

    def delete(self, filter: Filter) -> None:
        self._call("delete", filter=_filter(filter))

    def delete_points(self, ids: Sequence[str]) -> None:
        if ids:
            self._call("delete_points", ids=list(ids))

    def set_payload(self, payload: Mapping[str, Any], filter: Filter) -> None:
        self._call("set_payload", payload=dict(payload), filter=_filter(filter))

    def search(
        self,
        k: int,
        *,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        filter: Filter | None = None,
        exact: bool = False,
        with_vectors: bool = False,
    ) -> list[ScoredPoint]:
        found = self._call(
            "search",
            k=k,
            dense=None if dense is None else _vector(dense),
            sparse=_sparse(sparse),
            filter=_filter(filter),
            exact=exact,
            with_vectors=with_vectors,
        )
        return [
            ScoredPoint(
                p["id"],
                float(p["score"]),
                p["payload"],
                None if p.get("vector") is None else _unvector(p["vector"]),
            )
            for p in found
        ]

    def count(self, filter: Filter | None = None) -> int:
        return int(self._call("count", filter=_filter(filter)))

    def _pages(
        self, fields: Sequence[str] | None, filter: Filter | None, vectors: bool
    ) -> Iterator[list[dict[str, Any]]]:
        offset = None
        while True:
            page = self._call(
                "page", offset=offset, fields=fields, filter=_filter(filter), vectors=vectors
            )
            yield page["points"]
            offset = page["offset"]
            if offset is None:
                return

    def scroll(
        self, fields: Sequence[str], filter: Filter | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        for page in self._pages(list(fields), filter, vectors=False):
            for point in page:
                yield str(point["id"]), point["payload"]

    def points(self) -> Iterator[list[Point]]:
        for page in self._pages(None, None, vectors=True):
            yield [_unpoint(point) for point in page]

    def open(self) -> None:
        self._call("open")

    def finish(self) -> None:
        self._call("finish")

    def segments(self) -> int:
        return int(self._call("segments"))

    def index_field(self, key: str, kind: str) -> None:
        self._call("index_field", key=key, kind=kind)

    def quantized(self) -> bool:
        return bool(self._call("quantized"))

    def optimize(self, merged_mb: int | None = None, quantize: bool = False) -> tuple[int, int]:
        raise StoreError(
            f"collection {self.name!r} is held by `twinsearch serve`; a merge takes minutes "
            "and would hold its searches: stop serve, run `twinsearch optimize`, start it again"
        )

    def close(self) -> None:
        if self._wrote:
            self._wrote = False
            self._call("release")


class SharedClient:
    """The collections of a data folder that a `twinsearch serve` process holds."""

    aliased = False

    def __init__(self, path: Path, data_dir: Path) -> None:
        self._channel = _Channel(path)
        self.location = f"{Path(data_dir).expanduser() / 'collections'} (through twinsearch serve)"
        self._stores: dict[str, SharedStore] = {}

    def collections(self) -> list[str]:
        return list(self._channel.call("collections"))

    def collection(self, name: str, resolve: bool = True) -> SharedStore:
        if resolve:
            name = self._channel.call("resolve", name=name)
        if name not in self._stores:
            self._stores[name] = SharedStore(self._channel, name)
        return self._stores[name]

    def drop(self, name: str) -> None:
        self._channel.call("drop", name=name)

    def aliases(self) -> dict[str, str]:
        return dict(self._channel.call("aliases"))

    def switch_alias(self, alias: str, target: str) -> str | None:
        previous = self._channel.call("switch_alias", alias=alias, target=target)
        return None if previous is None else str(previous)

    def close(self) -> None:
        try:
            for store in self._stores.values():
                store.close()
        finally:
            self._channel.close()
