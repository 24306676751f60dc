"""From settings to open things: the store, the encoder that fits a collection, a searcher.

Every front end (the CLI, the HTTP API, benchmarks) opens what it needs here, so each
decision is made once: which client the settings name, which encoder embeds queries for a
collection (its ONNX export when there is one: no torch to import, a quick start; else the
model on torch), when to keep such an export, and how many threads the encoder gets. What a
person should be told comes back through ``say`` (a line, "note: ..." or "warning: ...").
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsearch.settings import Settings

if TYPE_CHECKING:
    from twinsearch.encoders import Encoder
    from twinsearch.search import Searcher
    from twinsearch.stores import Client, ServerOptions, Store

Say = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


def server_options(settings: Settings) -> ServerOptions:
    from twinsearch.stores import ServerOptions

    return ServerOptions(
        shards=settings.shards,
        replicas=settings.replicas,
        write_consistency=settings.write_consistency,
        read_consistency=settings.read_consistency,
        timeout=settings.timeout,
    )


@contextmanager
def open_client(settings: Settings) -> Iterator[Client]:
    """The store the settings name: a Qdrant server at ``qdrant_url``, else the embedded one
    in ``data_dir`` (through the `twinsearch serve` process that holds it, if one does)."""
    from twinsearch.stores import connect

    if settings.qdrant_url:
        client = connect(
            url=settings.qdrant_url,
            api_key=settings.qdrant_api_key,
            server=server_options(settings),
        )
    else:
        client = connect(data_dir=settings.data_dir, segment_mb=settings.segment_mb)
    try:
        yield client
    finally:
        client.close()


def models_dir(settings: Settings) -> Path:
    """Where ONNX exports are kept, by model fingerprint."""
    return settings.data_dir / "models"


def threads(settings: Settings, measure: bool = False) -> int:
    """The encoder's threads: as set, else the cores free now (see ``cores.free_cores``)."""
    from twinsearch.cores import free_cores

    return settings.threads or free_cores(measure=measure)


def load_encoder(settings: Settings, model: str) -> Encoder:
    """``model`` on torch (or the hashing test double), for indexing and training."""
    from twinsearch.encoders import load_encoder as load

    return load(
        model,
        device=settings.device,
        threads=threads(settings, measure=True),
        batch_size=settings.batch_size,
    )


def indexing_encoder(
    settings: Settings, name: str, say: Say = _quiet, expected_bytes: int | None = None
) -> Encoder:
    """Model ``name`` to encode documents with, on the path the settings ask for (see
    ``document_encoder``). Where the model's export is known and still agrees with the
    model's own vectors, it stands in for the model on torch (queries, the tokenizer, the
    gate's yardstick), so torch is never imported; else the model loads on torch, and its
    export is made for the next run."""
    from twinsearch.encoders import model_path, onnx

    encoder = _exported_reference(settings, name, say)
    if encoder is None:
        encoder = load_encoder(settings, name)
        export_query_encoder(settings, encoder, say)
        if onnx.intact(onnx.folder_for(models_dir(settings), encoder.fingerprint)):
            # The next run finds the export by the model's folder, without loading it.
            onnx.remember_source(models_dir(settings), model_path(name), encoder.fingerprint)
    return document_encoder(settings, encoder, say, expected_bytes)


def mining_encoder(
    settings: Settings, model: Any, name: str, say: Say = _quiet, expected_bytes: int | None = None
) -> Encoder:
    """``model`` (a loaded ``SentenceTransformer``, as training starts from it) to embed a
    corpus with for mining hard negatives: on the fastest path that keeps its vectors, as
    ``index`` encodes documents (its export made first, kept by its fingerprint)."""
    from twinsearch.encoders.sentence import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(model, name, batch_size=settings.batch_size)
    export_query_encoder(settings, encoder, say)
    return document_encoder(settings, encoder, say, expected_bytes)


def _exported_reference(settings: Settings, name: str, say: Say) -> Encoder | None:
    """Model ``name``'s export, checked to stand in for it on torch; None where torch is
    asked for, may be faster (a GPU), or the export is not known."""
    from twinsearch.encoders import model_path, model_ref, onnx
    from twinsearch.encoders.fast import CPU_BATCH
    from twinsearch.errors import ModelError

    gpu = settings.device not in (None, "cpu") or (
        settings.device is None and Path("/proc/driver/nvidia/version").exists()
    )
    if name.startswith("hashing") or gpu or settings.runtime == "torch":
        return None
    if settings.precision == "fp16":
        return None
    fingerprint = onnx.known_fingerprint(models_dir(settings), model_path(name))
    if fingerprint is None:
        return None
    try:
        return onnx.reference(
            models_dir(settings),
            fingerprint,
            model_ref(name),
            threads(settings, measure=True),
            batch_size=min(settings.batch_size, CPU_BATCH),
        )
    except ModelError as exc:
        say(f"note: {exc}; loading the model on torch")
        return None


