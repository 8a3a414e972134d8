"""Knob values -> chain of pieces. The chain order *is* the rule (see spec/knobs.toml).

Every family is built as

    rescale -> [coupled decay] -> clip -> [coupled decay] -> [decoupled shrink, order=before]
      -> family direction -> [decay in update + trust ratio] -> lr -> apply -> [decoupled shrink, order=after]

with the family direction and momentum placement chosen by the knobs. Nothing here branches on a
rule's name: a new variant is a new preset in spec/rules.toml.
"""
from __future__ import annotations

from typing import Any, Mapping

from . import pieces as P
from .rules import Rule, get_rule


def _direction(family: str, k: Mapping[str, str], hp: Mapping[str, Any], pw: Mapping[str, Any]) -> list[P.Piece]:
    """The family-specific part: gradient -> direction d (before lr scaling). `pw`: the betas of the
    bias-correction powers beta^t (normally the moments' betas; see `power_betas`)."""
    if family == "sgd":
        return []
    if family == "adagrad":
        return [P.accumulate_squares(hp["initial_accumulator_value"]),            # sum += g^2
                P.normalise(hp["eps"], k["eps_placement"], numerator="updates")]  # g / denom(sum)
    if family == "rmsprop":
        chain = [P.ema_moments(None, hp["rho"], hp["initial_accumulator_value"])]  # v <- rho*v + (1-rho)*g^2
        if hp["centered"]:
            chain.append(P.center_second(hp["rho"]))                                # v - g_avg^2
        if k["bias_correction"] == "on":
            chain.append(P.bias_correct(None, hp["rho"]))                           # v / (1 - rho^t)
        return chain + [P.normalise(hp["eps"], k["eps_placement"], numerator="updates")]
    if family == "adam":
        chain = [P.ema_moments(hp["beta1"], hp["beta2"])]                           # m, v
        if k["amsgrad"] == "raw":
            chain.append(P.running_max_second())                                    # max over raw v
        if k["bias_correction"] == "on":
            chain.append(P.bias_correct(pw["beta1"], pw["beta2"]))                  # m_hat, v_hat
        if k["amsgrad"] == "corrected":
            chain.append(P.running_max_second())                                    # max over v_hat
        return chain + [P.normalise(hp["eps"], k["eps_placement"])]                 # m_hat / denom(v_hat)
    if family == "nadam":
        return [P.ema_moments(hp["beta1"], hp["beta2"]),                            # m, v
                P.nesterov_first_moment(hp["beta1"], k["nadam_schedule"], hp.get("momentum_decay", 0.0)),
                P.bias_correct(None, pw["beta2"]),                                  # v_hat (m handled above)
                P.normalise(hp["eps"], k["eps_placement"])]
    if family == "radam":
        return [P.ema_moments(hp["beta1"], hp["beta2"]),
                P.bias_correct(pw["beta1"], pw["beta2"]),
                P.rectify(hp["beta2"], hp["eps"], k["eps_placement"], pw["beta2"])]
    if family == "adamax":
        return [P.ema_moments(hp["beta1"], None),                                   # m
                P.bias_correct(pw["beta1"], None),                                  # m_hat
                P.infinity_norm(hp["beta2"], hp["eps"], k["eps_placement"])]        # m_hat / u
    if family == "lion":
        return [P.lion_sign(hp["beta1"], hp["beta2"])]
    raise ValueError(f"no chain for family {family!r}")


def power_betas(hp: Mapping[str, Any], override: Mapping[str, float] | None) -> dict[str, float]:
    """The betas of the bias-correction powers beta^t (bc = 1 - beta^t, also in eps-hat, corrected_lr
    decay and the RAdam rectifier): the moments' betas, unless a precision model gives others
    (`override`, e.g. float32-rounded betas: spec/tolerance.md, "Scalar precision")."""
    out = {"beta1": hp.get("beta1", 0.0), "beta2": hp.get("beta2", 0.0)}
    out.update({k: float(v) for k, v in (override or {}).items() if k in out})
    return out


def _gradient_head(k: Mapping[str, str], hp: Mapping[str, Any], wd: float, decayed) -> list[P.Piece]:
    """The gradient's preparation every rule shares (spec/README.md steps 1-4): rescale -> [coupled decay,
    clipped with g] -> clip -> [coupled decay]."""
    chain: list[P.Piece] = []
    if hp["rescale_grad"] != 1.0:
        chain.append(P.rescale_grad(hp["rescale_grad"]))                           # g <- rescale*g
    if k["decay"] == "coupled" and k["clip_scope"] == "gradient_and_decay":
        chain.append(P.add_coupled_decay(wd, decayed))                             # g <- g + wd*w (clipped)
    chain.append(P.clip(hp["clip_value"], hp["clip_norm"], hp["clip_global_norm"]))
    if k["decay"] == "coupled" and k["clip_scope"] == "gradient":
        chain.append(P.add_coupled_decay(wd, decayed))                             # g <- g + wd*w
    return chain


