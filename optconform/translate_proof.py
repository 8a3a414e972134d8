"""The proof of a translation in a framework lane: run the target native on the probe scenarios and
compare it with the reference of the SOURCE configuration (the shared float64 reference ties both ends).

For each probe golden of the source (translate_measure.source_goldens) the target case runs the
target's scenario (translate_measure.scenario: converted hyper-parameters, the lr schedule moved into
eta where the decay is x eta), in float32 on the CPU. Its error is measured twice, in float32 tolerance
units with the target's scalar precision (the hyper-parameters it rounds, its bias-correction powers):
against the source's reference (`source_units`) and against the target rule's own (`target_units`).
An exact translation conforms to the source: every source_units <= 1. A nearest one conforms to its
own rule (target_units <= 1) while its divergence from the source shows in the native run too
(max source_units > 1). Probes under a registered deviation of the target (optconform.deviations)
are listed, not judged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from optconform import compare, deviations
from optconform.adapters.base import Adapter, Case, RunInput
from optconform.reference import get_rule

from .translate import Configuration, Pair, is_neutral
from .translate_measure import probe_hp, scenario, source_goldens

DTYPE, DEVICE = "float32", "cpu"


@dataclass
class Proof:
    """Per probe golden: error vs the source's reference and vs the target rule's, in float32 units."""
    source_units: dict[str, float] = field(default_factory=dict)
    target_units: dict[str, float] = field(default_factory=dict)
    registered: list[str] = field(default_factory=list)


def lane_case(adapter: Adapter, target: Case) -> Case:
    """The lane's case of the same native configuration as `target` (its first implementation variant)."""
    for case in adapter.cases():
        if case.native == target.native and case.name == target.name:
            return case
    raise LookupError(f"{adapter.name} has no case {target.name!r} of {target.native}")


def _run_input(adapter: Adapter, golden, hp: dict) -> RunInput:
    lr, eta = golden.lr, golden.eta
    if not adapter.supports_eta:
        lr, eta = tuple(a * b for a, b in zip(lr, eta)), tuple(1.0 for _ in eta)
    return RunInput(tensors=golden.tensors, params0=golden.params0, grads=golden.grads, lr=lr, eta=eta,
                    hp={k: v for k, v in hp.items() if not (is_neutral(k, v) and k not in ("weight_decay",))})


def prove(config: Configuration, adapter: Adapter, target: Case) -> Proof:
    """Run `target` (a case of `adapter`'s lane) on every probe of `config`; see the module docstring."""
    pair = Pair(config.case, target)
    precision = target.precision.resolved(DTYPE) if target.precision is not None else None
    version, proof = adapter.version(), Proof()
    for golden in source_goldens(config):
        hp = probe_hp(config, golden)
        scen = scenario(pair, golden, hp)
        if scen is None:
            continue
        if deviations.lookup(adapter.name, version, target.id, golden.name, DEVICE, DTYPE) is not None:
            proof.registered.append(golden.name)
            continue
        native = adapter.run(target, _run_input(adapter, scen.golden, scen.hp), DEVICE, DTYPE).params
        cond = compare.conditioning(target.rule, scen.golden, precision, overrides=scen.hp)
        source = compare.expected(config.case.rule, golden, precision, overrides=hp)
        own = compare.expected(target.rule, scen.golden, precision, overrides=scen.hp)
        proof.source_units[golden.name] = compare.compare(
            native, source, golden, DTYPE, get_rule(config.case.rule).knobs, cond).units
        proof.target_units[golden.name] = compare.compare(
            native, own, scen.golden, DTYPE, get_rule(target.rule).knobs, cond).units
    return proof
