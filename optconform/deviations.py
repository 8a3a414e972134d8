"""The known-deviations registry (adapters/<framework>/deviations.toml): findings with an upstream link."""
from __future__ import annotations

import fnmatch
import functools
import re
import tomllib
from dataclasses import dataclass

_REQUIRED = ("id", "framework", "versions", "kind", "reason", "issue")
_KINDS = ("bug", "by-design", "precision")
_COVER_FIELDS = ("case", "golden", "except_golden", "device", "dtype", "note", "shown_by")
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Cover:
    """Where one root cause shows: fnmatch patterns on the case id, golden names, device and dtype."""
    case: str
    golden: tuple[str, ...] = ("*",)
    except_golden: tuple[str, ...] = ()
    device: str = "*"
    dtype: str = "*"
    note: str = ""
    #: a test ("tests/...py::test_name") that shows the deviation where no golden can (e.g. sparse
    #: gradients); such a cover matches no golden run and is checked by that test instead
    shown_by: str = ""

    def matches(self, case_id: str, golden: str, device: str, dtype: str) -> bool:
        return (fnmatch.fnmatchcase(case_id, self.case)
                and any(fnmatch.fnmatchcase(golden, p) for p in self.golden)
                and not any(fnmatch.fnmatchcase(golden, p) for p in self.except_golden)
                and fnmatch.fnmatchcase(device, self.device) and fnmatch.fnmatchcase(dtype, self.dtype))


@dataclass(frozen=True)
class Deviation:
    """One root cause: its reason, upstream link, kind and versions once, and every place it shows."""
    id: str
    framework: str
    versions: str
    kind: str
    reason: str
    issue: str
    covers: tuple[Cover, ...]

    def applies(self, framework: str, version: str, case_id: str, golden: str, device: str, dtype: str,
                beyond: bool = False) -> bool:
        """Whether the entry covers this run; `beyond`: on a release newer than its `versions`."""
        in_range = version_beyond if beyond else version_in
        return (framework == self.framework and in_range(version, self.versions)
                and any(c.matches(case_id, golden, device, dtype) for c in self.covers))


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def _conditions(spec: str) -> list[tuple[str, tuple[int, ...]]]:
    """Parse every comparison of a version spec; ValueError names a malformed one."""
    out = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*", part)
        if not match:
            raise ValueError(f"known deviations: cannot parse version condition {part!r} in {spec!r}")
        out.append((match.group(1), _version_tuple(match.group(2))))
    return out


def _holds(have: tuple[int, ...], op: str, want: tuple[int, ...]) -> bool:
    """One comparison of two version tuples, the shorter padded with zeros."""
    n = max(len(have), len(want))
    a, b = have + (0,) * (n - len(have)), want + (0,) * (n - len(want))
    return {">=": a >= b, "<=": a <= b, "==": a == b, "!=": a != b, ">": a > b, "<": a < b}[op]


def version_in(version: str, spec: str) -> bool:
    """Whether `version` satisfies every comparison in `spec` (e.g. '>=2.13,<2.14'; '*' = any)."""
    if spec.strip() in ("", "*"):
        return True
    have = _version_tuple(version)
    return all(_holds(have, op, want) for op, want in _conditions(spec))


#: For each upper-bound comparison, the comparison a version newer than that bound satisfies.
_ABOVE = {"<": ">=", "<=": ">", "==": ">"}


def version_beyond(version: str, spec: str) -> bool:
    """Whether `version` is newer than every version `spec` admits ('2.14.1' beyond '>=2.13,<2.14'):
    a release the entry was never checked on, where `run` carries the deviation forward only if it
    reproduces as recorded in the pinned baseline. False for specs without an upper bound."""
    if spec.strip() in ("", "*") or version_in(version, spec):
        return False
    have = _version_tuple(version)
    uppers = [(op, want) for op, want in _conditions(spec) if op in _ABOVE]
    return bool(uppers) and all(_holds(have, _ABOVE[op], want) for op, want in uppers)


