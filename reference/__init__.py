"""The float64 NumPy reference: the oracle every framework is compared with.

NumPy only, float64 always, no framework import anywhere. A rule is a preset chain of small pieces
named after the spec's knobs (see `pieces`, `chains` and spec/knobs.toml, spec/rules.toml).

    >>> from optconform.reference import trajectory
    >>> run = trajectory("adamw", {"w": [1.0, -2.0]}, [{"w": [0.0, 0.0]}] * 2, lr=0.1, weight_decay=0.1)
    >>> run.final()["w"]            # (1 - lr*wd)^2 * w0
    array([ 0.9801, -1.9602])
"""
from .rules import Family, Knob, Rule, families, get_rule, knobs, relevant_knobs, rules, same_maths
from .trajectory import Trajectory, resolve_hp, simulate, trajectory

__all__ = ["Family", "Knob", "Rule", "Trajectory", "families", "get_rule", "knobs", "relevant_knobs",
           "resolve_hp", "rules", "same_maths", "simulate", "trajectory"]
