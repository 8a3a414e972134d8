"""optconform command line: rules, golden, run, report, decay-map, check, fingerprint, translate, history, bench.

Exit codes: 0 everything conforms (or is a registered deviation), 1 an unexpected nonconformance or
a failed check, 2 a usage error (a clear message names what is wrong), 3 fingerprint: no fit.

Each command is a row of COMMANDS: its help, its options (a table of flag -> argparse keywords, beside
its handler) and its handler, which takes the parsed arguments and returns the exit code. The handlers
live by role: cli_spec (rules, golden), cli_results (run, report, diff, baseline), cli_map (decay-map),
cli_factory (check, fingerprint), cli_translate (translate), cli_history (history), cli_bench (bench);
cli_common holds what they share.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from optconform import cli_bench, cli_factory, cli_history, cli_map, cli_results, cli_spec, cli_translate
from optconform.cli_common import NO_FIT, USAGE_ERROR, UsageError
from optconform.cli_history import HISTORY_OPTIONS

__all__ = ["COMMANDS", "EXIT_CODES", "HISTORY_OPTIONS", "NO_FIT", "SYNTAX", "USAGE_ERROR", "Command", "UsageError",
           "build_parser", "main"]

EXIT_CODES = """exit codes:
  0  everything conforms or is a registered deviation (check: the optimizer conforms; fingerprint: a
     knob vector of the spec reproduces it)
  1  an unexpected nonconformance, an error row, a registered deviation that now conforms (XPASS),
     a check that does not conform or is undecided (its probes cannot see a knob of the rule)
  2  a usage error, reported on one line before any work: unknown name, mistyped or out-of-range value,
     unwritable output path, missing device or framework, factory that cannot be imported or called
     with canonical hyper-parameter names, tampered or incomplete golden corpus
  3  fingerprint: no fit, no knob vector of the spec reproduces the optimizer"""

SYNTAX = """rules: a preset name (see `optconform rules`) or a derived rule preset[knob=value,...],
  e.g. --rule 'adamw[decay_order=after]' (knobs and values: `optconform rules --json`).
hyper-parameters: --hp NAME=VALUE, repeatable, one name per flag; VALUE is JSON: --hp eps=1e-6
  --hp nesterov=true --hp 'weight_decay_exclude=["LayerNorm", "bias"]' --hp clip_value=null.
  NAME is a canonical name of the rule (beta1, beta2, eps, weight_decay, momentum, ...); lr and eta
  are each scenario's schedule and cannot be overridden. Types and ranges: spec/hyperparameters.toml."""


@dataclass(frozen=True)
class Command:
    """One sub-command: its help (also its description), options and handler."""
    help: str
    options: Mapping[str, dict]                     # flag or positional name -> argparse keywords
    handler: Callable[[argparse.Namespace], int]    # the parsed arguments -> the exit code
    syntax: bool = False                            # the rule / --hp syntax in its help


#: the sub-commands, in the order `optconform --help` lists them
COMMANDS: dict[str, Command] = {
    "rules": Command("list the spec's rules (presets) with knobs and defaults", cli_spec.RULES_OPTIONS,
                     cli_spec.cmd_rules),
    "golden": Command("regenerate, check or audit the golden corpus", cli_spec.GOLDEN_OPTIONS, cli_spec.cmd_golden),
    "run": Command("run the conformance matrix", cli_results.RUN_OPTIONS, cli_results.cmd_run),
    "check": Command("check a user's optimizer factory against a rule (exit 0 conforms, 1 not or undecided)",
                     cli_factory.CHECK_OPTIONS, cli_factory.cmd_check, syntax=True),
    "fingerprint": Command("infer the knob vector of a user's optimizer factory (exit 0 fits, 3 no fit)",
                           cli_factory.FINGERPRINT_OPTIONS, cli_factory.cmd_fingerprint, syntax=True),
    "report": Command("merge results JSON files from several environments", cli_results.REPORT_OPTIONS,
                      cli_results.cmd_report),
    "diff": Command("what changed between two results files (e.g. a pinned baseline and a newer release): exit 0 "
                    "no semantic change, 1 a semantic change, 2 a usage error", cli_results.DIFF_OPTIONS,
                    cli_results.cmd_diff),
    "decay-map": Command("the weight-decay map of results files (markdown, README block, figure): which native "
                         "optimizers are coupled, decoupled x lr, x eta, unscaled", cli_map.DECAY_MAP_OPTIONS,
                         cli_map.cmd_decay_map),
    "baseline": Command("write a committed baseline (baselines/<lane>.json) from a results JSON",
                        cli_results.BASELINE_OPTIONS, cli_results.cmd_baseline),
    "history": Command("install each release of a framework (optconform/history/releases.toml) in a throwaway "
                       "environment, run the matrix on CPU in float64 and float32, and write "
                       "<out>/<framework>.md (cases x releases, what changed) and .json; exit 1 if a release "
                       "did not run", HISTORY_OPTIONS, cli_history.cmd_history),
    "translate": Command("the configuration of another framework that computes what a source call computes: "
                         "exact, or the nearest with the divergence it causes on the probes",
                         cli_translate.TRANSLATE_OPTIONS, cli_translate.cmd_translate),
    "bench": Command("time native optimizer steps against the same-run memory roofline", cli_bench.BENCH_OPTIONS,
                     cli_bench.cmd_bench),
}


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optconform", description="Conformance of optimizer update rules "
                                     "across frameworks, against a float64 reference.",
                                     epilog=f"{EXIT_CODES}\n\n{SYNTAX}", formatter_class=_formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="rules | golden | run | check | fingerprint | report | translate | bench "
                                     "(optconform COMMAND --help)")
    for name, command in COMMANDS.items():
        _add_command(sub, name, command)
    return parser


def _add_command(sub, name: str, command: Command) -> None:
    """The sub-parser of one command, with the exit codes (and the --hp / rule syntax) in its help."""
    parser = sub.add_parser(name, help=command.help, description=command.help, formatter_class=_formatter,
                            epilog=EXIT_CODES + (f"\n\n{SYNTAX}" if command.syntax else ""))
    for flag, options in command.options.items():
        parser.add_argument(flag, **options)
    parser.set_defaults(func=command.handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError) as exc:      # ValueError: a bad rule / hyper-parameter / corrupt file
        print(f"optconform {args.command}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
