"""Scenarios: initial params + an open-loop gradient sequence + an lr (and eta) per step + hp overrides.

Two kinds. *Probes* are each built to amplify one knob (the `observes` field says which); *realistic*
streams are random gradients spanning 1e-8 ... 1e3, or gradients recorded once from small closed-loop
problems and then replayed open-loop. Every value is rounded to float32 (initial params to bfloat16-
representable values too), so every framework starts bit-identical and results never depend on
autodiff, TF32 or model numerics. The generated arrays are stored in the golden files; the
generators here only run under `optconform golden --regenerate`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str                              # "probe" | "realistic"
    observes: str                          # what the scenario is built to make visible
    params: Mapping[str, np.ndarray]       # initial params (float32-exact)
    grads: tuple[Mapping[str, np.ndarray], ...]
    lr: tuple[float, ...]
    hp: Mapping[str, Any] = field(default_factory=dict)   # overrides, applied where the rule accepts them
    eta: tuple[float, ...] | None = None
    applies: Callable[[Mapping[str, str]], bool] = lambda knobs: True   # which rules (by knob values) use it
    #: the families whose presets run it (None: every family not in OWN_SCENARIOS)
    families: tuple[str, ...] | None = None

    @property
    def steps(self) -> int:
        return len(self.grads)


#: Families that run only the scenarios naming them (their rules need tensors of their own: Muon, 2-D).
OWN_SCENARIOS = ("muon",)


def runs(scenario: Scenario, family: str) -> bool:
    """Whether presets of `family` run `scenario` (before its `applies` test on the knobs)."""
    if scenario.families is None:
        return family not in OWN_SCENARIOS
    return family in scenario.families


def bf16_exact(x) -> np.ndarray:
    """Round to the nearest bfloat16-representable value (8 significant bits), as float32."""
    x = np.asarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    u = np.uint64                       # typed shifts/masks: numpy < 2 (no NEP 50) refuses uint64 >> int
    rounded = ((bits + u(0x7FFF) + ((bits >> u(16)) & u(1))) >> u(16)) << u(16)  # round half to even on bit 16
    return rounded.astype(np.uint32).view(np.float32)


def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _const(value, steps):
    return tuple(float(value) for _ in range(steps))


def _decays(k) -> bool:
    return k["decay"] != "none"


def _probes() -> list[Scenario]:
    w = {"w": f32([1.0, -2.0, 0.5, 4.0])}
    zeros = {"w": f32([0.0, 0.0, 0.0, 0.0])}
    g = {"w": f32([0.25, -0.5, 1.0, -0.125])}
    g_varied = [{"w": f32(v)} for v in ([0.25, -0.5, 1.0, -0.125], [0.5, 0.25, -1.0, 0.125],
                                        [-0.25, 0.75, 0.5, 0.375], [1.0, -1.0, 0.25, 0.5],
                                        [0.125, 0.5, -0.75, -0.25], [-0.5, -0.25, 0.5, 1.0],
                                        [0.75, 0.125, 0.25, -0.5], [0.25, -0.75, -0.5, 0.25])]
    out = [
        Scenario("zero_grad", "probe", "decay coupling and presence: with g = 0 coupled decay is normalised "
                 "by the statistics, decoupled decay is a geometric shrink, no decay leaves w unchanged",
                 w, (zeros,) * 6, _const(0.1, 6), {"weight_decay": 0.1}),
        Scenario("lr_halved", "probe", "decay scaling (x lr vs x eta vs unscaled) and momentum form "
                 "(lr inside vs outside the buffer): lr halves after step 4",
                 w, tuple(g_varied), (0.1,) * 4 + (0.05,) * 4, {"weight_decay": 0.1, "momentum": 0.9}),
        Scenario("eta_schedule", "probe", "schedule-multiplier scaling: eta falls 1 -> 0.25, lr constant; "
                 "decay x eta (paper) differs from unscaled and from x lr",
                 w, tuple(g_varied[:6]), _const(0.1, 6), {"weight_decay": 0.1},
                 eta=(1.0, 1.0, 0.5, 0.5, 0.25, 0.25), applies=lambda k: k["decay"] == "decoupled"),
        Scenario("tiny_grad", "probe", "eps placement: |g| = 1e-7 so eps is comparable to sqrt(v); "
                 "outside, eps-hat and inside the root give steps differing by > 2x",
                 w, tuple({"w": f32([1e-7, -1e-7, 2e-7, -5e-8])} for _ in range(8)), _const(0.1, 8),
                 {"eps": 1e-7, "initial_accumulator_value": 0.0}),
        Scenario("eps_vs_decayed_max", "probe", "Adamax eps placement: one gradient of 1e-7 then zeros with "
                 "beta2 = 0.5, so u decays below eps and eps inside vs outside the max differ",
                 w, ({"w": f32([1e-7, -1e-7, 2e-7, -5e-8])},) + tuple(zeros for _ in range(5)), _const(0.1, 6),
                 {"eps": 1e-7, "beta2": 0.5}, applies=lambda k: k.get("eps_placement", "").endswith("_max")),
        Scenario("first_steps", "probe", "bias correction: the first three steps, where 1 - beta^t is far from 1",
                 w, tuple(g_varied[:3]), _const(0.1, 3), {"weight_decay": 0.01}),
        Scenario("large_decay", "probe", "decay order: lr*wd = 0.25 with O(1) gradients, so decaying the pre-step "
                 "or the post-step weight differs by lr^2*wd*|d| per step",
                 w, tuple(g_varied[:5]), _const(0.5, 5), {"weight_decay": 0.5}, applies=_decays),
        Scenario("grad_drop", "probe", "AMSGrad raw vs bias-corrected max, momentum form: |g| drops 100x after 3 steps on some "
                 "elements only (a uniform drop would be normalised away by a trust ratio)",
                 w, (g,) * 3 + tuple({"w": f32(g["w"] * f32([0.01, 1.0, 0.01, 0.5]))} for _ in range(5)),
                 _const(0.1, 8),
                 {"weight_decay": 0.01, "momentum": 0.9}),
        Scenario("zero_norm_tensor", "probe", "LAMB trust-ratio fallback (1 when ||w|| or ||u|| is 0) and scope: "
                 "one all-zero weight tensor, one tensor with zero gradients, one ordinary tensor",
                 {"zero_w": f32([0.0, 0.0, 0.0]), "zero_g": f32([1.0, -0.5, 2.0]), "w": f32([0.5, -1.5, 3.0])},
                 tuple({"zero_w": f32(gv["w"][:3]), "zero_g": f32([0.0, 0.0, 0.0]), "w": f32(gv["w"][1:])}
                       for gv in g_varied[:5]),
                 _const(0.1, 5), {"weight_decay": 0.2}),
        Scenario("exclusion_names", "probe", "decay exclusion by tensor name (BERT regex, optax mask): "
                 "LayerNorm/bias tensors must stay untouched where excluded",
                 {"LayerNorm/gamma": f32([1.0, 0.5]), "dense/bias": f32([0.25, -0.75]),
                  "dense/kernel": f32([[1.0, -2.0], [0.5, 1.5]]), "encoder/layer_norm/beta": f32([2.0, -1.0])},
                 tuple({"LayerNorm/gamma": f32([0.0, 0.0]), "dense/bias": f32([0.0, 0.0]),
                        "dense/kernel": f32([[0.0, 0.0], [0.0, 0.0]]), "encoder/layer_norm/beta": f32([0.0, 0.0])}
                       for _ in range(4)),
                 _const(0.1, 4), {"weight_decay": 0.1}, applies=_decays),
        Scenario("clip_with_decay", "probe", "clip scope: clip_value 0.5 with wd*w of order 1, so clipping "
                 "g + wd*w differs from clipping g alone",
                 w, tuple(g_varied[:5]), _const(0.1, 5), {"weight_decay": 0.5, "clip_value": 0.5},
                 applies=lambda k: k["decay"] == "coupled"),
        Scenario("mixed_shapes", "probe", "shapes: a 0-dim tensor, a matrix, a length-1 vector and a size-0 tensor",
                 {"scalar": f32(1.5), "matrix": f32([[1.0, -0.5, 0.25], [2.0, -1.0, 0.75]]),
                  "single": f32([-3.0]), "empty": np.zeros((0, 3), dtype=np.float32)},
                 tuple({"scalar": f32(gv["w"][0]), "matrix": f32(np.outer([1.0, -0.5], gv["w"][:3])),
                        "single": f32(gv["w"][3:]), "empty": np.zeros((0, 3), dtype=np.float32)}
                       for gv in g_varied[:4]),
                 _const(0.1, 4), {"weight_decay": 0.1}),
    ]
    return out + _wild_probes(w, g_varied) + _schedule_free_probes(w, g_varied) + [_sharded_probe()]


def _adam_torch_decay(k) -> bool:
    """torch's AdamW and Adam(weight_decay) (the rules the torch-distributed cases claim)."""
    return (k["decay"] in ("decoupled", "coupled") and k.get("decay_scaling") == "lr" and k.get("decay_order") == "before"
            and k.get("eps_placement") == "outside" and k.get("bias_correction") == "on" and k.get("amsgrad") == "off" and k.get("trust_ratio") == "off")


