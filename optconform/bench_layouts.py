"""Parameter layouts for the step-time benchmark: lists of tensor shapes with a given total size.

- ``flat``: one tensor of N parameters (pure bandwidth, no per-tensor overhead).
- ``bert-base``: the parameter list of BERT-base (Devlin et al. 2019; google-research/bert
  ``modeling.py``, HF ``BertModel``): 199 tensors, 109,482,240 parameters, in module order::

      embeddings: word 30522x768, position 512x768, token_type 2x768, LayerNorm gamma/beta 768
      12 x encoder layer: query/key/value/output dense 768x768 (+ bias 768), attention LayerNorm 768 x2,
                          intermediate dense 768x3072 (+ bias 3072), output dense 3072x768 (+ bias 768),
                          output LayerNorm 768 x2
      pooler: dense 768x768 (+ bias 768)

  At a requested size N the same 199-tensor list is scaled: every dimension (hidden 768, vocabulary,
  positions, intermediate = 4 x hidden) is multiplied by sqrt(N / 109,482,240) and rounded (>= 1), so
  the tensor count and the mix of large matrices and small vectors stay BERT's and the per-tensor
  overhead shows at any size (CPU smoke runs use N = 1e4 ... 1e7). ``bert-base`` at ``full`` (or any
  N within 1 % of the full size) is the exact list.
"""
from __future__ import annotations

import math
from typing import Callable

Shapes = list[tuple[int, ...]]

BERT_BASE = {"vocab": 30522, "positions": 512, "token_types": 2, "hidden": 768, "intermediate": 3072,
             "layers": 12}


def bert_shapes(vocab: int = 30522, positions: int = 512, token_types: int = 2, hidden: int = 768,
                intermediate: int = 3072, layers: int = 12) -> Shapes:
    """BERT's parameter shapes (torch Linear convention out x in does not matter for an optimizer)."""
    h, i = hidden, intermediate
    shapes: Shapes = [(vocab, h), (positions, h), (token_types, h), (h,), (h,)]
    for _ in range(layers):
        for _ in range(4):                       # query, key, value, attention output dense
            shapes += [(h, h), (h,)]
        shapes += [(h,), (h,)]                   # attention output LayerNorm
        shapes += [(h, i), (i,), (i, h), (h,)]   # intermediate and output dense
        shapes += [(h,), (h,)]                   # output LayerNorm
    shapes += [(h, h), (h,)]                     # pooler
    return shapes


def numel(shapes: Shapes) -> int:
    return sum(math.prod(s) for s in shapes)


BERT_BASE_PARAMS = numel(bert_shapes())          # 109,482,240


def flat(n: int | None) -> Shapes:
    if n is None:
        raise ValueError("layout 'flat' needs a size")
    return [(max(1, int(n)),)]


def bert_base(n: int | None) -> Shapes:
    """BERT-base's 199 shapes, scaled to about `n` parameters (None: the exact BERT-base list)."""
    if n is None or abs(n - BERT_BASE_PARAMS) <= 0.01 * BERT_BASE_PARAMS:
        return bert_shapes()
    s = math.sqrt(n / BERT_BASE_PARAMS)
    dims = {k: max(1, round(v * s)) for k, v in BERT_BASE.items() if k != "layers"}
    dims["token_types"] = 2
    dims["intermediate"] = 4 * dims["hidden"]
    return bert_shapes(layers=BERT_BASE["layers"], **dims)


LAYOUTS: dict[str, Callable[[int | None], Shapes]] = {"flat": flat, "bert-base": bert_base}


def layout(name: str, n: int | None) -> Shapes:
    """The shapes of layout `name` at about `n` parameters."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; choose from {', '.join(LAYOUTS)}")
    return LAYOUTS[name](n)
