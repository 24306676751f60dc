"""`twinsearch train DATA -o OUTDIR` and `twinsearch compare A B`"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from twinsearch.cli.common import (
    DataDir,
    JsonOut,
    Threads,
    err,
    errors_to_exit,
    out,
    progress_bar,
    settings_from,
)
from twinsearch.errors import ConfigError
from twinsearch.session import open_client
from twinsearch.training.choices import ArchChoice, Calibrate, Loss, Precision

if TYPE_CHECKING:
    from twinsearch.training.data import TrainingData
    from twinsearch.training.trainer import TrainConfig, TrainResult

BaseModel = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model to fine-tune: a sentence-transformers folder or id "
        "[default: the bundled all-MiniLM-L6-v2]",
        show_default=False,
    ),
]
CompareModel = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model to encode with: a sentence-transformers folder or id "
        "[default: the bundled all-MiniLM-L6-v2]",
        show_default=False,
    ),
]


DataPath = Annotated[
    Path,
    typer.Argument(
        metavar="DATA",
        help="Training data: JSONL/JSON/CSV/TSV of query/positive(/negative) or "
        "text1/text2/label records, or a BEIR folder (see --split)",
    ),
]
Output = Annotated[Path, typer.Option("--output", "-o", help="Folder to save the trained model in")]
ArchOption = Annotated[
    ArchChoice,
    typer.Option(
        help="twin: one shared encoder; half-twin: a shared trunk with a query head and "
        "a document head; auto: train both and keep the better on the held-out split "
        "(twice the time)"
    ),
]
Untie = Annotated[
    bool,
    typer.Option("--untie", help="half-twin with fully separate query and document towers"),
]
LossOption = Annotated[
    Loss,
    typer.Option(
        help="mnrl: in-batch negatives (InfoNCE, cached); contrastive / "
        "online-contrastive: labelled pairs with a margin; triplet: query, positive and "
        "negative"
    ),
]
Split = Annotated[str, typer.Option(help="Which qrels/SPLIT.tsv of a BEIR folder")]
Fields = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        help="Name a field: ROLE=NAME, ROLE one of query, positive, negative, text1, "
        "text2, label (repeatable)",
    ),
]
Epochs = Annotated[int, typer.Option(min=1, help="Passes over the training data")]
BatchSize = Annotated[
    int, typer.Option(min=2, help="Examples per step (in-batch negatives for mnrl)")
]
LearningRate = Annotated[
    float, typer.Option("--lr", min=0, help="Learning rate (half-twin heads: 10x)")
]
Window = Annotated[
    int, typer.Option(min=8, help="Tokens per text while training (the model keeps its own)")
]
HardNegatives = Annotated[
    int,
    typer.Option(
        min=0,
        help="Mine this many hard negatives per query from the corpus, skipping those "
        "scoring within 5% of the positive",
    ),
]
NegativesFrom = Annotated[
    str | None,
    typer.Option(
        "--negatives-from",
        help="Mine --hard-negatives from this collection (indexed with the base model) "
        "instead of encoding the corpus",
    ),
]
Margin = Annotated[
    float | None,
    typer.Option(help="Margin of the contrastive and triplet losses [default: 0.5]"),
]
MaxExamples = Annotated[
    int,
    typer.Option(
        min=0,
        help="Train on at most this many examples, one query at a time (a query's most "
        "relevant document first), which bounds the training time; 0 for all",
    ),
]
ValFraction = Annotated[
    float, typer.Option(min=0, max=0.5, help="Share of the queries held out to evaluate on")
]
EvalDir = Annotated[
    Path | None,
    typer.Option(
        "--eval", help="Evaluate on this BEIR folder's --eval-split instead of a held-out split"
    ),
]
EvalSplit = Annotated[str, typer.Option(help="Split of the --eval folder")]
CalibrateOption = Annotated[
    Calibrate,
    typer.Option(help="What the same/different threshold of labelled pairs maximises"),
]
PrecisionOption = Annotated[
    Precision,
    typer.Option(help="auto: bf16 where the hardware runs it natively, else fp32"),
]
Seed = Annotated[int, typer.Option(help="Seed for the split, the batches and the weights")]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace the model the --output folder holds")
]

LABELS = {
    "val_cosine_ndcg@10": "nDCG@10",
    "val_cosine_mrr@10": "MRR@10",
    "val_cosine_recall@100": "Recall@100",
    "val_cosine_map@100": "MAP@100",
    "val_cosine_accuracy@1": "Accuracy@1",
    "val_accuracy": "accuracy",
    "val_f1": "F1",
}


class _Bar:
    """Training progress on stderr: a bar with the loss and the time left."""

    def __init__(self) -> None:
        self._progress = progress_bar("training", "steps, loss {task.fields[loss]}", count=True)
        self._task: Any = None

    def stage(self, text: str) -> None:
        err.print(text, markup=False)

    def start(self, total_steps: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("training", total=total_steps, loss="-")

    def step(self, done: int, loss: float | None) -> None:
        if self._task is not None:
            shown = f"{loss:.4f}" if loss is not None else "-"
            self._progress.update(self._task, completed=done, loss=shown)

    def evaluated(self, metrics: dict[str, float]) -> None:
        shown = [
            f"{label} {metrics[f'eval_{key}']:.4f}"
            for key, label in LABELS.items()
            if f"eval_{key}" in metrics
        ]
        if shown:
            self._progress.console.print(
                f"epoch {metrics.get('epoch', 0):.0f}: held-out " + ", ".join(shown),
                markup=False,
            )

    def finish(self) -> None:
        self._progress.stop()


@errors_to_exit
def train(
    data: DataPath,
    output: Output,
    model: BaseModel = None,
    arch: ArchOption = "twin",
    untie: Untie = False,
    loss: LossOption = "mnrl",
    split: Split = "train",
    field: Fields = None,
    epochs: Epochs = 5,
    batch_size: BatchSize = 64,
    lr: LearningRate = 1e-4,
    window: Window = 128,
    hard_negatives: HardNegatives = 0,
    negatives_from: NegativesFrom = None,
    data_dir: DataDir = None,
    margin: Margin = None,
    max_examples: MaxExamples = 1000,
    val_fraction: ValFraction = 0.1,
    eval_dir: EvalDir = None,
    eval_split: EvalSplit = "dev",
    calibrate: CalibrateOption = "accuracy",
    precision: PrecisionOption = "auto",
    seed: Seed = 12,
    threads: Threads = None,
    overwrite: Overwrite = False,
    json_out: JsonOut = False,
) -> None:
    """Fine-tune the encoder on your own pairs and measure the gain on held-out queries.

    The --output folder is a sentence-transformers model: pass it to `--model` to index and
    search with it.
    """
    from twinsearch.encoders import DEFAULT_MODEL
    from twinsearch.training.trainer import TrainConfig, prepare_output

    config = TrainConfig(
        base=model or DEFAULT_MODEL,
        arch=arch,
        untie=untie,
        loss=loss,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        window=window,
        margin=margin,
        hard_negatives=hard_negatives,
        seed=seed,
        precision=precision,
        calibrate=calibrate,
        threads=threads,
    )
    prepare_output(output, overwrite)
    train_set, val, held_out = _examples(
        data, field or [], split, eval_dir, eval_split, val_fraction, max_examples, seed
    )
    result = _run(config, train_set, val, held_out, output, negatives_from, data_dir, json_out)
    if json_out:
        print(json.dumps(result.as_dict(), indent=2))
        return
    _report(result, output, data_dir)
    if result.interrupted:
        raise typer.Exit(130)


def _examples(
    data: Path,
    fields: list[str],
    split: str,
    eval_dir: Path | None,
    eval_split: str,
    val_fraction: float,
    max_examples: int,
    seed: int,
) -> tuple[TrainingData, TrainingData | None, TrainingData | None]:
    """The examples to train on (at most ``max_examples``), those held out of them, and
    those to evaluate on from ``eval_dir``; on stderr, the examples skipped and how many
    went where."""
    from twinsearch.training import data as training_data

    examples = training_data.read(data, fields=training_data.parse_fields(fields), split=split)
    for reason, count in sorted(examples.skipped.items()):
        err.print(f"warning: skipped {count} examples: {reason}", markup=False)
    held_out = None
    if eval_dir is not None:
        held_out = training_data.read(eval_dir, split=eval_split)
        train_set, val = examples, None
    else:
        train_set, val = training_data.holdout(examples, val_fraction, seed)
    kept = training_data.limited(train_set, max_examples, seed)
    err.print(
        f"{len(examples)} {examples.kind} from {data}: {len(kept)} to train on"
        + (f" (of {len(train_set)}, --max-examples)" if len(kept) < len(train_set) else "")
        + ", "
        + (
            f"{len(held_out)} to evaluate on from {eval_dir} ({eval_split})"
            if held_out is not None
            else f"{len(val) if val else 0} held out"
        ),
        markup=False,
    )
    return kept, val, held_out


def _run(
    config: TrainConfig,
    train_set: TrainingData,
    val: TrainingData | None,
    held_out: TrainingData | None,
    output: Path,
    negatives_from: str | None,
    data_dir: Path | None,
    quiet: bool,
) -> TrainResult:
    """Train, with the collection to mine negatives from open meanwhile; ``quiet`` shows
    no progress."""
    from twinsearch.training.trainer import train as run_training

    with _negatives_store(negatives_from, config.hard_negatives, data_dir) as store:
        return run_training(
            train_set,
            val,
            output,
            config,
            eval_data=held_out,
            negatives_from=store,
            documents=_mining_documents(data_dir),
            progress=None if quiet else _Bar(),
        )


def _mining_documents(data_dir: Path | None) -> Any:
    """What embeds the corpus for mining: the base model as training loaded it, on the
    fastest path that keeps its vectors (see ``session.mining_encoder``)."""

    def make(model: Any, texts: Any) -> Any:
        from twinsearch.cli.common import say
        from twinsearch.session import mining_encoder

        settings = settings_from(data_dir=data_dir)
        size = sum(len(t.encode()) for t in texts)
        return mining_encoder(settings, model, "base", say, expected_bytes=size)

    return make


@contextmanager
def _negatives_store(name: str | None, hard_negatives: int, data_dir: Path | None) -> Iterator[Any]:
    """The collection to mine hard negatives from, open while training; None without one."""
    if name is None:
        yield None
        return
    if not hard_negatives:
        raise ConfigError("--negatives-from goes with --hard-negatives N")
    settings = settings_from(collection=name, data_dir=data_dir)
    with open_client(settings) as client:
        yield client.collection(name)


def _report(result: TrainResult, output: Path, data_dir: Path | None) -> None:
    """What training did, as text: notes on stderr; the measurements, where the model
    went and how to index with it on stdout."""
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    if result.after:
        for line in results_table(result):
            out.print(line, markup=False)
    if result.threshold is not None:
        out.print(f"  same/different threshold: {result.threshold:.4f}", markup=False)
    best = f"; best checkpoint at step {result.best_step}" if result.best_step else ""
    saved = "the base model, unchanged," if result.kept == "base" else result.arch
    out.print(
        f"{result.steps} steps in {result.seconds:.0f} s ({result.examples_per_second:.1f} "
        f"examples/s, {result.device} {result.precision}){best}; saved {saved} to {output}",
        markup=False,
    )
    if result.kept == "base":
        out.print("collections built with the base model need no re-index", markup=False)
        return
    out.print(index_hint(output, data_dir), markup=False)


def results_table(result: Any) -> list[str]:
    """The held-out metrics before and after training, each number right-aligned under its
    header whatever the widths."""
    header = [f"held-out ({result.held_out_examples} examples)", "base", "fine-tuned", "change"]
    rows = [header]
    for key, label in LABELS.items():
        if key in result.after:
            before, after = result.before.get(key, float("nan")), result.after[key]
            rows.append([f"  {label}", f"{before:.4f}", f"{after:.4f}", f"{after - before:+.4f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def index_hint(output: Path, data_dir: Path | None) -> str:
    """The command that puts the new model to use. `twinsearch index` fills the collection
    the settings name; if that exists, it was built with another model, and only a
    re-index replaces its vectors."""
    import shlex

    from twinsearch.errors import TwinsearchError

    command = f"twinsearch index PATH --model {shlex.quote(str(output))}"
    try:
        settings = settings_from(data_dir=data_dir)
        with open_client(settings) as client:
            exists = client.collection(settings.collection).exists()
    except (TwinsearchError, OSError):  # the model is saved; this line is only advice
        return f"index with it: {command} (with --reindex into an existing collection)"
    if exists:
        return (
            f"{settings.collection!r} holds another model's vectors; re-index it with this "
            f"one: {command} --reindex"
        )
    return f"index with it: {command}"


@errors_to_exit
def compare(
    text_a: Annotated[str, typer.Argument(metavar="TEXT_A", help="Encoded as a query")],
    text_b: Annotated[str, typer.Argument(metavar="TEXT_B", help="Encoded as a document")],
    model: CompareModel = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Call the texts the same at or above this similarity [default: the one "
            "`twinsearch train` calibrated for the model, if any]"
        ),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """1:1 verification: how similar two texts are, and whether they count as the same."""
    import numpy as np

    from twinsearch.encoders import DEFAULT_MODEL, load_encoder, model_ref
    from twinsearch.training.verify import stored_threshold

    name = model or DEFAULT_MODEL
    encoder = load_encoder(name)
    similarity = float(
        np.dot(
            np.asarray(encoder.encode_queries([text_a])[0]), encoder.encode_documents([text_b])[0]
        )
    )
    source = "--threshold"
    if threshold is None and Path(model_ref(name)).is_dir():
        threshold, source = stored_threshold(model_ref(name)), "calibrated"
    same = None if threshold is None else similarity >= threshold
    if json_out:
        verdict = {"similarity": round(similarity, 6), "threshold": threshold, "same": same}
        print(json.dumps(verdict))
        return
    if same is None:
        out.print(f"similarity {similarity:.4f}", markup=False)
        err.print(
            "note: no threshold: pass --threshold, or train the model on labelled pairs "
            "(text1, text2, label) to calibrate one",
            markup=False,
        )
        return
    word = "same" if same else "different"
    out.print(
        f"similarity {similarity:.4f}: {word} (threshold {threshold:.4f}, {source})", markup=False
    )