def _sharded_probe() -> Scenario:
    """Sharding: tensors of 5 and 7 rows (uneven shards on 2 and 3 ranks, padded chunks) and the bias
    excluded from decay (a param group that must survive sharding). Its global-norm clip threshold 8 is
    above every step's norm (6.5 at most): the clip never scales, so the probe holds for torch's
    clip_grad_norm_ (which divides by norm + 1e-6), and only cases that take a global clip run it (the
    torch-distributed ones: the clip across shards is tests/conformance/test_torch_distributed.py)."""
    kernel = f32([[((3 * i + j) % 7 - 3) / 8 for j in range(3)] for i in range(5)])
    params = {"dense/kernel": f32(1.0 + kernel), "dense/bias": f32([0.5, -0.25, 0.125, -0.5, 0.25]),
              "scale": f32([(k % 5 - 2) / 4 + 1.0 for k in range(7)])}
    base = {"dense/kernel": kernel, "dense/bias": f32([0.25, -0.5, 0.75, -0.125, 0.5]),
            "scale": f32([(k % 4 - 1.5) / 4 for k in range(7)])}
    factors = (4.0, 0.5, 3.0, 0.25, 2.0, 0.125)
    grads = tuple({n: f32(v * f) for n, v in base.items()} for f in factors)
    return Scenario("sharded_exclusion", "probe", "sharding: 5- and 7-row tensors (uneven shards), a bias "
                    "excluded from decay (a global-norm clip that never scales)",
                    params, grads, _const(0.1, 6),
                    {"weight_decay": 0.1, "weight_decay_exclude": ["bias"], "clip_global_norm": 8.0},
                    applies=_adam_torch_decay, families=("adam",))


