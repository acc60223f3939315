"""Hostile files on the reading side: decompression bombs in every format a decoder accepts, manifests of the
wrong shape, unreadable dataset files, and a baseline that cannot run on one photo of an evaluation."""

import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from adamat.cli import main
from calib_data.backgrounds import load_background
from calib_data.io import read_alpha, read_rgb, read_trimap
from common.errors import DataError
from common.manifest import Manifest, ManifestError, load_manifest, manifest_path, write_manifest
from evaluation.datasets import EvalFolder
from evaluation.folder_eval import EvalSettings, evaluate_folder, markdown
from evaluation.methods import ClosedForm
from runtime.matter import Matter
from runtime.preprocess import make_trimap, read_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")
GF_RATIO = Path(__file__).resolve().parents[2] / "shared" / "tools" / "gf_ratio.py"


# ------------------------------------------------------------------------------------------------ files
def radiance_hdr(width, height, rows=None):
    """A Radiance HDR file of ``width`` x ``height`` grey pixels, run-length encoded (10000 x 10000: 6.4 MB,
    3.6 GB once OpenCV decodes it as float32 RGB); only its first ``rows`` scanlines when given."""
    runs, left = [], width
    while left:
        n = min(127, left)
        runs += [128 + n, 128]
        left -= n
    line = bytes([2, 2, width >> 8, width & 255]) + bytes(runs) * 4
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode()
    return header + line * (height if rows is None else rows)


def png_header(width, height):
    """A PNG with no pixel data: the header says what it would decode to."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any pixel is decoded by OpenCV."""
    def decoded(*args, **kwargs):
        raise AssertionError("the file was decoded")
    monkeypatch.setattr(cv2, "imdecode", decoded)
    monkeypatch.setattr(cv2, "imread", decoded)


# Formats OpenCV decodes whose header Pillow does not read (or reads by other rules): each claims 10000 x 10000.
OPENCV_ONLY = {
    "Radiance HDR": radiance_hdr(10000, 10000, rows=2),
    "PFM": b"PF\n10000 10000\n-1.0\n" + bytes(64),
    "PAM": b"P7\nWIDTH 10000\nHEIGHT 10000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + bytes(64),
    "OpenEXR": b"\x76\x2f\x31\x01" + bytes(64),
    "Netpbm": b"P5\n10000 10000\n255\n" + bytes(64),
}


@pytest.mark.parametrize("name", list(OPENCV_ONLY))
def test_formats_whose_size_is_unknown_before_decoding_are_refused_before_decoding(tmp_path, no_decoding, name):
    bomb = tmp_path / "photo.jpg"
    bomb.write_bytes(OPENCV_ONLY[name])
    with pytest.raises(DataError, match=rf"photo.jpg: unsupported image format \({name}\)"):
        read_image(bomb)
    for as_mask_or_trimap in ({"mask": bomb}, {"trimap": bomb}):
        with pytest.raises(DataError, match=rf"unsupported image format \({name}\)"):
            make_trimap((64, 64), **as_mask_or_trimap)
    for read in (read_rgb, read_alpha, read_trimap, load_background):    # the dataset readers decode the same way
        with pytest.raises(DataError, match=rf"unsupported image format \({name}\)"):
            read(bomb)


def test_an_hdr_bomb_is_refused_under_a_memory_cap(tmp_path):
    """The 6.4 MB file that decodes to gigabytes, read in a process that cannot use 1 GB: refused by its header."""
    bomb = tmp_path / "photo.jpg"
    bomb.write_bytes(radiance_hdr(10000, 10000))
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from runtime.preprocess import read_image\n"
            "try:\n    read_image(sys.argv[1])\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1], env=env)
    assert done.stdout.startswith("DataError") and "unsupported image format (Radiance HDR)" in done.stdout, \
        done.stdout + done.stderr


