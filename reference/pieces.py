"""Small pure pieces of update rules, in float64 NumPy; a rule is a chain of them.

Each piece is a `Piece(init, update)`: ``init(params) -> state`` and
``update(carry, state, ctx) -> (carry, state)``. The `Carry` flows through the chain: `params` is
the working weight (decoupled decay may shrink it before the step), `updates` the running update
(it starts as the gradient), `first` / `second` the moment estimates a later piece normalises.
The order of the chain is the meaning: coupled decay before the moments is L2; a shrink after
`apply_updates` is post-step decay; a running max before bias correction is AMSGrad on the raw v.

One commented line per maths step; the maths and citations are in spec/<family>.md.
Notation as in spec/knobs.toml (t = 1 at the first update).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Callable, Mapping, NamedTuple

import numpy as np

Tree = dict[str, np.ndarray]          # tensor name -> array
State = dict[str, Tree]               # spec state name -> tree


@dataclass(frozen=True)
class Ctx:
    """What a step knows besides the arrays: the step number and the schedule in force."""
    t: int                  # 1 at the first update
    lr: float               # lr_t, the learning rate in force at step t
    eta: float              # eta_t, the schedule multiplier (1 unless given)
    lr0: float = 0.0        # eta_1*lr_1, the step size of the first update (lr_ratio decay reads it)


@dataclass(frozen=True)
class Carry:
    params: Tree            # working weights w
    updates: Tree           # running update (the gradient at the start of the chain)
    first: Tree | None = None    # first-moment estimate to normalise (m or m_hat)
    second: Tree | None = None   # second-moment estimate to normalise by (v, v_hat, sum, ...)
    bc1: float = 1.0        # 1 - beta1^t once bias correction ran, else 1
    bc2: float = 1.0        # 1 - beta2^t once bias correction ran, else 1
    param_scale: Tree | None = None   # Adafactor's max(eps2, RMS(w)) per tensor, once recorded


class Piece(NamedTuple):
    init: Callable[[Tree], State]
    update: Callable[[Carry, State, Ctx], tuple[Carry, State]]


def _map(fn, *trees: Tree) -> Tree:
    return {k: fn(*(tree[k] for tree in trees)) for k in trees[0]}


def _zeros(params: Tree, fill: float = 0.0) -> Tree:
    return {k: np.full(np.shape(p), fill, dtype=p.dtype) for k, p in params.items()}


def _stateless(update) -> Piece:
    return Piece(lambda params: {}, lambda carry, state, ctx: (update(carry, ctx), state))


def decay_mask(names, exclude: tuple[str, ...] = (), mask: Mapping[str, bool] | None = None) -> dict[str, bool]:
    """Which tensors are decayed: not matched by any `exclude` regex (re.search, as BERT) and not
    False in `mask` (as optax)."""
    patterns = [re.compile(p) for p in exclude]
    return {n: not any(p.search(n) for p in patterns) and bool((mask or {}).get(n, True)) for n in names}


# --- gradient pre-processing ---------------------------------------------------------------------

def rescale_grad(scale: float) -> Piece:
    """g <- scale*g (MXNet rescale_grad)."""
    return _stateless(lambda c, ctx: replace(c, updates=_map(lambda g: scale * g, c.updates)))


def clip(value: float | None, norm: float | None, global_norm: float | None) -> Piece:
    """Clip the running update: elementwise to [-value, value]; per tensor to ||g|| <= norm; all
    tensors to ||G|| <= global_norm, each as g*c/max(||g||, c)."""
    def update(c: Carry, ctx: Ctx) -> Carry:
        u = c.updates
        if value is not None:
            u = _map(lambda g: np.clip(g, -value, value), u)                       # g <- clip(g, -c, c)
        if norm is not None:
            u = _map(lambda g: g * (norm / max(float(np.linalg.norm(g)), norm)), u)  # g <- g*c/max(||g||, c)
        if global_norm is not None:
            total = float(np.sqrt(sum(float(np.sum(g * g)) for g in u.values())))  # ||G|| over all tensors
            u = _map(lambda g: g * (global_norm / max(total, global_norm)), u)      # g <- g*c/max(||G||, c)
        return replace(c, updates=u)
    return _stateless(update)


# --- weight decay ----------------------------------------------------------------------------------

def add_coupled_decay(wd: float, decayed: Mapping[str, bool]) -> Piece:
    """Coupled (L2) decay: g <- g + wd*w, before any statistic sees g."""
    return _stateless(lambda c, ctx: replace(c, updates={
        k: g + wd * c.params[k] if decayed[k] else g for k, g in c.updates.items()}))


def add_decayed_weights(wd: float, scaling: str, decayed: Mapping[str, bool], beta1: float = 0.0,
                        beta2: float = 0.0) -> Piece:
    """Decoupled decay inside the update, before the trust ratio and the lr scale: u <- d + c*w with
    c = wd for lr scaling (LAMB), else c = s/(eta_t*lr_t) so that the lr scale leaves the shrink s."""
    def update(c: Carry, ctx: Ctx) -> Carry:
        step = ctx.eta * ctx.lr
        if scaling == "lr" or step == 0.0:
            coef = wd                                                             # u <- d + wd*w
        else:
            s = decay_factor(scaling, wd, ctx, 1.0 - beta1 ** ctx.t, 1.0 - beta2 ** ctx.t)
            coef = s / step                                                       # u <- d + (s/(eta*lr))*w
        return replace(c, updates={k: u + coef * c.params[k] if decayed[k] else u for k, u in c.updates.items()})
    return _stateless(update)


def decay_factor(scaling: str, wd: float, ctx: Ctx, bc1: float, bc2: float) -> float:
    """The shrink s in w <- w - s*w for a decay_scaling value (spec/knobs.toml decay_scaling; lr_ratio:
    composer decoupled_weight_decay.py `decay_factor = (lr / initial_lr) if initial_lr else 1.0`)."""
    if scaling == "lr":
        return ctx.eta * ctx.lr * wd                          # s = eta_t*lr_t*wd
    if scaling == "schedule":
        return ctx.eta * wd                                   # s = eta_t*wd (never the base lr)
    if scaling == "unscaled":
        return wd                                             # s = wd
    if scaling == "corrected_lr":
        return ctx.eta * ctx.lr * math.sqrt(bc2) / bc1 * wd   # s = eta_t*lr_t*sqrt(bc2)/bc1*wd
    if scaling == "lr_ratio":                                 # s = wd*(eta_t*lr_t)/(eta_1*lr_1); wd if that is 0
        return ctx.eta * ctx.lr / ctx.lr0 * wd if ctx.lr0 else wd
    raise ValueError(f"unknown decay_scaling {scaling!r}")


def shrink_weights(wd: float, scaling: str, decayed: Mapping[str, bool], beta1: float = 0.0,
                   beta2: float = 0.0) -> Piece:
    """Decoupled decay as a separate shrink of the working weight: w <- w - s*w."""
    def update(c: Carry, ctx: Ctx) -> Carry:
        bc1, bc2 = 1.0 - beta1 ** ctx.t, 1.0 - beta2 ** ctx.t           # only corrected_lr reads them
        s = decay_factor(scaling, wd, ctx, bc1, bc2)
        return replace(c, params={k: w - s * w if decayed[k] else w for k, w in c.params.items()})
    return _stateless(update)


# --- moments and normalisation ---------------------------------------------------------------------

def ema_moments(beta1: float | None, beta2: float | None, initial_second: float = 0.0) -> Piece:
    """m <- beta1*m + (1-beta1)*g ; v <- beta2*v + (1-beta2)*g^2 (either may be None = not kept)."""
    def init(params):
        state = {}
        if beta1 is not None:
            state["m"] = _zeros(params)
        if beta2 is not None:
            state["v"] = _zeros(params, initial_second)
        return state

    def update(c, state, ctx):
        new = {}
        if beta1 is not None:
            new["m"] = _map(lambda m, g: beta1 * m + (1.0 - beta1) * g, state["m"], c.updates)      # m_t
        if beta2 is not None:
            new["v"] = _map(lambda v, g: beta2 * v + (1.0 - beta2) * g * g, state["v"], c.updates)  # v_t
        return replace(c, first=new.get("m"), second=new.get("v")), new
    return Piece(init, update)


def running_max_second() -> Piece:
    """AMSGrad: v_max <- max(v_max, second); second <- v_max. Before bias correction it is the
    max of the raw v (torch/Keras); after it, the max of v_hat (optax)."""
    def update(c, state, ctx):
        v_max = _map(np.maximum, state["v_max"], c.second)                    # v_max_t = max(v_max_{t-1}, v)
        return replace(c, second=v_max), {"v_max": v_max}
    return Piece(lambda params: {"v_max": _zeros(params)}, update)


def bias_correct(beta1: float | None, beta2: float | None) -> Piece:
    """m_hat = m/(1-beta1^t), v_hat = v/(1-beta2^t); records bc1, bc2 for eps-hat and corrected_lr."""
    def update(c: Carry, ctx: Ctx) -> Carry:
        bc1 = 1.0 - beta1 ** ctx.t if beta1 is not None else 1.0            # bc1 = 1 - beta1^t
        bc2 = 1.0 - beta2 ** ctx.t if beta2 is not None else 1.0            # bc2 = 1 - beta2^t
        first = _map(lambda m: m / bc1, c.first) if c.first is not None else None    # m_hat
        second = _map(lambda v: v / bc2, c.second) if c.second is not None else None  # v_hat
        return replace(c, first=first, second=second, bc1=bc1, bc2=bc2)
    return _stateless(update)


def normalise_denominator(root: np.ndarray, eps: float, placement: str, bc2: float) -> np.ndarray:
    """The denominator for a second-moment estimate `root` (already bias-corrected)."""
    if placement == "outside":
        return np.sqrt(root) + eps                        # sqrt(v_hat) + eps
    if placement == "eps_hat":
        return np.sqrt(root) + eps / math.sqrt(bc2)       # sqrt(v_hat) + eps/sqrt(bc2)  (== (sqrt(v)+eps)/sqrt(bc2))
    if placement == "inside":
        return np.sqrt(root + eps)                        # sqrt(v_hat + eps)
    raise ValueError(f"unknown eps_placement {placement!r}")


def normalise(eps: float, placement: str, numerator: str = "first") -> Piece:
    """updates <- numerator / denominator(second), numerator being the first moment or the running
    update (RMSprop, AdaGrad normalise the gradient itself)."""
    def update(c: Carry, ctx: Ctx) -> Carry:
        num = c.first if numerator == "first" else c.updates
        return replace(c, updates={k: num[k] / normalise_denominator(c.second[k], eps, placement, c.bc2)
                                   for k in num})
    return _stateless(update)


def accumulate_squares(initial: float) -> Piece:
    """AdaGrad: sum <- sum + g^2 (starts at `initial`); second <- sum."""
    def update(c, state, ctx):
        total = _map(lambda s, g: s + g * g, state["sum"], c.updates)      # sum_t = sum_{t-1} + g^2
        return replace(c, second=total), {"sum": total}
    return Piece(lambda params: {"sum": _zeros(params, initial)}, update)


def center_second(beta: float) -> Piece:
    """Centered RMSprop: g_avg <- beta*g_avg + (1-beta)*g ; second <- v - g_avg^2."""
    def update(c, state, ctx):
        g_avg = _map(lambda a, g: beta * a + (1.0 - beta) * g, state["g_avg"], c.updates)   # g_avg_t
        second = _map(lambda v, a: v - a * a, c.second, g_avg)                               # v - g_avg^2
        return replace(c, second=second), {"g_avg": g_avg}
    return Piece(lambda params: {"g_avg": _zeros(params)}, update)


def nesterov_first_moment(beta1: float, schedule: str, momentum_decay: float) -> Piece:
    """NAdam's look-ahead first moment (m already updated by ema_moments):
    mu_t = beta1*(1 - 0.5*0.96^(t*psi)) (schedule 'dozat') or beta1 ('none'); P_t = prod mu_1..mu_t;
    first <- mu_{t+1}*m/(1 - P_t*mu_{t+1}) + (1-mu_t)*g/(1 - P_t)."""
    def mu(t):
        return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay)) if schedule == "dozat" else beta1

    def update(c, state, ctx):
        mu_t, mu_next = mu(ctx.t), mu(ctx.t + 1)                                  # mu_t, mu_{t+1}
        prod = {k: p * mu_t for k, p in state["mu_product"].items()}             # P_t = P_{t-1}*mu_t
        first = {k: mu_next * c.first[k] / (1.0 - prod[k] * mu_next)              # look-ahead momentum term
                 + (1.0 - mu_t) * c.updates[k] / (1.0 - prod[k]) for k in c.first}  # + current-gradient term
        return replace(c, first=first), {"mu_product": prod}
    return Piece(lambda params: {"mu_product": {k: np.ones((), dtype=p.dtype) for k, p in params.items()}}, update)


def rectify(beta2: float, eps: float, placement: str, power_beta2: float | None = None) -> Piece:
    """RAdam: rho_inf = 2/(1-beta2) - 1, rho_t = rho_inf - 2*t*beta2^t/bc2; if rho_t > 5 the step is
    r_t*m_hat/denominator(v_hat), r_t = sqrt((rho_t-4)(rho_t-2)rho_inf/((rho_inf-4)(rho_inf-2)rho_t));
    otherwise m_hat (SGD with momentum). Expects bias-corrected first/second. `power_beta2`: the beta2
    of the power beta2^t when it differs from the moments' (spec/tolerance.md, scalar precision)."""
    power = beta2 if power_beta2 is None else power_beta2
    def update(c: Carry, ctx: Ctx) -> Carry:
        rho_inf = 2.0 / (1.0 - beta2) - 1.0                                      # rho_inf
        rho_t = rho_inf - 2.0 * ctx.t * power ** ctx.t / c.bc2                   # rho_t
        if rho_t <= 5.0:
            return replace(c, updates=dict(c.first))                              # d = m_hat
        r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return replace(c, updates={k: r_t * c.first[k] / normalise_denominator(c.second[k], eps, placement, c.bc2)
                                   for k in c.first})                             # d = r_t*m_hat/denom
    return _stateless(update)


