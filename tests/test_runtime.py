"""The runtime: one Matter over PyTorch and onnxruntime, pre-processing, upsampling, and every bad input."""

import pathlib
import shutil
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from adamatting.checkpoint import CheckpointError, save_checkpoint
from calib_data.trimaps import trimap_from_mask
from common.errors import DataError
from common.manifest import ManifestError, manifest_path
from export.onnx_graph import export_onnx
from runtime import ArtifactError, BackendUnavailable, Matter
from runtime.backends import Backend, backend_for
from runtime.preprocess import Letterbox, make_trimap, read_image, single_channel
from runtime.refine import Refinement
from runtime.upsample import upsample_alpha

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ONNX_SIZE = (64, 64)



@pytest.fixture(scope="module")
def artifacts(seeded_model, tmp_path_factory):
    """A tiny model with non-trivial propagation, as a checkpoint and as a 64×64 ONNX export."""
    model = seeded_model("tiny")
    torch.nn.init.normal_(model.propagation.out.weight, std=0.2)
    root = tmp_path_factory.mktemp("artifacts")
    pt, onnx_path = root / "tiny.pt", root / "tiny.onnx"
    save_checkpoint(pt, model)
    export_onnx(model, onnx_path, ONNX_SIZE)
    return {"pt": pt, "onnx": onnx_path}


@pytest.fixture(scope="module")
def torch_matter(artifacts):
    return Matter.from_artifact(artifacts["pt"], input_size=(64, 64))


@pytest.fixture(scope="module")
def onnx_matter(artifacts):
    return Matter.from_artifact(artifacts["onnx"], backend_options={"threads": 1})


