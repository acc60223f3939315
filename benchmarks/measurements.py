"""Measured results kept as data: the JSON files of ``benchmarks/measured/``, checked and rendered as markdown.

    python -m benchmarks.measurements [--kind latency] [--latest] [--dir benchmarks/measured]

One file per device and date (``<kind>-<date>-<device>.json``, format ``adamatting-measured/1``). Every file
names its ``kind``, ``date`` (YYYY-MM-DD), ``device`` (``cpu``, ``cores``, ``isa`` as known; optional ``os``,
``isa_note``, ``fingerprint_id``), ``input_size`` [H, W] and ``threads`` (null: the runtimes' default), plus
optional ``method``, ``runtimes`` and ``note``.

- ``kind: "latency"``: ``models`` (a short key → what the network was), optional ``targets`` (ratio limits:
  ``name``, ``artifact``, ``ratio``, ``max``) and ``measurements``, newest first: each a ``label``, a ``model``
  key, a ``checkpoint``, optional ``commit``, ``runtimes`` and ``note``, and ``rows``: one per artifact
  (``torch/fp32``, ``onnxruntime/int8``, ...) with ``p50_ms`` and, where recorded, ``ratio_to_torch_fp32`` and
  ``ratio_to_fp32_same_runtime``. A value is a number or a [low, high] range over several runs.
- any other kind: ``model``, optional ``command``, ``columns`` (the table's header) and ``rows`` (one object
  per row with a value for every column), optional ``details`` (the data behind the rows, not rendered).

Prints one table per file, newest first (``--latest``: the newest file of each kind, and of a latency file its
newest measurement only). A file that is not valid: one ``error: <file>: <problem>`` line, exit 2. Imports only
the standard library.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from numbers import Real
from pathlib import Path

FORMAT = "adamatting-measured/1"
MEASURED = Path(__file__).resolve().parent / "measured"
RATIOS = ("ratio_to_torch_fp32", "ratio_to_fp32_same_runtime")
_DASH = "—"

_COMMON = {"format", "kind", "date", "device", "input_size", "threads"}
_OPTIONAL = {"method", "runtimes", "note"}
_LATENCY = {"models", "measurements"}
_TABLE = {"model", "columns", "rows"}
_DEVICE = {"cpu", "cores", "isa", "os", "isa_note", "fingerprint_id"}
_MEASUREMENT = {"label", "model", "checkpoint", "commit", "runtimes", "note", "rows"}
_ROW = {"artifact", "p50_ms", *RATIOS}
_TARGET = {"name", "artifact", "ratio", "max"}


class MeasuredError(ValueError):
    """A measured-results file that cannot be used; the message names the file and the problem."""


def _is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _is_value(v) -> bool:
    """A positive number, or a [low, high] range of them."""
    if isinstance(v, list):
        return len(v) == 2 and all(_is_number(x) and x > 0 for x in v) and v[0] <= v[1]
    return _is_number(v) and v > 0


def _keys(obj, where: str, required: set[str], allowed: set[str]) -> None:
    if not isinstance(obj, dict):
        raise MeasuredError(f"{where}: expected an object")
    missing, unknown = sorted(required - set(obj)), sorted(set(obj) - allowed)
    if missing:
        raise MeasuredError(f"{where}: missing {', '.join(missing)}")
    if unknown:
        raise MeasuredError(f"{where}: unknown key {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _check(data) -> None:
    if not isinstance(data, dict):
        raise MeasuredError("expected a JSON object")
    if data.get("format") != FORMAT:
        raise MeasuredError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise MeasuredError("kind must be a non-empty string")
    if kind == "latency":
        _keys(data, "top level", _COMMON | _LATENCY, _COMMON | _OPTIONAL | _LATENCY | {"targets"})
    else:
        _keys(data, "top level", _COMMON | _TABLE, _COMMON | _OPTIONAL | _TABLE | {"command", "details"})
    try:
        date.fromisoformat(data["date"])
    except (TypeError, ValueError):
        raise MeasuredError(f"date {data['date']!r} is not YYYY-MM-DD") from None
    device = data["device"]
    _keys(device, "device", {"cpu", "cores", "isa"}, _DEVICE)
    if not isinstance(device["cpu"], str) or not device["cpu"]:
        raise MeasuredError("device.cpu must be a non-empty string")
    if not isinstance(device["cores"], int) or isinstance(device["cores"], bool) or device["cores"] < 1:
        raise MeasuredError("device.cores must be a positive integer")
    if not isinstance(device["isa"], list) or not all(isinstance(x, str) for x in device["isa"]):
        raise MeasuredError("device.isa must be a list of strings")
    size = data["input_size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(x, int) and x > 0 for x in size)):
        raise MeasuredError("input_size must be [H, W], two positive integers")
    threads = data["threads"]
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise MeasuredError("threads must be a positive integer or null (the runtimes' default)")
    if kind == "latency":
        _check_latency(data)
    else:
        _check_table(data)


def _check_latency(data: dict) -> None:
    models = data["models"]
    if not isinstance(models, dict) or not models or not all(isinstance(v, str) for v in models.values()):
        raise MeasuredError("models must map each model key to its description")
    for i, t in enumerate(data.get("targets", [])):
        _keys(t, f"targets[{i}]", _TARGET, _TARGET)
        if t["ratio"] not in RATIOS or not _is_number(t["max"]):
            raise MeasuredError(f"targets[{i}]: ratio must be one of {', '.join(RATIOS)} and max a number")
    measurements = data["measurements"]
    if not isinstance(measurements, list) or not measurements:
        raise MeasuredError("measurements must be a non-empty list")
    for i, m in enumerate(measurements):
        where = f"measurements[{i}]"
        _keys(m, where, {"label", "model", "checkpoint", "rows"}, _MEASUREMENT)
        if m["model"] not in models:
            raise MeasuredError(f"{where}: model {m['model']!r} is not one of models ({', '.join(models)})")
        if not isinstance(m["rows"], list) or not m["rows"]:
            raise MeasuredError(f"{where}: rows must be a non-empty list")
        seen = set()
        for j, row in enumerate(m["rows"]):
            _keys(row, f"{where}.rows[{j}]", {"artifact", "p50_ms"}, _ROW)
            if row["artifact"] in seen:
                raise MeasuredError(f"{where}.rows[{j}]: artifact {row['artifact']!r} appears twice")
            seen.add(row["artifact"])
            for key in ("p50_ms", *RATIOS):
                if key in row and not _is_value(row[key]):
                    raise MeasuredError(f"{where}.rows[{j}]: {key} must be a positive number or [low, high]")


def _check_table(data: dict) -> None:
    columns, rows = data["columns"], data["rows"]
    if not isinstance(data["model"], str):
        raise MeasuredError("model must be a string")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise MeasuredError("columns must be a non-empty list of strings")
    if not isinstance(rows, list) or not rows:
        raise MeasuredError("rows must be a non-empty list")
    for j, row in enumerate(rows):
        _keys(row, f"rows[{j}]", set(columns), set(columns))


def new_path(kind: str, data: dict, folder: Path = MEASURED) -> Path:
    """``<kind>-<date>-<device>.json`` in ``folder`` for a new measurement (``data``: its header), ``-2``,
    ``-3``, … added where that name is taken: a measurement never overwrites another."""
    stem = f"{kind}-{data['date']}-{data['device']['fingerprint_id']}"
    path, n = folder / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.json"
    return path


def save(data: dict, out: str | Path | None = None) -> Path:
    """Write a measured table (``data``: header, ``columns``, ``rows``) to ``out`` or :func:`new_path`, print its
    rows and its path, and return the path."""
    path = Path(out) if out else new_path(data["kind"], data)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for row in data["rows"]:
        print(" | ".join(f"{k} {v}" for k, v in row.items()))
    print(path)
    return path


def load(path: str | Path) -> dict:
    """One measured-results file, checked; MeasuredError naming the file otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MeasuredError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MeasuredError(f"{path}: not readable JSON ({e})") from None
    try:
        _check(data)
    except MeasuredError as e:
        raise MeasuredError(f"{path}: {e}") from None
    return data