def build_chain(rule: Rule, hp: Mapping[str, Any], names, powers: Mapping[str, float] | None = None,
                iteration: str | None = None) -> list[P.Piece]:
    """The chain of pieces for `rule` with fully resolved hyper-parameters `hp`; `powers` overrides the
    betas of the bias-correction powers (`power_betas`); `iteration` is the dtype a Muon Newton-Schulz
    iteration rounds to (a precision knob; None: exact)."""
    if rule.family == "muon":
        return _muon_chain(rule, hp, names, powers, iteration)
    if rule.family == "adafactor":
        return _adafactor_chain(rule, hp, names)
    if rule.family == "schedule_free":
        return _schedule_free_chain(rule, hp, names, power_betas(hp, powers)["beta2"])
    k = rule.knobs
    decay = k["decay"]
    decayed = P.decay_mask(names, tuple(hp.get("weight_decay_exclude") or ()), hp.get("weight_decay_mask"))
    wd = hp.get("weight_decay", 0.0)
    betas = power_betas(hp, powers)
    trust = k.get("trust_ratio") == "on"
    decay_in_update = (decay == "decoupled" and trust and k["trust_ratio_scope"] == "with_decay"
                       and k["decay_order"] == "before")
    momentum = k.get("momentum_form", "none")

    chain = _gradient_head(k, hp, wd, decayed)                                     # README steps 1-4
    if decay == "decoupled" and k["decay_order"] == "before" and not decay_in_update:
        chain.append(P.shrink_weights(wd, k["decay_scaling"], decayed, **betas))   # w <- w - s*w (pre-step)
    chain += _direction(rule.family, k, hp, betas)
    if decay_in_update:
        chain.append(P.add_decayed_weights(wd, k["decay_scaling"], decayed, **betas))                           # u <- d + wd*w
    if trust:
        chain.append(P.trust_ratio(hp["trust_lower_bound"], hp["trust_upper_bound"]))
    if momentum == "lr_outside":
        chain.append(_trace(hp, "momentum"))                                       # buffer in gradient units
    chain.append(P.scale_by_lr(hp.get("lr_decay", 0.0)))                           # u <- -eta*lr*u
    if momentum == "lr_inside":
        chain.append(_trace(hp, "velocity"))                                       # buffer holds -lr*d
    chain.append(P.apply_updates())                                                # w <- w + u
    if decay == "decoupled" and k["decay_order"] == "after":
        chain.append(P.shrink_weights(wd, k["decay_scaling"], decayed, **betas))   # w <- w - s*w (post-step)
    return chain


def _trace(hp: Mapping[str, Any], name: str) -> P.Piece:
    return P.trace(hp["momentum"], hp.get("dampening", 0.0), bool(hp.get("nesterov", False)), name)


#: Muon's step for tensors that are not 2-D (knob non_matrix): the preset whose maths it is, and how
#: Muon's hyper-parameters map onto that preset's.
FALLBACK_HP = {"beta1": "adam_beta1", "beta2": "adam_beta2", "eps": "adam_eps", "weight_decay": "adam_weight_decay"}


def _fallback_rule(kind: str, hp: Mapping[str, Any]) -> str:
    if kind == "adamw_eps_hat":
        return "adamw_eps_hat"                                                     # Keras' AdamW step
    if kind == "adamw_nesterov":                                                   # optax.adamw(nesterov=...)
        return "nadamw[nadam_schedule=none]" if hp["nesterov"] else "adamw"
    raise ValueError(f"unknown non_matrix {kind!r}")


