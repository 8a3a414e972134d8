"""The benchmark's configuration and its records: what a run is asked (BenchConfig) and one row of its
results (Row), with the defaults and the schema of the results document.

optconform-bench/2 (issue 17): rows gain blocks, limit_min/max_GBps, limit_blocks_GBps, limit_probe,
pct_ci, ci_confidence, state_B_per_param, first_step_extra_B_per_param, peak_extra_B_per_param,
memory_method, size_requested, and overhead.overhead_ci_pct / pairs; peak_MB and resident_MB are
gone (the extra-bytes fields replace them); the document's "fits" became "per_tensor"."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

#: rules in the order the benchmark runs them by default
DEFAULT_RULES = ("adamw", "sgd_momentum", "adam", "adagrad", "lamb")
DEFAULT_SIZES = {"cpu": (1e5, 1e6, 1e7, 1e8), "cuda": (1e5, 1e6, 1e7, 1e8, 1e9)}
DEFAULT_LAYOUTS = ("flat", "bert-base")
SCHEMA = "optconform-bench/2"
#: gate verdicts whose configurations are timed: conforms, or a registered known deviation (xfail,
#: documented in adapters/<framework>/deviations.toml, marked in the table)
TIMED_VERDICTS = ("conforms", "xfail")
#: bytes per element of each dtype
ITEMSIZE = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}


@dataclass
class BenchConfig:
    framework: str = "torch"
    rules: Sequence[str] = ("adamw",)
    variants: Sequence[str] | None = None
    device: str = "cpu"
    sizes: Sequence[float | None] | None = None      # None in the list = the layout's native size
    layouts: Sequence[str] = ("flat",)
    repeats: int = 15              # timed samples per block
    blocks: int = 7                # rounds of [probe block, step block (, bare-loop block)], bench_blocks
    warmup: int = 5
    threads: int | None = None
    dtype: str = "float32"
    overhead: bool = True
    time_deviating: bool = False     # also time configurations whose gate fails (marked in the table)
    cpus: Sequence[int] | None = None   # CPUs to pin within (default: the process affinity at run())

    def run_sizes(self) -> list[float | None]:
        """The sizes asked for, else the device's defaults."""
        return list(self.sizes) if self.sizes else list(DEFAULT_SIZES.get(self.device, DEFAULT_SIZES["cpu"]))


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
    size_requested: int | None
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
    repeats: int | None = None                # samples in all (blocks x samples per block)
    blocks: int | None = None
    achieved_GBps: float | None = None
    Gparam_per_s: float | None = None
    limit_GBps: float | None = None           # median over the rounds of the interleaved stream probe
    limit_min_GBps: float | None = None       # the probe's spread over the rounds
    limit_max_GBps: float | None = None
    limit_blocks_GBps: list[float] = field(default_factory=list)
    limit_probe: str = ""                     # the stream kernel (Built.kind), e.g. one fused pass
    limit_s: float | None = None              # bytes_per_param * params / limit_GBps
    pct_of_limit: float | None = None         # median over the rounds of (limit time / step time)
    pct_ci: list[float] = field(default_factory=list)   # [low, high], confidence ci_confidence
    ci_confidence: float | None = None
    state_B_per_param: int | None = None      # the rule's state arrays (spec/bandwidth.toml) x item size
    first_step_extra_B_per_param: float | None = None   # peak memory of the first step beyond before it
    peak_extra_B_per_param: float | None = None         # same, one steady-state step
    memory_method: str = ""                   # how memory was read, or why it could not be
    overhead: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def timed(self) -> bool:
        return self.median_s is not None
