"""Step-time benchmark of native optimizers against the memory roofline measured in the same run.

What is timed: one native optimizer step and nothing else (parameters, gradients and optimizer state
are made and warmed up first), with the device synchronised inside the timed region, for every
implementation variant a framework exposes (torch: for-loop / foreach / fused / ``torch.compile``d
step), per rule (AdamW first, then SGD momentum, Adam, Adagrad, LAMB where the framework has it), per
size and per parameter layout (one flat tensor, or BERT-base's 199-tensor list: bench_layouts).

Correctness gate: a configuration is timed only after a short conformance check of that exact case
passes (`runner.run_case` on float32, on the benchmark's device; torch.compile'd steps run a cheaper
subset of two constant-lr goldens because every optimizer instance compiles). Rows are compared only
within one rule (semantics-normalised): the table has one section per rule.

The limit: bytes/param of the rule (spec/bandwidth.toml)
divided by a stream bandwidth measured in the same run, on the same device, at the same size, over
the same number of arrays: single-pass in-place ``w += r`` kernels, one per array the rule writes
(each moves 12 B/element in float32, counted as read+read+write, no write-allocate), re-measured
right before every row (on a shared machine the bandwidth drifts within minutes). Every row reads
"achieved GB/s (bytes/param x params / median step), % of limit". Fixed per-step and per-tensor
overheads are fitted by weighted least squares, t = a + b*tensors + c*params, over sizes and layouts.

Method: first step (state allocation, compile/jit) timed separately; ``warmup`` steps; ``repeats``
samples (steps shorter than 100 us are repeated inside a sample and the sample divided); median and
IQR; threads pinned on CPU (os.sched_setaffinity to the first `threads` CPUs of the current affinity,
the framework's thread setting, OMP_PROC_BIND=true when set before the framework loads); peak memory
where the framework reports it (torch.cuda.max_memory_allocated; n/a on CPU).

Frameworks plug in through a `Stepper` (`Stepper.build` times the adapter's own `Driver.step`; a
stream probe on the framework's own arrays; a bare timing loop), returned by `Adapter.stepper()`
(adapters/<framework>/bench.py) or registered under the entry-point group ``optconform.steppers``.
"""
from __future__ import annotations

import gc
import importlib
import json
import math
import os
import platform
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import metadata, resources
from typing import Any, Callable, Sequence

import numpy as np

from optconform.adapters.base import Adapter, Case, RunInput

from . import bench_layouts
from optconform.golden.fsio import atomic_write

#: rules in the order the benchmark runs them by default
DEFAULT_RULES = ("adamw", "sgd_momentum", "adam", "adagrad", "lamb")
DEFAULT_SIZES = {"cpu": (1e5, 1e6, 1e7, 1e8), "cuda": (1e5, 1e6, 1e7, 1e8, 1e9)}
DEFAULT_LAYOUTS = ("flat", "bert-base")
GROUP = "optconform.steppers"
#: a sample lasts at least this long (steps shorter than this are repeated inside one sample)
MIN_SAMPLE_S = 1e-4
SCHEMA = "optconform-bench/1"
#: gate verdicts whose configurations are timed: conforms, or a registered known deviation (xfail,
#: documented in adapters/<framework>/deviations.toml, marked in the table)
TIMED_VERDICTS = ("conforms", "xfail")


# ----------------------------------------------------------------------------------------------
# bytes per parameter

