"""An artifact is all of its files: the manifest hashes each one, and one check (common.manifest.verify_files,
inside load_manifest) refuses a damaged, incomplete or padded artifact on every path that uses it: export reuse,
the runtime (and so bokeh, gate, device_bench). Names read from files cannot make a path."""

import json

import numpy as np
import pytest
import torch

from adamat.cli import main
from adamatting.checkpoint import save_checkpoint
from adamatting.config import get_config
from adamatting.model import build_model
from calib_data.sets import SetConfig, build_set
from common.errors import DataError
from common.manifest import (
    Manifest,
    ManifestError,
    load_manifest,
    manifest_path,
    write_manifest,
)
from common.outputs import inside
from export.job import artifact_name
from export.onnx_graph import export_onnx
from runtime.matter import Matter

SIZE = (64, 64)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(seeded_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    model = seeded_model("tiny")
    return model, save_checkpoint(root / "tiny.pt", model), root


def _damage_middle(path, count=400):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + count] = bytes(255 - b for b in data[mid:mid + count])
    path.write_bytes(bytes(data))


def test_a_damaged_openvino_bin_is_rebuilt_not_reused_and_refused_by_the_runtime(tiny):
    pytest.importorskip("openvino", reason="openvino is part of the project's export extra")
    from export.all_targets import export_all

    _, ckpt, root = tiny
    sets = [build_set(SetConfig(name=n, count=2, size=SIZE, seed=s, trimap=t, procedural=1.0,
                                bg_sources=("procedural",)).validated(), root / "sets", progress=False)
            for n, s, t in (("cal", 1, "mask"), ("val", 2, "validation"))]
    out = root / "export"
    [first] = export_all(ckpt, out, SIZE, *sets, targets=("openvino",), log=lambda _: None)
    assert first.status == "built"
    xml = out / "adamatting_tiny_64x64_openvino_fp32.xml"
    assert set(load_manifest(xml).files) == {xml.name, xml.with_suffix(".bin").name}
    _damage_middle(xml.with_suffix(".bin"))
    with pytest.raises(ManifestError, match=r"openvino_fp32.bin was changed"):
        load_manifest(xml)
    with pytest.raises(ManifestError, match=r"openvino_fp32.bin was changed"):
        Matter.from_artifact(xml)
    [again] = export_all(ckpt, out, SIZE, *sets, targets=("openvino",), log=lambda _: None)
    assert again.status == "built"          # not "reused": the damaged IR was exported again
    load_manifest(xml)
    [third] = export_all(ckpt, out, SIZE, *sets, targets=("openvino",), log=lambda _: None)
    assert third.status == "reused"


def _edit_manifest(artifact, **changes):
    raw = json.loads(manifest_path(artifact).read_text())
    raw.update(changes)
    manifest_path(artifact).write_text(json.dumps(raw))


@pytest.mark.parametrize("changes", [{"artifact_sha256": ""}, {"files": {}}, {"artifact_sha256": "0" * 63},
                                     {"files": {"m.onnx": ""}}])
def test_a_manifest_without_valid_hashes_is_invalid(tiny, tmp_path, changes):
    model, _, _ = tiny
    onnx_path = tmp_path / "m.onnx"
    export_onnx(model, onnx_path, SIZE)
    _edit_manifest(onnx_path, **changes)
    onnx_path.write_bytes(onnx_path.read_bytes() + b"edited")
    for load in (load_manifest, Matter.from_artifact):
        with pytest.raises(ManifestError, match="invalid manifest: it does not hold the SHA-256"):
            load(onnx_path)


def test_every_file_of_a_folder_artifact_is_verified(tmp_path):
    package = tmp_path / "m.mlpackage"
    (package / "Data" / "weights").mkdir(parents=True)
    (package / "Manifest.json").write_text("{}")
    (package / "Data" / "weights" / "weight.bin").write_bytes(b"\x01" * 64)
    write_manifest(package, Manifest(backend="coreml", precision="fp16", model_config=get_config("tiny").to_dict(),
                                     input_size=list(SIZE)))
    assert sorted(load_manifest(package).files) == ["m.mlpackage/Data/weights/weight.bin", "m.mlpackage/Manifest.json"]
    extra = package / "Data" / "extra.bin"
    extra.write_bytes(b"x")
    with pytest.raises(ManifestError, match="m.mlpackage/Data/extra.bin is not part of the export"):
        load_manifest(package)
    extra.unlink()
    (package / "Data" / "weights" / "weight.bin").write_bytes(b"\x02" * 64)
    with pytest.raises(ManifestError, match="weight.bin was changed"):
        load_manifest(package)
    (package / "Manifest.json").unlink()
    with pytest.raises(ManifestError, match="m.mlpackage/Manifest.json is missing"):
        load_manifest(package)


