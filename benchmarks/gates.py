"""Accuracy-drop gates (``benchmarks/gates.toml``) applied to :mod:`evaluation.accuracy` rows.

    gates = Gates.load()
    results = check(rows, gates)          # one GateResult per artifact × set × gated metric
    violations = [r for r in results if r.status == "fail"]

A result is ``pass``, ``fail``, ``n/a`` (the artifact was not measured on that metric, e.g. a CoreML
simulation has no bokeh render) or ``not run`` (the artifact cannot run here and has no simulation).
Only ``fail`` fails the gate: artifacts that cannot run on this machine are listed, not hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import tomllib

from evaluation.accuracy import AccuracyRow, measured_by

GATES_TOML = Path(__file__).with_name("gates.toml")

# gate name → (metric, kind): "pct" relative increase over FP32 in percent, "abs" absolute increase,
# "min" a floor on the value itself.
GATE_METRICS = {
    "sad_drop_pct": ("SAD", "pct"),
    "grad_drop_pct": ("Grad", "pct"),
    "conn_drop_pct": ("Conn", "pct"),
    "mse_drop_pct": ("MSE", "pct"),
    "edge_mae_drop": ("EdgeMAE", "abs"),
    "bokeh_psnr_min": ("BokehPSNR", "min"),
    "dtssd_drop_pct": ("dtSSD", "pct"),
}


class GateConfigError(ValueError):
    pass


@dataclass
class Gates:
    default: dict[str, float]
    precision: dict[str, dict[str, float]]
    artifact: dict[str, dict[str, float]]
    source: str = ""

    @classmethod
    def load(cls, path: str | Path = GATES_TOML) -> "Gates":
        """Read and check a gates file; GateConfigError naming the file and the table for anything wrong."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise GateConfigError(f"{path}: gates file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise GateConfigError(f"{path}: cannot read the gates file: {e}") from None
        except tomllib.TOMLDecodeError as e:
            raise GateConfigError(f"{path}: not valid TOML: {e}") from None
        unknown = set(raw) - {"default", "precision", "artifact"}
        if unknown:
            raise GateConfigError(f"{path}: unknown tables {sorted(unknown)}; use default, precision, artifact")
        for name in ("precision", "artifact"):
            if not isinstance(raw.get(name, {}), dict) or not all(isinstance(v, dict) for v in raw.get(name, {}).values()):
                example = "precision.int8" if name == "precision" else 'artifact."openvino/int8"'
                raise GateConfigError(f"{path}: [{name}] must hold tables, e.g. [{example}]")
        if not isinstance(raw.get("default", {}), dict):
            raise GateConfigError(f"{path}: [default] must be a table")
        bad_keys = [k for k in raw.get("artifact", {}) if k.count("/") != 1]
        if bad_keys:
            raise GateConfigError(f"{path}: artifact gates are keyed \"<backend>/<precision>\", got {bad_keys}")
        gates = cls(raw.get("default", {}), raw.get("precision", {}), raw.get("artifact", {}), str(path))
        for where, table in [("default", gates.default), *[(f"precision.{k}", v) for k, v in gates.precision.items()],
                             *[(f'artifact."{k}"', v) for k, v in gates.artifact.items()]]:
            bad = [k for k in table if k not in GATE_METRICS]
            if bad:
                raise GateConfigError(f"{path} [{where}]: unknown gate(s) {bad}; known: {', '.join(GATE_METRICS)}")
            wrong = [k for k, v in table.items() if not isinstance(v, (int, float)) or isinstance(v, bool)]
            if wrong:
                raise GateConfigError(f"{path} [{where}]: gate(s) {wrong} must be numbers")
            wrong = [k for k, v in table.items() if not (math.isfinite(v) and v >= 0)]
            if wrong:     # a NaN limit fails every artifact; a negative drop or PSNR is no limit a gate can mean
                raise GateConfigError(f"{path} [{where}]: gate(s) {wrong} must be finite numbers >= 0")
        if not any((gates.default, *gates.precision.values(), *gates.artifact.values())):
            raise GateConfigError(f"{path}: no gate set; give at least one, e.g. [default] sad_drop_pct = 10.0")
        return gates

    def thresholds(self, key: str) -> dict[str, float]:
        """The gates of the artifact ``<backend>/<precision>``, most specific value winning."""
        precision = key.split("/", 1)[1] if "/" in key else key
        return {**self.default, **self.precision.get(precision, {}), **self.artifact.get(key, {})}


@dataclass
class GateResult:
    key: str
    label: str
    path: str                # identifies the artifact (two artifacts may share key and label)
    set: str
    gate: str
    value: float | None
    limit: float | None
    status: str            # pass | fail | n/a | not run
    note: str = ""

    def describe(self) -> str:
        if self.gate == "runs":
            return f"{self.label} ({self.path}): could not be evaluated: {self.note}"
        metric, kind = GATE_METRICS[self.gate]
        if kind == "min":
            return f"{self.label} on {self.set}: {metric} {self.value:.2f} dB < {self.limit:g} dB ({self.gate})"
        unit = " %" if kind == "pct" else ""
        return (f"{self.label} on {self.set}: {metric} drop {self.value:+.4g}{unit} > {self.limit:g}{unit} "
                f"({self.gate})")


