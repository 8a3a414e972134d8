"""The tolerance model: how far a *correct* implementation in a given dtype may drift from the float64
golden trajectory after t steps (spec/tolerance.md has the derivation).

Per element, with u the unit roundoff of the dtype and w_s the golden trajectory, the bound follows
the error recurrence of one step (local rounding + propagation of the error already made):

    tol_0 = floor
    tol_t = (1 + L_t) * tol_{t-1} + u * (A*|w_t| + (K + t)*|w_t - w_{t-1}|)

- ``u*A*|w_t|``: each time the weight is rounded to the dtype it moves by at most u*|w| (half an ulp).
  A = 2 for the apply: the final store plus one intermediate weight-scale rounding, which real
  implementations make when they split the apply into two in-place operations or compute in a wider
  type before storing (double rounding); A = 3 when decoupled decay is a separate shrink w - s*w.
  (With A = 1 a perfect single-rounding implementation would already sit at 1.0 tolerance units after
  one step whenever |w| is at the bottom of its binade: the bound would have no slack at all.)
- ``u*(K + t)*|dw_t|``: computing the update takes at most K = 16 rounded operations, each contributing
  a relative error u of the update (the longest chain, NAdam: two EMAs (4 roundings), the look-ahead
  terms (4), bias correction (1), sqrt (1), eps add (1), divide (1), lr scale (1), decay (2), apply (1));
  and the positive accumulator the update is normalised by (v, the AdaGrad sum, the Adamax u) is itself
  rounded at every step: its relative error grows by at most 2u per step, i.e. u per step after the
  square root, so after t steps the update carries up to t*u more;
- ``L_t``: how much an error already in w changes the next update. Gradients are recorded (open
  loop), so the update ignores w unless the rule reads it: L = 0 for no decay and for decoupled decay
  (its shrink only contracts errors); for coupled decay and for a trust ratio the update is at most
  proportional to w, so L_t = ||dw_t|| / ||w_{t-1}||, the relative step of the tensor;
- floor = the dtype's smallest normal number, so an element that is exactly 0 all along tolerates
  only underflow-level noise.

Errors are reported in tolerance units (|native - golden| / tol; <= 1 conforms) and in ULPs of the
dtype at the golden value.
"""
from __future__ import annotations

import functools

import numpy as np

#: Unit roundoff u = 2^-p (p = significand bits incl. the implicit one) per dtype name.
UNIT_ROUNDOFF = {
    "float64": 2.0 ** -53,
    "float32": 2.0 ** -24,
    "float16": 2.0 ** -11,
    "bfloat16": 2.0 ** -8,
}
#: Smallest positive normal number per dtype name.
TINY = {"float64": 2.0 ** -1022, "float32": 2.0 ** -126, "float16": 2.0 ** -14, "bfloat16": 2.0 ** -126}
#: Bits of significand (incl. the implicit bit) per dtype name, for ULP reporting.
SIGNIFICAND_BITS = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}
#: K: rounded operations per step in the update computation (see module docstring).
OPS_PER_STEP = 16


def rule_terms(knobs) -> tuple[int, bool]:
    """(A, feedback) for a rule's knob values: A weight-scale roundings per step (2 for the apply, 3 with a
    decoupled shrink, 10-11 for schedule-free's three sequences), and whether the
    update reads w (coupled decay, a trust ratio, Adafactor's parameter scale), which propagates earlier
    errors."""
    weight_roundings = 3 if knobs.get("decay") == "decoupled" else 2
    if "sf_weighting" in knobs:
        # schedule-free: y is rebuilt from three weight-scale sequences every step: the z step (1), x_{t-1}
        # recovered from y and z ((1-beta1)*z, the difference, the quotient by beta1: 3), the average of x
        # (two products and a sum: 3), y's interpolation (3); a shrink of y adds one (spec/schedule_free.md)
        weight_roundings = 10 + (knobs.get("decay") == "decoupled" and knobs.get("decay_at") == "y_shrink")
    feedback = (knobs.get("decay") == "coupled" or knobs.get("trust_ratio") == "on"
                or knobs.get("param_scale", "none") != "none")      # Adafactor: the step is proportional to RMS(w)
    return weight_roundings, feedback