def load_all(folder: str | Path = MEASURED, kind: str | None = None) -> list[tuple[Path, dict]]:
    """Every ``*.json`` of the folder, checked, newest date first (then by file name); only ``kind`` if given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MeasuredError(f"{folder}: not a folder")
    loaded = [(p, load(p)) for p in sorted(folder.glob("*.json"))]
    loaded = [(p, d) for p, d in loaded if kind is None or d["kind"] == kind]
    loaded.sort(key=lambda pd: (pd[1]["kind"] != "latency", pd[0].name))   # latency first within a date
    loaded.sort(key=lambda pd: pd[1]["date"], reverse=True)
    return loaded


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    rows = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _fmt(value, suffix: str = "") -> str:
    """A value as recorded; ratios (suffix ×) with at least two decimals."""
    if value is None:
        return _DASH
    if isinstance(value, list):
        return f"{_fmt(value[0])}–{_fmt(value[1], suffix)}" if not suffix else \
            f"{_fmt(value[0], suffix)[:-1]}–{_fmt(value[1], suffix)}"
    if suffix and isinstance(value, float) and round(value, 2) == value:
        return f"{value:.2f}{suffix}"
    return f"{value}{suffix}"


def ratio(measurement: dict, artifact: str, which: str):
    """The recorded ratio of an artifact's p50, else the one its p50s give (None where they are ranges)."""
    rows = {r["artifact"]: r for r in measurement["rows"]}
    row = rows.get(artifact)
    if row is None:
        return None
    if which in row:
        return row[which]
    base = rows.get("torch/fp32" if which == "ratio_to_torch_fp32" else artifact.split("/")[0] + "/fp32")
    if base is None or isinstance(row["p50_ms"], list) or isinstance(base["p50_ms"], list):
        return None
    return round(row["p50_ms"] / base["p50_ms"], 2)