def gate_value(row_set, gate: str) -> float | None:
    """The quantity ``gate`` limits, from one artifact's score on one set; None when not measured."""
    metric, kind = GATE_METRICS[gate]
    if kind == "min":
        return row_set.metrics.get(metric)
    if metric not in row_set.metrics or metric not in row_set.drop:
        return None
    if kind == "abs":
        return row_set.drop[metric]
    ref = row_set.metrics[metric] - row_set.drop[metric]
    return 0.0 if ref == 0 and row_set.drop[metric] == 0 else 100.0 * row_set.drop[metric] / max(abs(ref), 1e-12)


def check(rows: list[AccuracyRow], gates: Gates) -> list[GateResult]:
    """Gate every non-reference row. An artifact that should run here but could not be evaluated (its
    backend refused it, or it crashed) fails; one that cannot run on this machine is ``not run``."""
    out = []
    for row in rows:
        a = row.artifact
        if a.backend == "torch":
            continue
        limits = gates.thresholds(a.key)
        if row.status == "failed":
            out.append(GateResult(a.key, a.label, str(a.path), "-", "runs", None, None, "fail", row.note))
            continue
        if not row.sets:
            out.extend(GateResult(a.key, a.label, str(a.path), "-", g, None, v, "not run") for g, v in limits.items())
            continue
        for set_name, sc in row.sets.items():
            for g, limit in limits.items():
                if GATE_METRICS[g][0] not in measured_by(set_name):
                    continue                  # e.g. the temporal gate on a set of photos
                value = gate_value(sc, g)
                if value is None:
                    status = "n/a"
                elif GATE_METRICS[g][1] == "min":
                    status = "pass" if value >= limit else "fail"
                else:
                    status = "pass" if value <= limit else "fail"
                out.append(GateResult(a.key, a.label, str(a.path), set_name, g, value, limit, status))
    return out


def summary(rows: list[AccuracyRow], results: list[GateResult]) -> list[dict]:
    """One line per artifact: its status and the number of gates passed / failed / not measured."""
    out = []
    for row in rows:
        a = row.artifact
        if a.backend == "torch":
            continue
        mine = [r for r in results if r.path == str(a.path)]
        failed = [r for r in mine if r.status == "fail"]
        verdict = ("FAIL" if failed else "not run" if row.status == "not run"
                   else "pass" if any(r.status == "pass" for r in mine) else "n/a")
        out.append({"artifact": a.label, "key": a.key, "path": str(a.path), "status": row.status, "gate": verdict,
                    "passed": sum(r.status == "pass" for r in mine), "failed": len(failed),
                    "n/a": sum(r.status == "n/a" for r in mine), "note": row.note})
    return out


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def table(rows: list[AccuracyRow], results: list[GateResult]) -> list[dict]:
    """The gate table: one line per artifact, its accuracy on each set as absolute + drop, and the verdict."""
    verdicts = {s["path"]: s for s in summary(rows, results)}
    out = []
    for row in rows:
        a = row.artifact
        line = {"artifact": a.label, "status": row.status}
        for set_name in ("val", "real", "mask"):
            sc = row.sets.get(set_name)
            line[f"{set_name} SAD"] = _fmt(sc.metrics.get("SAD") if sc else None, ".3f")
            line[f"{set_name} ΔSAD %"] = _fmt(gate_value(sc, "sad_drop_pct") if sc else None, "+.2f")
            line[f"{set_name} ΔGrad %"] = _fmt(gate_value(sc, "grad_drop_pct") if sc else None, "+.2f")
            line[f"{set_name} ΔEdge"] = _fmt(gate_value(sc, "edge_mae_drop") if sc else None, "+.4f")
            line[f"{set_name} bokeh dB"] = _fmt(sc.metrics.get("BokehPSNR") if sc else None, ".1f")
        sc = row.sets.get("clip")
        line["clip ΔdtSSD %"] = _fmt(gate_value(sc, "dtssd_drop_pct") if sc else None, "+.2f")
        v = verdicts.get(str(a.path))
        line["gate"] = "reference" if a.backend == "torch" else v["gate"]
        out.append(line)
    return out


def violations(results: list[GateResult]) -> list[str]:
    return [r.describe() for r in results if r.status == "fail"]


def measured_anything(results: list[GateResult]) -> bool:
    """Whether any gate was actually evaluated (a gate over nothing must not pass)."""
    return any(r.status in ("pass", "fail") for r in results)


def failures(problems: list[str], results: list[GateResult]) -> list[str]:
    """Every reason the gate fails: unusable artifacts (no manifest, hash mismatch, another checkpoint's
    export), violated gates, and a run that evaluated nothing. Empty when the gate passes."""
    failed = [f"unusable artifact: {p}" for p in problems] + violations(results)
    if not failed and not measured_anything(results):
        failed = ["no gate was evaluated: none of the artifacts runs here and none has a simulated accuracy"]
    return failed
