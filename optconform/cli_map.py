"""`optconform decay-map`: the weight-decay map (optconform/decay_map.py) of one or more results files,
as markdown (--markdown), embedded in a README between its markers (--readme; with --check only
verified: exit 1 when the README's table is not what the files give), and as a figure (--png)."""
from __future__ import annotations

from pathlib import Path

from optconform.cli_common import UsageError, check_outputs, read_results, require_matplotlib, unique
from optconform.golden.fsio import atomic_write

DECAY_MAP_OPTIONS: dict[str, dict] = {
    "files": {"nargs": "+", "metavar": "RESULTS.json", "help": "results files (run --json, report --json, "
              "baselines/*.json), each once"},
    "--markdown": {"help": "write the map as a markdown table here"},
    "--readme": {"help": "replace the table between the decay-map markers of this file (e.g. README.md)"},
    "--check": {"action": "store_true", "help": "with --readme: write nothing, exit 1 when its table is stale"},
    "--png": {"help": "write the map as a figure (PNG; needs matplotlib)"},
}


def cmd_decay_map(args) -> int:
    from optconform import decay_map
    unique([str(Path(p).resolve()) for p in args.files], "results file")
    if args.check and not args.readme:
        raise UsageError("--check needs --readme FILE (the file whose table is checked)")
    check_outputs(args, "markdown", "png")
    if args.png:
        require_matplotlib("--png")
    readme = _readme_text(args.readme)
    rows = [row for doc in read_results(args.files) for row in doc["results"]]
    found = decay_map.build(rows)
    table = decay_map.markdown(found)
    if readme is not None:
        updated = decay_map.embed(readme, table)
        if args.check:
            if updated != readme:
                print(f"{args.readme}: the weight-decay map is stale; regenerate it with tools/update-decay-map")
                return 1
            print(f"{args.readme}: the weight-decay map is current ({len(found.rows)} configurations)")
        elif updated != readme:
            atomic_write(args.readme, updated)
    if args.markdown:
        atomic_write(args.markdown, table)
    if args.png:
        from optconform import decay_map_figure
        Path(args.png).write_bytes(decay_map_figure.png(found))
    if not (args.markdown or args.readme or args.png):
        print(table, end="")
    return 0


def _readme_text(path: str | None) -> str | None:
    """The README's text, checked for its markers before any work; None without --readme."""
    if path is None:
        return None
    from optconform import decay_map
    try:
        text = Path(path).read_text(encoding="utf-8")
        decay_map.embed(text, "")
    except OSError as exc:
        raise UsageError(f"--readme {path!r}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageError(f"--readme {path!r}: {exc}") from None
    return text