def document_encoder(
    settings: Settings, encoder: Encoder, say: Say = _quiet, expected_bytes: int | None = None
) -> Encoder:
    """``encoder`` (exported already) for documents, on the path ``settings`` ask for:
    the fastest that passes the gate, by default (see ``encoders.fast``), for a run over
    about ``expected_bytes`` of text."""
    from twinsearch.encoders.fast import document_encoder as on_fastest

    return on_fastest(
        encoder,
        models_dir(settings),
        runtime=settings.runtime,
        precision=settings.precision,
        # Measured, as the model's own: the load average trails by a minute, and just
        # after another heavy run it would leave a core idle.
        threads=threads(settings, measure=True),
        batch_size=settings.batch_size,
        expected_bytes=expected_bytes,
        say=say,
    )


def query_encoder(
    settings: Settings, store: Store, first_query: str | None = None, say: Say = _quiet
) -> Encoder:
    """The encoder to embed queries for ``store``: the settings' model if one is named; else
    the collection's own, through its ONNX export when there is one, on torch otherwise.

    Given ``first_query``, that query is embedded in a forked child while this process goes
    on (see ``onnx.ForkedQuery``): a one-off search starts quicker.
    """
    from twinsearch.collection import recorded_model
    from twinsearch.encoders import onnx
    from twinsearch.errors import ModelError

    if settings.model:
        return load_encoder(settings, settings.model)
    name = recorded_model(store)
    if name.startswith("hashing"):
        return load_encoder(settings, name)
    fingerprint = store.metadata()["encoder"]["fingerprint"]
    cores = threads(settings)
    # Forking is safe only before any library has started threads of its own (torch does,
    # for one); the search path never imports it.
    if first_query is not None and sys.platform.startswith("linux") and "torch" not in sys.modules:
        try:
            return onnx.ForkedQuery(
                models_dir(settings),
                fingerprint,
                first_query,
                fallback=lambda: query_encoder(settings, store, say=say),
                threads=cores,
            )
        except ModelError:
            pass  # said below, by the path without a child
    try:
        return onnx.load(models_dir(settings), fingerprint, cores)
    except ModelError as exc:
        say(
            f"note: {exc}; using torch, which starts slower "
            "(`twinsearch index` on this collection creates the export)"
        )
        return load_encoder(settings, name)


def export_query_encoder(settings: Settings, encoder: Encoder, say: Say = _quiet) -> None:
    """Keep an ONNX export of ``encoder``'s query side for quick searches (and the fast
    document paths), unless there is one; a failure costs only speed, and is said."""
    from twinsearch.encoders import onnx
    from twinsearch.encoders.sentence import SentenceTransformerEncoder
    from twinsearch.errors import ModelError

    if not isinstance(encoder, SentenceTransformerEncoder):
        return
    if onnx.intact(onnx.folder_for(models_dir(settings), encoder.fingerprint)):
        return  # made already (one changed since, or of an older format, is made again)
    try:
        if onnx.export(encoder, models_dir(settings)) is None:
            say("note: this model's architecture has no ONNX query path")
    except (ModelError, OSError, RuntimeError) as exc:
        say(f"warning: no ONNX query encoder ({exc}); searches use torch")


@contextmanager
def open_searcher(
    settings: Settings,
    first_query: str | None = None,
    say: Say = _quiet,
    while_embedding: Callable[[], None] = lambda: None,
) -> Iterator[Searcher]:
    """The settings' collection, opened for queries with the encoder that fits it.

    Given ``first_query``, it is embedded in a child process while this one opens the
    collection, and ``while_embedding`` runs meanwhile (the CLI loads its console then).
    """
    from twinsearch.collection import open_for_search
    from twinsearch.search import Searcher

    with open_client(settings) as client:
        encoder = query_encoder(settings, client.collection(settings.collection), first_query, say)
        try:
            store = open_for_search(client, settings.collection, encoder)
            if first_query is not None:
                store.open()
                while_embedding()
            yield Searcher.for_store(store, encoder)
        finally:
            encoder.close()


class Searchers:
    """One open searcher per collection, opened on first use and kept, for a process that
    answers many searches (the HTTP API, the MCP server)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stack = ExitStack()
        self.client = self._stack.enter_context(open_client(settings))
        self._open: dict[str, Any] = {}
        self._opening = threading.Lock()
        # The embedded engine is used by one thread at a time; a server takes many.
        self.lock: Any = threading.Lock() if settings.qdrant_url is None else nullcontext()
        """Held for every use of the store."""

    def get(self, name: str) -> Any:
        """The searcher for what ``name`` stands for now: an alias switched by a re-index
        is followed on the next request."""
        store = self.client.collection(name)
        with self._opening:
            cached = self._open.get(store.name)
            if cached is None or cached.store is not store:  # new, or dropped and made again
                from twinsearch.collection import open_for_search
                from twinsearch.search import Searcher

                encoder = query_encoder(self.settings, store)
                opened = open_for_search(self.client, name, encoder)
                self._open[store.name] = Searcher.for_store(opened, encoder)
            return self._open[store.name]

    def close(self) -> None:
        self._stack.close()
