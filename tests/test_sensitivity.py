"""The sensitivity command ranks layer groups by the alpha error their quantization causes."""

import pytest
import torch

from adamatting.config import get_config
from adamatting.model import build_model
from calib_data.sets import SetConfig, build_set
from export.onnx_graph import export_onnx
from export.sensitivity import conv_groups, format_report, rank_layers, suggest_policy


def test_ranking_and_suggested_policy(tmp_path):
    import onnx

    torch.manual_seed(0)
    model = build_model(get_config("tiny")).eval()
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(model, fp32, (64, 64))
    sets = [build_set(SetConfig(name=n, count=3, size=(64, 64), seed=s, procedural=1.0).validated(), tmp_path / "s",
                      progress=False) for n, s in (("c", 1), ("v", 2))]
    groups = conv_groups(onnx.load(str(fp32)), depth=1)
    assert sorted(groups) == ["/model/alpha_decoder/", "/model/encoder/", "/model/propagation/", "/model/trimap_decoder/"]
    rows = rank_layers(fp32, *sets, depth=1, calib_limit=3, val_limit=3, progress=False)
    assert sorted(r["group"] for r in rows) == sorted(groups)
    assert [r["mean_abs"] for r in rows] == sorted((r["mean_abs"] for r in rows), reverse=True)
    assert rows[0]["mean_abs"] > 0
    suggestion = suggest_policy(rows)
    assert suggestion and suggestion[0] == rows[0]["group"] and set(suggestion) <= set(groups)
    report = format_report(rows, suggestion)
    assert "[float]" in report and rows[0]["group"] in report


def test_suggestion_takes_the_fewest_groups_covering_the_share():
    rows = [{"group": g, "mean_abs": e} for g, e in (("a", 0.6), ("b", 0.3), ("c", 0.1))]
    assert suggest_policy(rows, share=0.5) == ["a"]
    assert suggest_policy(rows, share=0.8) == ["a", "b"]
    assert suggest_policy(rows, share=1.0, max_groups=2) == ["a", "b"]


def test_command_writes_the_ranking_as_json(tiny_checkpoint, tmp_path, capsys):
    from adamat.cli import main
    from benchmarks.measurements import load

    out = tmp_path / "ranking.json"
    assert main(["export", "sensitivity", "--checkpoint", str(tiny_checkpoint), "--size", "64", "64", "--depth", "1",
                 "--samples", "2", "--cache", str(tmp_path / "sets"), "--json", str(out)]) == 0
    ranking = load(out)   # a valid measured-results table
    assert ranking["kind"] == "int8-sensitivity" and "config tiny" in ranking["model"] and len(ranking["rows"]) == 4
    errors = [r["mean |Δα|"] for r in ranking["rows"]]
    assert errors == sorted(errors, reverse=True) and errors[0] > 0
    assert ranking["note"].startswith("suggested float modules: " + ranking["rows"][0]["group"].strip("/").replace("/", "."))
    assert "suggested export/precision.toml" in capsys.readouterr().out


@pytest.mark.parametrize("option", ["--samples", "--depth"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_sensitivity_refuses_counts_below_one(capsys, option, value):
    """--samples 0 was onnxruntime's 'No data is collected.' after the export; --depth -1 a meaningless ranking."""
    from adamat.cli import main

    with pytest.raises(SystemExit) as e:
        main(["export", "sensitivity", option, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err == [f"error: argument {option}: must be >= 1, got {value} "
                                         f"(see adamat export sensitivity --help)"]