def _trust(k) -> bool:
    return k.get("trust_ratio") == "on"


def _wild_probes(w, g_varied) -> list[Scenario]:
    """Probes for implementation choices seen in third-party optimizers (issue 16): default gradient
    clipping (timm Lamb max_grad_norm=1.0, apex FusedLAMB, BertAdam max_grad_norm=1.0), a cap on ||w||
    in the trust ratio (cybertronai/pytorch-lamb clamp(0, 10)), the trust ratio skipped where
    weight_decay = 0 (timm Lamb `if weight_decay != 0 or always_adapt`). `large_grad` keeps every
    hyper-parameter at the rule's default, so a factory that takes only lr runs it (momentum included)."""
    scales = (0.5, 8.0, 64.0, 2.0, 32.0, 0.75)            # powers of two: float32-exact gradients
    b_dirs = ([0.25, -0.125], [1.0, 0.5], [0.125, 0.25], [-0.5, 1.0], [0.25, 0.75], [-1.0, 0.5])
    b_scale = (4.0, 0.25, 1.0, 8.0, 0.125, 2.0)           # per-tensor norms differ from the global norm
    return [
        Scenario("large_grad", "probe", "default gradient clipping: global gradient norms 0.8 ... 67 across steps "
                 "and per-tensor norms that differ from the global one, so clipping by global norm, per-tensor norm "
                 "or value at any common threshold (0.5, 1, 5, 10, 50) changes the trajectory; every "
                 "hyper-parameter at the rule's default (momentum included)",
                 {"w": w["w"], "b": f32([0.5, -1.0])},
                 tuple({"w": f32(gv["w"] * np.float32(s)), "b": f32(np.asarray(d, np.float32) * np.float32(s * bs))}
                       for gv, s, d, bs in zip(g_varied, scales, b_dirs, b_scale)),
                 _const(0.1, 6), {}),
        Scenario("large_norm", "probe", "trust-ratio caps: ||w|| = 43.8, far above a clamp of ||w|| at 10 "
                 "(pytorch-lamb) or any trust_upper_bound below it",
                 {"w": f32([24.0, -32.0, 8.0, 16.0])}, tuple(g_varied[:5]), _const(0.1, 5), {}, applies=_trust),
        Scenario("no_decay", "probe", "trust ratio without weight decay: weight_decay = 0, where some LAMBs skip "
                 "the trust ratio (timm Lamb unless always_adapt)",
                 w, tuple(g_varied[:5]), _const(0.1, 5), {"weight_decay": 0.0}, applies=_trust),
    ]


