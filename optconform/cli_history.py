"""`optconform history`: the conformance matrix over a framework's releases (optconform.history)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from optconform.cli_common import UsageError, split_list

#: `optconform history` options: flag -> argparse keywords
HISTORY_OPTIONS: dict[str, dict] = {
    "--framework": {"default": "torch", "help": "torch, jax, tensorflow or bert (default torch)"},
    "--releases": {"help": "comma-separated release labels (default: every listed one)"},
    "--out": {"default": "docs/history", "help": "output folder (default docs/history)"},
    "--env-dir": {"default": "~/.cache/optconform/history", "help": "where the environments live"},
    "--keep-envs": {"action": "store_true",
                    "help": "keep each environment after its run (reused while its requirements are unchanged)"},
    "--from-json": {"help": "no runs: regenerate the markdown from a history JSON written before"},
    "--update": {"action": "store_true", "help": "rerun only --releases and keep the other releases' recorded runs "
                 "from <out>/<framework>.json (each run records its own optconform commit)"},
}


def cmd_history(args) -> int:
    from optconform.history import tables
    if args.from_json:
        history = _read_history(args.from_json)
        paths = tables.write(history, args.out)
    else:
        history, paths = _run_releases(args)
    print(f"wrote {' and '.join(paths)}")
    failed = [r["release"] for r in history["releases"] if r["doc"] is None]
    if failed:
        print(f"optconform history: no run for {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _run_releases(args) -> tuple[dict, tuple[str, str]]:
    """Run the matrix in each selected release's environment; the history document (with --update, the
    other releases' recorded runs kept) and the paths it was written to. The tables are rewritten after
    every release, so that an interrupted history keeps the runs that finished (resume with --update)."""
    from optconform.history import environments, tables
    releases = environments.select(args.framework, split_list(args.releases))
    environments.source_root()
    out = Path(args.out)
    earlier = _read_history(str(out / f"{args.framework}.json")) if args.update else None
    out.mkdir(parents=True, exist_ok=True)
    commit = environments.source_commit()
    order = [r.label for r in environments.known(args.framework)]
    records: list[dict] = []
    history, paths = {}, ("", "")
    for i, release in enumerate(releases, 1):
        print(f"[{i}/{len(releases)}] {release.framework} {release.label}", file=sys.stderr, flush=True)
        record = environments.run(release, Path(args.env_dir).expanduser(), args.keep_envs,
                                  lambda msg: print(msg, file=sys.stderr, flush=True))
        records.append({**record, "commit": commit})
        merged = sorted(tables.updated(earlier, records), key=lambda r: order.index(r["release"])
                        if r["release"] in order else len(order))
        history = tables.document(args.framework, merged, commit)
        paths = tables.write(history, out)
    return history, paths


def _read_history(path: str) -> dict:
    from optconform.history import tables
    try:
        doc = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read history JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != tables.SCHEMA:
        raise UsageError(f"{path}: not an optconform history file")
    return doc
