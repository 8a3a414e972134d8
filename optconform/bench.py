"""Step-time benchmark of native optimizers against the memory roofline measured in the same run.

What is timed: one native optimizer step and nothing else (parameters, gradients and optimizer state
are made and warmed up first), with the device synchronised inside the timed region, for every
implementation variant a framework exposes (torch: for-loop / foreach / fused / ``torch.compile``d
step), per rule (AdamW first, then SGD momentum, Adam, Adagrad, LAMB where the framework has it), per
size and per parameter layout (one flat tensor, or BERT-base's 199-tensor list: bench_layouts).

This module is the benchmark's public API; the code lives in modules by role:

- bench_config: BenchConfig (what a run is asked), Row (one configuration's results), the defaults;
- bench_stepper: the `Stepper` interface frameworks plug in through, and the benchmark's inputs;
- bench_timing: timing a step (first step, warm-up, samples; median and IQR);
- bench_blocks: the limit probe, the step and the bare loop timed in interleaved rounds, medians over
  rounds with distribution-free confidence intervals (% of limit, harness overhead);
- bench_limit: the limit, bytes per parameter of the rule (spec/bandwidth.toml) over a stream
  bandwidth measured in the same run, in rounds alternating with the step;
- bench_memory: peak extra memory of the first and of a steady step (CPU: RSS high-water mark);
- bench_host: pinning threads and CPUs, and the environment recorded with the results;
- bench_run: the correctness gate and the run over rules, cases, layouts and sizes;
- bench_pertensor: the per-tensor cost, BERT-base layout against flat at the same size;
- bench_output, bench_plot: the terminal table, the results JSON, merged documents, the PNG.

Frameworks plug in through a `Stepper` (`Stepper.build` times the adapter's own `Driver.step`; a
stream probe on the framework's own arrays; a bare timing loop), returned by `Adapter.stepper()`
(adapters/<framework>/bench.py) or registered under the entry-point group ``optconform.steppers``.
"""
from __future__ import annotations

from .bench_config import (DEFAULT_LAYOUTS, DEFAULT_RULES, DEFAULT_SIZES, SCHEMA, TIMED_VERDICTS, BenchConfig,
                           Row)
from .bench_blocks import median_ci
from .bench_host import environment
from .bench_limit import bandwidth_table, case_traffic, traffic
from .bench_memory import rss_probe
from .bench_output import merge, table, write_json
from .bench_pertensor import per_tensor_costs
from .bench_plot import plot
from .bench_run import run
from .bench_stepper import GROUP, Built, Stepper, bench_grads, bench_hp, bench_input, get_stepper, stepper_frameworks
from .bench_timing import MIN_SAMPLE_S, Timing, measure, samples

__all__ = ["DEFAULT_LAYOUTS", "DEFAULT_RULES", "DEFAULT_SIZES", "GROUP", "MIN_SAMPLE_S", "SCHEMA", "TIMED_VERDICTS",
           "BenchConfig", "Built", "Row", "Stepper", "Timing", "bandwidth_table", "bench_grads", "bench_hp",
           "bench_input", "case_traffic", "environment", "get_stepper", "measure", "median_ci", "merge",
           "per_tensor_costs", "plot", "rss_probe", "run", "samples", "stepper_frameworks", "table", "traffic",
           "write_json"]