def _patterns(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _cover(item, label: str) -> Cover:
    if not isinstance(item, dict) or not item.get("case"):
        raise ValueError(f"{label} lacks case")
    unknown = sorted(set(item) - set(_COVER_FIELDS))
    if unknown:
        raise ValueError(f"{label} has unknown field(s) {', '.join(unknown)}")
    if item.get("shown_by") and "::" not in item["shown_by"]:
        raise ValueError(f"{label}: shown_by must name a test as FILE::TEST")
    return Cover(item["case"], _patterns(item.get("golden", "*")), _patterns(item.get("except_golden", ())),
                 item.get("device", "*"), item.get("dtype", "*"), item.get("note", ""), item.get("shown_by", ""))


def _entry(entry, where: str, i: int) -> Deviation:
    label = f"{where}: deviation #{i + 1}" + (f" ({entry['id']})" if entry.get("id") else "")
    missing = [k for k in _REQUIRED if not entry.get(k)]
    if missing:
        raise ValueError(f"{label} lacks {', '.join(missing)}")
    if entry["kind"] not in _KINDS:
        raise ValueError(f"{label} has kind {entry['kind']!r}; use one of {_KINDS}")
    if not str(entry["issue"]).startswith("https://"):
        raise ValueError(f"{label} needs an https link to the upstream issue or source")
    unknown = sorted(set(entry) - set(_REQUIRED) - {"covers"})
    if unknown:
        raise ValueError(f"{label} has unknown field(s) {', '.join(unknown)} (case, golden, dtype, ... go "
                         f"under [[deviation.covers]])")
    if not entry.get("covers"):
        raise ValueError(f"{label} covers nothing: list where it shows under [[deviation.covers]]")
    if str(entry["versions"]).strip() not in ("", "*"):
        _conditions(entry["versions"])           # validates every comparison now, not mid-run
    covers = tuple(_cover(c, f"{label} cover #{j + 1}") for j, c in enumerate(entry["covers"]))
    return Deviation(entry["id"], entry["framework"], entry["versions"], entry["kind"], entry["reason"],
                     entry["issue"], covers)


def parse(text: str, where: str) -> list[Deviation]:
    """Parse and validate a registry (schema 2: one [[deviation]] per root cause, its places under
    [[deviation.covers]]); ValueError names the entry and the problem. Two entries of one framework
    with the same id, or the same reason and issue, are one root cause registered twice: an error."""
    doc = tomllib.loads(text)
    if doc.get("deviation") and doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{where}: schema_version {doc.get('schema_version')!r}; this optconform reads "
                         f"{SCHEMA_VERSION} (one entry per root cause, places under [[deviation.covers]])")
    out = [_entry(entry, where, i) for i, entry in enumerate(doc.get("deviation", []))]
    seen: dict[tuple, str] = {}
    for dev in out:
        for key in ((dev.framework, "id", dev.id), (dev.framework, dev.reason.strip(), dev.issue)):
            if key in seen:
                raise ValueError(f"{where}: deviation {dev.id!r} repeats {seen[key]!r} (same "
                                 f"{'id' if key[1] == 'id' else 'reason and issue'}): one entry per root cause")
            seen[key] = dev.id
    return out


@functools.cache
def registry() -> tuple[Deviation, ...]:
    """The installed registry: the ``deviations.toml`` of every adapter package (built-in ones and
    those of third-party adapters; optconform.adapters.base.Adapter.deviations_toml), each package once."""
    from optconform import registry as adapters
    entries: list[Deviation] = []
    seen: set[str] = set()
    for name in adapters.adapter_names():
        try:
            adapter = adapters.load_adapter(name)
        except Exception:       # a broken plug-in is an error row of its own run, not a lost registry
            continue
        package = type(adapter).__module__.rpartition(".")[0]
        if package in seen:
            continue
        seen.add(package)
        text = adapter.deviations_toml()
        if text:
            entries.extend(parse(text, f"{package}/deviations.toml"))
    return tuple(entries)


def lookup(framework: str, version: str, case_id: str, golden: str, device: str, dtype: str,
           beyond: bool = False) -> Deviation | None:
    """The first registered deviation covering this run, if any; with `beyond`, the first whose
    versions all lie before `version` (a candidate to carry forward to a newer release)."""
    for dev in registry():
        if dev.applies(framework, version, case_id, golden, device, dtype, beyond):
            return dev
    return None
