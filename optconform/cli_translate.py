"""`optconform translate`: the native configuration in another framework that computes what a source
call computes (optconform.translate), and the README's Rosetta table (optconform.rosetta).

The source call is parsed and resolved, and the targets validated, before anything is measured: a
bad call, an unknown optimizer or keyword, an unknown target is one line and exit 2.
"""
from __future__ import annotations

import json

from optconform.cli_common import UsageError, split_list, unique

TRANSLATE_OPTIONS: dict[str, dict] = {
    "--from": {"dest": "source", "metavar": "CALL",
               "help": "the source call, keywords only, e.g. 'torch.optim.AdamW(lr=1e-3, weight_decay=0.01)' "
                       "(parsed, never evaluated)"},
    "--to": {"metavar": "TARGETS", "help": "comma-separated targets: torch, keras, optax, mxnet, bert, bert-tf "
                                           "(default: every one)"},
    "--json": {"action": "store_true", "help": "machine-readable output"},
    "--rosetta": {"action": "store_true", "help": "print the Rosetta table (markdown) instead"},
    "--readme": {"metavar": "PATH", "help": "with --rosetta: rewrite the Rosetta block of this README"},
}


def cmd_translate(args) -> int:
    from optconform import rosetta
    from optconform.translate import resolve
    from optconform.translate_natives import TARGETS
    from optconform.translate_parse import parse_call
    if args.rosetta:
        if args.source or args.to:
            raise UsageError("--rosetta takes no --from / --to (its rows are optconform.rosetta.ROWS)")
        if args.readme:
            rosetta.write_readme(args.readme)
        else:
            print(rosetta.markdown())
        return 0
    if args.readme:
        raise UsageError("--readme needs --rosetta")
    if not args.source:
        raise UsageError("give --from CALL (or --rosetta)")
    targets = unique(split_list(args.to), "--to") or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UsageError(f"--to: unknown target {unknown[0]!r}; choose from {', '.join(TARGETS)}")
    config = resolve(parse_call(args.source))
    return _report(config, targets, args.json)


def _report(config, targets: list[str], as_json: bool) -> int:
    from optconform.translate_measure import choose
    from optconform.translate_render import lines, summary
    results = [summary(choose(config, target), config, target) for target in targets]
    if as_json:
        print(json.dumps({"source": {"case": config.case.id, "rule": config.case.rule, "hp": dict(config.hp)},
                          "targets": results}, indent=1, default=str))
        return 0
    print(f"source: {config.case.native} = case {config.case.id}, rule {config.case.rule}, "
          + ", ".join(f"{k}={v}" for k, v in config.hp.items()))
    for data in results:
        print("\n".join(lines(data)))
    return 0