def infinity_norm(beta2: float, eps: float, placement: str) -> Piece:
    """Adamax: u <- max(beta2*u, |g| + eps) ('inside_max') or max(beta2*u, |g|) ('outside_max');
    updates <- first/u or first/(u + eps)."""
    def update(c, state, ctx):
        add = eps if placement == "inside_max" else 0.0
        u = _map(lambda u, g: np.maximum(beta2 * u, np.abs(g) + add), state["u"], c.updates)  # u_t
        denom = u if placement == "inside_max" else _map(lambda x: x + eps, u)                 # u or u + eps
        return replace(c, updates=_map(np.divide, c.first, denom)), {"u": u}
    return Piece(lambda params: {"u": _zeros(params)}, update)


def lion_sign(beta1: float, beta2: float) -> Piece:
    """Lion: updates <- sign(beta1*m + (1-beta1)*g); then m <- beta2*m + (1-beta2)*g."""
    def update(c, state, ctx):
        direction = _map(lambda m, g: np.sign(beta1 * m + (1.0 - beta1) * g), state["m"], c.updates)  # sign(interp)
        m = _map(lambda m, g: beta2 * m + (1.0 - beta2) * g, state["m"], c.updates)                     # m_t
        return replace(c, updates=direction), {"m": m}
    return Piece(lambda params: {"m": _zeros(params)}, update)