def _random_wide(seed: int = 20261121) -> Scenario:
    """Random gradients with magnitudes log-uniform over 1e-8 ... 1e3 (per element and step), 100 steps."""
    rng = np.random.default_rng(seed)
    shapes = {"layer/kernel": (3, 4), "layer/bias": (3,), "scale": ()}
    params = {k: bf16_exact(rng.uniform(-2.0, 2.0, size=s)) for k, s in shapes.items()}
    grads = []
    for _ in range(100):
        grads.append({k: f32(rng.choice([-1.0, 1.0], size=s) * 10.0 ** rng.uniform(-8.0, 3.0, size=s))
                      for k, s in shapes.items()})
    lr = tuple(float(np.float32(1e-3 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t / 100))))) for t in range(100))
    return Scenario("random_wide", "realistic", "everything at once over 100 steps with a cosine lr schedule; "
                    "gradient magnitudes 1e-8 ... 1e3", params, tuple(grads), lr, {"weight_decay": 0.01})


def _closed_loop(name: str, grad_fn, w0: np.ndarray, steps: int, lr: float, what: str) -> Scenario:
    """Record the gradient stream of plain float64 Adam (lr, default betas) on a small problem, rounded to
    float32; the stream is then replayed open-loop for every rule."""
    w = w0.astype(np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    grads = []
    for t in range(1, steps + 1):
        g = f32(grad_fn(w))
        grads.append({"w": g})
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
        w = w - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return Scenario(name, "realistic", what, {"w": f32(w0)}, tuple(grads), _const(lr, steps),
                    {"weight_decay": 0.01})


def _quadratic() -> Scenario:
    scales = np.array([1e-2, 1e-1, 1.0, 1e1, 1e2])          # condition number 1e4
    return _closed_loop("quadratic", lambda w: scales * w, bf16_exact([1.0, -1.0, 0.5, -0.5, 0.25]), 60, 0.05,
                        "ill-conditioned quadratic 0.5*sum(s_i*w_i^2), s = 1e-2 ... 1e2, gradients recorded "
                        "from a closed-loop Adam run")


def _rosenbrock() -> Scenario:
    def grad(w):
        x, y = w
        return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
    return _closed_loop("rosenbrock", grad, bf16_exact([-1.25, 1.5]), 60, 0.02,
                        "Rosenbrock valley (1-x)^2 + 100(y-x^2)^2, gradients recorded from a closed-loop Adam run")


def _logistic() -> Scenario:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(32, 4))
    y = (x @ np.array([1.5, -2.0, 0.5, 0.0]) + 0.3 * rng.normal(size=32) > 0).astype(np.float64)

    def grad(w):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        return x.T @ (p - y) / len(y)
    return _closed_loop("logistic", grad, bf16_exact([0.5, 0.5, -0.5, 0.25]), 60, 0.1,
                        "logistic regression on 32 fixed samples, gradients recorded from a closed-loop Adam run")