def _muon_chain(rule: Rule, hp: Mapping[str, Any], names, powers: Mapping[str, float] | None,
                iteration: str | None) -> list[P.Piece]:
    """rescale -> clip (all tensors) -> partition: 2-D tensors [coupled decay | pre-step shrink] ->
    momentum -> Newton-Schulz -> shape scaling -> lr -> apply -> [post-step shrink]; the other tensors
    the `non_matrix` step (spec/muon.md)."""
    k = rule.knobs
    decay = k["decay"]
    decayed = P.decay_mask(names, tuple(hp.get("weight_decay_exclude") or ()), hp.get("weight_decay_mask"))
    wd = hp.get("weight_decay", 0.0)
    rate = hp.get("rms_rate", 0.0)
    chain: list[P.Piece] = []
    if hp["rescale_grad"] != 1.0:
        chain.append(P.rescale_grad(hp["rescale_grad"]))                           # g <- rescale*g
    chain.append(P.clip(hp["clip_value"], hp["clip_norm"], hp["clip_global_norm"]))
    matrix: list[P.Piece] = []
    if decay == "coupled":
        matrix.append(P.add_coupled_decay(wd, decayed))                            # g <- g + wd*w
    if decay == "decoupled" and k["decay_order"] == "before":
        matrix.append(P.muon_shrink(wd, k["decay_scaling"], decayed, k["shape_scaling"], rate))  # w <- w - s*w
    matrix += [P.muon_momentum(hp["momentum"], bool(hp["nesterov"]), k["muon_buffer"], k["bias_correction"] == "on"),
               P.newton_schulz(hp["ns_a"], hp["ns_b"], hp["ns_c"], int(hp["ns_steps"]), hp["eps"],
                               k["eps_placement"], iteration),                      # O = NS(b or look-ahead)
               P.scale_by_shape(k["shape_scaling"], rate),                          # u <- scale(shape)*O
               P.scale_by_lr(),                                                     # u <- -eta*lr*u
               P.apply_updates()]                                                   # w <- w + u
    if decay == "decoupled" and k["decay_order"] == "after":
        matrix.append(P.muon_shrink(wd, k["decay_scaling"], decayed, k["shape_scaling"], rate))  # post-step
    other: list[P.Piece] = []
    if k["non_matrix"] != "none":
        sub = {**hp, **{name: hp[muon_name] for name, muon_name in FALLBACK_HP.items()},
               "rescale_grad": 1.0, "clip_value": None, "clip_norm": None, "clip_global_norm": None}
        sub_powers = {name: powers[f"adam_{name}"] for name in ("beta1", "beta2") if f"adam_{name}" in (powers or {})}
        other = build_chain(get_rule(_fallback_rule(k["non_matrix"], hp)), sub, names, sub_powers or None)
    chain.append(P.partition(P.is_matrix, matrix, other))
    return chain


def _adafactor_chain(rule: Rule, hp: Mapping[str, Any], names) -> list[P.Piece]:
    """rescale -> [coupled decay] -> clip -> [coupled decay] -> [parameter scale of w] -> [pre-step shrink]
    -> [parameter scale of the shrunk w] -> factored RMS -> update clipping -> relative step -> apply ->
    [post-step shrink] (spec/adafactor.md)."""
    k = rule.knobs
    decay = k["decay"]
    decayed = P.decay_mask(names, tuple(hp.get("weight_decay_exclude") or ()), hp.get("weight_decay_mask"))
    wd = hp.get("weight_decay", 0.0)
    shrink = (P.shrink_by_relative_step(wd, k["step_size"], decayed) if k["decay_scaling"] == "relative_step"
              else P.shrink_weights(wd, k["decay_scaling"], decayed))
    chain = _gradient_head(k, hp, wd, decayed)                                     # README steps 1-4
    if k["param_scale"] == "pre_decay":
        chain.append(P.param_rms(hp["eps2"]))                                      # max(eps2, RMS(w_{t-1}))
    if decay == "decoupled" and k["decay_order"] == "before":
        chain.append(shrink)                                                       # w <- w - s*w (pre-step)
    if k["param_scale"] == "post_decay":
        chain.append(P.param_rms(hp["eps2"]))                                      # max(eps2, RMS(w'))
    chain += [P.factored_rms(hp["beta2_decay"], hp["eps"], k["eps_placement"], k["factor_dims"],
                             hp["min_dim_size_to_factor"]),                        # u = g/sqrt(V)
              P.clip_by_rms(hp["clip_threshold"]),                                 # u/max(1, RMS(u)/d)
              P.relative_step(k["step_size"]),                                     # u <- -rho_t*scale*u
              P.apply_updates()]                                                   # w <- w + u
    if decay == "decoupled" and k["decay_order"] == "after":
        chain.append(shrink)                                                       # w <- w - s*w (post-step)
    return chain


def _schedule_free_chain(rule: Rule, hp: Mapping[str, Any], names, power_beta2: float) -> list[P.Piece]:
    """rescale -> clip -> the schedule-free AdamW step (spec/schedule_free.md): the step writes y itself."""
    k = rule.knobs
    decayed = P.decay_mask(names, tuple(hp.get("weight_decay_exclude") or ()), hp.get("weight_decay_mask"))
    chain: list[P.Piece] = []
    if hp["rescale_grad"] != 1.0:
        chain.append(P.rescale_grad(hp["rescale_grad"]))                           # g <- rescale*g
    chain.append(P.clip(hp["clip_value"], hp["clip_norm"], hp["clip_global_norm"]))
    chain.append(P.schedule_free_adamw(hp["beta1"], hp["beta2"], hp["eps"], hp.get("weight_decay", 0.0),
                                       k["decay_at"] if k["decay"] == "decoupled" else None, k["sf_weighting"],
                                       k["warmup_form"], int(hp["warmup_steps"]), hp.get("r", 0.0),
                                       hp.get("weight_lr_power", 0.0), decayed, power_beta2,
                                       x_recovery=k["x_recovery"]))
    return chain