def _verdict(value, limit: float) -> str:
    if value is None:
        return _DASH
    low, high = value if isinstance(value, list) else (value, value)
    met = "met" if high <= limit else "not met" if low > limit else "partly met"
    return f"{_fmt(value, '×')} {met}"


def _heading(path: Path, data: dict) -> str:
    d = data["device"]
    isa = f" ({', '.join(d['isa'])})" if d["isa"] else ""
    size = "x".join(map(str, data["input_size"]))
    threads = data["threads"] or "runtime default"
    text = f"`{path.name}`: input {size}, threads: {threads}."
    if d.get("isa_note"):
        text += f" {d['isa_note']}."
    if data.get("method"):
        text += " " + data["method"].rstrip(".") + "."
    return f"## {data['kind']}, {data['date']}: {d['cpu']}, {d['cores']} cores{isa}\n\n{text}"


def render_latency(path: Path, data: dict, latest: bool = False) -> str:
    measurements = data["measurements"][:1] if latest else data["measurements"]
    artifacts = list(dict.fromkeys(r["artifact"] for m in measurements for r in m["rows"]))
    targets = data.get("targets", [])
    header = ["#", "measurement", "commit", "model", "checkpoint", *(f"{a} p50 ms" for a in artifacts),
              *(f"{t['name']} (≤ {t['max']}×)" for t in targets)]
    rows = []
    for i, m in enumerate(measurements, 1):
        by_artifact = {r["artifact"]: r for r in m["rows"]}
        rows.append([str(i), m["label"], m.get("commit", _DASH), m["model"], m["checkpoint"],
                     *(_fmt(by_artifact[a]["p50_ms"]) if a in by_artifact else _DASH for a in artifacts),
                     *(_verdict(ratio(m, t["artifact"], t["ratio"]), t["max"]) for t in targets)])
    used = dict.fromkeys(m["model"] for m in measurements)
    parts = [_heading(path, data), markdown_table(header, rows),
             "Models: " + "; ".join(f"`{k}`: {data['models'][k].rstrip('.')}" for k in used) + "."]
    notes = [f"- {i}: {m['note']}" for i, m in enumerate(measurements, 1) if m.get("note")]
    if notes:
        parts.append("\n".join(notes))
    if data.get("note"):
        parts.append(data["note"])
    return "\n\n".join(parts)


def render_table(path: Path, data: dict) -> str:
    rows = [[_fmt(row[c]) for c in data["columns"]] for row in data["rows"]]
    parts = [_heading(path, data), markdown_table(data["columns"], rows), f"Model: {data['model']}."]
    if data.get("command"):
        parts.append(f"Command: `{data['command']}`")
    if data.get("note"):
        parts.append(data["note"])
    return "\n\n".join(parts)


def render(path: Path, data: dict, latest: bool = False) -> str:
    """One file as markdown: a heading naming the device and date, the table, its notes."""
    if data["kind"] == "latency":
        return render_latency(path, data, latest)
    return render_table(path, data)


def render_all(folder: str | Path = MEASURED, kind: str | None = None, latest: bool = False) -> str:
    loaded = load_all(folder, kind)
    if latest:
        newest: dict[str, tuple[Path, dict]] = {}
        for path, data in loaded:
            newest.setdefault(data["kind"], (path, data))
        loaded = list(newest.values())
    if not loaded:
        raise MeasuredError(f"{folder}: no measured results" + (f" of kind {kind!r}" if kind else ""))
    return "\n\n".join(render(p, d, latest) for p, d in loaded) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.measurements",
                                description="Check the measured results in benchmarks/measured/ and print them "
                                            "as markdown tables, newest first.")
    p.add_argument("--kind", default=None, help="only files of this kind (latency, conv-kernels, int8-policy, ...)")
    p.add_argument("--latest", action="store_true",
                   help="only the newest file of each kind, and of a latency file its newest measurement")
    p.add_argument("--dir", default=str(MEASURED), help="folder of measured-results JSON files")
    args = p.parse_args(argv)
    try:
        text = render_all(args.dir, args.kind, args.latest)
    except MeasuredError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
