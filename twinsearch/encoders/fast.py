"""The document encoder on the fastest path the machine has, chosen by measurement and
kept only while its vectors agree with the model's own.

Paths: the model's ONNX export (the one searches use) run by OpenVINO in bf16, where the
CPU computes in bf16 natively, or in fp32; by onnxruntime in fp32; and the model itself on
torch (in fp16 on a GPU). On the first batch a run encodes, each candidate encodes a sample
of it (``GATE_SAMPLE`` chunks of the corpus being indexed) and is timed; the fastest whose
vectors keep a cosine of at least ``GATE_COSINE`` with the model's fp32 ones on every text
of the sample is used. The candidates' speeds are kept beside the export, per machine, so
later runs time only the reference (the yardstick the gate needs) and the path they use.

The reference is the model on torch in fp32, or, once the model's export is made, the
export on onnxruntime in fp32: it agreed with torch when it was made (a least cosine of
0.99999, on texts up to the window) and is checked against torch's vectors of those texts
on every run (``onnx.runtime.reference``), so a run on a fast path never imports torch,
which saves its start and about 0.6 GB of memory.

int8 (OpenVINO, the export quantized by NNCF on the run's first chunks, see
``onnx.quantized``) is used only when asked for (``--precision int8``), with a gate of its
own, ``INT8_COSINE``. On SciFact it moved nDCG@10 by more than the 0.003 allowed (dense
0.6686 against fp32's 0.6640, hybrid 0.7177 against 0.7154), ran at 1.0-1.2 times bf16's
speed, and peaked higher (1.97 GB against 1.11 GB): ``auto`` keeps to bf16, whose vectors
are the model's (see the README).

A path that fails the gate is not used, and a one-line note says so.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsearch.errors import ConfigError, ModelError
from twinsearch.settings import check_encoder_route

if TYPE_CHECKING:
    import numpy as np

GATE_COSINE = 0.9999
"""The least cosine a fast path's vectors may have with fp32 torch's, text by text."""
INT8_COSINE = 0.98
"""The least cosine int8's vectors may have with fp32's, text by text: a floor against a
broken quantization (SciFact chunks: 0.987 at the least); what int8 costs retrieval is
measured with `eval`."""
GATE_SAMPLE = 32
SMALL_RUN_BYTES = 200_000
"""Under this much text (about 200 chunks), ``auto`` keeps the reference (the model on
torch, or its export in fp32 in torch's stead): the gate and a runtime's start cost a few
seconds, what a fast path saves on some 100 chunks."""
SPEEDS_FILE = "speeds.json"
CPU_BATCH = 8
"""Texts per batch of an exported model on a CPU: as fast as 32 (80-96 chunks/s either way
on two cores), with a quarter of the working memory (about 0.2 GB against 0.5 GB)."""


@dataclass(frozen=True)
class Route:
    """A way to run the document encoder: a runtime and a precision."""

    runtime: str
    precision: str

    def __str__(self) -> str:
        return f"{self.runtime} {self.precision}"


@dataclass(frozen=True)
class Choice:
    """What a run's documents were encoded with, as a collection's metadata records it."""

    runtime: str
    precision: str
    min_cosine: float
    """Least cosine with torch fp32 on the gate's sample."""
    chunks_per_s: float | None = None
    """On the gate's sample, where it was timed this run."""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


TORCH = Route("torch", "fp32")


def route_of(reference: Any) -> Route:
    """The path ``reference`` itself runs on: an export's, or torch fp32."""
    runtime = getattr(reference, "runtime", None)
    return Route(runtime, reference.precision) if runtime else TORCH


def candidates(reference: Any, runtime: str, precision: str, exported: bool) -> list[Route]:
    """The paths to try, in the order to prefer them before any is timed; the reference's
    own last. int8 only where it is asked for."""
    check_encoder_route(runtime, precision)
    from twinsearch.encoders.onnx.runtime import openvino_precisions

    device = str(getattr(getattr(reference, "model", None), "device", "cpu"))
    own = route_of(reference)
    paths: list[Route] = []
    if device.startswith("cuda"):
        paths += [Route("torch", "fp16"), TORCH]
    elif exported:
        native = openvino_precisions()
        if precision == "int8" and "int8" in native:
            paths.append(Route("openvino", "int8"))
        paths += [Route("openvino", p) for p in ("bf16", "fp32") if p in native]
        paths.append(Route("onnx", "fp32"))
    # The model on torch is a path where it is loaded (the export stands in for it otherwise).
    paths = [p for p in paths if p != own] + [own]
    chosen = [
        p for p in paths if runtime in ("auto", p.runtime) and precision in ("auto", p.precision)
    ]
    if not chosen:
        raise ConfigError(
            f"--runtime {runtime} --precision {precision} is not available here; "
            f"available: {', '.join(str(p) for p in paths)}"
        )
    return chosen


def _machine() -> str:
    """What a timing holds for: the CPU, the cores and the runtimes' versions."""
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for package in ("openvino", "onnxruntime", "torch"):
        try:
            versions.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if "model name" in line), cpu)
    except OSError:
        pass
    return f"{cpu} x{os.cpu_count()} {' '.join(versions)}"


