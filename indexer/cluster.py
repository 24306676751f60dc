"""The document encoding spread over a Ray cluster: `twinsearch index --ray ADDRESS`.

This process reads, chunks, plans and writes, as it does alone (``pipeline.Indexer``);
batches of chunks go to Ray actors, each of which loads the encoder once, the way this
process would (the same model, prompt and route; the same choice of runtime, see
``encoders.fast``), and sends the vectors back. A bounded number of batches is out at a
time (``AHEAD_PER_ACTOR`` per actor), so the writer's memory does not grow with the corpus.

Ray is an optional extra (``pip install 'twinsearch[ray]'``), imported only here. Every
node needs twinsearch (with the extra) installed, in the same versions as this process.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from twinsearch.encoders.base import Spans, encode_with_sentences
from twinsearch.errors import ConfigError, ModelError, first_line
from twinsearch.indexer.pipeline import Encoded
from twinsearch.settings import Settings

AHEAD_PER_ACTOR = 2
"""Batches given to each actor at a time: one it encodes, one waiting, so it never idles
while its last vectors travel back."""
ACTOR_CPUS = 4
"""CPUs per actor unless ``--threads`` says otherwise (fewer on a smaller node): torch
gains little from more threads, and each actor holds the model once."""
CONNECT_TIMEOUT_S = 5.0
INSTALL = "pip install 'twinsearch[ray]'"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def check_installed() -> None:
    """``ConfigError`` naming the install unless Ray can be imported (without importing
    it: that takes a second)."""
    from importlib.util import find_spec

    if find_spec("ray") is None:
        raise ConfigError(f"--ray needs Ray, which is not installed: {INSTALL}")


def check_reachable(address: str) -> None:
    """``ConfigError`` unless something listens at ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``): Ray itself retries an unreachable address for minutes."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"--ray {address!r} is not an address: give HOST:PORT (the head's address that "
            "`ray start --head` prints) or ray://HOST:PORT"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}): start one with "
            "`ray start --head` and give the address it prints"
        ) from None


class DocumentActor:
    """One encoder on a Ray node, loaded once (made a Ray actor by ``RayEncoding``)."""

    def __init__(self, settings: Settings, model: str, expected_bytes: int | None) -> None:
        from twinsearch.session import document_encoder, export_query_encoder, load_encoder

        self.notes: list[str] = []
        encoder = load_encoder(settings, model)
        # The export a fast path runs, made on this node if it has none yet.
        export_query_encoder(settings, encoder, self.notes.append)
        self.encoder = document_encoder(
            settings, encoder, self.notes.append, expected_bytes=expected_bytes
        )

    def encode(
        self, texts: Sequence[str], spans: Sequence[Spans]
    ) -> tuple[Encoded, Any, list[str]]:
        """The batch's vectors, what encoded them, and the notes said since last asked."""
        encoded = encode_with_sentences(self.encoder, texts, spans)
        notes, self.notes = self.notes, []
        return encoded, _choice(self.encoder), notes


def _choice(encoder: Any) -> Any:
    from twinsearch.encoders.fast import Choice

    choice = getattr(encoder, "choice", None)
    if choice is None and hasattr(encoder, "model"):  # the model itself, on torch
        choice = Choice("torch", "fp32", 1.0)
    return choice


class RayEncoding:
    """The ``pipeline.Encoding`` of a Ray cluster: batches to the least busy actor,
    vectors taken back in the order the batches were handed over."""

    def __init__(self, actors: list[Any], say: Callable[[str], None]) -> None:
        self.actors = actors
        self.ahead = AHEAD_PER_ACTOR * len(actors)
        self.busy = [0] * len(actors)
        self.choice: Any = None
        """What the first batch was encoded with (as a local run's encoder records it)."""
        self._say = say
        self._said: set[str] = set()

    def submit(self, texts: Sequence[str], spans: Sequence[Spans], prepared: Any) -> Any:
        actor = min(range(len(self.actors)), key=self.busy.__getitem__)
        self.busy[actor] += 1
        return actor, self.actors[actor].encode.remote(list(texts), [list(s) for s in spans])

    def take(self, ticket: Any) -> Encoded:
        ray = _ray()
        actor, ref = ticket
        try:
            encoded, choice, notes = ray.get(ref)
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None) or exc
            raise ModelError(f"a Ray actor could not encode: {first_line(cause)}") from None
        finally:
            self.busy[actor] -= 1
        self.choice = self.choice or choice
        for line in notes:
            if line not in self._said:  # each actor says the same
                self._said.add(line)
                self._say(line)
        return encoded


def actor_plan(nodes: list[dict[str, Any]], threads: int | None) -> tuple[int, int]:
    """(actors, CPUs each) for the alive ``nodes`` (as ``ray.nodes()`` lists them)."""
    cpus = [int(n["Resources"].get("CPU", 0)) for n in nodes if n.get("Alive")]
    cpus = [c for c in cpus if c > 0]
    if not cpus:
        raise ConfigError("the Ray cluster has no CPUs to encode on: add a worker node")
    each = min(threads or ACTOR_CPUS, min(cpus))
    return sum(c // each for c in cpus), each


@contextmanager
def ray_encoding(
    address: str,
    settings: Settings,
    model: str,
    *,
    expected_bytes: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Iterator[RayEncoding]:
    """Actors on the Ray cluster at ``address``, each with ``model`` loaded as ``settings``
    ask; disconnected (and the actors ended) on leaving."""
    ray = _ray()
    check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"cannot join the Ray cluster at {address}: {first_line(exc)} "
            "(the cluster's Ray and Python versions must be this one's)"
        ) from None
    try:
        count, each = actor_plan(ray.nodes(), settings.threads)
        on_node = dataclasses.replace(settings, threads=each)
        remote = ray.remote(num_cpus=each)(DocumentActor)
        actors = [remote.remote(on_node, model, expected_bytes) for _ in range(count)]
        say(f"encoding on {count} Ray actors of {each} CPUs each, at {address}")
        yield RayEncoding(actors, say)
    finally:
        ray.shutdown()