# --- momentum, trust ratio, lr ---------------------------------------------------------------------

def trace(momentum: float, dampening: float, nesterov: bool, name: str) -> Piece:
    """Heavy-ball buffer on the running update u: b_1 = u, b_t = mu*b + (1-dampening)*u;
    updates <- u + mu*b (nesterov) or b."""
    def update(c, state, ctx):
        if ctx.t == 1:
            buf = dict(c.updates)                                                               # b_1 = u
        else:
            buf = _map(lambda b, u: momentum * b + (1.0 - dampening) * u, state[name], c.updates)  # b_t
        out = _map(lambda u, b: u + momentum * b, c.updates, buf) if nesterov else buf           # nesterov look-ahead
        return replace(c, updates=out), {name: buf}
    return Piece(lambda params: {name: _zeros(params)}, update)


def trust_ratio(lower: float, upper: float) -> Piece:
    """LAMB: per tensor r1 = clamp(||w||, lower, upper), r2 = ||u||; u <- (r1/r2)*u, ratio 1 when
    r1 or r2 is 0 (a NaN norm gives a NaN ratio, as optax and MXNet; TF's ALBERT/Keras `> 0` tests
    would give 1 there — a difference visible only with non-finite gradients)."""
    def update(c, state, ctx):
        ratios, out = {}, {}
        for k, u in c.updates.items():
            r1 = min(max(float(np.linalg.norm(c.params[k])), lower), upper)       # ||w||, clamped
            r2 = float(np.linalg.norm(u))                                          # ||u||
            ratios[k] = np.asarray(1.0 if r1 == 0.0 or r2 == 0.0 else r1 / r2, dtype=u.dtype)  # trust ratio (NaN stays NaN)
            out[k] = ratios[k] * u                                                 # u <- ratio*u
        return replace(c, updates=out), {"trust_ratio": ratios}
    return Piece(lambda params: {"trust_ratio": {k: np.ones((), dtype=p.dtype) for k, p in params.items()}}, update)