def bandwidth_table() -> dict[str, dict[str, Any]]:
    """spec/bandwidth.toml: rule -> {reads, writes, bytes_fp32, note}."""
    text = resources.files("optconform.spec").joinpath("bandwidth.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)["rules"]


def traffic(rule: str, itemsize: int = 4) -> dict[str, Any]:
    """Bytes/param and the arrays of `rule` (a derived rule `preset[...]` uses its preset's entry)."""
    table = bandwidth_table()
    base = rule.split("[", 1)[0]
    if base not in table:
        raise ValueError(f"no bytes-per-param entry for rule {rule!r} in spec/bandwidth.toml")
    entry = table[base]
    arrays = list(dict.fromkeys(entry["reads"] + entry["writes"]))
    written = list(dict.fromkeys(entry["writes"]))
    return {"rule": base, "bytes_per_param": entry["bytes_fp32"] * itemsize // 4, "arrays": arrays,
            "written": written, "read_only": [a for a in arrays if a not in written]}


def case_traffic(case_rule: str, requested: str, itemsize: int = 4) -> dict[str, Any]:
    """Bytes/param of a case's own rule; a stepper may answer a requested rule with a framework's
    counterpart (Keras AdamW, rule adamw_eps_hat, for --rule adamw): the row is filed under the case's
    rule, and a counterpart rule without its own spec/bandwidth.toml entry takes the requested rule's
    (the stepper vouches that it reads and writes the same per-parameter arrays)."""
    try:
        return traffic(case_rule, itemsize)
    except ValueError:
        return traffic(requested, itemsize)


# ----------------------------------------------------------------------------------------------
# the stepper interface

@dataclass
class Built:
    """A native optimizer ready to step: `step()` runs one step (no sync), `sync()` waits for the device."""
    step: Callable[[], None]
    sync: Callable[[], None]
    n_params: int
    n_tensors: int
    native: Any = None                               # the native optimizer (for the bare loop)
    reset_memory: Callable[[], None] | None = None
    memory: Callable[[], dict[str, float]] | None = None   # {"peak_MB", "resident_MB"} or None (n/a)
    close: Callable[[], None] = lambda: None
    bytes_per_call: float = 0.0                      # stream probes: bytes one step() moves


class Stepper:
    """Per-framework benchmark plumbing. Subclass and implement `build` and `stream` (and `bare_loop`
    where the plainest native loop is not `built.step` + `built.sync`)."""
    framework = ""
    #: variants whose harness overhead is measured against a bare loop
    overhead_variants: tuple[str, ...] = ("fused",)

    def __init__(self, adapter: Adapter):
        self.adapter = adapter

    @property
    def module(self):
        """The framework's module, as the adapter imports it."""
        return self.adapter.load()

    # cases -------------------------------------------------------------------------------------
    def native_device(self, device: str) -> str:
        """The name `Case.devices` uses for `device` (cpu / cuda)."""
        return device

    def bench_cases(self, rule: str, device: str) -> list[Case]:
        """Every variant of the plainest case claiming `rule` (fewest fixed kwargs/hp)."""
        dev = self.native_device(device)
        cases = [c for c in self.adapter.cases() if c.rule == rule and dev in c.devices and "float32" in c.dtypes]
        if not cases:
            return []
        order = list(dict.fromkeys(c.name for c in cases))
        cost = {n: min(len(c.kwargs) + len(c.fixed_hp) for c in cases if c.name == n) for n in order}
        name = min(order, key=lambda n: (cost[n], order.index(n)))
        return [c for c in cases if c.name == name]

    def gate_goldens(self, case: Case):
        """Goldens for the correctness gate (None: every golden the case can express)."""
        return None

    # framework hooks ----------------------------------------------------------------------------
    def pin_threads(self, threads: int) -> Callable[[], None]:
        """Apply the framework's thread setting; return a function that restores it."""
        return lambda: None

    def build(self, case: Case, shapes: bench_layouts.Shapes, device: str, dtype: str,
              hp: dict[str, Any], seed: int = 0) -> Built:
        """The adapter's own driver for `case` (the one the conformance run uses), at random parameters
        and gradients of `shapes`; `Built.step` is `Driver.step` and nothing else."""
        inp = bench_input(shapes, hp, seed)
        with self.adapter.context(device, dtype):
            driver = self.adapter.driver(case, inp, device, dtype)
            grads = driver.native_grads(bench_grads(shapes, seed))
        lr = inp.lr[0]

        def step() -> None:
            driver.step(grads, lr, 1.0)

        reset, memory = self.memory_probe(device)
        return Built(step=step, sync=self.sync(device, driver), n_params=sum(math.prod(s) for s in shapes),
                     n_tensors=len(shapes), native=driver, reset_memory=reset, memory=memory)

    def sync(self, device: str, driver) -> Callable[[], None]:
        """Wait until the driver's last step has finished on `device`."""
        return lambda: None

    def memory_probe(self, device: str):
        """(reset, read) of the framework's peak-memory statistics on `device`, or (None, None)."""
        return None, None

    def stream(self, n: int, arrays: int, written: int, device: str, dtype: str) -> Built:
        """The limit kernel: `arrays` arrays of n elements, one in-place single-pass update per written array."""
        raise NotImplementedError

    def bare_loop(self, built: Built, n: int) -> list[float]:
        """n per-step seconds from the plainest possible loop (perf_counter, native step, native sync),
        to measure the harness overhead; steppers whose native call differs from `built.step` override it."""
        return samples(built.step, built.sync, n)

    def environment(self, device: str) -> dict[str, Any]:
        return {}


def stepper_frameworks() -> list[str]:
    """Every known framework that has a benchmark stepper (its framework is not imported)."""
    from optconform import registry
    names = []
    for name in registry.adapter_names():
        try:
            get_stepper(name, registry.load_adapter(name))
        except (LookupError, ImportError, TypeError):
            continue
        names.append(name)
    return names


def get_stepper(framework: str, adapter: Adapter) -> Stepper:
    """The stepper for `framework`: the adapter's own (`Adapter.stepper`), else one registered under
    the entry-point group ``optconform.steppers``."""
    own = adapter.stepper()
    if own is not None:
        return own
    try:
        targets = {ep.name: ep.value for ep in metadata.entry_points(group=GROUP)}
    except Exception:       # a broken distribution's metadata must not break discovery
        targets = {}
    if framework not in targets:
        raise LookupError(f"no benchmark stepper for framework {framework!r} yet (steppers: {', '.join(sorted(targets))}); "
                          f"add one under the entry-point group {GROUP!r}")
    module, _, attr = targets[framework].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls(adapter)


def bench_input(shapes: bench_layouts.Shapes, hp: dict[str, Any], seed: int = 0) -> RunInput:
    """Random float32 parameters of `shapes` (names p0, p1, ...), constant lr hp["lr"], no eta."""
    rng = np.random.default_rng(seed)
    names = tuple(f"p{i}" for i in range(len(shapes)))
    params = {n: rng.standard_normal(shape, dtype=np.float32) for n, shape in zip(names, shapes)}
    return RunInput(tensors=names, params0=params, grads=(), lr=(float(hp["lr"]),), eta=(1.0,),
                    hp={k: v for k, v in hp.items() if k != "lr"})


def bench_grads(shapes: bench_layouts.Shapes, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 gradients of `shapes`, 1e-3 times a standard normal."""
    rng = np.random.default_rng(seed + 1)
    return {f"p{i}": rng.standard_normal(shape, dtype=np.float32) * np.float32(1e-3) for i, shape in enumerate(shapes)}


def bench_hp(case: Case) -> dict[str, Any]:
    """Canonical hyper-parameters the benchmark uses: the rule's defaults the case can take (lr apart)."""
    from optconform.reference import get_rule
    defaults = get_rule(case.rule).defaults
    hp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in defaults.items()
          if k in case.hp_map and k not in ("lr", "eta")}
    hp["lr"] = float(defaults.get("lr", 1e-3))
    return hp


# ----------------------------------------------------------------------------------------------
# timing

def samples(step: Callable[[], None], sync: Callable[[], None], repeats: int, inner: int = 1) -> list[float]:
    """`repeats` samples of seconds per step; the device sync is inside each timed sample."""
    pc = time.perf_counter
    out = []
    if inner == 1:
        for _ in range(repeats):
            t0 = pc()
            step()
            sync()
            out.append(pc() - t0)
        return out
    loop = range(inner)
    for _ in range(repeats):
        t0 = pc()
        for _ in loop:
            step()
        sync()
        out.append((pc() - t0) / inner)
    return out


@dataclass
class Timing:
    first_s: float
    samples: list[float]
    inner: int

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @property
    def best(self) -> float:
        return float(np.min(self.samples))


def measure(step: Callable[[], None], sync: Callable[[], None], repeats: int = 25, warmup: int = 5,
            min_sample_s: float = MIN_SAMPLE_S) -> Timing:
    """First step timed alone (allocation, compile/jit), `warmup` steps, then `repeats` samples."""
    pc = time.perf_counter
    t0 = pc()
    step()
    sync()
    first = pc() - t0
    for _ in range(warmup):
        step()
        sync()
    t0 = pc()
    step()
    sync()
    est = max(pc() - t0, 1e-7)
    inner = 1 if est >= min_sample_s else min(1000, math.ceil(min_sample_s / est))
    return Timing(first, samples(step, sync, repeats, inner), inner)


def harness_overhead(stepper: Stepper, built: Built, repeats: int, inner: int, blocks: int = 3) -> dict[str, float]:
    """Harness vs a bare perf_counter loop on the same step, interleaved in blocks (drift cancels)."""
    harness, bare = [], []
    for _ in range(blocks):
        harness += samples(built.step, built.sync, repeats, inner)
        bare += stepper.bare_loop(built, repeats)
    h, b = float(np.median(harness)), float(np.median(bare))
    return {"harness_median_s": h, "bare_median_s": b, "overhead_pct": 100.0 * (h - b) / b}


# ----------------------------------------------------------------------------------------------
# the run

@dataclass
class BenchConfig:
    framework: str = "torch"
    rules: Sequence[str] = ("adamw",)
    variants: Sequence[str] | None = None
    device: str = "cpu"
    sizes: Sequence[float | None] | None = None      # None in the list = the layout's native size
    layouts: Sequence[str] = ("flat",)
    repeats: int = 25
    warmup: int = 5
    threads: int | None = None
    dtype: str = "float32"
    overhead: bool = True
    time_deviating: bool = False     # also time configurations whose gate fails (marked in the table)
    cpus: Sequence[int] | None = None   # CPUs to pin within (default: the process affinity at run())


@dataclass
class Row:
    framework: str
    version: str
    rule: str
    case: str
    variant: str
    device: str
    layout: str
    n_params: int
    n_tensors: int
    bytes_per_param: int
    gate: str                      # conforms / deviates / xfail / error ... (timed only if conforms)
    gate_detail: str = ""
    gate_goldens: int = 0
    median_s: float | None = None
    iqr_s: float | None = None
    best_s: float | None = None
    iqr_over_median: float | None = None
    first_step_s: float | None = None
    compile_s: float | None = None            # first step minus the steady-state median
    inner: int | None = None
    repeats: int | None = None
    achieved_GBps: float | None = None
    Gparam_per_s: float | None = None
    limit_GBps: float | None = None           # stream bandwidth of the same-run probe
    limit_s: float | None = None              # bytes_per_param * params / limit_GBps
    pct_of_limit: float | None = None
    peak_MB: float | None = None              # None: the framework does not report it (n/a)
    resident_MB: float | None = None
    overhead: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def timed(self) -> bool:
        return self.median_s is not None


def _affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _allocator() -> str:
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            maps = fh.read()
    except OSError:
        return "unknown"
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if name in maps:
            return name
    return "glibc" if "libc" in maps else "unknown"


def environment(stepper: Stepper, device: str, threads: int, pinned: list[int] | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("OMP_", "MKL_", "MALLOC_", "XLA_", "TF_", "KMP_", "GOMP_")) or k == "LD_PRELOAD"}
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(), "threads": threads, "pinned_cpus": pinned, "allocator": _allocator(),
            "env": env, "device": device, **stepper.environment(device)}


