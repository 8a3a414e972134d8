"""Parse a native optimizer call such as ``torch.optim.AdamW(lr=1e-3, weight_decay=0.01)`` -- safely.

The text is parsed by ``ast.parse(mode="eval")`` and only this grammar is accepted (nothing is ever
evaluated or imported):

    call     := dotted "(" [keyword ("," keyword)*] ")"
    dotted   := NAME ("." NAME)*
    keyword  := NAME "=" value
    value    := number | "-" number | string | True | False | None | "(" value, ... ")" | "[" value, ... "]"

Positional arguments, ``**kwargs``, nested calls, names and every other expression are rejected with
a `TranslateError` naming what was found.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Mapping


class TranslateError(ValueError):
    """A source expression or target that cannot be translated (a usage error: exit 2)."""


@dataclass(frozen=True)
class NativeCall:
    """A parsed call: the dotted native name and its keyword arguments (tuples for sequences)."""
    native: str
    kwargs: Mapping[str, Any]

    def text(self) -> str:
        """The call written back, e.g. ``torch.optim.AdamW(lr=0.001, weight_decay=0.01)``."""
        return f"{self.native}({', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    raise TranslateError(f"the callee must be a dotted name such as torch.optim.AdamW, "
                         f"got a {type(node).__name__} expression")


def _value(node: ast.expr, keyword: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool)):
        return -node.operand.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_value(item, keyword) for item in node.elts)
    raise TranslateError(f"keyword {keyword!r}: only numbers, strings, True/False/None and tuples or lists of "
                         f"them are accepted, got a {type(node).__name__} expression")


def parse_call(text: str) -> NativeCall:
    """The `NativeCall` of `text`; raises TranslateError (one line) on anything outside the grammar."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise TranslateError(f"cannot parse {text!r}: {exc.msg}") from None
    call = tree.body
    if not isinstance(call, ast.Call):
        raise TranslateError(f"{text!r} is not a call; write e.g. 'torch.optim.AdamW(lr=1e-3, weight_decay=0.01)'")
    native = _dotted(call.func)
    if call.args:
        raise TranslateError(f"{text!r}: positional arguments are not accepted; name every argument "
                             f"(lr=..., weight_decay=...)")
    kwargs: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise TranslateError(f"{text!r}: **kwargs is not accepted; name every argument")
        if keyword.arg in kwargs:
            raise TranslateError(f"{text!r}: keyword {keyword.arg!r} given twice")
        kwargs[keyword.arg] = _value(keyword.value, keyword.arg)
    return NativeCall(native, kwargs)
