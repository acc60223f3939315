"""The person segmenter (runtime.person_mask) and `adamat bokeh` without a mask: phone formats (HEIC, EXIF
orientation, ICC profile), folders, --overwrite. The shipped segmenter runs here (a few ms a photo); the matting
network is the tiny config."""

import warnings

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms
from skimage.data import astronaut

from adamat.cli import main
from common.errors import DataError
from runtime.person_mask import MODEL, NoPersonFound, PersonSegmenter, segmenter_band

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def segmenter():
    return PersonSegmenter()


def portrait(side=128) -> np.ndarray:
    """scikit-image's astronaut() (Eileen Collins, public domain), uint8 RGB at side × side."""
    return cv2.resize(astronaut(), (side, side), interpolation=cv2.INTER_AREA)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def bokeh(tiny_checkpoint, *args) -> int:
    return main(["bokeh", *map(str, args), "--artifact", str(tiny_checkpoint)])


def test_the_shipped_model_is_the_documented_file():
    assert MODEL.stat().st_size == 249_505
    notice = (MODEL.parent / "NOTICE.md").read_text()
    assert "Apache License 2.0" in notice and "9ee168ec7c8f2a16" in notice
    assert "Apache License" in (MODEL.parent / "LICENSE-selfie-segmentation.txt").read_text()


def test_segmenter_finds_the_astronaut_and_not_the_background(segmenter):
    photo = astronaut()                                          # 512 × 512
    mask = segmenter.mask(photo) > 0
    assert mask.shape == photo.shape[:2]
    assert mask[70:170, 180:270].mean() >= 0.97                  # the face
    assert mask[250:450, 60:330].mean() >= 0.97                  # the suit
    assert mask[:80, :80].mean() <= 0.01 and mask[:80, -80:].mean() <= 0.01   # the flag, the rocket: background
    assert 0.35 <= mask.mean() <= 0.7
    # the same person at another resolution and aspect: the probability is stretched back to the photo
    wide = cv2.resize(photo, (400, 300), interpolation=cv2.INTER_AREA)
    assert segmenter.mask(wide).shape == (300, 400)
    assert segmenter_band((3024, 4032)) == (32, 95) and segmenter_band((300, 400)) == (14, 16)


def test_the_segmenter_takes_the_photos_the_runtime_takes_and_names_the_others(segmenter):
    """A float or 16-bit photo was divided by 255 as if it were 8-bit (a wrong mask, silently); others failed in
    OpenCV or LiteRT with their own words."""
    photo = astronaut()
    mask = segmenter.mask(photo)
    assert np.array_equal(segmenter.mask(photo.astype(np.float32) / 255), mask)
    assert np.array_equal(segmenter.mask(photo.astype(np.uint16) * 257), mask)
    for bad, words in ((photo.astype(np.int32), "unsupported dtype int32"), (photo[None], r"must be \(H, W\) gray"),
                       (np.zeros((0, 0, 3), np.uint8), "photo is 0x0"),
                       (np.full(photo.shape, np.nan, np.float32), "NaN")):
        with pytest.raises(DataError, match=words):
            segmenter.mask(bad)
    with pytest.raises(TypeError, match="photo must be a numpy array"):
        segmenter.mask("photo.jpg")
    with pytest.raises(ValueError, match="long_side must be a whole number of pixels >= 1, got 0"):
        segmenter.mask(photo, long_side=0)
    with pytest.raises(ValueError, match="threads must be a whole number from 1 to 256"):
        PersonSegmenter(threads=10 ** 6)                           # crashed LiteRT as the process ended
    with pytest.raises(TypeError, match="model must be a path .str or pathlib.Path., got NoneType"):
        PersonSegmenter(model=None)


@pytest.mark.parametrize("photo", [np.full((90, 120, 3), 128, np.uint8),
                                   np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)],
                         ids=["flat", "noise"])