def scale_by_lr(lr_decay: float = 0.0) -> Piece:
    """u <- -eta_t*lr_t/(1 + (t-1)*lr_decay) * u (lr_decay: AdaGrad's, 0 elsewhere)."""
    def update(c: Carry, ctx: Ctx) -> Carry:
        step = ctx.eta * ctx.lr / (1.0 + (ctx.t - 1) * lr_decay)                 # effective step size
        return replace(c, updates=_map(lambda u: -step * u, c.updates))
    return _stateless(update)


def apply_updates() -> Piece:
    """w <- w + u."""
    return _stateless(lambda c, ctx: replace(c, params=_map(np.add, c.params, c.updates)))


# --- Muon (spec/muon.md) ---------------------------------------------------------------------------

def is_matrix(w: np.ndarray) -> bool:
    """Muon's domain: 2-D tensors (every other tensor goes to the rule's `non_matrix` step)."""
    return np.ndim(w) == 2


def round_significand(x, bits: int) -> np.ndarray:
    """x rounded to `bits` significant bits, to nearest with ties to even, from any float64 value (the
    exponent range is not limited: bfloat16 has float32's, and the probes stay far inside it)."""
    mant, exp = np.frexp(np.asarray(x, dtype=np.float64))
    return np.ldexp(np.round(mant * 2.0 ** bits) / 2.0 ** bits, exp)