def test_a_bomb_through_the_cli_is_one_error_line(tmp_path, capfd):
    bomb = tmp_path / "photo.jpg"
    bomb.write_bytes(radiance_hdr(10000, 10000, rows=2))
    assert main(["bokeh", str(bomb), "-o", str(tmp_path / "o.jpg")]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {bomb}: unsupported image format (Radiance HDR)")


def test_a_png_bomb_says_its_real_size(tmp_path, no_decoding):
    bomb = tmp_path / "big.png"
    bomb.write_bytes(png_header(20000, 20000))           # 400 megapixels: over Pillow's own limit too
    with pytest.raises(DataError, match=r"big.png: image is 400 megapixels; the limit is 50 megapixels") as e:
        read_image(bomb)
    assert "179" not in str(e.value).removeprefix(str(bomb))      # not Pillow's limit of 179 megapixels
    bomb.write_bytes(png_header(10000, 6000))            # 60 megapixels: under Pillow's limit
    for read in (read_image, read_rgb, read_alpha, read_trimap):
        with pytest.raises(DataError, match=r"image is 10000x6000 \(60 megapixels\); the limit is 50"):
            read(bomb)


def test_a_truncated_png_is_one_line_without_the_decoders_own(tmp_path, capfd):
    photo = tmp_path / "cut.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    data = photo.read_bytes()
    photo.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match="cut.png: not a readable image"):
        read_image(photo)
    assert capfd.readouterr().err == ""
    assert main(["bokeh", str(photo), "-o", str(tmp_path / "o.jpg")]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {photo}: not a readable image"), err


def tiff_header(width: int, height: int, order: str = "<") -> bytes:
    """A classic TIFF's header and first directory with only its ImageWidth and ImageLength tags (LONG)."""
    magic = b"II*\0" if order == "<" else b"MM\0*"
    entries = [struct.pack(order + "HHII", tag, 4, 1, value) for tag, value in ((256, width), (257, height))]
    return magic + struct.pack(order + "IH", 8, len(entries)) + b"".join(entries) + bytes(4)


@pytest.mark.parametrize("order", ["<", ">"])
def test_a_tiff_bomb_is_refused_from_its_tags(tmp_path, no_decoding, order):
    bomb = tmp_path / "big.tif"
    bomb.write_bytes(tiff_header(10000, 6000, order) + bytes(64))
    with pytest.raises(DataError, match=r"big.tif: image is 10000x6000 \(60 megapixels\); the limit is 50"):
        read_image(bomb)


def test_a_float_tiff_is_read_and_one_out_of_range_says_so(tmp_path, capfd):
    # Pillow does not open 3-channel float TIFFs; their size comes from the TIFF's own tags, OpenCV decodes them
    rgb = np.random.default_rng(0).random((40, 60, 3), dtype=np.float32)
    photo = tmp_path / "render.tiff"
    cv2.imwrite(str(photo), rgb[..., ::-1].copy())
    assert np.array_equal(read_image(photo), rgb)
    assert main(["bokeh", str(photo), "--mask", "none", "-o", str(tmp_path / "o.png")]) == 0
    capfd.readouterr()
    cv2.imwrite(str(photo), (rgb * 4)[..., ::-1].copy())         # linear light over 1: an HDR render
    assert main(["bokeh", str(photo), "--mask", "none", "-o", str(tmp_path / "p.png")]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "float with values in" in err and not (tmp_path / "p.png").exists(), err


def test_a_good_photo_is_still_read(tmp_path, capfd):
    photo = tmp_path / "ok.png"
    cv2.imwrite(str(photo), np.full((20, 30, 3), (10, 20, 30), np.uint8))
    assert read_image(photo)[0, 0].tolist() == [30, 20, 10] and capfd.readouterr().err == ""


# ------------------------------------------------------------------------------------------------ manifests
def _artifact_with_manifest(tmp_path, text: bytes | None = None, **changes):
    artifact = tmp_path / "m.onnx"
    artifact.write_bytes(b"not a model")
    raw = json.loads(Manifest(backend="onnxruntime", precision="fp32", model_config={"name": "tiny"},
                              input_size=[64, 64]).to_json())
    raw.update(changes)
    manifest_path(artifact).write_bytes(json.dumps(raw).encode() if text is None else text)
    return artifact


BAD_MANIFESTS = [
    (b"null", "invalid manifest: expected a JSON object, got null"),
    (b"[1, 2]", r"invalid manifest: expected a JSON object, got \[1, 2\]"),
    (b'"mobile"', 'invalid manifest: expected a JSON object, got "mobile"'),
    (b"\xff\xfe{}", r"unreadable manifest: not UTF-8 text \(byte 0xff at offset 0\)"),
    (b"{\"format\": ", "unreadable manifest: not JSON"),
    ({"model_config": "mobile"}, 'invalid manifest: model_config must be an object \\(the model config\'s fields\\), got "mobile"'),
    ({"input_size": "512"}, r'invalid manifest: input_size must be \[height, width\] in pixels, got "512"'),
    ({"input_size": [512]}, r"invalid manifest: input_size must be \[height, width\] in pixels, got \[512\]"),
    ({"batch": True, "files": []}, 'invalid manifest: batch must be a positive integer or "dynamic", got true; files must be'),
    ({"mystery": 1}, "invalid manifest: unknown key 'mystery'"),
]


@pytest.mark.parametrize("content, message", BAD_MANIFESTS)
def test_a_manifest_of_the_wrong_shape_is_one_clear_error_naming_it(tmp_path, capsys, content, message):
    artifact = (_artifact_with_manifest(tmp_path, content) if isinstance(content, bytes)
                else _artifact_with_manifest(tmp_path, **content))
    with pytest.raises(ManifestError, match=rf"^{re.escape(str(manifest_path(artifact)))}: {message}"):
        load_manifest(artifact)
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    assert main(["bokeh", str(photo), "--artifact", str(artifact), "--mask", "none", "-o",
                 str(tmp_path / "o.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {manifest_path(artifact)}: ") and "Traceback" not in err
    assert not (tmp_path / "o.jpg").exists()


def test_a_missing_required_key_is_named(tmp_path):
    artifact = _artifact_with_manifest(tmp_path)
    raw = json.loads(manifest_path(artifact).read_text())
    del raw["model_config"]
    manifest_path(artifact).write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="invalid manifest: model_config is missing"):
        load_manifest(artifact)


def test_the_schema_covers_every_manifest_field():
    import dataclasses

    from common.manifest import SCHEMA

    assert set(SCHEMA) == {f.name for f in dataclasses.fields(Manifest)}


def test_a_manifest_whose_model_config_is_not_a_config_is_refused_naming_it(tmp_path):
    artifact = tmp_path / "m.onnx"
    artifact.write_bytes(b"not a model")
    write_manifest(artifact, Manifest(backend="onnxruntime", precision="fp32", model_config={"bogus": 1},
                                      input_size=[64, 64]))
    with pytest.raises(ManifestError, match=rf"{re.escape(str(manifest_path(artifact)))}: invalid manifest: bad model_config: "
                                            r"unknown model config keys: bogus"):
        Matter.from_artifact(artifact)


@pytest.mark.parametrize("suffix, backend, precision, message", [
    (".onnx", "openvino", "fp32", "backend 'openvino' writes no .onnx artifacts"),
    (".xml", "onnxruntime", "fp32", "backend 'onnxruntime' writes no .xml artifacts"),
    (".onnx", "onnxruntime", "int3", "precision 'int3' is none of fp32, fp16, int8"),
])
def test_a_manifest_that_describes_another_kind_of_file_is_refused_naming_it(tmp_path, suffix, backend, precision,
                                                                              message):
    """A manifest whose backend does not write this file's kind, or whose precision the project never exports,
    describes some other artifact: refused before the runtime reads the file."""
    from adamatting.config import get_config

    artifact = tmp_path / f"m{suffix}"
    artifact.write_bytes(b"not a model")
    write_manifest(artifact, Manifest(backend=backend, precision=precision, model_config=get_config("tiny").to_dict(),
                                      input_size=[64, 64]))
    with pytest.raises(ManifestError, match=rf"{re.escape(str(manifest_path(artifact)))}: invalid manifest: "
                                            rf"{re.escape(message)}"):
        Matter.from_artifact(artifact)


# ------------------------------------------------------------------------------------------------ evaluation
def disc(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((1.1 - np.hypot((yy - h / 2) / (h / 3), (xx - w / 2) / (w / 3))) / 0.2, 0, 1).astype(np.float32)
    photo = alpha[..., None] * np.array([0.9, 0.7, 0.5], np.float32) + (1 - alpha[..., None]) * rng.random((h, w, 3)) * 0.4
    return photo.astype(np.float32), alpha


def eval_folder(root, count=2, trimaps=True, masks=False):
    for sub in ("image", "alpha") + (("trimap",) if trimaps else ()) + (("mask",) if masks else ()):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        photo, alpha = disc(seed=i)
        cv2.imwrite(str(root / "image" / f"p{i}.png"), np.rint(photo[..., ::-1] * 255).astype(np.uint8))
        cv2.imwrite(str(root / "alpha" / f"p{i}.png"), np.rint(alpha * 255).astype(np.uint8))
        if trimaps:
            cv2.imwrite(str(root / "trimap" / f"p{i}.png"), make_trimap(alpha.shape, mask=alpha, band=4))
        if masks:
            cv2.imwrite(str(root / "mask" / f"p{i}.png"), np.rint(alpha * 255).astype(np.uint8))
    return root


def test_an_unreadable_trimap_stops_the_evaluation_with_one_line(tmp_path, tiny_checkpoint, capsys):
    folder = eval_folder(tmp_path / "set")
    (folder / "trimap" / "p1.png").write_text("not an image\n")
    with pytest.raises(DataError, match=r"trimap/p1.png: not a readable image"):
        EvalFolder(folder)[1]
    out = tmp_path / "out"
    assert main(["eval", str(folder), "--protocol", "trimap", "--artifacts", str(tiny_checkpoint),
                 "--baselines", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    errors = [line[line.index("error: "):] for line in err.splitlines() if "error: " in line]   # after the bar's
    assert errors == [f"error: {folder / 'trimap' / 'p1.png'}: not a readable image (corrupt, truncated or "
                      f"unsupported format)"], err
    assert not (out / "eval.json").exists()


@pytest.mark.parametrize("sub, bad", [("trimap", np.full((48, 64), 77, np.uint8)),
                                      ("mask", np.zeros((48, 64, 3), np.uint8) + [0, 0, 255]),
                                      ("alpha", np.zeros((48, 64, 3), np.uint8) + [0, 0, 255])])
def test_every_dataset_file_is_checked_as_the_app_checks_it(tmp_path, sub, bad):
    folder = eval_folder(tmp_path / "set", count=1, masks=True)
    cv2.imwrite(str(folder / sub / "p0.png"), bad.astype(np.uint8))
    with pytest.raises(DataError, match=rf"{sub}/p0.png: .*(0/128/255|different colour channels)"):
        EvalFolder(folder)[0]


def test_a_size_mismatch_names_the_real_files(tmp_path):
    folder = eval_folder(tmp_path / "set", count=1)
    cv2.imwrite(str(folder / "alpha" / "p0.png"), np.zeros((24, 32), np.uint8))
    with pytest.raises(DataError, match=r"alpha/p0.png: alpha is 32x24 but the photo \(p0.png\) is 64x48"):
        EvalFolder(folder)[0]


def test_a_baseline_that_cannot_run_on_one_photo_is_na_there(tmp_path, tiny_checkpoint, capsys):
    folder = eval_folder(tmp_path / "set")
    trimap = cv2.imread(str(folder / "trimap" / "p1.png"), cv2.IMREAD_GRAYSCALE)
    trimap[trimap == 0] = 128                             # no background pixel: closed-form matting cannot run
    cv2.imwrite(str(folder / "trimap" / "p1.png"), trimap)
    out = tmp_path / "out"
    assert main(["eval", str(folder), "--protocol", "trimap", "--artifacts", str(tiny_checkpoint), "--refine-tiles",
                 "0", "--baselines", "closed-form", "--closed-form-cap", "4000", "--out", str(out)]) == 0
    data = json.loads((out / "eval.json").read_text())
    model, cf = data["methods"]
    assert cf == "closed-form"
    assert [(r["image"], r["method"], r["where"]) for r in data["na"]] == [("p1", "closed-form", "trimap")]
    assert "needs both background (0) and foreground (255)" in data["na"][0]["reason"]
    assert {(r["image"], r["method"]) for r in data["rows"]} == {("p0", model), ("p1", model), ("p0", cf)}
    means = {m["method"]: m for m in data["means"]}
    assert means[cf]["images"] == 1 and means[cf]["na"] == 1 and means[model]["images"] == 2
    assert means[cf]["SAD"] == pytest.approx([r["SAD"] for r in data["rows"] if r["method"] == cf][0])
    md = (out / "eval.md").read_text()
    assert "Means are over the photos where each method ran" in md
    assert "- closed-form: n/a on 1 photo (p1: closed-form matting needs both background (0)" in md
    assert "| p1 | " in md and md.split("| p1 | ")[1].split("\n")[0].endswith("| n/a |")
    assert "closed-form: n/a on 1 photo" in capsys.readouterr().out


def test_na_rows_keep_the_json_readable_by_gf_ratio(tmp_path, tiny_checkpoint):
    """The mask protocol, where closed-form matting cannot run on a photo whose mask covers all of it."""
    folder = eval_folder(tmp_path / "set", trimaps=False, masks=True)
    mask = np.full((48, 64), 255, np.uint8)
    mask[22:26, 30:34] = 0                                # a hole narrower than the band: no background left
    cv2.imwrite(str(folder / "mask" / "p1.png"), mask)
    mask[:] = 0
    mask[:, 24:] = 255                                    # p0: background and foreground beyond the 16-px band
    cv2.imwrite(str(folder / "mask" / "p0.png"), mask)
    methods = [ClosedForm(cap=4000)]
    result = evaluate_folder(EvalFolder(folder), methods, EvalSettings("mask"))
    assert [(r["image"], r["where"]) for r in result.na] == [("p1", "whole"), ("p1", "band")]
    assert "| closed-form | whole | 1 |" in markdown(result)
    out = tmp_path / "out"
    assert main(["eval", str(folder), "--artifacts", str(tiny_checkpoint), "--refine-tiles", "0",
                 "--closed-form-cap", "4000", "--out", str(out)]) == 0
    data = json.loads((out / "eval.json").read_text())
    assert {r["image"] for r in data["na"]} == {"p1"} and {r["method"] for r in data["na"]} == {"closed-form"}
    if not GF_RATIO.is_file():
        pytest.skip(f"{GF_RATIO} is not here")
    done = subprocess.run([sys.executable, str(GF_RATIO), str(out / "eval.json"), "100"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode in (0, 1) and done.stdout.startswith(("ok:", "short:")), done.stdout + done.stderr


def test_an_evaluation_of_a_file_and_a_mask_of_another_aspect_name_the_file(tmp_path):
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(DataError, match="afile: is a file, not a folder of photos"):
        EvalFolder(tmp_path / "afile")
    for sub, image in (("image", np.full((24, 32, 3), 90, np.uint8)), ("alpha", np.zeros((24, 32), np.uint8)),
                       ("mask", np.zeros((30, 10), np.uint8))):
        (tmp_path / "set" / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "set" / sub / "a.png"), image)
    with pytest.raises(DataError, match=r"mask[/\\]a.png: mask is 10x30 but the photo is 32x24"):
        EvalFolder(tmp_path / "set")[0]


@pytest.mark.parametrize("zoom", [float("nan"), float("inf"), 1.0])
def test_a_refinement_zoom_that_is_not_a_number_above_one_is_refused(zoom):
    from runtime.refine import Refinement

    with pytest.raises(ValueError, match=f"zoom > 1, got tiles=8, zoom={zoom}"):
        Refinement(tiles=8, zoom=zoom)


@pytest.mark.parametrize("suffix", [".tif", ".webp"])
def test_a_file_of_several_frames_says_that_its_first_is_used(tmp_path, suffix):
    from PIL import Image

    pages = [Image.new("RGB", (40, 30), colour) for colour in ((200, 30, 30), (30, 200, 30), (30, 30, 200))]
    path = tmp_path / f"pages{suffix}"
    pages[0].save(path, save_all=True, append_images=pages[1:], **({"lossless": True} if suffix == ".webp" else {}))
    with pytest.warns(UserWarning, match=r"pages\.(tif|webp): 3 frames; the first is used"):
        image = read_image(path)
    assert image.shape[:2] == (30, 40) and np.abs(image.reshape(-1, image.shape[-1])[:, :3].astype(int).mean(0)
                                                  - (200, 30, 30)).max() <= 2


@pytest.mark.parametrize("args, message", [
    (["clips", "--images", "GT01", "--protocol", "trimap"], "--images, --protocol trimap: not used by clips"),
    (["clips", "--long-side", "800"], "--long-side: not used by clips"),
    (["real", "--frames", "3"], "--frames: not used by photos"),
    (["clips", "--artifacts", "weights/mobile.pt", "weights/mobile-int8.pt", "--baselines", "closed-form"],
     "a second --artifacts, --baselines: not used by clips"),                 # the second model was not scored
    (["clips", "--refine-tiles", "3", "--also-unrefined", "--closed-form-cap", "5"],
     "--refine-tiles, --also-unrefined, --closed-form-cap: not used by clips"),
    (["real", "--protocol", "trimap", "--recipe", "down8", "--seed", "3"],
     "--recipe, --seed: not used by the trimap protocol"),
    (["real", "--laplacian", "0.01"], "--laplacian: not used by photos in the mask protocol"),
    (["real", "--laplacian", "none"], "--laplacian: not used by photos in the mask protocol"),
    (["real", "--laplacian", "1e-3"], "--laplacian: not used by photos in the mask protocol"),   # the default, typed
    (["clips", "--laplacian", "none"], "--laplacian: not used by clips"),
    (["real", "--protocol", "trimap", "--band-refiner", "none"], "--band-refiner: not used by the trimap protocol"),
])
def test_eval_refuses_options_the_evaluation_would_ignore(tmp_path, capsys, args, message):
    assert main(["eval", *args, "--out", str(tmp_path / "out")]) == 2
    assert f"error: {message}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("role", ["photo", "mask", "trimap", "band-refiner", "clip"])
def test_a_pipe_given_as_an_input_is_refused_at_once_not_waited_on(tmp_path, role, capsys):
    """A named pipe opened for reading waits for a writer for ever: every input of adamat bokeh is refused as
    not a regular file before anything opens it."""
    photo, mask = tmp_path / "p.png", tmp_path / "m.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    cv2.imwrite(str(mask), np.pad(np.full((32, 32), 255, np.uint8), 16))
    pipe = tmp_path / {"photo": "pipe.jpg", "mask": "pipe.png", "trimap": "pipe.png", "band-refiner": "pipe.onnx",
                       "clip": "pipe.mp4"}[role]
    os.mkfifo(pipe)
    argv = {"photo": [str(pipe), "--mask", "none"], "mask": [str(photo), "--mask", str(pipe)],
            "trimap": [str(photo), "--trimap", str(pipe)], "clip": [str(pipe)],
            "band-refiner": [str(photo), "--mask", str(mask), "--band-refiner", str(pipe)]}[role]
    out = tmp_path / ("o.mp4" if role == "clip" else "o.png")
    assert main(["bokeh", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{pipe.name}: not a regular file" in err and not out.exists()


@pytest.mark.parametrize("option", ["--mask", "--trimap"])
def test_the_output_never_replaces_the_mask_or_trimap_it_reads(tmp_path, option, capsys):
    photo, given = tmp_path / "p.png", tmp_path / "given.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    trimap = np.pad(np.pad(np.full((24, 24), 255, np.uint8), 8, constant_values=128), 12)
    cv2.imwrite(str(given), trimap)
    before = given.read_bytes()
    assert main(["bokeh", str(photo), option, str(given), "-o", str(given), "--overwrite", "--refine", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {given}: is the input {option} file: give another output path"
    assert given.read_bytes() == before


@pytest.mark.parametrize("option", ["photo", "-o", "--mask", "--trimap", "--artifact", "--band-refiner"])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(tmp_path, option, capsys):
    argv = ["bokeh", "" if option == "photo" else str(tmp_path / "p.png"), "-o", str(tmp_path / "o.png")]
    if option != "photo":
        argv += [option, ""]
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must name a file or folder, got an empty path" in err


def test_a_folder_given_as_the_artifact_is_named_as_a_folder(tmp_path, capsys):
    photo, folder = tmp_path / "p.png", tmp_path / "model"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    folder.mkdir()
    assert main(["bokeh", str(photo), "--mask", "none", "--artifact", str(folder), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {folder}: no backend opens a folder as an artifact") and err.count("\n") == 0


def test_a_file_given_as_the_alphamatting_folder_is_named_as_a_file(tmp_path):
    from calib_data.readers import AlphaMattingReader

    file = tmp_path / "p.jpg"
    file.write_bytes(b"x")
    with pytest.raises(DataError, match="is a file, not an alphamatting folder"):
        AlphaMattingReader(file)
    with pytest.raises(DataError, match="alphamatting folder not found"):
        AlphaMattingReader(tmp_path / "missing")