def _muon_probes() -> list[Scenario]:
    """Muon's probes (spec/muon.md): a wide (2 x 3) and a tall (3 x 2) matrix, so that every shape
    scaling differs (r/c vs c/r vs max(r, c)); non-2-D tensors only in `muon_mixed` (torch's Muon refuses
    them, so its case runs every other probe)."""
    fam = ("muon",)
    wide, tall = f32([[1.0, -2.0, 0.5], [0.25, 1.0, -1.5]]), f32([[0.5, 1.5], [-1.0, 0.75], [2.0, -0.25]])
    mats = {"wide": wide, "tall": tall}
    rows = ([0.25, -0.5, 1.0, -0.125, 0.75, 0.5], [0.5, 0.25, -1.0, 0.125, -0.25, 1.0],
            [-0.25, 0.75, 0.5, 0.375, 1.0, -0.5], [1.0, -1.0, 0.25, 0.5, -0.75, 0.125],
            [0.125, 0.5, -0.75, -0.25, 0.5, 1.0], [-0.5, -0.25, 0.5, 1.0, 0.25, -0.75])

    def varied(scale: float = 1.0, shapes=((2, 3), (3, 2))):
        return tuple({name: f32(np.resize(np.roll(np.asarray(r) * scale, 2 * i), shape))
                      for i, (name, shape) in enumerate(zip(("wide", "tall", "square"), shapes))}
                     for r in rows)
    zeros = {n: f32(np.zeros_like(m)) for n, m in mats.items()}
    square = f32([[1.0, 0.5, -0.25], [-0.5, 2.0, 0.75], [0.25, -1.0, 1.5]])
    mixed_grads = tuple({"wide": g["wide"], "bias": f32(g["tall"][:, 0]), "cube": f32(np.resize(g["wide"], (2, 2, 2)))}
                        for g in varied())
    return [
        Scenario("muon_zero_grad", "probe", "decay presence, coupling and scaling: with g = 0 decoupled decay is a "
                 "geometric shrink (x lr, x the shape-adjusted lr, x eta, unscaled), coupled decay is orthogonalised",
                 mats, (zeros,) * 5, _const(0.1, 5), {"weight_decay": 0.1}, families=fam),
        Scenario("muon_varied", "probe", "shape scaling (wide, tall and square matrices), the Nesterov look-ahead "
                 "and its bias correction, the Newton-Schulz coefficients and steps",
                 {**mats, "square": square}, varied(shapes=((2, 3), (3, 2), (3, 3))), _const(0.1, 6),
                 {"weight_decay": 0.1}, families=fam),
        Scenario("muon_tiny_grad", "probe", "eps placement (||X|| + eps vs max(||X||, eps)) and the buffer form (an EMA "
                 "is (1 - mu) x the sum): |g| ~ 1e-7 so the look-ahead's norm is near eps = 1e-7",
                 mats, varied(4e-7), _const(0.1, 6), {"eps": 1e-7, "adam_eps": 1e-7}, families=fam),
        Scenario("muon_large_decay", "probe", "decay order: lr = 1 and lr*wd = 0.25 on small weights, so shrinking the "
                 "pre-step or the post-step weight differs by lr*wd*|update| = 0.25*|update| per step",
                 {n: f32(0.25 * m) for n, m in mats.items()}, varied()[:5], _const(1.0, 5), {"weight_decay": 0.25},
                 families=fam,
                 applies=lambda k: k["decay"] != "none"),
        Scenario("muon_schedule", "probe", "decay scaling against the schedule: lr halves after step 3 and eta falls "
                 "1 -> 0.25, so decay x lr, x eta, x lr/lr0 and unscaled all differ",
                 mats, varied(), (0.1,) * 3 + (0.05,) * 3, {"weight_decay": 0.1}, eta=(1.0, 1.0, 0.5, 0.5, 0.25, 0.25),
                 families=fam, applies=lambda k: k["decay"] == "decoupled"),
        Scenario("muon_mixed", "probe", "tensors that are not 2-D (a vector and a 3-D tensor) next to a matrix: left "
                 "alone, Keras' eps-hat AdamW or optax's (Nesterov) AdamW",
                 {"wide": wide, "bias": f32([0.5, -1.0, 2.0]), "cube": f32(np.resize(square, (2, 2, 2)))},
                 mixed_grads, _const(0.1, 6), {"weight_decay": 0.1, "adam_weight_decay": 0.1}, families=fam),
    ]