#: Error of a power beta^t computed in the parameter dtype, in ulps of the result: pow() correctly
#: rounded (half an ulp). The rounding of beta itself is not in this bound: the reference models it
#: exactly (compare.power_betas). A pow that is off by more shows as a precision deviation.
POWER_ULPS = 0.5
#: Which betas each family raises to the power t, and the exponent with which the update depends on
#: 1 - beta^t (m_hat = m/bc1: 1; sqrt(v_hat) = sqrt(v/bc2): 1/2).
_POWER_WEIGHTS = {"adam": {"beta1": 1.0, "beta2": 0.5}, "radam": {"beta1": 1.0, "beta2": 0.5},
                  "nadam": {"beta2": 0.5}, "adamax": {"beta1": 1.0},
                  # Muon: the AdamW step of its non-2-D tensors (knob non_matrix)
                  "muon": {"adam_beta1": 1.0, "adam_beta2": 0.5},
                  "schedule_free": {"beta2": 0.5}}


def power_conditioning(knobs, family: str, betas, steps: int) -> np.ndarray:
    """kappa_t (t = 1..T): the relative error of the update, in units of u, that the bias-correction
    scalars bring when the native run computes them in its parameter dtype (spec/tolerance.md,
    "Scalar precision"). A power p = beta^t computed within POWER_ULPS ulps, ulp(p) = 2u*2^floor(log2 p),
    makes bc = 1 - p wrong by POWER_ULPS*ulp(p)/(1 - p) relative (1 - p itself is exact for p >= 1/2,
    Sterbenz), and the update depends on bc with the exponent of `_POWER_WEIGHTS`:

        kappa_t = sum_beta weight_beta * POWER_ULPS * 2*2^floor(log2 beta^t) / (1 - beta^t)

    Zero for rules without bias correction (and without corrected_lr decay scaling), and with a trust
    ratio: the step lr*||w||*d/||d|| is invariant to a common scalar factor on d, so the error of the
    scalars cancels (up to its share through eps and decay inside the ratio, which a correct pow makes
    second order). NAdam's momentum schedule adds `schedule_conditioning`."""
    kappa = schedule_conditioning(knobs, betas, steps) if family == "nadam" else np.zeros(steps)
    uses_powers = knobs.get("bias_correction", "on") == "on" or knobs.get("decay_scaling") == "corrected_lr"
    if family == "muon":        # the AdamW step of the non-2-D tensors (its momentum's powers: newton_schulz_conditioning)
        uses_powers = knobs.get("non_matrix", "none") != "none"
    if not uses_powers or knobs.get("trust_ratio") == "on":
        return kappa
    ts = np.arange(1, steps + 1, dtype=np.float64)
    for name, weight in _POWER_WEIGHTS.get(family, {}).items():
        beta = float(betas.get(name, 0.0))
        if 0.0 < beta < 1.0:
            p = beta ** ts
            ulp_in_u = 2.0 * 2.0 ** np.floor(np.log2(p))                 # ulp(p) / u
            kappa += weight * POWER_ULPS * ulp_in_u / (1.0 - p)
    return kappa


