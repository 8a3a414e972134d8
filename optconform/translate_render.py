"""Write a translated configuration as the native call a user types, with the notes it needs.

Keywords are spelled as the native takes them (translate_natives.Native.spelled); a keyword equal to
the native's default is left out, except the learning rate; tuple keywords (torch ``betas``) are
assembled from their `Arg` indices. Hyper-parameters the native takes no keyword for (`Hook`: torch
param groups, optax masks, Keras `exclude_from_weight_decay`) and optax chains are spelled out too.
"""
from __future__ import annotations

from typing import Any, Mapping

from optconform.adapters.base import NEUTRAL_HP, Arg, Case, Hook

from .translate import Configuration, canonical_value, is_neutral
from .translate_measure import Choice
from .translate_natives import NATIVES, REQUIRED

#: optax chain transforms -> the canonical hyper-parameter each takes (adapters/optax/cases.py Transform).
_CHAIN_HP = {"clip": "clip_value", "add_decayed_weights": "weight_decay"}


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else repr(value)


def _kwargs(case: Case, hp: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Native keyword -> value: lr, weight_decay, the case's fixed keywords and every mapped
    hyper-parameter that differs from the native's default; required keywords the translation does
    not set get their neutral value (MXNet ops: eta = 1, rescale_grad = 1)."""
    native = NATIVES[case.native]
    out: dict[str, Any] = {native.spelled.get(k, k): v for k, v in case.kwargs.items() if k not in native.implementation}
    tuples: dict[str, dict[int, Any]] = {}
    for name, target in case.hp_map.items():
        if not isinstance(target, Arg) or name in skip:
            continue
        keyword = native.spelled.get(target.name, target.name)
        value = hp.get(name, NEUTRAL_HP.get(name))
        if name not in hp and native.defaults.get(keyword) is not REQUIRED:
            continue
        if target.index is not None:
            tuples.setdefault(keyword, {})[target.index] = value
        elif name in ("lr", "weight_decay") or canonical_value(name, value) != canonical_value(
                name, native.defaults.get(keyword)):
            out[keyword] = value
    for keyword, items in tuples.items():
        value = tuple(items[i] for i in sorted(items))
        if value != native.defaults.get(keyword):
            out[keyword] = value
    return out


def _args(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_number(v)}" for k, v in kwargs.items())


def call_text(case: Case, hp: Mapping[str, Any]) -> str:
    """The native call of `case` with canonical `hp`, as a user writes it."""
    chain = getattr(case, "chain", ())
    if not chain:
        return f"{case.native}({_args(_kwargs(case, hp))})"
    parts = [f"optax.{t.value}({_number(hp[_CHAIN_HP[t.value]])})" for t in chain
             if not is_neutral(_CHAIN_HP[t.value], hp.get(_CHAIN_HP[t.value]))]
    alias = f"optax.{case.alias}({_args(_kwargs(case, hp, skip=tuple(_CHAIN_HP.values())))})"
    return f"optax.chain({', '.join(parts + [alias])})" if parts else alias


def hook_notes(case: Case, hp: Mapping[str, Any]) -> list[str]:
    """How each hyper-parameter the native takes no keyword for is applied (the hook's own docstring)."""
    notes = []
    for name, target in case.hp_map.items():
        if isinstance(target, Hook) and name in hp and not is_neutral(name, hp[name]) and name != "eta":
            doc = (type(target).__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            notes.append(f"{name}={_number(hp[name])}: {type(target).__name__} -- {' '.join(doc.split())}")
    return notes


def _knob_notes(pair, decays: bool) -> list[str]:
    """Each relevant knob the target's rule sets otherwise, with the spec's meaning of both values."""
    from optconform.reference import knobs
    docs = knobs()
    notes = []
    for name, (mine, theirs) in pair.knob_differences(decays).items():
        values = docs[name].values
        notes.append(f"{name}: source {mine or '-'}" + (f" ({values[mine]})" if mine in values else "")
                     + f", target {theirs or '-'}" + (f" ({values[theirs]})" if theirs in values else ""))
    return notes


def summary(choice: Choice | None, config: Configuration, target: str) -> dict[str, Any]:
    """The translation of `config` to `target` as JSON-ready data (also what the text report prints)."""
    if choice is None:
        return {"target": target, "status": "none",
                "why": f"no {target} configuration the suite checks is of the {config.case.rule} family"}
    pair, m = choice.pair, choice.measure
    hp, lost = pair.target_hp(config.hp, config.hp.get("lr", 1.0))
    notes = hook_notes(pair.target, hp)
    if pair.moves_schedule:
        lr = _number(config.hp["lr"])
        notes.append(f"decay x {pair.scalings[1].replace('schedule', 'eta')}: weight_decay converted "
                     f"({_number(config.hp.get('weight_decay'))} -> {_number(hp.get('weight_decay'))})"
                     + (f"; pass lr={lr} and the lr schedule as eta_t = lr_t/{lr}" if pair.scalings[1] == "schedule"
                        else "; eta_t is the lr multiplier"))
    if not choice.exact:
        notes += _knob_notes(pair, config.decays)
    if lost:
        notes.append(f"cannot express {', '.join(lost)} (set to neutral or to the value the native fixes)")
    for note in (NATIVES[pair.target.native].usage, pair.target.notes):
        if note:
            notes.append(note)
    hooks = [f"{name} via {type(t).__name__}" for name, t in pair.target.hp_map.items()
             if isinstance(t, Hook) and name != "eta" and not is_neutral(name, hp.get(name))]
    return {"target": target, "status": "exact" if choice.exact else "nearest", "call": call_text(pair.target, hp),
            "hooks": hooks,
            "case": pair.target.id, "rule": pair.target.rule, "source_rule": pair.source.rule,
            "divergence_units": m.units, "worst": m.worst, "first_divergence": m.first, "probes": m.probes,
            "notes": notes}


def lines(data: Mapping[str, Any]) -> list[str]:
    """The text report of one `summary`."""
    if data["status"] == "none":
        return [f"{data['target']}: no equivalent -- {data['why']}"]
    head = f"{data['target']}: {data['call']}"
    if data["status"] == "exact":
        body = (f"  exact: rule {data['rule']} is the source's maths ({data['source_rule']}); references agree "
                f"to {data['divergence_units']:.3g} float32 units on {data['probes']} probes")
    else:
        body = (f"  nearest, not exact: rule {data['rule']} vs the source's {data['source_rule']}: "
                f"{data['divergence_units']:.3g} float32 units at {data['worst']}, first over 1 unit at "
                f"{data['first_divergence'] or '-'} ({data['probes']} probes)")
    return [head, body, *(f"  note: {n}" for n in data["notes"])]