def photo(h, w, seed=0):
    """A smooth random colour image with a bright blob: something for the network to look at."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.random((4, 5, 3), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[:h, :w]
    img[((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 4)) ** 2 < 1] += 0.5
    return np.clip(img * 200, 0, 255).astype(np.uint8)


def person_mask(h, w):
    yy, xx = np.mgrid[:h, :w]
    return ((((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 4)) ** 2) < 1).astype(np.uint8) * 255


# --------------------------------------------------------------------------------------------- backends
@pytest.mark.parametrize("torch_opts", [{"input_size": (64, 64)}, {"expect": {"input_size": [64, 64]}}],
                         ids=["input-size", "expect-input-size"])
def test_checkpoint_and_onnx_give_the_same_alpha(artifacts, onnx_matter, torch_matter, torch_opts):
    img, mask = photo(97, 143), person_mask(97, 143)
    ref = onnx_matter.predict(img, mask=mask, band=6)
    got = Matter.from_artifact(artifacts["pt"], **torch_opts).predict(img, mask=mask, band=6)
    assert np.abs(got.alpha - ref.alpha).max() < 1e-4
    assert np.abs(got.trimap_prob - ref.trimap_prob).max() < 1e-4
    assert onnx_matter.name == "onnxruntime/fp32" and onnx_matter.backend.input_size == ONNX_SIZE
    assert isinstance(onnx_matter.backend, Backend) and isinstance(torch_matter.backend, Backend)


@pytest.mark.parametrize("size", [(97, 143), (143, 97), (64, 64), (40, 300)])
def test_full_resolution_output_for_any_size(torch_matter, onnx_matter, size):
    img = photo(*size)
    for matter in (torch_matter, onnx_matter):
        r = matter.predict(img)
        assert r.alpha.shape == size and r.alpha.dtype == np.float32
        assert r.trimap_prob.shape == (3, *size)
        assert 0.0 <= r.alpha.min() and r.alpha.max() <= 1.0
        assert {"load", "trimap", "preprocess", "model", "upsample"} <= set(r.timings)
    assert torch_matter.predict(img, with_trimap_prob=False).trimap_prob is None
    with pytest.raises(TypeError, match="with_trimap_prob must be True or False, got 'no'"):   # was taken as True
        torch_matter.predict(img, with_trimap_prob="no")


def test_a_checkpoint_runs_at_the_phone_export_size_by_default(artifacts):
    matter = Matter.from_artifact(artifacts["pt"])
    assert matter.input_size == (512, 512) and matter.letterbox((97, 143)).padded == (512, 512)
    assert matter.predict(photo(97, 143)).alpha.shape == (97, 143)
    with pytest.raises(ValueError, match="must be two multiples of the model's stride 32"):
        Matter.from_artifact(artifacts["pt"], input_size=(100, 64))


@pytest.mark.parametrize("options, words", [
    ({"eps": 0.0}, "eps must be a finite number of at least 1e-07, got 0.0"),          # NaN alpha on flat windows
    ({"eps": 1e-8}, "eps must be a finite number of at least 1e-07, got 1e-08"),       # NaN where float32 runs out
    ({"eps": float("nan")}, "eps must be a finite number of at least 1e-07, got nan"),
    ({"radius": 0}, "radius must be a whole number of pixels from 1 to 64, got 0"),
    ({"radius": 2.5}, "radius must be a whole number of pixels from 1 to 64, got 2.5"),
    ({"radius": 30000}, "radius must be a whole number of pixels from 1 to 64, got 30000"),   # inf alpha, or minutes
    ({"refinement": "x"}, "refinement must be a runtime.refine.Refinement or None, got 'x'"),
    ({"input_size": 512}, r"input_size must be \(height, width\), two whole numbers, got 512"),
    ({"input_size": (512.5, 512)}, r"input_size must be \(height, width\), two whole numbers, got \(512.5, 512\)"),
    ({"input_size": (8192, 8192)}, r"input_size \[8192, 8192\]: at most 4096 px a side"),     # minutes per photo
    ({"clamp_known": "no"}, "clamp_known must be True or False, got 'no'"),                  # was taken as True
    ({"expect": {"input_size": "x"}}, "expected input_size must be two whole numbers, got 'x'"),   # int('x')
])
def test_matter_options_are_checked_when_it_is_made(artifacts, options, words):
    """Each passed unnoticed to the first photo: a NaN or inf alpha, a cv2 or attribute error, a size truncated."""
    with pytest.raises(ValueError, match=words):
        Matter.from_artifact(artifacts["pt"], **options)
    with pytest.raises(ValueError, match="a whole number of tiles"):
        Refinement(tiles=2.5)


@pytest.mark.parametrize("options, words", [
    ({"threads": 10**6}, "threads must be a whole number from 1 to"),        # started that many threads
    ({"threads": 0}, "threads must be a whole number from 1 to"),            # taken as the runtime's default
    ({"threads": 1.5}, "threads must be a whole number from 1 to"),          # pybind11's signature text
    ({"bogus": 1}, "the onnxruntime backend takes no option 'bogus'; its options: threads, providers"),
])
def test_backend_options_are_checked_before_the_artifact_is_opened(artifacts, options, words):
    with pytest.raises(ValueError, match=words):
        Matter.from_artifact(artifacts["onnx"], backend_options=options)


def test_an_export_keeps_its_own_input_size(artifacts, onnx_matter):
    assert onnx_matter.input_size == ONNX_SIZE
    with pytest.raises(ValueError, match="differs from the artifact's"):
        Matter.from_artifact(artifacts["onnx"], input_size=(128, 128))


def test_letterbox_geometry():
    box = Letterbox.fit((97, 143), input_size=(64, 64))
    assert box.scaled == (43, 64) and box.padded == (64, 64) and sum(box.pads) == 21
    x = np.random.default_rng(0).random((3, *box.scaled))
    assert np.array_equal(box.crop(box.pad(x)), x)
    assert Letterbox.fit((3000, 4000), input_size=(512, 512)).scaled == (384, 512)
    assert Letterbox.fit((20, 30), input_size=(64, 64)).scaled == (43, 64)    # fixed size: scaled up to fit


# --------------------------------------------------------------------------------------------- inputs
def test_grayscale_rgba_uint16_and_float_inputs(torch_matter, tmp_path):
    gray = photo(50, 70)[..., 1]
    ref = torch_matter.predict(np.repeat(gray[..., None], 3, axis=2)).alpha
    assert np.array_equal(torch_matter.predict(gray).alpha, ref)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    assert np.array_equal(torch_matter.predict(tmp_path / "gray.png").alpha, ref)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    assert np.abs(torch_matter.predict(rgb.astype(np.uint16) * 257).alpha - ref).max() < 1e-5
    big_endian = (rgb.astype(np.uint16) * 257).astype(">u2")          # was "unsupported dtype >u2"
    assert np.abs(torch_matter.predict(big_endian).alpha - ref).max() < 1e-5
    assert np.abs(torch_matter.predict(rgb / np.float32(255)).alpha - ref).max() < 1e-5

    rgba = np.dstack([rgb, np.full(gray.shape, 255, np.uint8)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # fully opaque: dropped silently
        assert np.array_equal(torch_matter.predict(rgba).alpha, ref)
    rgba[..., 3] = 0
    with pytest.warns(UserWarning, match="alpha channel is dropped"):
        assert np.array_equal(torch_matter.predict(rgba).alpha, ref)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    img = photo(6, 9, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(img).save(path, exif=exif)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(read_image(path), expected)


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_read_image_gives_rgb_order(tmp_path, channels, dtype):
    # each channel its own value: OpenCV decodes blue first, and read_image turns it to RGB(A) (float64, which
    # cvtColor does not take, by a reordered copy)
    floating = np.issubdtype(dtype, np.floating)
    pixels = np.stack([np.full((5, 7), 10 * (c + 1), dtype) / (255 if floating else 1)
                       for c in range(channels)], axis=2).astype(dtype)
    path = tmp_path / ("p.tiff" if floating else "p.png")   # float: a TIFF
    cv2.imwrite(str(path), np.ascontiguousarray(pixels[..., [2, 1, 0, 3][:channels]]))
    image = read_image(path)
    assert image.dtype == dtype and image.flags.c_contiguous and np.array_equal(image, pixels)


def test_a_jpeg_is_read_with_opencvs_pixels_upright_red_first(tmp_path, monkeypatch):
    """A colour JPEG is decoded red first by libjpeg itself (no swap after): the pixels of OpenCV's own decode,
    reversed, rotated by its EXIF orientation (a phone's MPO too); a gray JPEG stays one plane, a CMYK one comes as
    RGB (those two decoded as they are and swapped)."""
    import common.image_files as image_files

    asked = []
    decode = image_files._imdecode_quietly
    monkeypatch.setattr(image_files, "_imdecode_quietly", lambda data, flags: asked.append(flags) or decode(data, flags))

    def opencv(path):
        return cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)

    for orientation, upright in ((1, lambda a: a), (6, lambda a: np.rot90(a, -1))):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.jpg"
        Image.fromarray(photo(40, 60, seed=orientation)).save(path, quality=90, exif=exif)
        image = read_image(path)
        assert image.flags.c_contiguous and np.array_equal(image, upright(opencv(path)[..., ::-1]))
    mpo = tmp_path / "phone.jpg"                       # a JPEG with a second picture after it, as phones write
    Image.fromarray(photo(40, 60, seed=3)).save(mpo, format="MPO", save_all=True, quality=90,
                                                append_images=[Image.fromarray(photo(40, 60, seed=4))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # its other pictures are previews or depth: no warning
        assert np.array_equal(read_image(mpo), opencv(mpo)[..., ::-1])
    Image.fromarray(photo(40, 60)[..., 0]).save(tmp_path / "gray.jpg", quality=90)
    assert np.array_equal(read_image(tmp_path / "gray.jpg"), opencv(tmp_path / "gray.jpg"))
    Image.fromarray(photo(40, 60)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=90)
    cmyk = read_image(tmp_path / "cmyk.jpg")
    assert cmyk.shape == (40, 60, 3) and np.array_equal(cmyk, opencv(tmp_path / "cmyk.jpg")[..., ::-1])
    red_first = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    assert asked == [red_first] * 3 + [cv2.IMREAD_UNCHANGED] * 2      # two JPEGs and the MPO; gray and CMYK


def test_exif_rotated_jpeg_gives_rotated_alpha(torch_matter, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6                                   # stored landscape, shown rotated 90° clockwise
    path = tmp_path / "phone.jpg"
    Image.fromarray(photo(60, 100)).save(path, quality=95, exif=exif)
    assert torch_matter.predict(path).alpha.shape == (100, 60)
    with pytest.raises(DataError, match="turned by 90°"):
        torch_matter.predict(path, mask=person_mask(60, 100))


def test_mask_becomes_a_full_resolution_trimap(torch_matter):
    img, mask = photo(97, 143), person_mask(97, 143)
    trimap = make_trimap((97, 143), mask=mask, band=5)
    assert np.array_equal(trimap, trimap_from_mask(mask, 5))
    assert set(np.unique(trimap)) == {0, 128, 255}
    plain = Matter(torch_matter.backend, band_refiner=None, laplacian=None)   # the mask path's trimap, as is
    a = plain.predict(img, mask=mask, band=5).alpha
    assert np.array_equal(a, plain.predict(img, trimap=trimap).alpha)
    assert not np.array_equal(a, plain.predict(img, mask=mask, band=12).alpha)
    for same in (mask > 0, mask // 255, mask.astype(np.uint16) * 257, mask / np.float32(255)):
        assert np.array_equal(make_trimap((97, 143), mask=same, band=5), trimap)   # bool, 0/1 labels, 16 bit, float
    assert np.array_equal(make_trimap((97, 143), mask=(mask // 255).astype(np.int64), band=5), trimap)  # int labels
    with pytest.raises(DataError, match=r"mask is int64 with values from 0 to 255: .* cast it to uint8"):
        make_trimap((97, 143), mask=mask.astype(np.int64), band=5)      # was "unsupported dtype int64", 0/1 taken


def test_no_trimap_means_all_unknown(torch_matter):
    img = photo(50, 70)
    assert np.all(make_trimap((50, 70)) == 128)
    unknown = np.full((50, 70), 128, np.uint8)
    assert np.array_equal(torch_matter.predict(img).alpha, torch_matter.predict(img, trimap=unknown).alpha)


def test_trimap_wins_over_mask(torch_matter):
    """With both, the trimap decides the known regions and the network's input; the mask only feeds the band
    refiner, so without one the mask changes nothing."""
    img, mask = photo(50, 70), person_mask(50, 70)
    trimap = trimap_from_mask(mask, 3)
    plain = Matter(torch_matter.backend, band_refiner=None, laplacian=None)   # a mask also turns the Laplacian off
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        both = plain.predict(img, trimap=trimap, mask=np.zeros_like(mask))
    assert np.array_equal(both.alpha, plain.predict(img, trimap=trimap).alpha)


def test_mask_of_another_size(torch_matter):
    """A mask at its own (segmenter) resolution is the phone case: resized without a warning; a trimap of
    another size is resized with one."""
    img, mask = photo(100, 150), person_mask(100, 150)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = torch_matter.predict(img, mask=cv2.resize(mask, (75, 50), interpolation=cv2.INTER_NEAREST))
    assert r.alpha.shape == (100, 150)
    trimap = np.where(cv2.resize(mask, (75, 50), interpolation=cv2.INTER_NEAREST) > 0, 255, 0).astype(np.uint8)
    trimap[20:30] = 128
    with pytest.warns(UserWarning, match="resized"):
        torch_matter.predict(img, trimap=trimap)
    with pytest.raises(DataError, match="different aspect ratio"):
        torch_matter.predict(img, mask=person_mask(100, 100))
    for options in ({"band": (3, 4, 5), "mask": mask}, {"band": -1}, {"band": 8, "trimap": np.full(mask.shape, 128,
                                                                                                np.uint8)}):
        with pytest.raises(ValueError, match="band"):      # an unpacking error, or ignored without a mask
            torch_matter.predict(img, **options)
    for empty in ((0, 0), (0, 150), (100, 0)):          # was a ZeroDivisionError from the aspect ratio
        with pytest.raises(DataError, match=f"mask is {empty[1]}x{empty[0]}: it has no pixels"):
            torch_matter.predict(img, mask=np.zeros(empty, np.uint8))
    with pytest.raises(DataError, match="trimap is 150x0: it has no pixels"):
        torch_matter.predict(img, trimap=np.zeros((0, 150), np.uint8))


# --------------------------------------------------------------------------------------------- bad input
def test_unreadable_files_are_named(torch_matter, tmp_path):
    jpeg = tmp_path / "cut.jpg"
    Image.fromarray(photo(40, 40)).save(jpeg)
    jpeg.write_bytes(jpeg.read_bytes()[:300])
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).bytes(500))
    (tmp_path / "empty.png").write_bytes(b"")
    for name, problem in [("cut.jpg", "corrupt"), ("noise.png", "corrupt"), ("empty.png", "empty"),
                          ("missing.png", "not found")]:
        with pytest.raises(DataError, match=problem) as err:
            torch_matter.predict(tmp_path / name)
        assert name in str(err.value)
    with pytest.raises(DataError, match="mask.png: not a readable image"):
        (tmp_path / "mask.png").write_bytes(b"not a png")
        torch_matter.predict(photo(40, 40), mask=tmp_path / "mask.png")


@pytest.mark.parametrize("image, problem", [
    (np.full((40, 40, 3), np.nan, np.float32), "NaN or inf"),
    (np.full((40, 40, 3), np.inf, np.float32), "NaN or inf"),
    (np.full((40, 40, 3), 255.0, np.float32), r"must lie in \[0, 1\]"),
    (np.zeros((40, 40, 2), np.uint8), "shape"),
    (np.zeros((40, 40, 5), np.uint8), "shape"),
    (np.zeros((2, 40, 40, 3), np.uint8), "shape"),
    (np.zeros((40,), np.uint8), "shape"),
    (np.zeros((40, 40, 3), np.int32), "dtype"),
    (np.zeros((4, 40, 3), np.uint8), "at least"),
    ("a string is not a path object", "not found"),
])
def test_bad_arrays(torch_matter, image, problem):
    with pytest.raises(DataError, match=problem):
        torch_matter.predict(image)


def test_bad_masks_and_trimaps(torch_matter):
    img = photo(40, 40)
    with pytest.raises(DataError, match="NaN"):
        torch_matter.predict(img, mask=np.full((40, 40), np.nan, np.float32))
    with pytest.raises(DataError, match="different colour channels"):
        torch_matter.predict(img, mask=photo(40, 40))
    with pytest.raises(DataError, match="0/128/255"):
        torch_matter.predict(img, trimap=np.full((40, 40), 100, np.uint8))
    gray = np.zeros((40, 40), np.uint8)
    gray[10:30, 12:28] = 255
    cutout = np.dstack([np.zeros((40, 40, 3), np.uint8), gray])        # the mask as a cutout's alpha channel
    for arr in (cutout, cutout[..., 2:], np.dstack([gray] * 4)):        # RGBA, gray + alpha, all four the mask
        assert np.array_equal(single_channel(arr, "mask", "one channel"), gray)
    with pytest.raises(DataError, match="mask has both colour and transparency that vary"):
        torch_matter.predict(img, mask=np.dstack([photo(40, 40), gray]))
    with pytest.raises(DataError, match="uint8"):
        torch_matter.predict(img, trimap=np.full((40, 40), 0.5, np.float32))


# --------------------------------------------------------------------------------------------- artifacts
def test_manifest_mismatch_is_refused(artifacts):
    with pytest.raises(ManifestError, match=r"input_size is \[64, 64\], expected \[128, 128\]"):
        Matter.from_artifact(artifacts["onnx"], expect={"input_size": [128, 128]})
    with pytest.raises(ManifestError, match="pu_steps is 2, expected 3"):
        Matter.from_artifact(artifacts["onnx"], expect={"pu_steps": 3})
    with pytest.raises(ManifestError, match="pu_steps is 2, expected 3"):
        Matter.from_artifact(artifacts["pt"], expect={"pu_steps": 3})
    with pytest.raises(ManifestError, match="multiples of the encoder stride"):
        Matter.from_artifact(artifacts["pt"], expect={"input_size": [100, 100]})
    Matter.from_artifact(artifacts["onnx"], expect={"input_size": [64, 64], "pu_steps": 2, "precision": "fp32"})


def test_truncated_or_unmanifested_onnx_is_refused(artifacts, tmp_path):
    onnx_path = tmp_path / "m.onnx"
    shutil.copy(artifacts["onnx"], onnx_path)
    with pytest.raises(ManifestError, match="no manifest"):
        Matter.from_artifact(onnx_path)
    shutil.copy(manifest_path(artifacts["onnx"]), manifest_path(onnx_path))
    onnx_path.write_bytes(onnx_path.read_bytes()[:-1000])
    with pytest.raises(ManifestError, match="truncated"):
        Matter.from_artifact(onnx_path)


def test_truncated_checkpoint_is_refused(artifacts, tmp_path):
    pt = tmp_path / "m.pt"
    pt.write_bytes(artifacts["pt"].read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated"):
        Matter.from_artifact(pt)


def test_missing_runtime_is_a_clear_error_only_for_its_backend(artifacts, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)      # `import onnxruntime` now fails
    with pytest.raises(BackendUnavailable, match="onnxruntime backend needs the 'onnxruntime' package: pip install"):
        Matter.from_artifact(artifacts["onnx"])
    assert Matter.from_artifact(artifacts["pt"]).backend.name == "torch"


def test_importing_the_runtime_imports_no_backend():
    """No backend runtime until an artifact needs one: the CLI entry imports no image library, the bokeh
    command neither torch nor onnxruntime."""
    code = ("import sys, adamat.cli; print(sorted({'cv2', 'numpy', 'torch'} & set(sys.modules))); "
            "import adamat.commands.bokeh; print(sorted({'torch', 'onnxruntime'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=pathlib.Path(__file__).resolve().parent.parent)
    assert out.stdout.split() == ["[]", "[]"]


def test_unknown_artifact_kind(tmp_path):
    with pytest.raises(ArtifactError, match="no backend opens '.bin'"):
        backend_for(tmp_path / "model.bin")
    with pytest.raises(ValueError, match="unknown backend"):
        Matter.from_artifact(tmp_path / "m.pt", backend="tflite")


# --------------------------------------------------------------------------------------------- upsampling
def test_guided_upsampling_follows_the_photo_edges():
    """A 4× downsampled matte of a hard, slanted edge: guided by the photo, upsampling restores it."""
    h, w = 128, 128
    yy, xx = np.mgrid[:h, :w]
    gt = (xx + 0.3 * yy > 70).astype(np.float32)
    rng = np.random.default_rng(0)
    guide = np.where(gt[..., None] > 0, [0.9, 0.3, 0.2], [0.1, 0.4, 0.8]).astype(np.float32)
    guide += rng.normal(0, 0.01, guide.shape).astype(np.float32)
    low = cv2.resize(gt, (32, 32), interpolation=cv2.INTER_AREA)
    guided = upsample_alpha(low, guide, method="guided")
    bilinear = upsample_alpha(low, guide, method="bilinear")
    assert np.abs(guided - gt).mean() < 0.3 * np.abs(bilinear - gt).mean()
    assert guided.dtype == np.float32 and guided.shape == (h, w)
    flat = np.abs(xx + 0.3 * yy - 70) > 32           # beyond the filter's reach: exactly 0 or 1 (snapped)
    assert np.array_equal(guided[flat], gt[flat])
    with pytest.raises(ValueError, match="unknown upsampling method"):
        upsample_alpha(low, guide, method="bicubic")


def test_known_trimap_regions_are_authoritative(artifacts):
    img = photo(80, 100)
    trimap = np.full((80, 100), 128, np.uint8)
    trimap[:20], trimap[-20:] = 0, 255
    clamped = Matter.from_artifact(artifacts["pt"], input_size=(64, 64)).predict(img, trimap=trimap).alpha
    assert (clamped[:20] == 0).all() and (clamped[-20:] == 1).all()
    free = Matter.from_artifact(artifacts["pt"], input_size=(64, 64), clamp_known=False).predict(img, trimap=trimap).alpha
    assert np.abs(free[20:-20] - clamped[20:-20]).max() < 1e-6   # the band: the same (the clamped path's filter
    #                                                          computes only the open pixels: float noise)
    assert not ((free[:20] == 0).all() and (free[-20:] == 1).all())  # the random network alone is not sure


def test_the_default_band_fits_small_photos_and_an_absurd_band_is_refused():
    mask = np.zeros((10, 12), np.uint8)
    mask[3:7, 4:8] = 255
    assert (make_trimap((10, 12), mask=mask, band=16) == 128).all()   # wider than the photo: all unknown
    with pytest.raises(ValueError, match="band must be a whole number of pixels from 1 to 2048, got 100000"):
        make_trimap((10, 12), mask=mask, band=100_000)


def test_a_torch_device_is_named_when_it_is_unknown_or_not_here(artifacts):
    """backend_options={"device": ...} for a checkpoint: torch's own RuntimeError ("Expected one of cpu, cuda, ...")
    or AssertionError ("Torch not compiled with CUDA enabled") became one error naming the option."""
    import torch

    from runtime.errors import BackendUnavailable

    with pytest.raises(ValueError, match="device must be a torch device such as 'cpu' or 'cuda:0', got 'bogus'"):
        Matter.from_artifact(artifacts["pt"], backend_options={"device": "bogus"})
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailable, match="device 'cuda': this process cannot run PyTorch on it"):
            Matter.from_artifact(artifacts["pt"], backend_options={"device": "cuda"})
    on_cpu = Matter.from_artifact(artifacts["pt"], backend_options={"device": "cpu"})
    assert on_cpu.predict(photo(64, 64)).alpha.shape == (64, 64)


def test_from_artifact_names_an_argument_of_the_wrong_kind(artifacts):
    """Each failed inside pathlib or the backend, naming no argument ("expected str, bytes or os.PathLike object,
    not NoneType", "'int' object is not iterable"), or named an empty path "."."""
    for call, error, words in (
            (lambda: Matter.from_artifact(None), TypeError, "path must be a path .str or pathlib.Path., got NoneType"),
            (lambda: Matter.from_artifact(""), ValueError, "path must be a non-empty path, got ''"),
            (lambda: Matter.from_artifact(artifacts["pt"], expect=5), TypeError, "expect must be a dict"),
            (lambda: Matter.from_artifact(artifacts["pt"], band_refiner=5), TypeError,
             "band_refiner must be 'shipped', a BandRefiner, a path to one or None, got int"),
            (lambda: Matter.from_artifact(artifacts["pt"], band_refiner=""), ValueError,
             "band_refiner must be a non-empty path")):
        with pytest.raises(error, match=words):
            call()