def test_an_older_manifest_format_is_refused_with_the_advice_to_re_export(tiny, tmp_path):
    model, _, _ = tiny
    onnx_path = tmp_path / "m.onnx"
    export_onnx(model, onnx_path, SIZE)
    _edit_manifest(onnx_path, format="adamatting-artifact/1")
    with pytest.raises(ManifestError, match="unknown manifest format 'adamatting-artifact/1'"):
        load_manifest(onnx_path)


@pytest.mark.parametrize("name", ["../x.onnx", "a/b.onnx", "..", ".", "", "a\\b.onnx", "/abs.onnx", "x\0.onnx"])
def test_output_names_cannot_leave_their_folder(tmp_path, name):
    with pytest.raises(DataError, match="would not be a file directly in this folder"):
        inside(tmp_path, name)


def test_names_that_are_files_in_the_folder_are_accepted(tmp_path):
    assert inside(tmp_path, "adamatting_tiny_64x64_fp32.onnx") == tmp_path / "adamatting_tiny_64x64_fp32.onnx"
    assert inside(tmp_path, "m.mlpackage") == tmp_path / "m.mlpackage"


@pytest.mark.parametrize("name", ["x/../../../escaped/e", "..", "-rf", "a b", "mobile.v2", ""])
def test_config_names_are_a_fixed_character_set(name):
    with pytest.raises(ValueError, match="is not allowed"):
        get_config("tiny").replace(name=name)
    with pytest.raises(ValueError, match="is not allowed in a file name"):
        artifact_name(name, SIZE, "fp32")


def test_a_checkpoint_whose_name_is_a_path_is_refused_before_anything_is_written(tiny, tmp_path, capsys):
    model, _, _ = tiny
    payload = {"format": "adamatting-checkpoint/1", "config": {**model.cfg.to_dict(), "name": "x/../../../escaped/e"},
               "model": model.state_dict()}
    good = torch.load(save_checkpoint(tmp_path / "good.pt", model), weights_only=True)
    payload["format"] = good["format"]
    trav = tmp_path / "a" / "b" / "trav.pt"
    trav.parent.mkdir(parents=True)
    torch.save(payload, trav)
    out = tmp_path / "a" / "b" / "out"
    code = main(["export", "onnx", "--checkpoint", str(trav), "--out", str(out), "--size", *map(str, SIZE),
                 "--no-int8"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {trav}: bad model config in checkpoint: model config name ")
    assert not list(tmp_path.rglob("*escaped*")) and not list(tmp_path.rglob("*.onnx"))


def test_runtime_refuses_an_artifact_whose_file_was_swapped(tiny, tmp_path):
    """A file replaced by another valid export of the same size: the bytes differ from the manifest's."""
    model, _, _ = tiny
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    export_onnx(model, a, SIZE)
    torch.manual_seed(1)
    export_onnx(build_model(get_config("tiny")).eval(), b, SIZE)
    a.write_bytes(b.read_bytes())
    with pytest.raises(ManifestError, match="a.onnx was changed"):
        Matter.from_artifact(a).predict(np.zeros((*SIZE, 3), np.float32), trimap=np.full(SIZE, 128, np.uint8))


def test_a_damaged_executorch_program_is_refused_with_a_clear_error(seeded_model, tiny, tmp_path, capsys):
    """Bytes changed after export: the manifest's hash refuses it. A program damaged and then re-hashed (the
    manifest cannot help): ExecuTorch's own check refuses it, and the runtime says so in one line."""
    pytest.importorskip("executorch", reason="executorch is the project's [android] extra (make setup installs it)")
    from export.pte_program import export_pte
    from runtime.errors import ArtifactError

    model = seeded_model("tiny", pu_steps=1)
    pte = tmp_path / "adamatting_tiny_64x64_executorch_fp32.pte"
    export_pte(model, pte, "fp32", SIZE)
    intact, manifest = pte.read_bytes(), load_manifest(pte)
    _damage_middle(pte)
    for load in (load_manifest, Matter.from_artifact):
        with pytest.raises(ManifestError, match=r"executorch_fp32.pte was changed"):
            load(pte)
    header = bytearray(intact)
    header[4:8] = b"XXXX"    # the program identifier ExecuTorch checks first ('ET12')
    pte.write_bytes(bytes(header))
    write_manifest(pte, manifest)
    with pytest.raises(ArtifactError, match=r"executorch_fp32.pte: ExecuTorch cannot load it: Failed to load program"):
        Matter.from_artifact(pte)
    import cv2

    photo, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    cv2.imwrite(str(mask), np.pad(np.full((32, 32), 255, np.uint8), 16))
    code = main(["bokeh", str(photo), "--mask", str(mask), "--artifact", str(pte), "-o", str(tmp_path / "b.jpg")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "ExecuTorch cannot load it" in err
    assert not (tmp_path / "b.jpg").exists()
