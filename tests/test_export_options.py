"""The options of ``adamat export <target>``: a count of 0 or less, a NaN, infinite or negative number, or a value
so large the export would run out of memory or time is refused as the command line is read: one line naming
the option, exit 2, before any export or calibration starts."""

import pytest

import adamat.cli
from adamat.cli import main


@pytest.fixture
def no_command(monkeypatch):
    """The command itself replaced: an option that is not refused while parsing runs nothing (and returns 0)."""
    monkeypatch.setattr(adamat.cli, "_run", lambda args: 0)


def refused(argv: list[str], capsys) -> str:
    """The one error line of ``adamat <argv>``, which must exit 2 while parsing."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: argument ") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("target, option, value", [
    ("openvino", "--max-drop", "nan"), ("openvino", "--max-drop", "-1"), ("openvino", "--max-drop", "inf"),
    ("openvino", "--max-iterations", "-1"), ("openvino", "--max-iterations", "100000"),
    ("trt", "--workspace-mib", "0"), ("trt", "--workspace-mib", "-5"), ("trt", "--workspace-mib", "2000000"),
    ("coreml", "--calib-limit", "0"), ("coreml", "--val-limit", "-1"), ("coreml", "--weight-threshold", "-1"),
    ("executorch", "--calib-limit", "0"), ("executorch", "--val-limit", "0"),
    ("onnx", "--steps", "100000"), ("onnx", "--steps", "-1"), ("trt", "--steps", "65"), ("openvino", "--steps", "-2"),
])
def test_a_bad_number_is_one_line_naming_its_option(target, option, value, no_command, capsys):
    err = refused(["export", target, option, value], capsys)
    assert f"argument {option}: " in err and "pu_steps" not in err


@pytest.mark.parametrize("command", [["export", t] for t in ("onnx", "openvino", "trt", "coreml", "executorch",
                                                             "all", "sensitivity")] + [["demo"], ["gate"]])
@pytest.mark.parametrize("size", [("8192", "8192"), ("0", "512"), ("512", "-128")])
def test_an_export_size_out_of_bounds_is_refused_while_parsing(command, size, no_command, capsys):
    """8192 is a multiple of every stride: it was accepted and ran out of memory building the sets (adamat demo
    built the sets and wrote its four figures before it was refused)."""
    assert "argument --size: " in refused([*command, "--size", *size], capsys)


@pytest.mark.parametrize("target, option, last_good, first_bad", [
    ("openvino", "--max-drop", "0", "-0.001"), ("openvino", "--max-iterations", "1000", "1001"),
    ("openvino", "--max-iterations", "0", "-1"), ("onnx", "--steps", "64", "65"), ("onnx", "--steps", "0", "-1"),
    ("trt", "--workspace-mib", "1", "0"), ("trt", "--workspace-mib", str(1 << 20), str((1 << 20) + 1)),
    ("coreml", "--weight-threshold", "0", "-1"), ("coreml", "--calib-limit", "1", "0"),
    ("executorch", "--val-limit", "1", "0"),
])
def test_the_bounds_are_at_the_edges(target, option, last_good, first_bad, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(adamat.cli, "_run", lambda args: seen.append(args) or 0)
    assert main(["export", target, option, last_good]) == 0
    assert getattr(seen[0], option[2:].replace("-", "_")) == float(last_good)
    assert f"argument {option}: " in refused(["export", target, option, first_bad], capsys)


def test_the_size_help_says_what_is_accepted(capsys):
    """64x64 and 256x96 are accepted for the default model: the help names the checkpoint's stride, not 128."""
    with pytest.raises(SystemExit):
        main(["export", "onnx", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "multiple of the checkpoint's stride (32 for the default mobile-int8, 128 for mobile" in text
    assert "at most 4096" in text


def _no_work(*args, **kwargs):
    raise AssertionError("the export started before its input was checked")


def test_openvino_reads_its_sets_before_the_fp32_onnx_is_written(tmp_path, monkeypatch, capsys):
    import export.openvino_ir

    monkeypatch.setattr(export.openvino_ir, "export_onnx_target", _no_work)
    out = tmp_path / "out"
    assert main(["export", "openvino", "--val", str(tmp_path / "missing.toml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.toml" in err and not out.exists()


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_a_set_that_cannot_be_built_leaves_no_fp32_graph_behind(tiny_checkpoint, tmp_path, monkeypatch, capsys,
                                                                 target):
    """The set's config reads, its background folder is missing: the FP32 ONNX and its manifest were written
    first and left in the new output folder (exit 2)."""
    import export.onnx_target

    monkeypatch.setattr(export.onnx_target, "export_onnx", _no_work)
    calib = tmp_path / "calib.toml"
    calib.write_text('name = "c"\ncount = 2\nsize = [64, 64]\nseed = 1\ntrimap = "mask"\nmask_band = 4\n'
                     '[foregrounds]\nprocedural = 1.0\nreal = 0.0\n[backgrounds]\nfolder = "/nonexistent/bg"\n')
    out = tmp_path / "out"
    assert main(["export", target, "--checkpoint", str(tiny_checkpoint), "--size", "64", "64", "--calib", str(calib),
                 "--val", str(calib), "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: /nonexistent/bg: background folder does not exist or is not a folder"], err
    assert not out.exists()


def test_sensitivity_reads_its_sets_before_the_export(tmp_path, monkeypatch, capsys):
    import adamat.commands.export

    monkeypatch.setattr(adamat.commands.export, "load_model", _no_work)
    assert main(["export", "sensitivity", "--calib", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.toml" in err


def test_trt_checks_the_size_before_any_set_is_built(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    import export.trt_target

    monkeypatch.setattr(export.trt_target, "composited_set", _no_work)
    assert main(["export", "trt", "--checkpoint", str(tiny_checkpoint), "--size", "64", "65",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input size 64x65 must be positive multiples of the encoder stride" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("target", ["onnx", "openvino"])
@pytest.mark.parametrize("case", ["missing checkpoint", "bad size"])
def test_onnx_and_openvino_check_the_checkpoint_and_size_before_any_set_is_built(tiny_checkpoint, tmp_path,
                                                                                  monkeypatch, capsys, target, case):
    """They built the calibration and validation sets (7-11 s, 300 MB in --cache) before saying so."""
    import export.job
    import export.onnx_target
    import export.openvino_ir

    for module in (export.job, export.onnx_target, export.openvino_ir):
        if hasattr(module, "composited_set"):
            monkeypatch.setattr(module, "composited_set", _no_work)
    checkpoint, size = ((tmp_path / "none.pt", ["64", "64"]) if case == "missing checkpoint"
                        else (tiny_checkpoint, ["64", "65"]))
    assert main(["export", target, "--checkpoint", str(checkpoint), "--size", *size, "--cache",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ([f"error: {checkpoint}: checkpoint not found"] if case == "missing checkpoint" else
                   ["error: input size 64x65 must be positive multiples of the encoder stride 32"]), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_check_sets_readable_reads_every_set_and_builds_none(tmp_path, monkeypatch):
    import export.job
    from common.errors import DataError

    monkeypatch.setattr(export.job, "build_set", _no_work)
    export.job.check_sets_readable("calib", "val")   # the embedded sets: read, nothing built
    with pytest.raises(DataError, match="missing.toml"):
        export.job.check_sets_readable("calib", str(tmp_path / "missing.toml"))


@pytest.mark.parametrize("command, option, values", [
    (["export", "all"], "--targets", ["onnx", "onnx"]), (["export", "openvino"], "--precisions", ["fp32", "fp32"]),
    (["export", "coreml"], "--variants", ["fp16", "fp16"]), (["export", "executorch"], "--precisions", ["int8", "int8"]),
    (["export", "band-refiner"], "--targets", ["onnx", "onnx"]),
])
def test_a_target_or_precision_given_twice_is_refused_not_built_twice(command, option, values, no_command, capsys):
    err = refused([*command, option, *values], capsys)
    assert f"argument {option}: {values[0]} given more than once" in err


@pytest.mark.parametrize("command", [["export", t] for t in ("onnx", "openvino", "trt", "coreml", "executorch",
                                                             "all", "sensitivity")] + [["gate"], ["demo"]])
def test_a_cache_that_is_a_file_is_refused_before_any_artifact_is_written(command, tmp_path, no_command, capsys):
    file = tmp_path / "p.jpg"
    file.write_bytes(b"not a folder")
    err = refused([*command, "--cache", str(file)], capsys)
    assert f"argument --cache: {file} is a file, not a folder" in err


@pytest.mark.parametrize("option, value, words", [("--json", "ck.pt", "must be a .json file"),
                                                  ("--json", "x.txt", "must be a .json file"),
                                                  ("--depth", "1000000", "at most 16"),
                                                  ("--samples", "100000000", "at most 1000")])
def test_sensitivity_refuses_a_json_that_is_not_a_json_file_and_unbounded_counts(option, value, words, no_command,
                                                                                 capsys):
    err = refused(["export", "sensitivity", option, value], capsys)
    assert f"argument {option}: " in err and words in err


def test_sensitivity_never_writes_its_table_over_the_checkpoint(tmp_path, capsys):
    checkpoint = tmp_path / "ck.json"
    checkpoint.write_bytes(b"weights")
    assert main(["export", "sensitivity", "--checkpoint", str(checkpoint), "--json", str(checkpoint)]) == 2
    assert "is the --checkpoint: give another --json path" in capsys.readouterr().err
    assert checkpoint.read_bytes() == b"weights"


def test_an_unknown_coreml_deployment_target_is_refused_while_parsing(no_command, capsys):
    err = refused(["export", "coreml", "--target", "bogus"], capsys)
    assert "argument --target: invalid choice: 'bogus'" in err and "iOS17" in err