def schedule_conditioning(knobs, hp, steps: int) -> np.ndarray:
    """kappa_t of NAdam's momentum schedule computed in the parameter dtype (spec/nadam_radam_adamax_lion.md):
    mu_t = beta1*(1 - 0.5*q^(t*psi)), q = 0.96, P_t = mu_1*...*mu_t, and the Nesterov step
    m_hat = mu_{t+1}*m/(1 - P_{t+1}) + (1 - mu_t)*g/(1 - P_t). With q and q^(t*psi) rounded,
    mu_t is off by d_mu(t) <= (t*psi + 2*POWER_ULPS)*u relative (0.5q^s/(1 - 0.5q^s) <= 1), P_t by
    d_P(t) <= sum_{i<=t} (d_mu(i) + u), and the step by

        kappa_t = d_mu(t+1) + P_{t+1}/(1-P_{t+1})*d_P(t+1) + mu_t/(1-mu_t)*d_mu(t) + P_t/(1-P_t)*d_P(t)

    in units of u. Zero without the schedule."""
    if knobs.get("nadam_schedule") != "dozat":
        return np.zeros(steps)
    beta1, psi = float(hp.get("beta1", 0.9)), float(hp.get("momentum_decay", 0.004))
    ts = np.arange(1, steps + 2, dtype=np.float64)                     # t = 1..T+1
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (ts * psi))
    d_mu = ts * psi + 2.0 * POWER_ULPS
    prod, d_prod = np.cumprod(mu), np.cumsum(d_mu + 1.0)
    cond_p = prod / (1.0 - prod)
    now, nxt = slice(0, steps), slice(1, steps + 1)
    return d_mu[nxt] + cond_p[nxt] * d_prod[nxt] + mu[now] / (1.0 - mu[now]) * d_mu[now] + cond_p[now] * d_prod[now]


#: Muon's Newton-Schulz iteration: roundings per iteration besides the matrix products' inner sums
#: (b*A, c*A^2, their sum, a*X, the final sum) and of the normalisation X/(||X|| + eps).
NS_EXTRA_ROUNDINGS = 4


def _poly_max(coeffs_low_first, lo: float, hi: float) -> float:
    """max |p(x)| on [lo, hi] for a polynomial (coefficients from the constant term up): at the ends
    or where p' = 0."""
    p = np.polynomial.Polynomial(coeffs_low_first)
    xs = [lo, hi] + [float(r.real) for r in p.deriv().roots() if abs(r.imag) < 1e-12 and lo <= r.real <= hi]
    return max(abs(float(p(x))) for x in xs)


def newton_schulz_conditioning(knobs, hp, shape) -> float:
    """kappa of Muon's Newton-Schulz iteration for an r x c matrix (0 for anything else): the error of
    the orthogonalised update, in units of u*||dw_t||_F, that a correct implementation rounding in its
    dtype may make (spec/tolerance.md, "Newton-Schulz"). First order: the normalisation (iteration 0) and
    each of the k iterations X <- phi(X) = a*X + b*(XX^T)X + c*(XX^T)^2 X round with a relative error of
    at most (d + NS_EXTRA_ROUNDINGS)*u of the iterate (gamma_d of a product with inner dimension
    d <= max(r, c), plus the sums and scalings); a later iteration amplifies an error by at most
    Lambda_j = max over [0, s_j] of |phi'(s)| and |phi(s)/s| (the Frechet derivative of a singular-value
    map is bounded by the divided differences of phi), s_0 = 1 (the Frobenius normalisation bounds the
    spectral norm) and s_{j+1} = max over [0, s_j] of |phi|. So

        kappa = (d + NS_EXTRA_ROUNDINGS) * sum_{j=0..k} prod_{i=j..k-1} Lambda_i."""
    if "shape_scaling" not in knobs or len(shape) != 2 or 0 in shape:
        return 0.0
    a, b, c = (float(hp.get(k, d)) for k, d in (("ns_a", 3.4445), ("ns_b", -4.775), ("ns_c", 2.0315)))
    return _ns_kappa(a, b, c, int(hp.get("ns_steps", 5)), max(shape))


@functools.lru_cache(maxsize=256)
def _ns_kappa(a: float, b: float, c: float, steps: int, inner: int) -> float:
    phi = [0.0, a, 0.0, b, 0.0, c]                                   # a s + b s^3 + c s^5
    dphi = [a, 0.0, 3 * b, 0.0, 5 * c]                               # phi'(s)
    ratio = [a, 0.0, b, 0.0, c]                                      # phi(s)/s
    bound, lambdas = 1.0, []
    for _ in range(steps):
        lambdas.append(max(_poly_max(dphi, 0.0, bound), _poly_max(ratio, 0.0, bound)))
        bound = max(bound, _poly_max(phi, 0.0, bound))
    total = sum(float(np.prod(lambdas[j:])) for j in range(steps + 1))
    return (inner + NS_EXTRA_ROUNDINGS) * total


