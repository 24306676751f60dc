"""How often the passage a hit shows holds the sentence that answers the query.

    python benchmarks/passage_quality.py [--questions benchmarks/passages.jsonl] [--rebuild]

The labelled check (``passages.jsonl``): questions in a user's words, each with the file
that answers it and the answering sentence, verbatim. The collection holds the sample
corpus and the README, FAQ, *.txt and *.md files of /usr/share/doc (about 300 real files
nobody here wrote, answers and distractors), indexed by `twinsearch index` with the real
model, built once into a temporary data folder and reused.

For each question and mode, the first hit from the answering file (within the top 10) is
looked at: whether its passage holds the answering sentence, against the first 240
characters of the same hit's chunk (the snippet shown before passages), and whether the
chunk itself holds it (what any choice within the chunk can reach). Sentences are
compared with whitespace collapsed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOCS = Path("/usr/share/doc")
NAME = "passages"
SNIPPET_CHARS = 240


def _flat(text: str) -> str:
    return " ".join(text.split())


def corpus_files(questions: list[dict[str, str]]) -> list[str]:
    named = {q["source"] for q in questions if q["source"].startswith("/")}
    found = set()
    for path in DOCS.glob("*/*"):
        name = path.name.lower()
        wanted = name.startswith(("readme", "faq")) or name.endswith((".txt", ".md"))
        if wanted and path.is_file() and not path.is_symlink():
            found.add(str(path))
    return sorted(found | named)


def build(data: Path, questions: list[dict[str, str]]) -> None:
    files = corpus_files(questions)
    command = [
        str(Path(sys.executable).parent / "twinsearch"),
        "index",
        str(REPO / "examples/corpus"),
    ]
    command += [*files, "-c", NAME, "--data-dir", str(data)]
    print(f"indexing the sample corpus and {len(files)} files of {DOCS} …", file=sys.stderr)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def measure(data: Path, questions: list[dict[str, str]], modes: list[str]) -> dict[str, object]:
    from twinsearch.session import open_searcher
    from twinsearch.settings import Settings

    results: dict[str, object] = {"questions": len(questions)}
    with open_searcher(Settings(data_dir=data, collection=NAME)) as searcher:
        for mode in modes:
            counts = {"found": 0, "chunk": 0, "passage": 0, "first_240": 0}
            misses = []
            for q in questions:
                source = (
                    str((REPO / q["source"]).resolve())
                    if not q["source"].startswith("/")
                    else q["source"]
                )
                hits = searcher.search(q["question"], 10, mode)
                hit = next((h for h in hits if h.source == source), None)
                if hit is None:
                    continue
                answer = _flat(q["answer"])
                counts["found"] += 1
                counts["chunk"] += answer in _flat(hit.snippet)
                counts["first_240"] += answer in _flat(hit.snippet[:SNIPPET_CHARS])
                shown = answer in _flat(hit.passage)
                counts["passage"] += shown
                if not shown and answer in _flat(hit.snippet):
                    misses.append({"question": q["question"], "passage": _flat(hit.passage)})
            results[mode] = {**counts, "passage_misses_in_chunk": misses}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=HERE / "passages.jsonl")
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "twinsearch-passages"
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--modes", default="dense,hybrid,bm25")
    parser.add_argument("--misses", action="store_true", help="list the passages that missed")
    args = parser.parse_args()
    questions = [json.loads(line) for line in args.questions.open() if line.strip()]
    if args.rebuild or not (args.data / "collections").exists():
        shutil.rmtree(args.data, ignore_errors=True)
        build(args.data, questions)
    results = measure(args.data, questions, args.modes.split(","))
    print(f"{len(questions)} questions; a hit from the answering file in the top 10:")
    print(f"{'mode':8} {'found':>6} {'in chunk':>9} {'passage':>8} {'first 240':>10}")
    for mode in args.modes.split(","):
        r = results[mode]
        assert isinstance(r, dict)
        print(f"{mode:8} {r['found']:>6} {r['chunk']:>9} {r['passage']:>8} {r['first_240']:>10}")
        if args.misses:
            for miss in r["passage_misses_in_chunk"]:
                print(f"   missed: {miss['question']!r}: {miss['passage'][:160]!r}")
    print(
        json.dumps(
            {
                m: {k: v for k, v in r.items() if k != "passage_misses_in_chunk"}
                if isinstance(r, dict)
                else r
                for m, r in results.items()
            }
        )
    )


if __name__ == "__main__":
    main()
