"""On-device latency: the one command an engineer runs on the target itself, and the merge of several targets.

    python -m benchmarks.device_bench [--artifacts out/export] [--out results/latency-<fingerprint id>.json]
        [--checkpoint weights/mobile.pt] [--size H W] [--warmup 5] [--runs 30] [--threads N] [--hint LATENCY]
        [--keep-going]
    python -m benchmarks.device_bench merge a.json b.json ... [--out latency.md]

The first times every artifact of the folder that runs on this device (:mod:`benchmarks.latency`: one process
per artifact, p50/p90/p99, throughput, peak RSS), after the PyTorch FP32 reference where torch is installed,
prints a table and writes the JSON. It exits 1 when an artifact that should run here failed or is damaged (no
usable manifest, files that do not match it), after writing the JSON, so that a CI job or a device farm sees
it; ``--keep-going`` exits 0 all the same. An artifact whose runtime is not installed is "not run", not a
failure. It needs the repository's Python packages, NumPy and the runtime —
TensorRT on a Jetson, coremltools on a Mac, OpenVINO on an Intel laptop, onnxruntime on a phone under
Termux — and not torch: without it there is no reference row, which the JSON and the table say. The second
merges the JSONs of several devices into one markdown table: a row per artifact, per device its p50 and its
ratio to that device's own PyTorch FP32.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from adamatting.config import DEFAULT_WEIGHTS
from benchmarks.latency import FORMAT, bench_all
from common.arguments import thread_count
from common.outputs import check_writable, write_json, write_text

_DASH = "—"
_RESULT_KEYS = {"fingerprint", "fingerprint_id", "settings", "reference", "reference_note", "rows"}


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table, padded so that it also reads as plain text in a terminal."""
    rows = [[c.replace("|", "\\|") for c in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return _DASH if value is None else fmt.format(value)


def _ratio(value: float | None) -> str:
    return _num(value, "{:.3g}×")


def result_table(result: dict) -> str:
    """One device's rows: latency, ratios, peak RSS, size, GMACs, and why a row did not run."""
    header = ["artifact", "runs on", "p50 ms", "p90 ms", "p99 ms", "img/s", "× torch fp32", "× fp32 same runtime",
              "peak RSS MiB", "size MB", "GMACs", "note"]
    rows = []
    for r in result["rows"]:
        size_mb = None if r["size_bytes"] is None else r["size_bytes"] / 1e6
        common = [r["id"], r["run_backend"] or _DASH]
        tail = [_num(size_mb), _num(r["gmacs"], "{:.2f}")]
        if r["status"] == "ok":
            rows.append(common + [_num(r["p50_ms"]), _num(r["p90_ms"]), _num(r["p99_ms"]), _num(r["throughput_ips"]),
                                  _ratio(r["ratio_to_torch_fp32"]), _ratio(r["ratio_to_fp32_same_runtime"]),
                                  _num(r["peak_rss_mb"], "{:.0f}")] + tail + [r["note"]])
        else:
            rows.append(common + [r["status"]] + [_DASH] * 6 + tail + [r["reason"]])
    return markdown_table(header, rows)


def load_result(path: str | Path) -> dict:
    """A JSON written by this module; ValueError naming the file when it is missing, corrupt or another format."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not _RESULT_KEYS <= set(data):
        raise ValueError(f"{path}: not a latency result (expected \"format\": {FORMAT!r}, as written by "
                         f"python -m benchmarks.device_bench)")
    return data


def _device_names(paths: list[Path], results: list[dict]) -> list[str]:
    """Each result's fingerprint id, with its file name where two files come from the same device."""
    ids = [r["fingerprint_id"] for r in results]
    return [f"{i} ({p.name})" if ids.count(i) > 1 else i for i, p in zip(ids, paths)]


def _devices_table(names: list[str], results: list[dict]) -> str:
    rows = []
    for name, r in zip(names, results):
        fp, s = r["fingerprint"], r["settings"]
        runtimes = ", ".join(f"{k} {v}" for k, v in fp["runtimes"].items())
        rows.append([name, fp["cpu"] + (f" ({fp['board']})" if fp.get("board") else ""), str(fp["logical_cores"]),
                     fp["os"], fp["gpu"] or _DASH, runtimes, "x".join(map(str, s["input_size"])), str(s["runs"]),
                     str(s["threads"] or "default"), r["reference"] or f"none: {r['reference_note']}"])
    return markdown_table(["device", "CPU", "cores", "OS", "GPU", "runtimes", "input", "runs", "threads",
                           "reference"], rows)


def _cells(row: dict | None) -> list[str]:
    if row is None:
        return [_DASH, _DASH]
    if row["status"] != "ok":
        return [row["status"], _DASH]
    return [_num(row["p50_ms"]), _ratio(row["ratio_to_torch_fp32"])]


def merge_markdown(paths: list[str | Path]) -> str:
    """The results of several devices as markdown: the devices, then a row per artifact (and input size, where
    the results differ in it) with, per device, its p50 in ms and its ratio to that device's PyTorch FP32
    (— where the device has no reference or no such artifact). ValueError for a file that is not a latency
    result."""
    paths = [Path(p) for p in paths]
    results = [load_result(p) for p in paths]
    names = _device_names(paths, results)
    several_sizes = len({tuple(r["settings"]["input_size"]) for r in results}) > 1

    def label(row):  # an artifact at another size is another row
        return f"{row['id']} {row['input_size'][0]}x{row['input_size'][1]}" if several_sizes else row["id"]

    by_device = [{label(row): row for row in r["rows"]} for r in results]
    ids = list(dict.fromkeys(label(row) for r in results for row in r["rows"]))
    header = ["artifact"] + [f"{n} {col}" for n in names for col in ("p50 ms", "× torch fp32")]
    rows = [[i] + [c for device_rows in by_device for c in _cells(device_rows.get(i))] for i in ids]
    return "\n\n".join(["# Latency by device", _devices_table(names, results),
                        "p50 of one batch-1 inference call; × torch fp32: p50 over the same device's PyTorch FP32 "
                        "eager p50.", markdown_table(header, rows)]) + "\n"


def _bench(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.device_bench", description=__doc__.split("\n\n")[0],
                                epilog="merge: python -m benchmarks.device_bench merge a.json b.json ... --out m.md")
    p.add_argument("--artifacts", default="out/export", help="folder of exported artifacts with manifests")
    p.add_argument("--out", default=None, help="JSON to write (default: results/latency-<fingerprint id>.json)")
    p.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS), help="PyTorch checkpoint of the reference row")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="input size of the artifacts to time (default: the one size they share)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls before timing (default 5)")
    p.add_argument("--runs", type=int, default=30, help="timed calls (default 30)")
    p.add_argument("--threads", type=thread_count, default=None, help="CPU threads for torch, onnxruntime, OpenVINO")
    p.add_argument("--hint", default="LATENCY", type=str.upper, choices=["LATENCY", "THROUGHPUT"],
                   help="OpenVINO performance hint (default LATENCY)")
    p.add_argument("--keep-going", action="store_true",
                   help="exit 0 even when an artifact failed or is damaged (default: exit 1 after writing the JSON)")
    args = p.parse_args(argv)
    if args.warmup < 0 or args.runs < 1:
        raise ValueError("--warmup must be >= 0 and --runs >= 1")
    if args.out is not None:
        check_writable(args.out)   # before the benchmark, not after it

    def progress(row):
        timing = f"p50 {row['p50_ms']:.1f} ms" if row["status"] == "ok" else f"{row['status']}: {row['reason']}"
        print(f"  {row['id']}: {timing}", file=sys.stderr, flush=True)

    result = bench_all(args.artifacts, args.checkpoint, args.size, args.warmup, args.runs, args.threads, args.hint,
                       progress)
    out = write_json(result, args.out or Path("results") / f"latency-{result['fingerprint_id']}.json")
    print(f"device {result['fingerprint_id']}: {result['fingerprint']['cpu']}, "
          f"input {'x'.join(map(str, result['settings']['input_size']))}")
    print(result_table(result))
    if result["reference"] is None:
        print(f"no PyTorch FP32 reference row ({result['reference_note']}): no ratios to PyTorch FP32")
    for problem in result["problems"]:
        print(f"skipped: {problem}")
    print(f"wrote {out}")
    failed = failures(result)
    if failed and not args.keep_going:
        print(f"error: {len(failed)} artifact(s) failed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def failures(result: dict) -> list[str]:
    """What should have run here and did not: failed rows (the reference included) and damaged artifacts.
    Rows "not run" (their runtime is not installed here) are not failures."""
    rows = [f"{r['id']}: {r['reason']}" for r in result["rows"] if r["status"] == "failed"]
    return rows + list(result["problems"])


def _merge(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.device_bench merge",
                                description="Merge device_bench JSONs of several devices into one markdown table.")
    p.add_argument("results", nargs="+", help="JSON files written by python -m benchmarks.device_bench")
    p.add_argument("--out", default=None, help="markdown file to write (default: print it)")
    args = p.parse_args(argv)
    text = merge_markdown(args.results)
    if args.out is None:
        print(text, end="")
        return 0
    print(f"wrote {write_text(text, args.out)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``merge ...`` merges results; anything else benchmarks this device. Bad input: one ``error:`` line, exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _merge(argv[1:]) if argv[:1] == ["merge"] else _bench(argv)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
