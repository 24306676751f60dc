"""Fine-tuning with sentence-transformers' trainer: twin and half-twin, contrastive losses.

The only training module that imports torch and sentence_transformers; the CLI imports it
when `twinsearch train` runs, never at start-up.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from twinsearch.encoders import BUNDLED_ID, DEFAULT_MODEL, model_path, model_ref
from twinsearch.encoders.sentence import _quiet_transformers
from twinsearch.errors import ConfigError, ModelError, SourceError, first_line
from twinsearch.training.choices import (
    ARCHES,
    CALIBRATIONS,
    Arch,
    ArchChoice,
    Calibrate,
    Loss,
    Precision,
)
from twinsearch.training.data import Labelled, Pair, TrainingData
from twinsearch.training.verify import METADATA_FILE, best_threshold

VAL_CORPUS = 2000
"""Documents the held-out queries search among: their own relevant ones, then the rest of
the training documents, then others from the corpus, up to this many."""
CHECKPOINTS = ".checkpoints"
NO_HELD_OUT = "no held-out split (too few queries): the last epoch is kept"
UNCHOSEN_ARCH: Arch = "twin"
"""What ``--arch auto`` trains when there is no held-out split to choose by."""


@dataclass
class TrainConfig:
    base: str = DEFAULT_MODEL
    arch: ArchChoice = "twin"
    untie: bool = False
    loss: Loss = "mnrl"
    epochs: int = 5
    batch_size: int = 64
    mini_batch_size: int = 32
    learning_rate: float = 1e-4
    head_learning_rate_factor: float = 10.0
    """A half-twin's heads learn this many times faster than the shared trunk."""
    weight_decay: float = 0.01
    warmup: float = 0.1
    window: int = 128
    """Tokens per text while training (and in held-out evaluation); the saved model keeps
    its own maximum for indexing."""
    margin: float | None = None
    hard_negatives: int = 0
    mining_margin: float = 0.05
    seed: int = 12
    precision: Precision = "auto"
    calibrate: Calibrate = "accuracy"
    threads: int | None = None
    """CPU threads; None: the cores free when training starts (torch on an oversubscribed
    core slows down many times over)."""

    def __post_init__(self) -> None:
        # Options that mean nothing together are refused, not silently ignored.
        if self.untie and self.arch != "half-twin":
            raise ConfigError("--untie goes with --arch half-twin")
        if self.margin is not None and self.loss == "mnrl":
            raise ConfigError(
                "--margin goes with --loss contrastive, online-contrastive or triplet"
            )