#: Iteration dtype -> its significant bits (the precision knob `iteration` of `trajectory`).
ITERATION_BITS = {"bfloat16": 8, "float16": 11, "float32": 24}


def shape_scale(shape, kind: str, rms_rate: float = 0.0) -> float:
    """The factor an orthogonalised r x c update is scaled by (knob shape_scaling)."""
    rows, cols = shape
    if kind == "none":
        return 1.0
    if kind == "rows_cols":
        return math.sqrt(max(1.0, rows / cols))                # sqrt(max(1, r/c))
    if kind == "cols_rows":
        return math.sqrt(max(1.0, cols / rows))                # sqrt(max(1, c/r))
    if kind == "rms":
        return rms_rate * math.sqrt(max(rows, cols))           # rms_rate*sqrt(max(r, c))
    raise ValueError(f"unknown shape_scaling {kind!r}")


def muon_shrink(wd: float, scaling: str, decayed: Mapping[str, bool], kind: str, rms_rate: float) -> Piece:
    """Decoupled decay of a Muon matrix: w <- w - s*w, s from decay_factor, or
    s = eta_t*lr_t*scale(shape)*wd for decay_scaling = adjusted_lr."""
    def update(c: Carry, ctx: Ctx) -> Carry:
        def s(w):
            if scaling == "adjusted_lr":
                return ctx.eta * ctx.lr * shape_scale(np.shape(w), kind, rms_rate) * wd   # x the adjusted lr
            return decay_factor(scaling, wd, ctx, 1.0, 1.0)
        return replace(c, params={k: w - s(w) * w if decayed[k] else w for k, w in c.params.items()})
    return _stateless(update)


def muon_momentum(mu: float, nesterov: bool, buffer: str, bias_correction: bool) -> Piece:
    """Muon's buffer and the Newton-Schulz input: b <- mu*b + (1-mu)*g (ema) or mu*b + g (sum);
    the input is b, or with nesterov the look-ahead (1-mu)*g + mu*b (ema) / g + mu*b (sum).
    Bias-corrected (ema): b/(1-mu^t), look-ahead mu*b/(1-mu^(t+1)) + (1-mu)*g/(1-mu^t)."""
    keep = 1.0 - mu if buffer == "ema" else 1.0                                  # weight of g in b

    def update(c, state, ctx):
        buf = _map(lambda b, g: mu * b + keep * g, state["momentum"], c.updates)  # b_t
        if bias_correction:
            bc, bc_next = 1.0 - mu ** ctx.t, 1.0 - mu ** (ctx.t + 1)
            if nesterov:
                out = _map(lambda b, g: mu * b / bc_next + (1.0 - mu) * g / bc, buf, c.updates)  # NAdam look-ahead
            else:
                out = _map(lambda b: b / bc, buf)                                  # b_hat
        elif nesterov:
            out = _map(lambda b, g: keep * g + mu * b, buf, c.updates)            # look-ahead
        else:
            out = dict(buf)
        return replace(c, updates=out), {"momentum": buf}
    return Piece(lambda params: {"momentum": _zeros(params)}, update)