def tolerance(golden: np.ndarray, dtype: str, knobs=None, conditioning: np.ndarray | None = None,
              hp=None) -> np.ndarray:
    """Elementwise tolerance for one tensor's golden trajectory of shape (T+1, *shape); same shape.

    `knobs`: the rule's knob values (Rule.knobs); None = the open-loop, single-rounding case.
    `conditioning`: kappa_t per step (power_conditioning) when the native run computes its
    bias-correction scalars in the parameter dtype: the local term gains u*kappa_t*|dw_t|.
    `hp`: the run's hyper-parameters, read by rules whose update mixes a tensor's elements (Muon's
    Newton-Schulz coefficients and steps): every element's local term gains
    u*newton_schulz_conditioning*||dw_t||_F (whole-tensor norm)."""
    if dtype not in UNIT_ROUNDOFF:
        raise ValueError(f"no tolerance model for dtype {dtype!r}; known: {sorted(UNIT_ROUNDOFF)}")
    golden = np.asarray(golden, dtype=np.float64)
    u = UNIT_ROUNDOFF[dtype]
    weight_roundings, feedback = rule_terms(knobs or {})
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        steps = np.abs(np.diff(golden, axis=0))                                       # |dw_t|, t = 1..T
        ts = np.arange(1, golden.shape[0]).reshape((-1,) + (1,) * (golden.ndim - 1))
        ops = OPS_PER_STEP + ts
        if conditioning is not None:
            ops = ops + np.asarray(conditioning, dtype=np.float64).reshape(ts.shape)      # + kappa_t
        local = u * (weight_roundings * np.abs(golden[1:]) + ops * steps)              # roundings at t
        mixing = newton_schulz_conditioning(knobs or {}, hp or {}, golden.shape[1:])
        if mixing:
            norms = np.sqrt(np.sum(steps.reshape(steps.shape[0], -1) ** 2, axis=1))      # ||dw_t||_F
            local = local + u * mixing * norms.reshape(ts.shape)
        local = np.where(np.isfinite(local), local, 0.0)
        gains = np.zeros(golden.shape[0] - 1)
        if feedback:
            flat = golden.reshape(golden.shape[0], -1)
            norms = np.linalg.norm(flat[:-1], axis=1)                                   # ||w_{t-1}||
            moves = np.linalg.norm(np.diff(flat, axis=0), axis=1)                       # ||dw_t||
            gains = np.where((norms > 0) & np.isfinite(moves / norms), moves / norms, 0.0)
        growth = np.cumprod(1.0 + gains).reshape(ts.shape)                              # G_t = prod (1 + L_s)
        # tol_t = G_t * (floor + sum_{s<=t} local_s / G_s): the recurrence tol_t = (1+L_t) tol_{t-1} + local_t
        tol_rest = growth * (TINY[dtype] + np.cumsum(local / growth, axis=0))
    return np.concatenate([np.full_like(golden[:1], TINY[dtype]), tol_rest])


def error_units(native: np.ndarray, golden: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """|native - golden| / tol; NaN where exactly one side is NaN counts as infinite error, NaN on
    both sides (IEEE propagation both ways) as zero."""
    native = np.asarray(native, dtype=np.float64)
    golden = np.asarray(golden, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(native - golden) / tol
    both_nan = np.isnan(native) & np.isnan(golden)
    same_inf = np.isinf(native) & (native == golden)
    err = np.where(both_nan | same_inf, 0.0, err)
    return np.where(np.isnan(err), np.inf, err)


def ulps(native: np.ndarray, golden: np.ndarray, dtype: str) -> np.ndarray:
    """|native - golden| in units in the last place of `dtype` at the golden value."""
    golden = np.asarray(golden, dtype=np.float64)
    exponent = np.floor(np.log2(np.maximum(np.abs(golden), TINY[dtype])))
    ulp = 2.0 ** (exponent - (SIGNIFICAND_BITS[dtype] - 1))
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(np.asarray(native, dtype=np.float64) - golden) / ulp