@dataclass
class TrainResult:
    output: Path
    metric: str
    before: dict[str, float]
    after: dict[str, float]
    train_examples: int
    held_out_examples: int
    steps: int
    best_step: int | None
    seconds: float
    examples_per_second: float
    device: str
    precision: str
    threshold: float | None = None
    interrupted: bool = False
    mined: int = 0
    notes: list[str] = field(default_factory=list)
    arch: str = ""
    """The architecture trained (the one kept, with ``--arch auto``)."""
    candidates: dict[str, float] = field(default_factory=dict)
    """With ``--arch auto``: each architecture's held-out score."""
    kept: str = "fine-tuned"
    """"base" where no fine-tuned model beat the base on the held-out split."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: what `train --json` prints and the model folder records."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


class Progress(Protocol):
    def stage(self, text: str) -> None: ...

    def start(self, total_steps: int) -> None: ...

    def step(self, done: int, loss: float | None) -> None: ...

    def evaluated(self, metrics: dict[str, float]) -> None: ...

    def finish(self) -> None: ...


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _margin(config: TrainConfig) -> float:
    return 0.5 if config.margin is None else config.margin


class _Silent:
    def stage(self, text: str) -> None:
        pass

    def start(self, total_steps: int) -> None:
        pass

    def step(self, done: int, loss: float | None) -> None:
        pass

    def evaluated(self, metrics: dict[str, float]) -> None:
        pass

    def finish(self) -> None:
        pass


def prepare_output(output: Path, overwrite: bool = False) -> None:
    """Make sure ``output`` can take the trained model: absent or empty it can; a model
    folder is removed if ``overwrite`` says so; anything else is refused."""
    if output.exists() and not output.is_dir():
        raise ConfigError(f"{output} is a file; --output names a folder for the model")
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise ConfigError(f"{output} is not empty; choose another --output or pass --overwrite")
        if not ((output / "modules.json").is_file() or (output / "config.json").is_file()):
            raise ConfigError(
                f"{output} holds something other than a model; --overwrite replaces only "
                "a model folder"
            )
        shutil.rmtree(output)


def resolve_base(name: str) -> tuple[str, str]:
    """(name to record, path to load) of a base model, as ``load_encoder`` resolves it."""
    ref = model_ref(name)
    return (BUNDLED_ID if ref == DEFAULT_MODEL else ref), model_path(name)


def _has_bf16_cpu() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _precision(config: TrainConfig, device: str) -> str:
    import torch

    if config.precision != "auto":
        return config.precision
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    # bf16 autocast runs natively on these CPUs and about 1.4x faster; elsewhere it is emulated.
    return "bf16" if _has_bf16_cpu() else "fp32"


def build_model(path: str, arch: Arch, untie: bool, device: str | None = None) -> Any:
    """The base model as a twin, or a half-twin routing queries and documents apart.

    A half-twin shares the transformer and pooling and adds one linear head per side,
    started at the identity so training begins from the base model's own vectors; with
    ``untie`` the two sides are full separate copies of the base model.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Router

    try:
        model = SentenceTransformer(path, device=device)
    except Exception as exc:  # loading failures come in many foreign types
        raise ModelError(f"cannot load base model {path}: {first_line(exc)[:200]}") from exc
    if arch == "twin":
        return model
    modules: list[Any] = list(model)
    if any(type(m).__name__ == "Router" for m in modules):
        raise ModelError(f"{path} already routes queries and documents; train it with --arch twin")
    names = [type(m).__name__ for m in modules]
    if "Pooling" not in names:
        raise ModelError(f"{path} has no Pooling module; a half-twin needs one")
    cut = names.index("Pooling") + 1
    trunk, tail = modules[:cut], [m for m in modules[cut:] if type(m).__name__ != "Normalize"]
    dim = int(model.get_embedding_dimension() or 0)

    def head() -> Any:
        return Dense(
            dim,
            dim,
            activation_function=torch.nn.Identity(),
            init_weight=torch.eye(dim),
            init_bias=torch.zeros(dim),
        )

    if untie:
        router = Router.for_query_document(
            query_modules=[copy.deepcopy(m) for m in modules],
            document_modules=list(modules),
        )
        routed: list[Any] = [router]
    else:
        router = Router.for_query_document(
            query_modules=[*copy.deepcopy(tail), head()], document_modules=[*tail, head()]
        )
        routed = [*trunk, router, Normalize()]
    half = SentenceTransformer(modules=routed, device=device)
    half.prompts = dict(model.prompts or {})
    half.default_prompt_name = model.default_prompt_name
    half.similarity_fn_name = model.similarity_fn_name or "cosine"
    half.max_seq_length = model.max_seq_length
    return half


# --- evaluation ------------------------------------------------------------------------


def _val_corpus(train: TrainingData, held: TrainingData, seed: int) -> list[str]:
    ordered: dict[str, None] = {pair.positive: None for pair in held.pairs}
    # A split of the training data also searches among the training documents.
    same_data = held.source == train.source
    for pair in [*held.pairs, *(train.pairs if same_data else [])]:
        for text in (pair.positive, *pair.negatives):
            if len(ordered) < VAL_CORPUS:
                ordered[text] = None
    rest = [t for t in (held.corpus or train.corpus) if t not in ordered]
    random.Random(seed).shuffle(rest)
    for text in rest[: max(0, VAL_CORPUS - len(ordered))]:
        ordered[text] = None
    return list(ordered)


def _retrieval_evaluator(train: TrainingData, val: TrainingData, seed: int) -> Any:
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    corpus = _val_corpus(train, val, seed)
    doc_ids = {text: f"d{i}" for i, text in enumerate(corpus)}
    query_ids: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for pair in val.pairs:
        qid = query_ids.setdefault(pair.query, f"q{len(query_ids)}")
        relevant.setdefault(qid, set()).add(doc_ids[pair.positive])
    return InformationRetrievalEvaluator(
        queries={qid: text for text, qid in query_ids.items()},
        corpus={did: text for text, did in doc_ids.items()},
        relevant_docs=relevant,
        name="val",
        ndcg_at_k=[10],
        mrr_at_k=[10],
        accuracy_at_k=[1, 10],
        precision_recall_at_k=[10, 100],
        map_at_k=[100],
        show_progress_bar=False,
        batch_size=64,
        score_functions={"cosine": _cosine},
    )


def _cosine(a: Any, b: Any) -> Any:
    from sentence_transformers.util import cos_sim

    return cos_sim(a, b)