def newton_schulz(a: float, b: float, c: float, steps: int, eps: float, placement: str,
                  iteration: str | None = None) -> Piece:
    """updates <- NS(updates) per 2-D tensor: transpose a tall X, X <- X/(||X||_F + eps) ('norm_add')
    or X/max(||X||_F, eps) ('norm_clamp'), then `steps` times A = X X^T, B = b*A + c*A^2,
    X <- a*X + B X; transpose back. `iteration` (a precision knob: the dtype a native iterates in,
    e.g. torch's bfloat16) rounds every value the iteration produces to that dtype's significand; the
    input is converted through float32 first (torch's c10::BFloat16 is built from a float)."""
    bits = ITERATION_BITS[iteration] if iteration else None

    def rnd(x):
        return round_significand(x, bits) if bits else x

    def ortho(g: np.ndarray) -> np.ndarray:
        x = rnd(round_significand(g, 24) if bits else g)                          # cast in: through float32
        tall = x.shape[0] > x.shape[1]
        if tall:
            x = x.T                                                                # work on the wide side
        norm = rnd(np.sqrt(np.sum(x * x)))                                         # ||X||_F
        if placement == "norm_add":
            scale = rnd(norm + eps)                                                # ||X|| + eps
        elif placement == "norm_clamp":
            scale = max(norm, rnd(eps))                                            # max(||X||, eps)
        else:
            raise ValueError(f"unknown eps_placement {placement!r} for Muon")
        x = rnd(x / scale)
        for _ in range(steps):
            gram = rnd(x @ x.T)                                                    # A = X X^T
            poly = rnd(b * gram + c * (gram @ gram))                               # B = b*A + c*A^2
            x = rnd(a * x + poly @ x)                                              # X <- a*X + B X
        return x.T if tall else x

    return _stateless(lambda carry, ctx: replace(carry, updates=_map(ortho, carry.updates)))


def scale_by_shape(kind: str, rms_rate: float) -> Piece:
    """updates <- scale(shape)*updates (knob shape_scaling)."""
    return _stateless(lambda c, ctx: replace(c, updates=_map(
        lambda u: shape_scale(np.shape(u), kind, rms_rate) * u, c.updates)))


def partition(select: Callable[[np.ndarray], bool], inside: list[Piece], outside: list[Piece]) -> Piece:
    """Two chains on two sets of tensors: `inside` on the tensors `select` picks (by their weight),
    `outside` on the others; each chain sees only its tensors (a chain's own global quantities, e.g.
    a global norm, span only them). Every piece keeps its state for every tensor; a tensor's state in
    the chain that does not update it stays at its initial value."""
    chains = (inside, outside)
    names: list[list[list[str]]] = [[[] for _ in chain] for chain in chains]

    def init(params):
        out: State = {}
        for which, chain in enumerate(chains):
            for i, piece in enumerate(chain):
                st = piece.init(params)
                names[which][i] = list(st)
                for name, tree in st.items():
                    if name in out:
                        raise AssertionError(f"two pieces both keep state {name!r}")
                    out[name] = tree
        return out

    def update(c, state, ctx):
        params, updates = dict(c.params), dict(c.updates)
        new = {name: dict(tree) for name, tree in state.items()}
        for which, chain in enumerate(chains):
            keys = [k for k in c.params if bool(select(c.params[k])) == (which == 0)]
            if not keys:
                continue
            carry = Carry(params={k: c.params[k] for k in keys}, updates={k: c.updates[k] for k in keys})
            for i, piece in enumerate(chain):
                local = {name: {k: new[name][k] for k in keys} for name in names[which][i]}
                carry, local = piece.update(carry, local, ctx)
                for name in names[which][i]:
                    new[name].update(local[name])
            params.update(carry.params)
            updates.update(carry.updates)
        return replace(c, params=params, updates=updates), new
    return Piece(init, update)


# --- Adafactor (spec/adafactor.md) -----------------------------------------------------------------

def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if np.size(x) else 0.0


def param_rms(eps2: float) -> Piece:
    """Record the parameter scale max(eps2, RMS(w)) of the working weight as it is now (before or after
    a decoupled shrink, by where the chain puts this piece)."""
    return _stateless(lambda c, ctx: replace(c, param_scale={k: float(np.maximum(eps2, _rms(w)))   # NaN propagates
                                                            for k, w in c.params.items()}))


def factor_axes(shape, dims: str, min_dim: float) -> tuple[int, int] | None:
    """(a, b) for a factored tensor: row statistics reduce axis b, column statistics axis a (the last two:
    a = -2, b = -1; the two largest: b the largest, a the second, ties by position); None when unfactored
    (fewer than 2 axes, or the second largest axis has fewer than min_dim elements)."""
    if len(shape) < 2 or sorted(shape)[-2] < min_dim:
        return None
    if dims == "last_two":
        return len(shape) - 2, len(shape) - 1
    if dims == "largest_two":
        order = np.argsort(shape, kind="stable")
        return int(order[-2]), int(order[-1])
    raise ValueError(f"unknown factor_dims {dims!r}")