def _gate(stepper: Stepper, case: Case, device: str, version: str) -> tuple[str, str, int]:
    from optconform import runner
    goldens = stepper.gate_goldens(case)
    res = runner.run_case(stepper.adapter, case, stepper.native_device(device), "float32", version, goldens)
    detail = res.error or res.first_divergence or (f"worst {res.worst_units:.2g} tolerance units" if res.goldens_run else "")
    return res.verdict, detail, res.goldens_run


def run(config: BenchConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the results document (rows, limits, fits, environment)."""
    from optconform import registry
    log = log or (lambda msg: None)
    sizes = list(config.sizes) if config.sizes else list(DEFAULT_SIZES.get(config.device, DEFAULT_SIZES["cpu"]))
    itemsize = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}[config.dtype]
    # pin before the framework loads: its OpenMP runtime then starts inside the pinned set
    # (with OMP_PROC_BIND=true it binds one thread per CPU of that set)
    original = _affinity()
    allowed = sorted(config.cpus) if config.cpus else original
    threads = config.threads or (len(allowed) if allowed else (os.cpu_count() or 1))
    pinned = None
    if allowed and config.device == "cpu":
        pinned = allowed[:threads]
        os.sched_setaffinity(0, pinned)
    restore_threads = lambda: None  # noqa: E731
    rows: list[Row] = []
    limits: list[tuple[tuple[int, int, int], Timing, float]] = []
    started = time.perf_counter()
    try:
        adapter = registry.load_adapter(config.framework)
        adapter.load()
        version = adapter.version()
        if config.device not in adapter.devices():
            raise LookupError(f"--device {config.device}: {config.framework} sees no such device here "
                              f"(devices: {', '.join(adapter.devices())})")
        stepper = get_stepper(config.framework, adapter)
        restore_threads = stepper.pin_threads(threads)
        env = environment(stepper, config.device, threads, pinned)
        env["main_thread_affinity"] = _affinity()
        for rule in config.rules:
            traffic(rule, itemsize)
            cases = stepper.bench_cases(rule, config.device)
            if config.variants:
                cases = [c for c in cases if c.variant in config.variants]
            if not cases:
                log(f"{config.framework}: no case for rule {rule!r}" + (f" with variants {list(config.variants)}" if config.variants else ""))
                continue
            for case in cases:
                tr = case_traffic(case.rule, rule, itemsize)
                verdict, detail, ngold = _gate(stepper, case, config.device, version)
                log(f"gate {case.id} {config.device} float32: {verdict} ({ngold} goldens)")
                for layout in config.layouts:
                    for size in sizes:
                        shapes = bench_layouts.layout(layout, None if size is None else int(size))
                        n = bench_layouts.numel(shapes)
                        row = Row(framework=config.framework, version=version, rule=case.rule, case=case.id,
                                  variant=case.variant, device=config.device, layout=layout, n_params=n,
                                  n_tensors=len(shapes), bytes_per_param=tr["bytes_per_param"], gate=verdict,
                                  gate_detail=detail, gate_goldens=ngold)
                        rows.append(row)
                        if verdict not in TIMED_VERDICTS and not config.time_deviating:
                            continue
                        try:
                            _time_row(stepper, config, case, shapes, row, tr, limits)
                        except Exception as exc:       # one failing configuration is a row, not a crash
                            row.error = f"{type(exc).__name__}: {exc}"
                        gc.collect()
                        log(_row_line(row))
    finally:
        restore_threads()
        if pinned is not None and original:
            os.sched_setaffinity(0, original)
    rows_json = [asdict(r) for r in rows]
    return {"schema": SCHEMA, "framework": config.framework, "version": version, "environment": env,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
            "rows": rows_json, "fits": fit_overheads(rows_json),
            "limits": [{"n_params": k[0], "arrays": k[1], "written": k[2], "median_s": t.median,
                        "GBps": b / t.median / 1e9, "iqr_over_median": t.iqr / t.median}
                       for k, t, b in limits],
            "seconds": time.perf_counter() - started}


def _limit(stepper: Stepper, config: BenchConfig, n: int, tr: dict, limits: dict) -> float:
    """Stream GB/s over the rule's arrays at n elements. `limits` caches by key; run() passes a fresh
    dict per row, so the probe runs right before the step it bounds (shared CPUs drift in minutes)."""
    key = (n, len(tr["arrays"]), len(tr["written"]))
    if key not in limits:
        probe = stepper.stream(n, key[1], key[2], config.device, config.dtype)
        try:
            limits[key] = (measure(probe.step, probe.sync, config.repeats, config.warmup), probe.bytes_per_call)
        finally:
            probe.close()
            del probe
            gc.collect()
    timing, nbytes = limits[key]
    return nbytes / timing.median / 1e9


def _time_row(stepper: Stepper, config: BenchConfig, case: Case, shapes, row: Row, tr: dict, limits: list) -> None:
    fresh: dict = {}
    limit_gbps = _limit(stepper, config, row.n_params, tr, fresh)
    limits.extend((k, t, b) for k, (t, b) in fresh.items())
    built = stepper.build(case, shapes, config.device, config.dtype, bench_hp(case))
    try:
        if built.reset_memory:
            built.reset_memory()
        t = measure(built.step, built.sync, config.repeats, config.warmup)
        mem = built.memory() if built.memory else None
        if config.overhead and case.variant in stepper.overhead_variants:
            row.overhead = harness_overhead(stepper, built, config.repeats, t.inner)
    finally:
        built.close()
        del built
    bytes_moved = row.bytes_per_param * row.n_params
    row.median_s, row.iqr_s, row.best_s = t.median, t.iqr, t.best
    row.iqr_over_median = t.iqr / t.median
    row.first_step_s, row.compile_s = t.first_s, max(0.0, t.first_s - t.median)
    row.inner, row.repeats = t.inner, len(t.samples)
    row.achieved_GBps = bytes_moved / t.median / 1e9
    row.Gparam_per_s = row.n_params / t.median / 1e9
    row.limit_GBps = limit_gbps
    row.limit_s = bytes_moved / (limit_gbps * 1e9)
    row.pct_of_limit = 100.0 * row.limit_s / t.median
    if mem:
        row.peak_MB, row.resident_MB = mem.get("peak_MB"), mem.get("resident_MB")


# ----------------------------------------------------------------------------------------------
# overhead fit

def fit_overheads(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (framework, rule, variant, device): t = a + b*tensors + c*params, least squares weighted
    by 1/t (relative error: sizes span orders of magnitude). b is fitted only when the rows have at
    least two tensor counts; then a is the fixed per-step cost, b the per-tensor cost."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("median_s"):
            groups.setdefault((r["framework"], r["rule"], r["variant"], r["device"]), []).append(r)
    fits = []
    for (fw, rule, variant, device), rs in groups.items():
        k = np.array([r["n_tensors"] for r in rs], dtype=float)
        n = np.array([r["n_params"] for r in rs], dtype=float)
        t = np.array([r["median_s"] for r in rs], dtype=float)
        with_k = len(set(k)) > 1
        cols = [np.ones_like(t)] + ([k] if with_k else []) + [n]
        if len(rs) < len(cols) or len(set(n)) < 2 and not with_k:
            continue
        x = np.stack(cols, axis=1)
        w = 1.0 / t
        coef, *_ = np.linalg.lstsq(x * w[:, None], t * w, rcond=None)
        pred = x @ coef
        a, c = coef[0], coef[-1]
        b = coef[1] if with_k else None
        bpp = rs[0]["bytes_per_param"]
        fits.append({"framework": fw, "rule": rule, "variant": variant, "device": device, "points": len(rs),
                     "fixed_us": a * 1e6, "per_tensor_us": None if b is None else b * 1e6,
                     "ns_per_param": c * 1e9, "asymptotic_GBps": bpp / c / 1e9 if c > 0 else None,
                     "rel_rms": float(np.sqrt(np.mean(((pred - t) / t) ** 2)))})
    return fits


# ----------------------------------------------------------------------------------------------
# output

def _fmt(v, spec: str, na: str = "n/a") -> str:
    return na if v is None else format(v, spec)


def _params(n: int) -> str:
    return f"{n:.3g}" if n < 1e3 else f"{n:.2e}".replace("e+0", "e").replace("e+", "e")


def _row_line(r) -> str:
    r = r if isinstance(r, dict) else asdict(r)
    if r["median_s"] is None:
        why = r["error"] or f"not timed: gate {r['gate']}"
        return f"{r['case']} {r['layout']} {_params(r['n_params'])}: {why}"
    return (f"{r['case']} {r['layout']} {_params(r['n_params'])}: {r['median_s'] * 1e3:.3f} ms "
            f"(IQR {100 * r['iqr_over_median']:.1f}%), {r['achieved_GBps']:.1f} GB/s = {r['pct_of_limit']:.0f}% "
            f"of {r['limit_GBps']:.1f} GB/s")


def table(doc: dict[str, Any]) -> str:
    """The terminal table: one section per rule (frameworks are compared only within a rule)."""
    rows = doc["rows"]
    env = doc["environment"]
    head = (f"optconform bench: {doc['framework']} {doc['version']} on {env.get('device_name', env['device'])}, "
            f"{env['threads']} thread(s)" + (f" pinned to CPUs {env['pinned_cpus']}" if env.get("pinned_cpus") else "")
            + f", allocator {env['allocator']}")
    lines = [head]
    cols = ("variant", "layout", "params", "tensors", "median ms", "IQR/med", "GB/s", "limit GB/s", "limit ms",
            "% limit", "first s", "peak MB", "gate")
    for rule in dict.fromkeys(r["rule"] for r in rows):
        rs = [r for r in rows if r["rule"] == rule]
        lines.append("")
        lines.append(f"rule {rule} ({rs[0]['bytes_per_param']} B/param; limit = B/param x params / same-run stream GB/s)")
        body = []
        for r in rs:
            timed = r["median_s"] is not None
            peak = _fmt(r["peak_MB"], ".0f") if timed else ""
            body.append((f"{r['framework']} {r['variant']}", r["layout"], _params(r["n_params"]), str(r["n_tensors"]),
                         _fmt(r["median_s"] and r["median_s"] * 1e3, ".4g", "-"),
                         _fmt(r["iqr_over_median"] and 100 * r["iqr_over_median"], ".1f", "-") + ("%" if timed else ""),
                         _fmt(r["achieved_GBps"], ".1f", "-"), _fmt(r["limit_GBps"], ".1f", "-"),
                         _fmt(r["limit_s"] and r["limit_s"] * 1e3, ".4g", "-"),
                         _fmt(r["pct_of_limit"], ".0f", "-") + ("%" if timed else ""),
                         _fmt(r["first_step_s"], ".3g", "-"), peak,
                         r["gate"] + (" (timed anyway)" if timed and r["gate"] not in TIMED_VERDICTS else "")
                         + (f" ({r['error'][:40]})" if r["error"] else "")))
        widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths))))
        for b in body:
            lines.append("  ".join(v.ljust(w) if i < 2 or i == len(b) - 1 else v.rjust(w)
                                   for i, (v, w) in enumerate(zip(b, widths))))
    if doc["fits"]:
        lines.append("")
        lines.append("fitted overheads, t = a + b*tensors + c*params (weighted least squares over sizes/layouts):")
        for f in doc["fits"]:
            per_t = "n/a (one tensor count)" if f["per_tensor_us"] is None else f"{f['per_tensor_us']:.2f} us/tensor"
            lines.append(f"  {f['framework']} {f['rule']} {f['variant']}: a = {f['fixed_us']:.1f} us/step, b = {per_t}, "
                         f"c = {f['ns_per_param']:.3f} ns/param ({_fmt(f['asymptotic_GBps'], '.1f')} GB/s), "
                         f"{f['points']} points, rms rel. residual {100 * f['rel_rms']:.1f}%")
    over = [r for r in rows if r.get("overhead")]
    if over:
        lines.append("")
        lines.append("harness overhead vs a bare perf_counter loop (same step, interleaved blocks):")
        for r in over:
            o = r["overhead"]
            lines.append(f"  {r['case']} {r['layout']} {_params(r['n_params'])}: harness {o['harness_median_s'] * 1e3:.4f} ms, "
                         f"bare {o['bare_median_s'] * 1e3:.4f} ms, overhead {o['overhead_pct']:+.2f}%")
    timed = [r for r in rows if r["median_s"] is not None]
    if timed:
        worst = max(timed, key=lambda r: r["iqr_over_median"])
        lines.append("")
        lines.append(f"{len(timed)} of {len(rows)} configurations timed; worst IQR/median "
                     f"{100 * worst['iqr_over_median']:.1f}% ({worst['case']} {worst['layout']} {_params(worst['n_params'])}); "
                     f"peak memory: {'n/a on CPU (torch reports none)' if env['device'] == 'cpu' else 'torch.cuda.max_memory_allocated'}")
    return "\n".join(lines)


def plot(doc: dict[str, Any], path: str) -> None:
    """PNG: step time vs parameters per variant/layout, one panel per rule, with the roofline."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in doc["rows"] if r["median_s"] is not None]
    rules = list(dict.fromkeys(r["rule"] for r in doc["rows"]))
    fig, axes = plt.subplots(1, max(1, len(rules)), figsize=(5.2 * max(1, len(rules)), 4.6), squeeze=False)
    styles = {"flat": ("-", "o"), "bert-base": ("--", "s")}
    for ax, rule in zip(axes[0], rules):
        rs = [r for r in rows if r["rule"] == rule]
        keys = list(dict.fromkeys((r["framework"], r["variant"], r["layout"]) for r in rs))
        colors = {}
        for fw, variant, layout in keys:
            pts = sorted((r["n_params"], r["median_s"] * 1e3) for r in rs
                         if (r["framework"], r["variant"], r["layout"]) == (fw, variant, layout))
            color = colors.setdefault((fw, variant), f"C{len(colors)}")
            ls, marker = styles.get(layout, (":", "^"))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], ls, marker=marker, color=color,
                    label=f"{fw} {variant} ({layout})" + ("" if all(
                        r["gate"] in TIMED_VERDICTS for r in rs if (r["framework"], r["variant"]) == (fw, variant))
                        else " [gate failed]"))
        per_n: dict[int, list[float]] = {}        # the probe runs before every row: median per size
        for r in [r for r in rs if r["layout"] == "flat"] or rs:
            per_n.setdefault(r["n_params"], []).append(r["limit_s"] * 1e3)
        limit = sorted((n, float(np.median(v))) for n, v in per_n.items())
        if limit:
            ax.plot([p[0] for p in limit], [p[1] for p in limit], "-", color="black", lw=2.5, alpha=0.6,
                    label=f"limit: {rs[0]['bytes_per_param']} B/param / stream GB/s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel("step time (ms, median)")
        ax.set_title(f"{rule} ({rs[0]['bytes_per_param'] if rs else '?'} B/param)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    env = doc["environment"]
    fig.suptitle(f"{doc['framework']} {doc['version']}, {env.get('device_name', env['device'])}, "
                 f"{env['threads']} thread(s)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(doc: dict[str, Any], path: str) -> None:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v
    atomic_write(path, json.dumps(doc, indent=1, default=lambda o: clean(o) if isinstance(o, float) else str(o)))


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One document from per-framework runs (rows side by side; the table still groups by rule)."""
    if len(docs) == 1:
        return docs[0]
    first = docs[0]
    return {"schema": SCHEMA, "framework": "+".join(d["framework"] for d in docs),
            "version": ", ".join(f"{d['framework']} {d['version']}" for d in docs),
            "environment": first["environment"], "environments": {d["framework"]: d["environment"] for d in docs},
            "config": [d["config"] for d in docs], "rows": [r for d in docs for r in d["rows"]],
            "fits": [f for d in docs for f in d["fits"]], "limits": [x for d in docs for x in d["limits"]],
            "seconds": sum(d["seconds"] for d in docs)}
