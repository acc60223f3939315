"""Measured results as data: every committed file in benchmarks/measured/ is valid and renders; a bad file is
one error line and exit 2."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import measurements
from benchmarks.measurements import (
    MEASURED,
    MeasuredError,
    load,
    load_all,
    main,
    ratio,
    render_all,
)

ROOT = Path(__file__).resolve().parent.parent


def test_committed_files_render_newest_first(capsys):
    files = sorted(MEASURED.glob("*.json"))
    assert files, "benchmarks/measured/ holds no measured results"
    assert main([]) == 0
    out = capsys.readouterr().out
    for path in files:
        assert f"`{path.name}`" in out
    dates = [line.split(",")[1].split(":")[0].strip() for line in out.splitlines() if line.startswith("## ")]
    assert len(dates) == len(files) and dates == sorted(dates, reverse=True)


def test_every_file_names_its_device_and_date():
    for path, data in load_all():
        assert path.name.startswith(f"{data['kind']}-{data['date']}-"), path.name
        assert data["device"]["cpu"] and data["device"]["cores"] >= 1


def test_recorded_ratios_agree_with_the_p50s():
    """A recorded ratio is the ratio of its own row's p50s (rounded), so a typo in either shows."""
    for path, data in load_all(kind="latency"):
        for m in data["measurements"]:
            rows = {r["artifact"]: r for r in m["rows"]}
            for r in m["rows"]:
                for which in measurements.RATIOS:
                    if which not in r or isinstance(r[which], list):
                        continue
                    stripped = {**m, "rows": [{k: v for k, v in x.items() if k != which} for x in m["rows"]]}
                    computed = ratio(stripped, r["artifact"], which)
                    assert computed is not None and abs(computed - r[which]) <= 0.015, (path.name, m["label"], r)
            assert "torch/fp32" in rows


def test_latest_latency_is_one_measurement():
    text = render_all(kind="latency", latest=True)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 2   # header + the newest measurement


def test_the_module_runs_as_a_command():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.measurements", "--kind", "latency", "--latest"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "p50 ms" in proc.stdout and proc.stderr == ""


def _copy_with(tmp_path: Path, change) -> Path:
    """The folder with one committed latency file, changed by ``change(data)``."""
    source = max(MEASURED.glob("latency-*.json"))
    data = json.loads(source.read_text())
    change(data)
    (tmp_path / source.name).write_text(json.dumps(data))
    return tmp_path / source.name


@pytest.mark.parametrize("change, problem", [
    (lambda d: d.pop("device"), "missing device"),
    (lambda d: d.update(date="30 Nov 2026"), "is not YYYY-MM-DD"),
    (lambda d: d.update(format="something/1"), "expected 'adamatting-measured/1'"),
    (lambda d: d["measurements"][0].update(model="nope"), "model 'nope' is not one of models"),
    (lambda d: d["measurements"][0]["rows"][0].pop("p50_ms"), "missing p50_ms"),
    (lambda d: d["measurements"][0]["rows"][0].update(p50_ms=-1), "p50_ms must be a positive number"),
    (lambda d: d["measurements"][0]["rows"][0].update(p50=1), "unknown key p50"),
    (lambda d: d["device"].update(cores="two"), "device.cores must be a positive integer"),
])
def test_a_bad_file_is_one_error_line_and_exit_2(tmp_path, capsys, change, problem):
    bad = _copy_with(tmp_path, change)
    with pytest.raises(MeasuredError, match=problem):
        load(bad)
    assert main(["--dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: ") and problem in lines[0]


def test_unreadable_json_and_missing_folder(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'broken.json'}: not readable JSON")
    assert main(["--dir", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing'}: not a folder"


def test_a_table_kind_needs_a_value_for_every_column(tmp_path, capsys):
    source = next(MEASURED.glob("conv-kernels-*.json"))
    shutil.copy(source, tmp_path / source.name)
    assert main(["--dir", str(tmp_path), "--kind", "conv-kernels"]) == 0
    data = json.loads(source.read_text())
    del data["rows"][0]["count"]
    (tmp_path / source.name).write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["--dir", str(tmp_path)]) == 2
    assert "rows[0]: missing count" in capsys.readouterr().err


def test_no_file_of_a_kind(tmp_path, capsys):
    assert main(["--kind", "no-such-kind"]) == 2
    assert "no measured results of kind 'no-such-kind'" in capsys.readouterr().err


def test_a_new_measurement_never_takes_the_name_of_another(tmp_path):
    header = {"date": "2026-12-06", "device": {"fingerprint_id": "linux-x86_64-cpu-2c-0000"}}
    first = measurements.new_path("bokeh-runs", header, tmp_path)
    assert first.name == "bokeh-runs-2026-12-06-linux-x86_64-cpu-2c-0000.json"
    first.write_text("{}")
    second = measurements.new_path("bokeh-runs", header, tmp_path)
    assert second.name == "bokeh-runs-2026-12-06-linux-x86_64-cpu-2c-0000-2.json"
    second.write_text("{}")
    assert measurements.new_path("bokeh-runs", header, tmp_path).name.endswith("-0000-3.json")
