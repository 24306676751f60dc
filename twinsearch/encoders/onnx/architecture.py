"""Which sentence-transformers models the ONNX path can run.

A transformer, mean or CLS pooling, and an optional normalisation; and the half-twin
`twinsearch train` makes, the same with a linear head per route after pooling (the heads are
kept as arrays and applied with numpy). Anything else stays on torch.
"""

from __future__ import annotations

from typing import Any


def _linear_heads(router: Any) -> dict[str, Any] | None:
    """Per-route (weight, bias) of a Router whose routes are one linear Dense each."""
    routes = getattr(router, "sub_modules", {})
    if set(routes) != {"query", "document"}:
        return None
    heads = {}
    for route, modules in routes.items():
        modules = list(modules)
        if len(modules) != 1 or type(modules[0]).__name__ != "Dense":
            return None
        dense = modules[0]
        if not dense.get_config_dict().get("activation_function", "").endswith("Identity"):
            return None
        bias = dense.linear.bias
        heads[route] = (
            dense.linear.weight.detach().cpu().float().numpy(),
            bias.detach().cpu().float().numpy() if bias is not None else None,
        )
    return heads


def architecture(model: Any) -> dict[str, Any] | None:
    """Pooling, heads and normalisation of ``model`` (a ``SentenceTransformer``), or None if
    it is not a kind the ONNX path can run."""
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    heads = None
    if names[:3] == ["Transformer", "Pooling", "Router"]:
        heads = _linear_heads(modules[2])
        if heads is None:
            return None
        names = [n for n in names if n != "Router"]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    pooling = modules[1].get_config_dict()
    mode = pooling.get("pooling_mode")
    if mode not in ("mean", "cls") or not pooling.get("include_prompt", True):
        return None
    return {"pooling": mode, "normalize": names[-1] == "Normalize", "heads": heads}