def _adafactor_probes() -> list[Scenario]:
    """Adafactor's own probe (spec/adafactor.md): a 3-D tensor whose two largest axes are not its last two,
    so factoring over the last two and over the two largest differ, next to a matrix and a vector."""
    rows = ([0.25, -0.5, 1.0, -0.125, 0.75, 0.5], [0.5, 0.25, -1.0, 0.125, -0.25, 1.0],
            [-0.25, 0.75, 0.5, 0.375, 1.0, -0.5], [1.0, -1.0, 0.25, 0.5, -0.75, 0.125],
            [0.125, 0.5, -0.75, -0.25, 0.5, 1.0], [-0.5, -0.25, 0.5, 1.0, 0.25, -0.75])
    shapes = {"stack": (3, 4, 2), "kernel": (2, 3), "bias": (3,)}
    params = {n: bf16_exact(np.resize(np.linspace(-1.5, 2.0, 7), s)) for n, s in shapes.items()}
    grads = tuple({n: f32(np.resize(np.roll(np.asarray(r) * (i + 1), i), s)) for i, (n, s) in enumerate(shapes.items())}
                  for r in rows)
    return [Scenario("adafactor_3d", "probe", "factored axes: a 3 x 4 x 2 tensor (last two axes 4 x 2, two largest "
                     "3 x 4), a matrix and a vector, with varied gradients", params, grads, _const(0.1, 6),
                     {"weight_decay": 0.1}, families=("adafactor",))]


def _schedule_free_probes(w, g_varied) -> list[Scenario]:
    """Schedule-free's own probe (spec/schedule_free.md): a linear warmup over 3 of 6 steps, so the lr rises
    and the averaging weights c_t = w_t/sum w_s differ from 1/t, and the warmup's first lr (lr/W or 0)
    shows; decay on, so where it acts (the z step or a shrink of y) shows too."""
    return [Scenario("sf_warmup", "probe", "warmup form (first lr lr/W vs 0) and averaging weights (lr_max^power vs "
                     "1/t) while the lr rises over warmup_steps = 3", {**w, "m": f32([[1.0, -0.5], [0.25, 2.0]])},
                     tuple({"w": gv["w"], "m": f32(gv["w"].reshape(2, 2) * 2.0)} for gv in g_varied[:6]),
                     _const(0.1, 6), {"weight_decay": 0.1, "warmup_steps": 3}, families=("schedule_free",))]


def _muon_random(seed: int = 20260412) -> Scenario:
    """Random gradients (log-uniform 1e-4 ... 10) on a 4 x 6 and a 6 x 4 matrix, 40 steps, cosine lr."""
    rng = np.random.default_rng(seed)
    shapes = {"kernel": (4, 6), "proj": (6, 4)}
    params = {k: bf16_exact(rng.uniform(-1.0, 1.0, size=s)) for k, s in shapes.items()}
    grads = tuple({k: f32(rng.choice([-1.0, 1.0], size=s) * 10.0 ** rng.uniform(-4.0, 1.0, size=s))
                   for k, s in shapes.items()} for _ in range(40))
    lr = tuple(float(np.float32(0.02 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t / 40))))) for t in range(40))
    return Scenario("muon_random", "realistic", "Muon over 40 steps with a cosine lr schedule; gradient magnitudes "
                    "1e-4 ... 10", params, grads, lr, {"weight_decay": 0.01}, families=("muon",))


def all_scenarios() -> dict[str, Scenario]:
    """Every scenario, probes first, by name."""
    items = _probes() + _muon_probes() + _adafactor_probes() + [_random_wide(), _quadratic(), _rosenbrock(), _logistic(), _muon_random()]
    return {s.name: s for s in items}