def _verification_scores(model: Any, examples: Sequence[Labelled]) -> tuple[np.ndarray, np.ndarray]:
    kwargs = {"batch_size": 64, "normalize_embeddings": True, "show_progress_bar": False}
    a = model.encode_query([e.text1 for e in examples], **kwargs)
    b = model.encode_document([e.text2 for e in examples], **kwargs)
    scores = np.sum(np.asarray(a) * np.asarray(b), axis=1)
    return scores, np.array([e.label for e in examples])


def _verification_evaluator(val: TrainingData, calibrate: Calibrate) -> Any:
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    class VerificationEvaluator(SentenceEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.name = "val"
            self.primary_metric = calibrate

        def __call__(
            self, model: Any, output_path: Any = None, epoch: int = -1, steps: int = -1
        ) -> dict[str, float]:
            scores, labels = _verification_scores(model, val.labelled)
            metrics = {
                name: value
                for objective in CALIBRATIONS
                for name, value in zip(
                    (objective, f"{objective}_threshold"),
                    best_threshold(scores, labels, objective),
                    strict=True,
                )
            }
            metrics = self.prefix_name_to_metrics(metrics, self.name)
            self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
            return metrics

    return VerificationEvaluator()


# --- datasets and losses ---------------------------------------------------------------


def _columns(data: TrainingData, loss: Loss, seed: int = 12) -> dict[str, list[Any]]:
    if loss in ("contrastive", "online-contrastive"):
        if data.kind == "labelled":
            rows = [(e.text1, e.text2, e.label) for e in data.labelled]
        else:
            rows = [(p.query, p.positive, 1) for p in data.pairs]
            rows += [(p.query, n, 0) for p in data.pairs for n in p.negatives]
        a, b, y = zip(*rows, strict=True) if rows else ((), (), ())
        return {"sentence1": list(a), "sentence2": list(b), "label": list(y)}
    if data.kind == "labelled":
        pairs = [Pair(e.text1, e.text2) for e in data.labelled if e.label == 1]
    else:
        pairs = data.pairs
    if loss == "triplet":
        triplets = [(p.query, p.positive, n) for p in pairs for n in p.negatives]
        a, b, c = zip(*triplets, strict=True) if triplets else ((), (), ())
        return {"anchor": list(a), "positive": list(b), "negative": list(c)}
    # mnrl: one column per negative; a pair with fewer than the most any pair has is made
    # up with random documents, which are negatives too, if easy ones.
    width = max((len(p.negatives) for p in pairs), default=0)
    rng = random.Random(seed)
    corpus = data.corpus or [p.positive for p in pairs]
    columns: dict[str, list[Any]] = {
        "anchor": [p.query for p in pairs],
        "positive": [p.positive for p in pairs],
        **{f"negative_{i + 1}": [] for i in range(width)},
    }
    for pair in pairs:
        negatives = list(pair.negatives[:width])
        while len(negatives) < width:
            pick = rng.choice(corpus)
            if pick != pair.positive or len(corpus) == 1:
                negatives.append(pick)
        for i, text in enumerate(negatives):
            columns[f"negative_{i + 1}"].append(text)
    return columns


def _check_loss(data: TrainingData, loss: Loss) -> None:
    if loss == "triplet" and data.kind == "labelled":
        raise SourceError(
            "--loss triplet needs (anchor, positive, negative) data, not labelled pairs; "
            "use --loss contrastive or online-contrastive"
        )
    if loss != "mnrl" and data.kind == "pairs" and not any(p.negatives for p in data.pairs):
        raise SourceError(
            f"--loss {loss} needs negatives: give a negative field, or mine them with "
            "--hard-negatives N, or use --loss mnrl"
        )
    if loss == "mnrl" and data.kind == "labelled" and not any(e.label for e in data.labelled):
        raise SourceError("--loss mnrl needs pairs labelled 1; these data have none")


def _loss(model: Any, config: TrainConfig) -> Any:
    from sentence_transformers.sentence_transformer import losses

    if config.loss == "mnrl":
        # Symmetric InfoNCE: one softmax per query over its scores against the batch's
        # documents and the batch's queries' scores against its document (query-to-document
        # and document-to-query terms together). The second direction costs no extra
        # encoding and gained on held-out queries.
        return losses.CachedMultipleNegativesRankingLoss(
            model,
            mini_batch_size=config.mini_batch_size,
            directions=("query_to_doc", "doc_to_query"),
        )
    if config.loss == "contrastive":
        return losses.ContrastiveLoss(model, margin=_margin(config))
    if config.loss == "online-contrastive":
        return losses.OnlineContrastiveLoss(model, margin=_margin(config))
    # Unit vectors are at most 2 apart: the library's margin of 5 could never be met.
    return losses.TripletLoss(model, triplet_margin=_margin(config))


Documents = Callable[[Any, Sequence[str]], Any]
"""From the loaded base model and the corpus to embed, the encoder of its documents."""


class _DocumentsBy:
    """``model`` as ``mine_hard_negatives`` uses it, its documents embedded by ``encoder``
    (the same vectors, on the fastest path that keeps them); the rest by the model."""

    def __init__(self, model: Any, encoder: Any) -> None:
        self._model, self._encoder = model, encoder

    def encode_document(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        # The encoder applies the model's document prompt, unit vectors, as numpy.
        return np.asarray(self._encoder.encode_documents(list(texts)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _mine(
    model: Any,
    data: TrainingData,
    config: TrainConfig,
    progress: Progress,
    documents: Documents | None = None,
) -> tuple[TrainingData, int]:
    """``data`` with up to ``config.hard_negatives`` mined negatives added to each pair (the
    pairs found none for keep none), and how many were added. Candidates scoring within
    ``mining_margin`` (relative) of the positive are passed over: they are too often
    unjudged relevant documents."""
    progress.stage(f"mining {_count(config.hard_negatives, 'hard negative')} per query")
    queries = [p.query for p in data.pairs]
    positives = [p.positive for p in data.pairs]
    miner = model
    if documents is not None:
        encoder = documents(model, [*data.corpus, *positives])
        miner = _DocumentsBy(model, encoder)
    try:
        mined = _mined(miner, queries, positives, data, config)
    finally:
        if miner is not model:
            encoder.close()
    found: dict[tuple[str, str], list[str]] = {}
    for row in mined:
        negatives = [t for t, y in zip(row["positive"], row["labels"], strict=True) if not y]
        found[(row["query"], row["positive"][0])] = negatives
    return _added(data, [found.get((p.query, p.positive), []) for p in data.pairs])


def _mined(
    model: Any, queries: list[str], positives: list[str], data: TrainingData, config: TrainConfig
) -> Any:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    return mine_hard_negatives(
        Dataset.from_dict({"query": queries, "positive": positives}),
        model,
        corpus=data.corpus,
        num_negatives=config.hard_negatives,
        relative_margin=config.mining_margin,
        range_max=max(50, 10 * config.hard_negatives),
        sampling_strategy="top",
        output_format="labeled-list",
        batch_size=64,
        verbose=False,
    )


def _added(data: TrainingData, negatives: list[list[str]]) -> tuple[TrainingData, int]:
    """``data`` with each pair's new ``negatives`` after its own, and how many were added."""
    pairs = [
        Pair(pair.query, pair.positive, (*pair.negatives, *new))
        for pair, new in zip(data.pairs, negatives, strict=True)
    ]
    return replace(data, pairs=pairs), sum(len(new) for new in negatives)


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def _mine_from_store(
    base_path: str, data: TrainingData, store: Any, config: TrainConfig, progress: Progress
) -> tuple[TrainingData, int]:
    """Like ``_mine``, with the documents' vectors already in ``store`` (a collection built
    with the base model): only the queries and positives are encoded. Negatives are chunks."""
    base = _base_of_store(base_path, store)
    progress.stage(
        f"mining {_count(config.hard_negatives, 'hard negative')} per query from {store.name!r}"
    )
    base.max_seq_length = min(config.window, int(base.max_seq_length))
    kwargs: dict[str, Any] = {
        "batch_size": 64,
        "normalize_embeddings": True,
        "show_progress_bar": False,
    }
    queries = base.encode_query([p.query for p in data.pairs], **kwargs)
    positives = base.encode_document([p.positive for p in data.pairs], **kwargs)
    relevant: dict[str, list[str]] = {}
    for pair in data.pairs:
        relevant.setdefault(pair.query, []).append(_squeezed(pair.positive))
    found = []
    for i, pair in enumerate(data.pairs):
        score = float(np.dot(queries[i], positives[i]))
        ceiling = score - abs(score) * config.mining_margin
        found.append(_store_negatives(store, queries[i], ceiling, relevant[pair.query], config))
    return _added(data, found)


def _base_of_store(base_path: str, store: Any) -> Any:
    """The base model, refused unless it is the one ``store`` was built with."""
    from sentence_transformers import SentenceTransformer

    from twinsearch.encoders.sentence import fingerprint

    base: Any = SentenceTransformer(base_path)
    recorded = store.metadata().get("encoder", {})
    if recorded.get("fingerprint") != fingerprint(base):
        raise ModelError(
            f"collection {store.name!r} was built with {recorded.get('name')!r}, not the base "
            "model: mine from a collection indexed with the model being trained, or mine from "
            "the corpus (leave out --negatives-from)"
        )
    return base


def _store_negatives(
    store: Any, query: Any, ceiling: float, relevant: list[str], config: TrainConfig
) -> list[str]:
    """Up to ``config.hard_negatives`` texts of the chunks nearest ``query`` that score
    at most ``ceiling`` and belong to no ``relevant`` document."""
    found: list[str] = []
    depth = max(50, 10 * config.hard_negatives)
    for hit in store.search(depth, dense=[float(x) for x in query]):
        text = str(hit.payload.get("text") or "").strip()
        if not text or hit.score > ceiling:
            continue
        # A chunk of any document relevant to this query is no negative.
        chunk = _squeezed(text)
        if any(chunk in positive or positive in chunk for positive in relevant):
            continue
        if text not in found:
            found.append(text)
        if len(found) == config.hard_negatives:
            break
    return found


# --- the run ---------------------------------------------------------------------------


def _callback(progress: Progress) -> Any:
    from transformers import TrainerCallback

    class Report(TrainerCallback):
        loss: float | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            progress.start(int(state.max_steps))

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.loss = float(logs["loss"])

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            progress.step(int(state.global_step), self.loss)

        def on_evaluate(
            self, args: Any, state: Any, control: Any, metrics: Any = None, **kw: Any
        ) -> None:
            progress.evaluated({k: float(v) for k, v in (metrics or {}).items()})

    return Report()


@dataclass
class _Base:
    """The model to train, what it was made from, and where it runs."""

    model: Any
    name: str
    path: str
    device: str
    precision: str
    max_length: int
    """The model's own maximum tokens per text, which it is saved with."""


@dataclass
class _Fit:
    """What training left: the model to keep and the trainer's record."""

    model: Any
    interrupted: bool
    notes: list[str]
    seconds: float
    steps: int
    best_step: int | None
    epochs: float
    history: list[dict[str, Any]]


def train(
    data: TrainingData,
    val: TrainingData | None,
    output: Path,
    config: TrainConfig,
    *,
    eval_data: TrainingData | None = None,
    negatives_from: Any = None,
    documents: Documents | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Fine-tune ``config.base`` on ``data``, keep the checkpoint best on ``val`` (or on
    ``eval_data``, a BEIR split), save it to ``output`` with a model card, and say how much
    it gained. ``negatives_from`` is a store to mine hard negatives from instead of the
    corpus; ``documents`` makes the encoder that embeds the corpus for mining (by default
    the model itself, on torch). With ``arch="auto"`` each architecture is trained and the
    one best on the held-out split kept. A model no better than the base on the held-out
    split is not kept: the base is saved instead, and the result says so."""
    _quiet_transformers()
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    progress = progress or _Silent()
    if not config.hard_negatives:
        _check_loss(data, config.loss)
    held = eval_data or val
    arches = _arches(config, held)
    base = _load(config, arches[0], progress)
    data, mined = _with_negatives(base, data, config, negatives_from, progress, documents)
    evaluator, metric = _evaluator(data, held, config)
    notes = [] if evaluator is not None else [NO_HELD_OUT]
    before: dict[str, float] = {}
    if evaluator is not None:
        progress.stage("measuring the base model on the held-out split")
        before = _measured(evaluator, base.model)
    runs = _runs(base, arches, config, data, (evaluator, metric), held, output, progress)
    chosen = max(runs, key=lambda run: run.after.get(metric, -math.inf))
    notes += chosen.fit.notes + _auto_notes(runs, chosen, metric)
    model, threshold, kept = chosen.fit.model, chosen.threshold, "fine-tuned"
    if evaluator is not None and metric in chosen.after:
        gained = chosen.after[metric] - before[metric]
        if gained <= 0:
            kept, model = "base", _reloaded_base(base)
            notes.append(
                f"the fine-tuned model scored {chosen.after[metric]:.4f} on the held-out "
                f"split, no better than the base model's {before[metric]:.4f}: kept the "
                "base model"
            )
            if held is not None and held.kind == "labelled":
                threshold = _measured(evaluator, model).get(f"val_{config.calibrate}_threshold")
    seconds = sum(run.fit.seconds for run in runs)
    seen = sum(run.examples * run.fit.epochs for run in runs)
    result = TrainResult(
        output=output,
        metric=metric,
        before=before,
        after=chosen.after,
        train_examples=chosen.examples,
        held_out_examples=len(held) if held is not None else 0,
        steps=chosen.fit.steps,
        best_step=chosen.fit.best_step,
        seconds=seconds,
        examples_per_second=seen / seconds if seconds else 0.0,
        device=base.device,
        precision=base.precision,
        threshold=threshold,
        interrupted=chosen.fit.interrupted,
        mined=mined,
        notes=notes,
        arch=chosen.arch,
        candidates={run.arch: run.after[metric] for run in runs if metric in run.after}
        if len(runs) > 1
        else {},
        kept=kept,
    )
    _save(model, output, result, config, base.name, data)
    shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)
    return result


def _arches(config: TrainConfig, held: TrainingData | None) -> tuple[Arch, ...]:
    """The architectures to train: ``config.arch``, or for auto all of them when there is
    a held-out split to choose by."""
    if config.arch != "auto":
        return (config.arch,)
    return ARCHES if held is not None and len(held) else (UNCHOSEN_ARCH,)


@dataclass
class _Run:
    """One architecture trained: the fit, its held-out metrics and threshold."""

    arch: Arch
    fit: _Fit
    after: dict[str, float]
    threshold: float | None
    examples: int


def _runs(
    base: _Base,
    arches: tuple[Arch, ...],
    config: TrainConfig,
    data: TrainingData,
    evaluation: tuple[Any, str],
    held: TrainingData | None,
    output: Path,
    progress: Progress,
) -> list[_Run]:
    """Each of ``arches`` trained in turn from the same seed, the first from ``base``
    (already loaded), and the checkpoint each keeps measured; ``evaluation`` is the held-out
    evaluator and the metric that picks the checkpoint. Ctrl-C in one trains no other."""
    from datasets import Dataset

    evaluator, metric = evaluation
    columns = _columns(data, config.loss, config.seed)
    train_set = Dataset.from_dict(columns)
    best_metric = f"eval_{metric}" if evaluator is not None else None
    runs: list[_Run] = []
    for arch in arches:
        start = base if not runs else _load(config, arch, progress)
        arch_config = replace(config, arch=arch)
        args = _arguments(arch_config, start, columns, output / CHECKPOINTS / arch, best_metric)
        trainer = _trainer(start.model, args, train_set, arch_config, evaluator, progress)
        fit = _fit(trainer, start, len(train_set), arch_config, progress)
        after, threshold = _measured_after(fit, evaluator, held, start, arch_config, progress)
        runs.append(_Run(arch, fit, after, threshold, len(train_set)))
        if fit.interrupted:
            break
    return runs


def _auto_notes(runs: list[_Run], chosen: _Run, metric: str) -> list[str]:
    if len(runs) < 2:
        return []
    scores = ", ".join(f"{run.arch} {run.after.get(metric, math.nan):.4f}" for run in runs)
    return [f"--arch auto: held-out {scores}; kept {chosen.arch}"]


def _reloaded_base(base: _Base) -> Any:
    """The base model as it was loaded, before any training."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(base.path, device=base.device)


def _load(config: TrainConfig, arch: Arch, progress: Progress) -> _Base:
    """Seed every generator, choose the device and precision, and build the model."""
    import torch
    from transformers import set_seed

    set_seed(config.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        from twinsearch.cores import free_cores

        torch.set_num_threads(config.threads or free_cores(measure=True))
    precision = _precision(config, device)
    name, path = resolve_base(config.base)
    progress.stage(f"loading {name}")
    model = build_model(path, arch, config.untie, device=device)
    own_max = int(model.max_seq_length)
    model.max_seq_length = min(config.window, own_max)
    return _Base(model, name, path, device, precision, own_max)


def _with_negatives(
    base: _Base,
    data: TrainingData,
    config: TrainConfig,
    store: Any,
    progress: Progress,
    documents: Documents | None = None,
) -> tuple[TrainingData, int]:
    """``data`` with ``config.hard_negatives`` negatives mined for each query (from
    ``store``, a collection, if given, else from the corpus), and how many were found."""
    if not config.hard_negatives:
        return data, 0
    if data.kind != "pairs":
        raise SourceError("--hard-negatives needs (query, positive) data, not labelled pairs")
    if store is not None:
        data, mined = _mine_from_store(base.path, data, store, config, progress)
    else:
        data, mined = _mine(base.model, data, config, progress, documents)
    _check_loss(data, config.loss)
    return data, mined


def _evaluator(
    data: TrainingData, held: TrainingData | None, config: TrainConfig
) -> tuple[Any, str]:
    """The held-out evaluator and the metric that picks the best checkpoint; (None, "")
    with nothing held out."""
    if held is None or not len(held):
        return None, ""
    if held.kind == "labelled":
        return _verification_evaluator(held, config.calibrate), f"val_{config.calibrate}"
    return _retrieval_evaluator(data, held, config.seed), "val_cosine_ndcg@10"


def _measured(evaluator: Any, model: Any) -> dict[str, float]:
    return {k: float(v) for k, v in evaluator(model).items()}


def _arguments(
    config: TrainConfig,
    base: _Base,
    columns: dict[str, list[Any]],
    checkpoints: Path,
    best_metric: str | None,
) -> Any:
    """The trainer's arguments; ``best_metric`` picks the checkpoint kept at the end, and
    without one nothing is evaluated during training."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    routes, prompts = _routes(columns, base.model)
    evaluated = best_metric is not None
    return SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup,
        lr_scheduler_type="linear",
        bf16=base.precision == "bf16",
        use_cpu=base.device == "cpu",
        seed=config.seed,
        data_seed=config.seed,
        batch_sampler=(
            BatchSamplers.NO_DUPLICATES if config.loss == "mnrl" else BatchSamplers.BATCH_SAMPLER
        ),
        eval_strategy="epoch" if evaluated else "no",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=evaluated,
        metric_for_best_model=best_metric,
        greater_is_better=True,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        dataloader_drop_last=False,
        # Any model with a Router (a half-twin, new or trained before) needs the routes;
        # the others ignore them.
        router_mapping=routes,
        learning_rate_mapping=_head_learning_rates(config),
        prompts=prompts or None,
    )


def _routes(columns: dict[str, list[Any]], model: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Each text column's route (the first column holds the queries, the others documents),
    and each column's prompt where the model has one for its route."""
    queries_first = list(columns)[0]
    routes = {
        name: ("query" if name == queries_first else "document")
        for name in columns
        if name != "label"
    }
    prompts = dict(model.prompts or {})
    column_prompts = {name: prompts[route] for name, route in routes.items() if prompts.get(route)}
    return routes, column_prompts


def _head_learning_rates(config: TrainConfig) -> dict[str, float]:
    """A half-twin's heads learn ``head_learning_rate_factor`` times faster than the trunk."""
    if config.arch == "half-twin" and not config.untie:
        rate = config.learning_rate * config.head_learning_rate_factor
        return {r"sub_modules\.(query|document)\.\d+\.linear": rate}
    return {}


def _trainer(
    model: Any,
    args: Any,
    train_set: Any,
    config: TrainConfig,
    evaluator: Any,
    progress: Progress,
) -> Any:
    """A sentence-transformers trainer that reports through ``progress`` alone."""
    from sentence_transformers import SentenceTransformerTrainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class Trainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
            """Not added: twinsearch writes its own model card (``model_card``), and this
            one's tracking sampled examples from the data with a progress bar of its own
            on stderr, whatever ``generate_widget_examples`` said."""

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        loss=_loss(model, config),
        evaluator=evaluator,
        callbacks=[_callback(progress)],
    )
    # Progress is reported through ``progress``: nothing may print on stdout.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    return trainer


def _fit(trainer: Any, base: _Base, examples: int, config: TrainConfig, progress: Progress) -> _Fit:
    """Train. Ctrl-C stops training, not the run: the best checkpoint so far is kept, or
    without one the weights as they stand."""
    steps_per_epoch = math.ceil(examples / config.batch_size)
    progress.stage(
        f"training {config.arch} with {config.loss}: {examples} examples, "
        f"{_count(config.epochs, 'epoch')} of {_count(steps_per_epoch, 'step')}, "
        f"{base.device} {base.precision}"
    )
    model, interrupted, notes = base.model, False, []
    started = time.perf_counter()
    try:
        trainer.train()
    except KeyboardInterrupt:
        interrupted = True
        best = trainer.state.best_model_checkpoint
        if best:
            model = type(model)(best, device=base.device)
            notes.append(f"interrupted: kept the best checkpoint so far ({Path(best).name})")
        else:
            notes.append(f"interrupted at step {trainer.state.global_step}: kept those weights")
    seconds = time.perf_counter() - started
    progress.finish()
    state = trainer.state
    return _Fit(
        model=model,
        interrupted=interrupted,
        notes=notes,
        seconds=seconds,
        steps=int(state.global_step),
        best_step=_step_of(state.best_model_checkpoint),
        epochs=state.epoch or 0,
        history=state.log_history,
    )


def _measured_after(
    fit: _Fit,
    evaluator: Any,
    held: TrainingData | None,
    base: _Base,
    config: TrainConfig,
    progress: Progress,
) -> tuple[dict[str, float], float | None]:
    """The kept model's held-out metrics and, for labelled pairs, its same/different
    threshold. Leaves the model at its own maximum length, as it is saved."""
    model = fit.model
    after: dict[str, float] = {}
    if evaluator is not None:
        # The kept checkpoint's metrics, logged when it was evaluated (after Ctrl-C too:
        # then the best checkpoint so far is kept, or, without one, no step is).
        after = _evaluated_at(fit.history, fit.best_step)
        if not after:  # not measured during training: no checkpoint was kept
            progress.stage("measuring the trained model on the held-out split")
            model.max_seq_length = min(config.window, base.max_length)
            after = _measured(evaluator, model)
    model.max_seq_length = base.max_length
    threshold = None
    if evaluator is not None and held is not None and held.kind == "labelled":
        # `compare` encodes at the model's full length: calibrate the threshold there.
        after = _measured(evaluator, model)
        threshold = after.get(f"val_{config.calibrate}_threshold")
    return after, threshold


def _evaluated_at(history: list[dict[str, Any]], step: int | None) -> dict[str, float]:
    """The held-out metrics logged during training at ``step`` (the kept checkpoint's)."""
    for entry in history:
        if entry.get("step") == step and any(k.startswith("eval_val_") for k in entry):
            return {k[5:]: float(v) for k, v in entry.items() if k.startswith("eval_val_")}
    return {}


def _step_of(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    tail = Path(checkpoint).name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else None


def _save(
    model: Any,
    output: Path,
    result: TrainResult,
    config: TrainConfig,
    base_name: str,
    data: TrainingData,
) -> None:
    output.mkdir(parents=True, exist_ok=True)
    model.save(str(output), create_model_card=False)
    record = {
        "base_model": base_name,
        "config": asdict(config),
        "data": {"source": str(data.source), "kind": data.kind, "skipped": data.skipped},
        "result": result.as_dict(),
        "threshold": result.threshold,
        "threshold_objective": config.calibrate if result.threshold is not None else None,
    }
    (output / METADATA_FILE).write_text(json.dumps(record, indent=2) + "\n")
    (output / "README.md").write_text(model_card(record))


def model_card(record: dict[str, Any]) -> str:
    config, result = record["config"], record["result"]
    arch = (result.get("arch") or config["arch"]) + (" (untied towers)" if config["untie"] else "")
    if result.get("kept") == "base":
        arch = "the base model, unchanged (no fine-tuned model beat it on the held-out split)"
    lines = [
        "---",
        f"base_model: {record['base_model']}",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags: [sentence-transformers, sentence-similarity, twinsearch]",
        "---",
        "",
        f"# Fine-tuned {record['base_model']}",
        "",
        f"Trained with `twinsearch train` from **{record['base_model']}**.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {arch} |",
        f"| loss | {config['loss']} |",
        f"| training data | {record['data']['source']} ({record['data']['kind']}) |",
        f"| training examples | {result['train_examples']} |",
        f"| held-out examples | {result['held_out_examples']} |",
        f"| hard negatives mined | {result['mined']} |",
        f"| epochs, batch, learning rate | {config['epochs']}, {config['batch_size']}, "
        f"{config['learning_rate']} |",
        f"| training window | {config['window']} tokens |",
        f"| seed | {config['seed']} |",
        f"| device, precision | {result['device']}, {result['precision']} |",
        f"| training time | {result['seconds']:.0f} s "
        f"({result['examples_per_second']:.1f} examples/s) |",
    ]
    if record["threshold"] is not None:
        lines.append(
            f"| same/different threshold | {record['threshold']:.4f} "
            f"(best {record['threshold_objective']} on the held-out split) |"
        )
    if result["before"]:
        lines += ["", "## Held-out results", "", "| metric | base | fine-tuned |", "|---|---|---|"]
        for key in sorted(result["after"]):
            if key.endswith("threshold"):
                continue
            lines.append(
                f"| {key} | {result['before'].get(key, float('nan')):.4f} | "
                f"{result['after'][key]:.4f} |"
            )
    if result["notes"]:
        lines += ["", *[f"- {note}" for note in result["notes"]]]
    lines += [
        "",
        "## Use",
        "",
        "```",
        "twinsearch index DOCS --model THIS_FOLDER",
        "twinsearch search 'a question' --model THIS_FOLDER",
        "```",
        "",
        "or `SentenceTransformer('THIS_FOLDER')` from Python.",
        "",
    ]
    return "\n".join(lines)