def factored_rms(beta2_decay: float, eps: float, placement: str, dims: str, min_dim: float) -> Piece:
    """updates <- g/sqrt(V): beta_t = 1 - t^beta2_decay; a factored tensor keeps row means R (over axis b)
    and column means C (over axis a) of s = g^2 (+ eps for 'sq_add'), each R <- beta_t*R + (1-beta_t)*mean(s),
    and V = R*C/mean_a(R) (the mean clamped at eps for 'sq_clamp'); another tensor keeps
    v <- beta_t*v + (1-beta_t)*s and V = v; 'sq_clamp' then takes max(V, eps^2). States v_row, v_col
    (broadcast to the tensor's shape) and v; the ones a tensor does not use stay 0."""
    def update(c, state, ctx):
        beta = 1.0 - float(ctx.t) ** beta2_decay                                   # beta2_t = 1 - t^beta2_decay
        new = {name: dict(tree) for name, tree in state.items()}
        out = {}
        for k, g in c.updates.items():
            if g.size == 0:
                out[k] = g                                                           # nothing to scale
                continue
            sq = g * g + eps if placement == "sq_add" else g * g                   # g^2 (+ eps1)
            axes = factor_axes(np.shape(g), dims, min_dim)
            if axes is not None:
                a, b = axes
                row = beta * state["v_row"][k] + (1.0 - beta) * np.broadcast_to(np.mean(sq, axis=b, keepdims=True), g.shape)
                col = beta * state["v_col"][k] + (1.0 - beta) * np.broadcast_to(np.mean(sq, axis=a, keepdims=True), g.shape)
                row_mean = np.mean(row, axis=a, keepdims=True)                     # mean of R over the rows
                if placement == "sq_clamp":
                    row_mean = np.maximum(row_mean, eps)
                estimate = row / row_mean * col                                     # V = (R/mean(R))*C
                new["v_row"][k], new["v_col"][k] = row, col
            else:
                estimate = beta * state["v"][k] + (1.0 - beta) * sq                 # v_t
                new["v"][k] = estimate
            if placement == "sq_clamp":
                estimate = np.maximum(estimate, eps * eps)                           # max(V, eps^2)
            elif placement != "sq_add":
                raise ValueError(f"unknown eps_placement {placement!r} for Adafactor")
            out[k] = g / np.sqrt(estimate)                                           # u = g/sqrt(V)
        return replace(c, updates=out), new
    return Piece(lambda params: {"v_row": _zeros(params), "v_col": _zeros(params), "v": _zeros(params)}, update)


def clip_by_rms(threshold: float) -> Piece:
    """Update clipping: u <- u/max(1, RMS(u)/threshold), per tensor."""
    return _stateless(lambda c, ctx: replace(c, updates={k: u / np.maximum(1.0, _rms(u) / threshold)   # NaN propagates
                                                         for k, u in c.updates.items()}))


def _rho(kind: str, ctx: Ctx) -> float:
    """Adafactor's step rho_t = min(eta_t*lr_t, 1/sqrt(t)) ('capped') or eta_t*lr_t ('lr')."""
    step = ctx.eta * ctx.lr
    if kind == "capped":
        return min(step, 1.0 / math.sqrt(ctx.t))
    if kind == "lr":
        return step
    raise ValueError(f"unknown step_size {kind!r}")


def relative_step(kind: str) -> Piece:
    """u <- -rho_t*scale*u: rho_t as `_rho`, scale the recorded parameter scale (1 when none was recorded)."""
    def update(c: Carry, ctx: Ctx) -> Carry:
        rho, scale = _rho(kind, ctx), c.param_scale or {}                         # rho_t, p
        return replace(c, updates={k: -rho * scale.get(k, 1.0) * u for k, u in c.updates.items()})
    return _stateless(update)


def shrink_by_relative_step(wd: float, kind: str, decayed: Mapping[str, bool]) -> Piece:
    """decay_scaling = relative_step: w <- w - wd*rho_t*p*w, the shrink scaled by the whole step (rho_t as
    `_rho`, p the parameter scale recorded so far, 1 when none): transformers' Adafactor passes its step
    size lr*max(eps2, RMS(w)) as the decay's alpha (transformers/optimization.py:948-949 at v4.49.0)."""
    def update(c: Carry, ctx: Ctx) -> Carry:
        rho, scale = _rho(kind, ctx), c.param_scale or {}                         # rho_t, p
        return replace(c, params={k: w - wd * rho * scale.get(k, 1.0) * w if decayed[k] else w
                                  for k, w in c.params.items()})                  # w <- w - wd*rho_t*p*w
    return _stateless(update)