def test_no_person_is_an_error_not_a_sharp_photo(segmenter, photo):
    with pytest.raises(NoPersonFound, match="no person found"):
        segmenter.mask(photo)
    with pytest.raises(TypeError, match="require_person must be True or False, got 'no'"):   # was taken as True
        segmenter.mask(photo, require_person="no")
    with pytest.raises(TypeError, match="path must be a path .str or pathlib.Path., got int"):  # broke the message
        segmenter.mask(photo, path=5)


def test_auto_mask_end_to_end_and_no_person_exits_2(tiny_checkpoint, tmp_path, capsys):
    Image.fromarray(portrait()).save(tmp_path / "person.jpg", quality=95)
    assert bokeh(tiny_checkpoint, tmp_path / "person.jpg", "-o", tmp_path / "out.png", "--timings") == 0
    out = capsys.readouterr().out
    assert "segment" in out and cv2.imread(str(tmp_path / "out.png")).shape == (128, 128, 3)

    Image.fromarray(np.full((96, 128, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    assert bokeh(tiny_checkpoint, tmp_path / "wall.png", "-o", tmp_path / "wall_out.jpg") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wall.png: no person found" in err and "--mask FILE" in err
    assert not (tmp_path / "wall_out.jpg").exists()
    assert bokeh(tiny_checkpoint, tmp_path / "wall.png", "-o", tmp_path / "wall_out.jpg", "--mask", "none") == 0


def test_heic_in_upright_jpeg_out_with_its_colour_profile_and_exif(tiny_checkpoint, tmp_path):
    stored = np.ascontiguousarray(np.rot90(portrait(), 1)[:, :96])   # stored on its side: 96 wide, 128 tall
    exif = Image.Exif()
    exif[ORIENTATION] = 6                                            # shown turned 90° clockwise: upright
    exif[0x010F] = "TestCam"                                         # Make: kept in the output
    icc = srgb_profile()
    Image.fromarray(stored).save(tmp_path / "IMG_0001.HEIC", quality=90, exif=exif.tobytes(), icc_profile=icc)

    assert bokeh(tiny_checkpoint, tmp_path / "IMG_0001.HEIC", "-o", tmp_path / "out.jpg") == 0
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.size == (128, 96)                                 # upright: rotated as EXIF said
        assert out.info.get("icc_profile") == icc
        assert out.getexif().get(ORIENTATION, 1) == 1 and out.getexif().get(0x010F) == "TestCam"
        upright = np.asarray(out.convert("RGB")).astype(int)
    expected = np.rot90(stored, -1).astype(int)
    assert np.abs(upright - expected).mean() < 30                    # the same picture, not a rotated one


def test_jpeg_with_orientation_and_profile_to_png(tiny_checkpoint, tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION] = 8
    icc = srgb_profile()
    Image.fromarray(portrait()[:, :96]).save(tmp_path / "p.jpg", quality=95, exif=exif, icc_profile=icc)
    assert bokeh(tiny_checkpoint, tmp_path / "p.jpg", "-o", tmp_path / "p.png") == 0
    with Image.open(tmp_path / "p.png") as out:
        assert out.size == (128, 96) and out.info.get("icc_profile") == icc
        assert out.getexif().get(ORIENTATION, 1) == 1


def test_unsupported_format_is_one_clear_line(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "photo.xyz").write_bytes(b"GIF89a not really")
    assert bokeh(tiny_checkpoint, tmp_path / "photo.xyz", "-o", tmp_path / "o.jpg") == 2
    assert "photo.xyz: unsupported image format '.xyz'" in capsys.readouterr().err
    (tmp_path / "broken.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40)
    with pytest.raises(DataError, match="broken.heic: not a readable image"):
        from runtime.preprocess import read_image
        read_image(tmp_path / "broken.heic")


def test_existing_output_needs_overwrite(tiny_checkpoint, tmp_path, capsys):
    Image.fromarray(portrait()).save(tmp_path / "p.png")
    out = tmp_path / "o.jpg"
    out.write_bytes(b"an earlier rendering")
    assert bokeh(tiny_checkpoint, tmp_path / "p.png", "-o", out) == 2
    assert "o.jpg: exists already: give --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"an earlier rendering"
    assert bokeh(tiny_checkpoint, tmp_path / "p.png", "-o", out, "--overwrite") == 0
    assert cv2.imread(str(out)).shape == (128, 128, 3)


def test_folder_with_a_corrupt_photo(tiny_checkpoint, tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    Image.fromarray(portrait()).save(photos / "a.jpg", quality=95)
    Image.fromarray(np.ascontiguousarray(portrait()[:, ::-1])).save(photos / "b.png")
    Image.fromarray(portrait()[:, :96]).save(photos / "c.heic", quality=90)
    (photos / "d.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (photos / "notes.txt").write_text("not a photo")
    assert bokeh(tiny_checkpoint, photos, "-o", out) == 2
    captured = capsys.readouterr()
    assert "3 of 4 photos written" in captured.out and "1 failed: d.jpg" in captured.out
    assert "d.jpg: not a readable image" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.jpg", "c.jpg"]   # nothing for d, no temporaries
    assert cv2.imread(str(out / "c.jpg")).shape == (128, 96, 3)

    (photos / "d.jpg").unlink()                                      # again: every output exists already
    before = (out / "a.jpg").read_bytes()
    assert bokeh(tiny_checkpoint, photos, "-o", out) == 2
    captured = capsys.readouterr()
    assert "0 of 3 photos written" in captured.out and captured.err.count("exists already") == 3
    assert (out / "a.jpg").read_bytes() == before
    assert bokeh(tiny_checkpoint, photos, "-o", out, "--overwrite") == 0
    assert "3 of 3 photos written" in capsys.readouterr().out


def test_folder_refuses_a_single_mask_and_an_empty_folder(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert bokeh(tiny_checkpoint, tmp_path / "empty", "-o", tmp_path / "out") == 2
    assert "no photos in this folder" in capsys.readouterr().err
    assert bokeh(tiny_checkpoint, tmp_path / "empty", "-o", tmp_path / "out", "--mask", "m.png") == 2
    assert "a folder takes --mask auto or --mask none" in capsys.readouterr().err


def test_quiet_by_default_and_everything_with_v(tiny_checkpoint, tmp_path):
    import logging
    import subprocess
    import sys

    from adamat.verbosity import set_verbosity

    Image.fromarray(portrait()).save(tmp_path / "p.png")
    command = [sys.executable, "-m", "adamat.cli", "bokeh", str(tmp_path / "p.png"), "--artifact", str(tiny_checkpoint),
               "--refine", "0", "-o"]
    quiet = subprocess.run(command + [str(tmp_path / "q.jpg")], capture_output=True, text=True, timeout=120)
    loud = subprocess.run([command[0], *command[1:3], "-v", *command[3:], str(tmp_path / "v.jpg")],
                          capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert quiet.stderr == "" and "XNNPACK" in loud.stderr            # LiteRT's native INFO line
    records = []
    library = logging.getLogger("a_library")                          # as NNCF does: INFO on its own logger
    library.setLevel(logging.INFO)
    library.addHandler(handler := logging.Handler())
    handler.emit = records.append
    set_verbosity(False)
    library.info("routine")
    library.warning("worth seeing")
    assert [r.getMessage() for r in records] == ["worth seeing"]
    library.removeHandler(handler)
    torchao = logging.getLogger("torchao")        # at import, each CUDA kernel library it lacks: a line each
    torchao.addHandler(handler)
    records.clear()
    torchao.warning("Failed to load /x/_C_mxfp8.so: Could not load this library")
    torchao.warning("a real problem")
    assert [r.getMessage() for r in records] == ["a real problem"]
    torchao.removeHandler(handler)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        set_verbosity(False)                          # its filters go first
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) and "
                      "treespec.is_leaf()` instead.", FutureWarning)
        warnings.warn("worth seeing too", FutureWarning)
    assert [str(w.message) for w in shown] == ["worth seeing too"]


def test_demo_portrait_figure(tiny_checkpoint, tmp_path):
    from adamat.figures import portrait_figure

    names = portrait_figure(tiny_checkpoint, tmp_path / "portraits.png")
    assert names == ["astronaut", "camera", "grace_hopper"]
    figure = cv2.imread(str(tmp_path / "portraits.png"))
    assert figure.shape[0] == 3 * 200 and figure.shape[1] >= 5 * 200     # five panels a portrait


def test_the_app_takes_a_reduced_mask_with_the_photos_aspect(segmenter):
    """The mask the app hands the matting path: at most MASK_SIDE on the long side, the photo's aspect, the same
    person as at full resolution; a photo too thin to reduce keeps its own size."""
    from runtime.person_mask import MASK_SIDE, MIN_SHORT_SIDE
    from runtime.preprocess import make_trimap

    photo = cv2.resize(astronaut(), (1600, 1200), interpolation=cv2.INTER_CUBIC)
    small, full = segmenter.mask(photo, long_side=MASK_SIDE), segmenter.mask(photo)
    assert small.shape == (768, 1024) and set(np.unique(small)) <= {0, 255}
    band = segmenter_band(photo.shape[:2])
    trimaps = [make_trimap(photo.shape[:2], mask=m, band=band) for m in (small, full)]
    assert (trimaps[0] != trimaps[1]).mean() < 0.002
    thin = np.zeros((MIN_SHORT_SIDE, 4000, 3), np.uint8)
    assert segmenter.mask(thin, require_person=False, long_side=MASK_SIDE).shape == (MIN_SHORT_SIDE, 4000)


def test_only_metadata_that_stays_true_of_the_output_is_kept(tmp_path, recwarn):
    """A gray profile was embedded in the RGB output (an invalid file), a TIFF's layout tags were written as the
    JPEG's EXIF, EXIF of more than 64 KB failed in Pillow after the render ('EXIF data is too long'), and damaged
    EXIF printed Pillow's warning, which names no file."""
    from runtime.photo_files import read_metadata
    from runtime.preprocess import exif_orientation

    gray = portrait()[..., 0]
    srgb = srgb_profile()
    gray_profile = srgb[:16] + b"GRAY" + srgb[20:]                   # its header's colour space
    Image.fromarray(gray).save(tmp_path / "gray.jpg", icc_profile=gray_profile)
    Image.fromarray(gray).save(tmp_path / "srgb.jpg", icc_profile=srgb)
    assert read_metadata(tmp_path / "gray.jpg").icc_profile is None
    assert read_metadata(tmp_path / "srgb.jpg").icc_profile == srgb

    Image.fromarray(portrait()).save(tmp_path / "p.tif", tiffinfo={270: "a portrait"})
    kept = Image.Exif()
    kept.load(read_metadata(tmp_path / "p.tif").exif)
    assert kept.get(270) == "a portrait" and not {256, 257, 258, 273, 279} & set(kept)

    long = Image.Exif()
    long[270] = "d" * 70000
    Image.fromarray(portrait()).save(tmp_path / "long.png", exif=long.tobytes())
    assert read_metadata(tmp_path / "long.png").exif is None
    assert "long.png: its EXIF is 70,0" in str(recwarn.pop(UserWarning).message)

    Image.fromarray(portrait()).save(tmp_path / "damaged.jpg", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + bytes(20))
    assert exif_orientation(tmp_path / "damaged.jpg") == 1 and not recwarn.list
    assert read_metadata(tmp_path / "damaged.jpg").exif is None
    assert str(recwarn.pop(UserWarning).message).startswith(f"{tmp_path / 'damaged.jpg'}: its EXIF is damaged (")
    assert not recwarn.list