class GatedEncoder:
    """The ``Encoder`` protocol for documents, on the fastest path that passes the gate.

    ``reference`` is the model in fp32, on torch or as its checked export (see above): it
    gives the name, fingerprint, window and tokenizer, encodes queries, and is the gate's
    yardstick. ``make`` builds the encoder of a path from the texts of the run's first
    encode call (int8 is calibrated on them).
    """

    def __init__(
        self,
        reference: Any,
        paths: list[Route],
        make: Callable[[Route, Sequence[str]], Any],
        *,
        speeds: Path | None = None,
        say: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.reference = reference
        self.name, self.fingerprint = reference.name, reference.fingerprint
        self.dim, self.similarity = reference.dim, reference.similarity
        self.window, self.tokenizer = reference.window, reference.tokenizer
        self._paths, self._make, self._speeds_file, self._say = paths, make, speeds, say
        self._active: Any = None
        self._prepared_by: Any = None
        self.choice: Choice | None = None

    def encode_queries(self, texts: Sequence[str]) -> Any:
        """On the model itself until a fast path is chosen, then on that path (which
        passed the gate; the model's memory is given back by then)."""
        return (self._active or self.reference).encode_queries(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encoder(texts).encode_documents(texts)

    def encode_documents_with_sentences(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        prepared: Sequence[Any] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        from twinsearch.encoders.base import encode_with_sentences

        encoder = self._encoder(texts)
        usable = prepared if self._prepared_by is encoder else None
        return encode_with_sentences(encoder, texts, spans, usable)

    def tokenize_documents(self, texts: Sequence[str]) -> list[Any] | None:
        """``texts`` tokenized for the path in use, once it is chosen and tokenizes apart
        from encoding (the exported model does); None before, or otherwise. Called from
        the indexer's reader thread, ahead of the encoder."""
        active = self._active
        if active is None or not hasattr(active, "tokenize"):
            return None
        self._prepared_by = active
        return active.tokenize("document", texts)

    def close(self) -> None:
        if self._active is not None and self._active is not self.reference:
            self._active.close()
        self.reference.close()

    # --- the gate ---------------------------------------------------------------------

    def _encoder(self, texts: Sequence[str]) -> Any:
        if self._active is None:
            self._active = self._choose(list(texts))
        return self._active

    def _load_speeds(self) -> dict[str, float]:
        if self._speeds_file is None:
            return {}
        try:
            known = json.loads(self._speeds_file.read_text())
        except (OSError, ValueError):
            return {}
        speeds = known.get(_machine()) if isinstance(known, dict) else None
        return {str(k): float(v) for k, v in (speeds or {}).items()}

    def _save_speeds(self, speeds: dict[str, float]) -> None:
        if self._speeds_file is None or not speeds:
            return
        try:
            known = json.loads(self._speeds_file.read_text())
        except (OSError, ValueError):
            known = {}
        known[_machine()] = speeds
        try:
            self._speeds_file.write_text(json.dumps(known, indent=2))
        except OSError:
            pass  # only a timing lost

    def _choose(self, texts: list[str]) -> Any:
        """The fastest path whose vectors pass the gate on the first of ``texts``."""
        import numpy as np

        sample = texts[:GATE_SAMPLE]
        reference_path = route_of(self.reference)
        own_cosine = round(float(getattr(self.reference, "checked_cosine", 1.0)), 6)
        if self._paths == [reference_path] or not sample:
            self.choice = Choice(reference_path.runtime, reference_path.precision, own_cosine)
            return self.reference
        started = time.perf_counter()
        expected = self.reference.encode_documents(sample)
        reference_speed = len(sample) / (time.perf_counter() - started)
        speeds = self._load_speeds()
        timed = dict(speeds)
        timed[str(reference_path)] = reference_speed
        # Every path is timed once; after that, the first to pass in speed order is taken.
        untimed = any(str(p) not in speeds for p in self._paths)
        order = self._paths if untimed else sorted(self._paths, key=lambda p: -speeds[str(p)])
        passed: list[tuple[float, Route, Any, float]] = []
        for path in order:
            if passed and not untimed:
                break
            if path == reference_path:
                passed.append((reference_speed, path, self.reference, own_cosine))
                continue
            try:
                encoder = self._make(path, texts)
                encoder.encode_documents(sample[:2])  # compiled and warm before it is timed
                started = time.perf_counter()
                got = encoder.encode_documents(sample)
                speed = len(sample) / (time.perf_counter() - started)
            except (ModelError, RuntimeError, OSError) as exc:
                self._say(f"note: {path} cannot encode documents here ({exc}); not used")
                continue
            timed[str(path)] = speed
            cosine = float(np.min(np.sum(got * expected, axis=1)))
            least = INT8_COSINE if path.precision == "int8" else GATE_COSINE
            if cosine < least:
                self._say(
                    f"note: {path} drifts from the model (cosine {cosine:.5f} < "
                    f"{least} on this corpus); not used"
                )
                encoder.close()
                continue
            passed.append((speed, path, encoder, cosine))
            passed = [self._fastest(passed)]  # one runtime's memory at a time, at most two
        self._save_speeds({k: round(v, 2) for k, v in timed.items()})
        if not passed:
            self._say(
                f"note: no path asked for keeps the model's vectors here; using {reference_path}"
            )
            passed.append((reference_speed, reference_path, self.reference, own_cosine))
        speed, path, encoder, cosine = self._fastest(passed)
        self.choice = Choice(path.runtime, path.precision, round(cosine, 6), round(speed, 1))
        if encoder is not self.reference:
            _release(self.reference)
        return encoder

    def _fastest(
        self, passed: list[tuple[float, Route, Any, float]]
    ) -> tuple[float, Route, Any, float]:
        """The fastest of ``passed``; the others' encoders closed (never the reference)."""
        best = max(passed, key=lambda item: item[0])
        for item in passed:
            if item is not best and item[2] is not self.reference:
                item[2].close()
        return best


def _release(reference: Any) -> None:
    """Give back the memory of the reference (the model on torch: about 0.2 GB with what
    its allocator holds; the export's session) once a fast path does its work; its name,
    fingerprint and tokenizer stay."""
    import ctypes
    import gc

    if hasattr(reference, "model"):
        reference.model = None
    else:
        reference.close()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap back to the system (glibc)
    except (OSError, AttributeError):
        pass


def document_encoder(
    reference: Any,
    models_dir: Path,
    *,
    runtime: str = "auto",
    precision: str = "auto",
    threads: int | None = None,
    batch_size: int = 32,
    expected_bytes: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Any:
    """``reference`` (a model on torch, exported already where it can be, or its export on
    onnxruntime, ``onnx.runtime.reference``) as a ``GatedEncoder``; other encoders (the
    hashing double), and ``auto`` for a run of less than ``SMALL_RUN_BYTES`` of text, as
    they are."""
    from twinsearch.encoders import onnx
    from twinsearch.encoders.onnx.runtime import OnnxEncoder
    from twinsearch.encoders.sentence import SentenceTransformerEncoder

    if not isinstance(reference, SentenceTransformerEncoder | OnnxEncoder):
        if runtime not in ("auto", "torch") or precision not in ("auto", "fp32"):
            raise ConfigError(
                f"{reference.name} runs as it is: leave --runtime and --precision out"
            )
        return reference
    small = expected_bytes is not None and expected_bytes < SMALL_RUN_BYTES
    if small and runtime == "auto" and precision == "auto":
        return reference
    folder = onnx.folder_for(models_dir, reference.fingerprint)
    # An export changed on disk since it was checked is not a path: the gate's sample may
    # not touch what changed (an embedding row of a word it lacks).
    exported = isinstance(reference, OnnxEncoder) or onnx.intact(folder)
    if not exported and (folder / onnx.CONFIG_FILE).exists():
        say(f"note: the export in {folder} has changed since it was made; not used")
    paths = candidates(reference, runtime, precision, exported)

    def make(path: Route, texts: Sequence[str]) -> Any:
        if path.runtime == "torch":
            return _torch_half(reference) if path.precision == "fp16" else reference
        if path.precision == "int8":
            from twinsearch.encoders.onnx.quantized import quantize

            exported = reference
            if not isinstance(exported, OnnxEncoder):
                exported = onnx.load(models_dir, reference.fingerprint)
            quantize(exported, texts)
        return onnx.load(
            models_dir,
            reference.fingerprint,
            threads,
            runtime=path.runtime,
            precision=path.precision,
            batch_size=min(batch_size, CPU_BATCH),
        )

    return GatedEncoder(reference, paths, make, speeds=folder / SPEEDS_FILE, say=say)


def _torch_half(reference: Any) -> Any:
    """The model in fp16 (on a GPU), as its own encoder with the reference's identity."""
    import copy

    from twinsearch.encoders.sentence import SentenceTransformerEncoder

    half = copy.copy(reference)
    half.model = copy.deepcopy(reference.model).half()
    return half if isinstance(half, SentenceTransformerEncoder) else reference
