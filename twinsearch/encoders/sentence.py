"""sentence-transformers models, run on torch.

Importing torch and sentence_transformers costs seconds, so it happens inside ``load``, never
at import (ruff bans them at module level). Elsewhere in twinsearch only the ONNX export,
which traces the model with torch, and ``twinsearch.training`` import them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from twinsearch.encoders.base import span_means
from twinsearch.errors import ModelError, first_line


class HFTokenizer:
    """The model's own fast tokenizer, without the truncation and padding set for encoding."""

    def __init__(self, backend: Any) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_str(backend.to_str())
        self._tok.no_truncation()
        self._tok.no_padding()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._tok.encode(text, add_special_tokens=False).offsets)


def _quiet_transformers() -> None:
    # Load-time progress bars and advisories would land in the user's terminal and in
    # `--json` pipelines; twinsearch reports what matters itself.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)


def fingerprint(model: Any) -> str:
    """A hash of everything that decides the vectors: weights, modules, prompts, window."""
    h = hashlib.blake2b(digest_size=16)
    modules = []
    for module in model:
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        modules.append([type(module).__name__, config])
    described = {
        "modules": modules,
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
        "dim": model.get_embedding_dimension(),
        "similarity": model.similarity_fn_name,
        "max_seq_length": model.max_seq_length,
    }
    h.update(json.dumps(described, sort_keys=True, default=str).encode())
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class SentenceTransformerEncoder:
    def __init__(self, model: Any, name: str, batch_size: int = 32) -> None:
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.dim = int(model.get_embedding_dimension())
        self.similarity = str(model.similarity_fn_name or "cosine")
        self.tokenizer = HFTokenizer(model.tokenizer.backend_tokenizer)
        self.window = self._document_window()
        self.fingerprint = fingerprint(model)

    def _document_window(self) -> int:
        prompt = (self.model.prompts or {}).get("document", "")
        prompt_tokens = len(self.tokenizer.token_spans(prompt)) if prompt else 0
        specials = self.model.tokenizer.num_special_tokens_to_add()
        return int(self.model.max_seq_length) - specials - prompt_tokens

    def _encode(self, method: Any, texts: Sequence[str]) -> np.ndarray:
        vectors = method(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.model.encode_query, texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.model.encode_document, texts)

    def encode_documents_with_sentences(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """The documents' vectors, and each span's mean token vector from the same pass, put
        through the modules after pooling (a half-twin's document head too). A model whose
        pooling is not a top-level module (an untied half-twin) gives no span vectors."""
        import torch

        modules = list(self.model)
        names = [type(m).__name__ for m in modules]
        if "Pooling" not in names:
            return self.encode_documents(texts), [None] * len(texts)
        after = modules[names.index("Pooling") + 1 :]
        outputs = self.model.encode_document(
            list(texts),
            batch_size=self.batch_size,
            output_value=None,
            convert_to_numpy=False,
            show_progress_bar=False,
        )
        prompt = (self.model.prompts or {}).get("document", "")
        offsets = self.model.tokenizer(
            [prompt + text for text in texts],
            return_offsets_mapping=True,
            truncation=True,
            max_length=self.model.max_seq_length,
        )["offset_mapping"]
        stacked = torch.stack([out["sentence_embedding"] for out in outputs]).float()
        vectors = torch.nn.functional.normalize(stacked, dim=-1).cpu().numpy()
        sentences: list[np.ndarray | None] = []
        for out, places, some in zip(outputs, offsets, spans, strict=True):
            # Rows are padded to the longest text of their batch.
            tokens = out["token_embeddings"][: int(out["attention_mask"].sum())].float()
            pooled = span_means(tokens.cpu().numpy(), places, some, len(prompt))
            if pooled is None or len(places) != len(tokens):
                sentences.append(None)
                continue
            features: dict[str, Any] = {
                "sentence_embedding": torch.from_numpy(pooled).to(tokens.device),
                "task": "document",
                "modality": "text",
            }
            with torch.no_grad():
                for module in after:
                    features = module(features)
            pooled_vectors = torch.nn.functional.normalize(features["sentence_embedding"], dim=-1)
            sentences.append(pooled_vectors.float().cpu().numpy())
        return vectors.astype(np.float32), sentences

    def close(self) -> None:
        """Nothing to release: the model goes with the encoder."""


def load(
    name: str,
    path: str,
    *,
    device: str | None = None,
    threads: int | None = None,
    batch_size: int = 32,
) -> SentenceTransformerEncoder:
    _quiet_transformers()
    import torch
    from sentence_transformers import SentenceTransformer

    if threads:
        torch.set_num_threads(threads)
    try:
        model = SentenceTransformer(path, device=device)
    except Exception as exc:  # loading failures come in many foreign types
        where = "folder" if Path(path).exists() else "model id"
        raise ModelError(
            f"cannot load model {name!r} ({where} {path}): {first_line(exc)[:200]}. "
            "Pass --model with a local sentence-transformers folder, "
            "or leave --model out to use the bundled all-MiniLM-L6-v2"
        ) from exc
    return SentenceTransformerEncoder(model, name, batch_size=batch_size)
