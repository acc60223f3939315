"""benchmarks.model_comparison: per model, p50s are medians of round p50s, ratios medians of round ratios,
the targets are judged per model, and a folder without the compared artifacts is one clear error."""

import pytest

from benchmarks.model_comparison import COMPARED, main, model_rows


def rows_of(*models: dict[str, list[float]]) -> list[dict]:
    return [{"key": k, "p50_ms_rounds": m[k]} for m in models for k in COMPARED]


def test_rows_are_medians_of_rounds_and_ratios_of_rounds():
    shipped = {"onnxruntime/fp32": [30, 40, 30], "onnxruntime/int8": [24, 36, 27],
               "openvino/fp32": [20, 20, 20], "openvino/int8": [19, 19, 19]}
    variant = {"onnxruntime/fp32": [20, 30, 20], "onnxruntime/int8": [10, 18, 12],
               "openvino/fp32": [15, 15, 15], "openvino/int8": [8, 8, 10]}
    first, second = model_rows(rows_of(shipped, variant), ["mobile", "mobile-int8"])
    assert first["ORT FP32 ms"] == 30 and first["ORT INT8 ms"] == 27
    assert first["ORT INT8/FP32"] == pytest.approx(0.9)          # rounds 0.8, 0.9, 0.9
    assert second["ORT INT8/FP32"] == pytest.approx(0.6)         # rounds 0.5, 0.6, 0.6
    assert second["OV INT8 / first OV INT8"] == pytest.approx(8 / 19, abs=1e-3)
    assert first["OV INT8 / first OV INT8"] == 1.0
    assert "ORT INT8/FP32 <= 0.6: met" in second["targets"] and "OV INT8/FP32 <= 0.6: met" in second["targets"]
    assert "OV INT8 / first OV INT8 <= 0.5: met" in second["targets"]
    assert "ORT INT8/FP32 <= 0.6: not met" in first["targets"] and "first OV INT8" not in first["targets"]


def test_a_folder_without_the_artifacts_is_one_line_and_exit_2(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no 512x512 onnxruntime/fp32, onnxruntime/int8, openvino/fp32" in err
    assert not (tmp_path / "c.json").exists()