# --- Schedule-free AdamW (spec/schedule_free.md) ---------------------------------------------------

def schedule_free_adamw(beta1: float, beta2: float, eps: float, wd: float, decay_at: str | None, weighting: str,
                        warmup_form: str, warmup: int, r: float, power: float, decayed: Mapping[str, bool],
                        power_beta2: float | None = None, decay_of: Callable[[np.ndarray], np.ndarray] = lambda y: y,
                        x_recovery: str = "z_prev") -> Piece:
    """The params are y. lr_t = eta_t*lr_t*min(t/W, 1) ('from_one') or min((t-1)/W, 1) ('from_zero');
    v <- beta2*v + (1-beta2)*g^2, d = g/(sqrt(v/bc2) + eps) (+ wd*y, decay_at 'step');
    z <- z - lr_t*d; x_{t-1} = (y - (1-beta1)*z_{t-1})/beta1 (y shrunk by lr_t*wd first for 'y_shrink');
    x <- (1-c_t)*x_{t-1} + c_t*z; y <- (1-beta1)*z + beta1*x, c_t = 1/t ('uniform') or
    w_t/sum w_s with w_t = t^r*(max_{s<=t} lr_s)^power ('lr_power'), lr_s warmed by min(s/W, 1) whatever
    the step's warmup form (optax's weight reads its schedule at the 1-based count). States: z, v, x (the evaluation point),
    and per tensor the weight sum and the max lr. `x_recovery` 'z_next' recovers x_{t-1} from the updated z
    (Keras on TF). `power_beta2`: the beta2 of bc2 = 1 - beta2^t when a
    framework's power differs from its moment's (spec/tolerance.md, scalar precision)."""
    def init(params):
        return {"z": {k: np.array(p, dtype=p.dtype) for k, p in params.items()}, "v": _zeros(params),
                "x": {k: np.array(p, dtype=p.dtype) for k, p in params.items()},
                "weight_sum": {k: np.zeros((), dtype=p.dtype) for k, p in params.items()},
                "lr_max": {k: np.zeros((), dtype=p.dtype) for k, p in params.items()}}

    def update(c, state, ctx):
        t = ctx.t
        warm = 1.0 if warmup <= 0 else min((t if warmup_form == "from_one" else t - 1) / warmup, 1.0)
        lr = ctx.eta * ctx.lr * warm                                                  # warmed-up lr_t
        bc2 = 1.0 - (beta2 if power_beta2 is None else power_beta2) ** t
        new = {name: dict(tree) for name, tree in state.items()}
        params = {}
        for k, g in c.updates.items():
            y = c.params[k]
            if decay_at == "y_shrink" and decayed[k]:
                y = y - ctx.eta * ctx.lr * wd * decay_of(y)                           # y <- y - lr*wd*y (unwarmed)
            v = beta2 * state["v"][k] + (1.0 - beta2) * g * g                          # v_t
            d = g / (np.sqrt(v / bc2) + eps)                                           # g/(sqrt(v_hat) + eps)
            if decay_at == "step" and decayed[k]:
                d = d + wd * decay_of(c.params[k])                                     # + wd*y
            z_old = state["z"][k]
            z = z_old - lr * d                                                         # z step
            if weighting == "uniform":
                ck, lr_max, total = 1.0 / t, state["lr_max"][k], state["weight_sum"][k]
            else:
                lr_w = ctx.eta * ctx.lr * (1.0 if warmup <= 0 else min(t / warmup, 1.0))   # lr_t warmed from one
                lr_max = np.maximum(state["lr_max"][k], lr_w)                          # max_{s<=t} lr_s
                weight = float(t) ** r * lr_max ** power                               # w_t
                total = state["weight_sum"][k] + weight
                ck = weight / total if total else 0.0                                  # c_t
            z_seen = z_old if x_recovery == "z_prev" else z                            # z_prev: the algorithm
            x_old = (y - (1.0 - beta1) * z_seen) / beta1                               # x_{t-1} from y
            x = (1.0 - ck) * x_old + ck * z                                            # x_t
            params[k] = (1.0 - beta1) * z + beta1 * x                                  # y_t
            new["z"][k], new["v"][k], new["x"][k] = z, v, x
            new["lr_max"][k], new["weight_sum"][k] = np.asarray(lr_max), np.asarray(total)
        return replace(c, params=params), new
    return Piece(init, update)
