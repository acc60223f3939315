"""What a hostile but fair user does to the outputs: photos whose outputs would share a name, a file created at
the output path while a render runs, SIGTERM during the final write, noise and small lies of the command line."""

import errno
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from adamat.bokeh_folder import output_names
from adamat.cli import main
from common.errors import DataError
from common.outputs import atomic_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[1]


def photo(colour, h=48, w=64, seed=0) -> np.ndarray:
    """A textured photo of one dominant colour (BGR), so that each output can be told apart."""
    rng = np.random.default_rng(seed)
    return np.clip(np.array(colour, np.float32) + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def bokeh(tiny_checkpoint, *args) -> int:
    return main(["bokeh", *map(str, args), "--artifact", str(tiny_checkpoint), "--mask", "none", "--refine", "0"])


def mean_colour(path: Path) -> np.ndarray:
    return cv2.imread(str(path)).reshape(-1, 3).mean(0)


# ----------------------------------------------------------------------------- folder mode: one name per photo
def test_output_names_are_distinct_ignoring_case_and_decided_in_name_order():
    names = output_names([Path("a.JPG"), Path("a.jpg")], ".jpg")
    assert names == {Path("a.JPG"): "a_jpg.jpg", Path("a.jpg"): "a_jpg_2.jpg"}
    names = output_names([Path("a.jpg"), Path("a.png"), Path("a_jpg.jpg")], ".jpg")
    assert names == {Path("a.jpg"): "a_jpg_2.jpg", Path("a.png"): "a_png.jpg", Path("a_jpg.jpg"): "a_jpg.jpg"}
    names = output_names([Path("A.png"), Path("a.jpg"), Path("b.heic")], ".png")   # a case-insensitive disk too
    assert names == {Path("A.png"): "A_png.png", Path("a.jpg"): "a_jpg.png", Path("b.heic"): "b.png"}
    many = [Path(n) for n in ("x.jpg", "x.JPG", "x.Jpg", "x_jpg.png", "x_jpg_2.tif")]
    assert len({n.casefold() for n in output_names(many, ".jpg").values()}) == len(many)


@pytest.mark.parametrize("names", [("a.jpg", "a.JPG"), ("a.jpg", "a.png", "a_jpg.jpg")])
def test_folder_writes_every_photo_under_its_own_name(tiny_checkpoint, tmp_path, capsys, names):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    colours = [(40, 40, 220), (220, 40, 40), (40, 220, 40)]
    for name, colour in zip(names, colours):
        cv2.imwrite(str(photos / name), photo(colour))
    expected = output_names(sorted(photos.iterdir()), ".jpg")
    assert bokeh(tiny_checkpoint, photos, "-o", out) == 0
    assert f"{len(names)} of {len(names)} photos written" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(expected.values())   # one each, no temporaries
    for source, name in expected.items():   # and each output is its own photo's rendering, not another's
        own = mean_colour(out / name)
        assert np.argmax(own) == np.argmax(mean_colour(source)), (source.name, name)
    assert bokeh(tiny_checkpoint, photos, "-o", out, "--overwrite") == 0   # again, every output replaced once
    assert sorted(p.name for p in out.iterdir()) == sorted(expected.values())


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_a_photo_linked_from_the_output_folder_is_never_written_over(tiny_checkpoint, tmp_path, capsys, link):
    """photos/b.jpg links to out/a.jpg, photo a.jpg's output: with --overwrite, a's render replaced b before b was
    read (exit 0, the fur photo lost); now the run is refused before any render, every file as it was."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir(), out.mkdir()
    cv2.imwrite(str(photos / "a.jpg"), photo((40, 40, 220)))
    cv2.imwrite(str(out / "a.jpg"), photo((220, 40, 40)))
    if link == "symbolic":
        (photos / "b.jpg").symlink_to(out / "a.jpg")
    else:
        os.link(out / "a.jpg", photos / "b.jpg")
    before = (out / "a.jpg").read_bytes()
    assert bokeh(tiny_checkpoint, photos, "-o", out, "--overwrite") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {out / 'a.jpg'}: is the photo {photos / 'b.jpg'} of this run (through a link): a.jpg's "
                   "output would be written over it; give another output folder"], err
    assert (out / "a.jpg").read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["a.jpg"]


def test_a_photo_that_links_to_nothing_fails_with_its_line_and_the_others_are_written(tiny_checkpoint, tmp_path,
                                                                                     capsys):
    """photos/b.jpg links to a file that is gone: it was skipped without a word (exit 0); now it fails as a photo
    that cannot be read, named, and a.jpg is written."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.jpg"), photo((40, 40, 220)))
    (photos / "b.jpg").symlink_to(tmp_path / "gone.jpg")
    assert bokeh(tiny_checkpoint, photos, "-o", out) == 2
    captured = capsys.readouterr()
    assert f"error: {photos / 'b.jpg'}: a symbolic link to nothing" in captured.err
    assert "1 of 2 photos written" in captured.out and [p.name for p in out.iterdir()] == ["a.jpg"]


def test_a_folders_output_named_as_a_photo_is_refused_not_made_a_folder(tiny_checkpoint, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.jpg"), photo((40, 40, 220)))
    assert bokeh(tiny_checkpoint, photos, "-o", tmp_path / "out.jpg") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'out.jpg'}: names a photo, but a folder of photos renders into a folder: give -o a folder")
    assert not (tmp_path / "out.jpg").exists()
    (tmp_path / "out.jpg").mkdir()                      # a folder of that name already there is a folder
    assert bokeh(tiny_checkpoint, photos, "-o", tmp_path / "out.jpg") == 0


def test_a_name_with_a_newline_is_escaped_in_every_error_line(tiny_checkpoint, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "good.png"), photo((40, 40, 220)))
    (photos / "bad\nerror: forged.png").write_bytes(b"not an image")
    assert bokeh(tiny_checkpoint, photos, "-o", tmp_path / "out") == 2
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert sum(line.startswith("error:") for line in errors) == 2, errors   # the photo's and the summary's
    assert any("bad\\nerror: forged.png" in line for line in errors)
    assert "bad\\nerror: forged.png" in captured.out and "\nerror: forged" not in captured.out
    assert bokeh(tiny_checkpoint, photos / "bad\nerror: forged.png", "-o", tmp_path / "o.jpg") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad\\nerror: forged.png: not a readable image" in err, err


@pytest.mark.parametrize("name", ["é" * 120 + ".jpg", "a." + "b" * 250, "x" * 255])
def test_a_temporary_file_fits_beside_any_name_a_file_system_takes(tmp_path, name):
    final = tmp_path / name
    with atomic_path(final) as tmp:
        assert len(os.fsencode(tmp.name)) <= 255 and tmp.name.encode("utf-8")   # valid UTF-8: APFS takes it
        tmp.write_bytes(b"done")
    assert final.read_bytes() == b"done" and sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_the_models_line_comes_only_once_work_starts(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """``adamat bokeh`` without --artifact says which model runs; an input refused before any photo or frame is
    rendered shows its error line alone."""
    import adamat.commands.bokeh

    monkeypatch.setattr(adamat.commands.bokeh, "default_artifact", lambda: (tiny_checkpoint, "model: tiny\n"))
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), photo((40, 40, 220)))
    (tmp_path / "clip.mp4").write_bytes(b"not a clip")
    for args in ([photos, "-o", photos, "--overwrite"], [tmp_path / "clip.mp4", "-o", tmp_path / "out.mp4"]):
        assert main(["bokeh", *map(str, args), "--mask", "none"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), err
    assert main(["bokeh", str(photos), "-o", str(tmp_path / "out"), "--mask", "none", "--refine", "0"]) == 0
    assert capsys.readouterr().err.count("model: tiny") == 1


def test_an_error_of_several_lines_keeps_them_indented_under_its_first():
    from common.errors import error_text

    text = error_text("the parser refused the model:\n  node 3: bad\nerror: not a new error\tx")
    assert text.splitlines() == ["error: the parser refused the model:", "    node 3: bad",
                                 "  error: not a new error\\tx"]


def test_a_name_too_long_for_the_file_system_is_said_before_its_render(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import runtime.pipeline

    photos = tmp_path / "photos"
    photos.mkdir()
    long = "p" * 250                                   # 254 bytes as a photo; "_jpg.jpg" takes its output to 258
    for name in (f"{long}.jpg", f"{long}.png", "short.png"):
        cv2.imwrite(str(photos / name), photo((40, 40, 220)))
    rendered = []
    render = runtime.pipeline.render_bokeh
    monkeypatch.setattr(runtime.pipeline, "render_bokeh", lambda p, *a, **k: rendered.append(p.shape) or render(p, *a, **k))
    assert bokeh(tiny_checkpoint, photos, "-o", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("the file name is 258 bytes long; a file system takes at most 255") == 2, err
    assert len(rendered) == 1                          # the short one's: the others were refused before theirs
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["short.jpg"]
    out = tmp_path / ("q" * 251 + ".jpg")              # the longest name there is: its temporary file fits too
    assert bokeh(tiny_checkpoint, photos / "short.png", "-o", out) == 0 and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["photos", "out", out.name])


# ----------------------------------------------------------------------- an output that appears during the run
def test_a_file_created_at_the_output_during_the_render_is_kept(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import runtime.pipeline

    cv2.imwrite(str(tmp_path / "p.png"), photo((40, 40, 220)))
    out = tmp_path / "o.jpg"
    render = runtime.pipeline.render_bokeh

    def someone_else_writes_the_output(*args, **kwargs):   # after the start's check, before the write
        out.write_bytes(b"another program's file")
        return render(*args, **kwargs)

    monkeypatch.setattr(runtime.pipeline, "render_bokeh", someone_else_writes_the_output)
    assert bokeh(tiny_checkpoint, tmp_path / "p.png", "-o", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "o.jpg: exists already" in err
    assert out.read_bytes() == b"another program's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jpg", "p.png"]   # no temporary left
    assert bokeh(tiny_checkpoint, tmp_path / "p.png", "-o", out, "--overwrite") == 0   # replaced when asked
    assert cv2.imread(str(out)).shape == (48, 64, 3)


def test_publishing_without_replace_falls_back_where_hard_links_are_unsupported(tmp_path, monkeypatch):
    def no_links(*_):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with atomic_path(tmp_path / "new.bin", replace=False) as tmp:
        tmp.write_bytes(b"whole")
    assert (tmp_path / "new.bin").read_bytes() == b"whole"
    with pytest.raises(DataError, match="new.bin: exists already"):
        with atomic_path(tmp_path / "new.bin", replace=False) as tmp:
            tmp.write_bytes(b"second")
    assert (tmp_path / "new.bin").read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["new.bin"]


# ------------------------------------------------------------------------------ SIGTERM during the final write
DRIVER = textwrap.dedent('''
    import pathlib, sys, time
    from adamat.cli import main

    ready, write_bytes = pathlib.Path(sys.argv[1]), pathlib.Path.write_bytes

    def slow_write(self, data):   # the whole file under its temporary name, then a long wait for the signal
        write_bytes(self, data)
        if self.name.endswith(".tmp"):
            ready.write_text(self.name)
            time.sleep(120)

    pathlib.Path.write_bytes = slow_write
    sys.exit(main(sys.argv[2:]))
''')


def test_sigterm_during_the_final_write_leaves_no_temporary(tiny_checkpoint, tmp_path):
    out_dir, ready = tmp_path / "out", tmp_path / "ready"
    out_dir.mkdir()
    cv2.imwrite(str(tmp_path / "p.png"), photo((40, 40, 220)))
    (tmp_path / "driver.py").write_text(DRIVER)
    command = [sys.executable, str(tmp_path / "driver.py"), str(ready), "bokeh", str(tmp_path / "p.png"), "-o",
               str(out_dir / "o.jpg"), "--artifact", str(tiny_checkpoint), "--mask", "none", "--refine", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), process.communicate(timeout=30)
        assert (out_dir / ready.read_text()).stat().st_size > 0            # the full-size temporary is there
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "terminated"
    assert list(out_dir.iterdir()) == []                                      # neither the temporary nor o.jpg


# --------------------------------------------------------------------------------------- noise and small lies
def test_a_trimap_alone_is_not_a_trimap_and_a_mask(tiny_checkpoint, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "p.png"), photo((40, 40, 220)))
    trimap = np.full((48, 64), 128, np.uint8)
    trimap[:8], trimap[-8:] = 0, 255
    cv2.imwrite(str(tmp_path / "t.png"), trimap)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["bokeh", str(tmp_path / "p.png"), "--trimap", str(tmp_path / "t.png"), "-o",
                     str(tmp_path / "o.jpg"), "--artifact", str(tiny_checkpoint), "--refine", "0"]) == 0
    assert [str(w.message) for w in caught] == []                     # the default --mask was not "given"
    assert capsys.readouterr().err == ""


def test_a_warning_is_one_plain_line_without_its_source(tiny_checkpoint, tmp_path):
    cv2.imwrite(str(tmp_path / "p.png"), photo((40, 40, 220)))
    trimap = np.full((24, 32), 128, np.uint8)            # half the photo's size: resized, with a warning
    trimap[:4], trimap[-4:] = 0, 255
    cv2.imwrite(str(tmp_path / "t.png"), trimap)
    run = subprocess.run([sys.executable, "-m", "adamat.cli", "bokeh", str(tmp_path / "p.png"), "--trimap",
                          str(tmp_path / "t.png"), "-o", str(tmp_path / "o.jpg"),
                          "--artifact", str(tiny_checkpoint), "--refine", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert re.fullmatch(r"warning: \S*t\.png: trimap is 32x24, resized to the photo's 64x48\n", run.stderr), run.stderr


def test_warning_line():
    from adamat.verbosity import warning_line

    assert warning_line("two\n  lines ", UserWarning, "/x/y.py", 3) == "warning: two lines\n"
    assert warning_line("w", RuntimeWarning, "/x/y.py", 3, verbose=True) == "warning: w (RuntimeWarning at /x/y.py:3)\n"


def test_a_failed_run_removes_the_output_folders_it_made(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "kept").mkdir()                                       # there before the run: stays
    for out in (tmp_path / "new" / "dirs" / "out.jpg", tmp_path / "kept" / "sub" / "out.jpg"):
        assert bokeh(tiny_checkpoint, tmp_path / "corrupt.jpg", "-o", out) == 2
        assert "corrupt.jpg" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "kept").is_dir() and list((tmp_path / "kept").iterdir()) == []

    bad = tmp_path / "bad"                                            # photos without ground truth
    (bad / "image").mkdir(parents=True)
    cv2.imwrite(str(bad / "image" / "p1.png"), photo((40, 40, 220)))
    assert main(["eval", str(bad), "--out", str(tmp_path / "results" / "eval"), "--artifacts",
                 str(tiny_checkpoint)]) == 2
    assert "error: " in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "corrupt.jpg", "kept"]


class Terminal(io.StringIO):
    """stderr as a terminal shows it to tqdm."""

    def isatty(self) -> bool:
        return True


def test_an_error_during_a_progress_bar_is_a_line_of_its_own(tiny_checkpoint, tmp_path, monkeypatch):
    import runtime.pipeline

    folder = tmp_path / "set"                                           # ground truth of the wrong size
    for sub in ("image", "alpha"):
        (folder / sub).mkdir(parents=True)
    cv2.imwrite(str(folder / "image" / "p1.png"), photo((40, 40, 220)))
    cv2.imwrite(str(folder / "alpha" / "p1.png"), np.zeros((30, 40), np.uint8))
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert main(["eval", str(folder), "--out", str(tmp_path / "eval"), "--artifacts", str(tiny_checkpoint),
                 "--baselines"]) == 2
    lines = [line for line in sys.stderr.getvalue().split("\n") if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "alpha" in lines[0], sys.stderr.getvalue()

    def interrupt(*_, **__):
        raise KeyboardInterrupt

    cv2.imwrite(str(tmp_path / "p.png"), photo((40, 40, 220)))         # Ctrl-C during a folder's bar
    monkeypatch.setattr(runtime.pipeline, "render_bokeh", interrupt)
    monkeypatch.setattr(sys, "stderr", Terminal())
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.png"), photo((40, 40, 220)))
    assert bokeh(tiny_checkpoint, tmp_path / "photos", "-o", tmp_path / "out") == 130
    assert sys.stderr.getvalue().endswith("\ninterrupted\n"), repr(sys.stderr.getvalue())


# ------------------------------------------------------------------------- progress bars in a log or a pipe
def test_progress_bars_in_a_pipe_are_plain_lines(tiny_checkpoint, tmp_path):
    (tmp_path / "photos").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(tmp_path / "photos" / name), photo((40, 40, 220)))
    run = subprocess.run([sys.executable, "-m", "adamat.cli", "bokeh", str(tmp_path / "photos"), "-o",
                          str(tmp_path / "out"), "--artifact", str(tiny_checkpoint), "--mask", "none", "--refine", "0"],
                         cwd=ROOT, capture_output=True, timeout=300)   # bytes: text mode would turn \r into \n
    err = run.stderr.decode()
    assert run.returncode == 0, err
    assert "\r" not in err and "\x1b" not in err, repr(err)
    lines = err.splitlines()
    assert lines[0].startswith("bokeh:   0% 0/3") and lines[-1].startswith("bokeh: 100% 3/3"), lines


def test_a_bar_off_a_terminal_prints_a_line_every_few_percent(monkeypatch):
    from tqdm import tqdm

    from adamat import progress

    progress.plain_progress_off_terminal()
    log = io.StringIO()
    for _ in tqdm(range(5000), desc="train", unit="step", file=log, mininterval=0):
        pass
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and 10 <= len(lines) <= 12, lines      # the start, each 10 %, the end
    assert lines[0].startswith("train:   0% 0/5000") and lines[-1].startswith("train: 100% 5000/5000")

    monkeypatch.setattr(progress, "PLAIN_SECONDS", 0.0)                      # and every PLAIN_SECONDS
    log = io.StringIO()
    with tqdm(total=None, desc="sets", file=log, mininterval=0) as bar:
        bar.update(3)
        tqdm.write("a log line", file=log)                                    # between the bar's lines
    assert "a log line" in log.getvalue().splitlines() and "\r" not in log.getvalue()

    screen = Terminal()                                                       # a terminal: redrawn in place
    for _ in tqdm(range(10), file=screen, mininterval=0):
        pass
    assert "\r" in screen.getvalue()


def test_nncf_progress_bars_follow_its_logs(capsys):
    import logging

    import nncf
    import openvino as ov
    from openvino import opset13 as ops

    from export.openvino_ir import nncf_progress

    x = ops.parameter([1, 3, 8, 8], np.float32, name="x")
    conv = ops.convolution(x, ops.constant(np.ones((4, 3, 3, 3), np.float32)), [1, 1], [1, 1], [1, 1], [1, 1])
    data = nncf.Dataset([np.random.default_rng(i).random((1, 3, 8, 8), np.float32) for i in range(3)])
    previous = logging.root.manager.disable
    try:
        logging.disable(logging.INFO)                                         # adamat's default: quiet
        with nncf_progress():
            nncf.quantize(ov.Model([conv], [x]), data, subset_size=3)
        assert "Statistics collection" not in capsys.readouterr().out
        logging.disable(logging.NOTSET)                                       # adamat -v: NNCF's own bars
        with nncf_progress():
            nncf.quantize(ov.Model([conv], [x]), data, subset_size=3)
        assert "Statistics collection" in capsys.readouterr().out
    finally:
        logging.disable(previous)


# ----------------------------------------------------------------------------------- the README, a manual
def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a markdown file's headings."""
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in markdown.splitlines() if line.startswith("#")}


def test_the_readme_is_a_manual_of_at_most_300_lines_and_its_docs_links_hold():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", readme)
    assert {"docs/PHONE_PATH.md", "docs/TRAINING.md", "docs/INT8_VARIANT.md", "docs/ON_DEVICE.md"} <= {
        path for path, _ in links}
    for path, anchor in links:
        assert (ROOT / path).is_file(), path
        assert not anchor or anchor in _anchors((ROOT / path).read_text()), f"{path}#{anchor}"
    for doc in (ROOT / "docs").glob("*.md"):   # and the docs' links back to the README
        for anchor in re.findall(r"\]\(\.\./README\.md#([^)\s]+)\)", doc.read_text()):
            assert anchor in _anchors(readme), f"{doc.name}: README.md#{anchor}"


# ------------------------------------------------------------------- options and inputs that would mislead
@pytest.mark.parametrize("args, message", [
    (["--band", "nan"], "error: argument --band: invalid int value: 'nan' (see adamat bokeh --help)"),
    (["--threads", str((os.cpu_count() or 1) + 1)], f"must be at most {os.cpu_count() or 1} (the CPU cores"),
    (["--threads", "0"], "error: argument --threads: must be >= 1, got 0"),
])
def test_a_bad_option_is_one_error_line_and_exit_2(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["bokeh", str(tmp_path / "p.jpg"), "-o", str(tmp_path / "o.jpg"), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err
    assert err.count("\n") == 1 and err.startswith("error: ")       # no usage block before it


@pytest.mark.parametrize("source, out", [("p.jpg", "o.jpg"), ("p.png", "o.png"), ("clip.mp4", "out.mp4")])
def test_an_output_that_names_a_folder_is_refused_before_any_work(tmp_path, capsys, source, out):
    """``-o out.mp4/`` names a folder: refused in one line, not written as out.mp4. The input is no photo or clip
    and the model does not exist: the output is checked before either is opened."""
    (tmp_path / source).write_bytes(b"never decoded")
    code = main(["bokeh", str(tmp_path / source), "-o", f"{tmp_path / out}/", "--artifact", str(tmp_path / "no.pt")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {tmp_path / out}: names a folder, not a file (the path given ends with '/')")
    assert list(tmp_path.iterdir()) == [tmp_path / source]



def test_the_clip_runtime_refuses_an_output_that_names_a_folder(tmp_path):
    """``runtime.clip.bokeh_clip`` itself (an app calls it without the command line) checks the path as given,
    before it becomes a Path and loses the separator; nothing is opened or written."""
    from runtime.clip import bokeh_clip

    with pytest.raises(DataError, match=r"out\.mp4: names a folder, not a file"):
        bokeh_clip(tmp_path / "clip.mp4", f"{tmp_path / 'out.mp4'}/", matter=None)
    assert list(tmp_path.iterdir()) == []

def test_a_trimap_with_a_mask_or_a_band_and_a_mask_or_trimap_with_no_subject_are_refused(tiny_checkpoint, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "p.png"), photo((90, 140, 200)))
    trimap = np.full((48, 64), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "t.png"), trimap)
    cv2.imwrite(str(tmp_path / "m.png"), np.zeros((12, 16), np.uint8))
    common = [tmp_path / "p.png", "-o", tmp_path / "o.jpg", "--artifact", tiny_checkpoint, "--refine", "0"]
    for extra, message in (
            (["--trimap", tmp_path / "t.png", "--mask", tmp_path / "m.png"], "give it without --mask"),
            (["--trimap", tmp_path / "t.png", "--band", "10"], "give it without --band"),
            (["--mask", tmp_path / "m.png"], "m.png: the mask marks no person"),
            (["--trimap", tmp_path / "m.png"], "m.png: the trimap marks no subject")):
        assert main(["bokeh", *map(str, common + extra)]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "o.jpg").exists()


def test_a_dangling_link_at_the_output_is_refused_before_any_work(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    cv2.imwrite(str(tmp_path / "p.png"), photo((90, 140, 200)))
    (tmp_path / "o.jpg").symlink_to(tmp_path / "nowhere" / "x.jpg")
    import runtime.pipeline
    monkeypatch.setattr(runtime.pipeline.Matter, "predict", lambda *a, **k: pytest.fail("the model ran"))
    assert bokeh(tiny_checkpoint, tmp_path / "p.png", "-o", tmp_path / "o.jpg") == 2
    assert "o.jpg: exists already: give --overwrite" in capsys.readouterr().err
    assert (tmp_path / "o.jpg").is_symlink() and not (tmp_path / "nowhere").exists()


def test_a_model_whose_alpha_is_not_finite_is_named_not_rendered(seeded_model):
    """A damaged artifact whose alpha is NaN (here a model with a NaN weight) fails at the network, by name:
    NaN would pass the later stages as 0 or 1 and render a wrong photo with no mask to betray it."""
    import torch

    from runtime.errors import ArtifactError
    from runtime.matter import Matter

    model = seeded_model()
    with torch.no_grad():
        next(p for name, p in model.named_parameters() if "alpha_decoder" in name).fill_(float("nan"))
    with pytest.raises(ArtifactError, match=r"the model \(torch/fp32\) gave an alpha with NaN or inf values"):
        Matter.from_model(model).predict(photo((90, 140, 200))[..., ::-1].copy())


def test_a_runtimes_logged_warnings_while_it_loads_show_only_with_info_logs(caplog):
    import logging

    from runtime.quiet_import import quiet_runtime_import

    previous = logging.root.manager.disable
    try:
        for level, shown in ((logging.INFO, False), (logging.NOTSET, True)):   # adamat, adamat -v
            logging.disable(level)
            caplog.clear()
            with quiet_runtime_import():
                logging.getLogger("coremltools").warning("Failed to load _MLModelProxy")
            assert bool(caplog.records) is shown and logging.root.manager.disable == level
    finally:
        logging.disable(previous)



def test_an_artifact_folder_named_in_the_environment_that_is_not_there_is_said(tmp_path, monkeypatch):
    from adamat.commands.bokeh import default_artifact
    from adamatting.config import DEFAULT_WEIGHTS

    monkeypatch.setenv("ADAMAT_ARTIFACTS", str(tmp_path / "exports"))
    path, line = default_artifact()
    assert path == Path(DEFAULT_WEIGHTS)
    assert line == f"warning: $ADAMAT_ARTIFACTS ({tmp_path / 'exports'}) is not a folder: running the checkpoint " \
                   f"{DEFAULT_WEIGHTS}\n"
    (tmp_path / "exports").mkdir()                         # there but empty: the checkpoint, as documented
    assert default_artifact() == (Path(DEFAULT_WEIGHTS), "")


def test_an_empty_artifact_folder_variable_is_as_if_unset(monkeypatch):
    """ADAMAT_ARTIFACTS= named the current folder (Path("")): the exports in out/export were passed over."""
    from runtime.artifacts import EXPORT_FOLDER, export_folder

    monkeypatch.setenv("ADAMAT_ARTIFACTS", "")
    assert export_folder() == EXPORT_FOLDER


def test_export_all_of_a_size_the_model_cannot_take_is_one_line_before_any_set_is_built(tiny_checkpoint, tmp_path,
                                                                                        capsys):
    from adamatting.checkpoint import read_checkpoint
    from adamatting.config import ModelConfig

    stride = ModelConfig.from_dict(read_checkpoint(tiny_checkpoint)["config"]).stride
    assert main(["export", "all", "--checkpoint", str(tiny_checkpoint), "--size", str(stride), str(stride + 1),
                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: input size {stride}x{stride + 1} must be positive multiples of the encoder stride {stride}"]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["export", "onnx"], ["export", "coreml"], ["export", "executorch"],
                                     ["export", "all"], ["export", "band-refiner"], ["eval", "real"],
                                     ["calib", "phone"], ["calib", "build", "--config", "calib"], ["demo"],
                                     ["eval-real"]])
def test_an_output_folder_that_is_empty_or_a_file_is_refused_at_once(command, tmp_path, capsys, monkeypatch):
    """``--out ''`` wrote into the current folder; ``--out FILE`` ran the whole export before failing on it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("x")
    for out, message in (("", "must name a folder, got an empty path"), ("f", "f is a file, not a folder")):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--out", out])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("\n") == 1 and f"argument --out: {message}" in err
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_a_child_forked_under_the_sigterm_handler_and_blocked_in_c_ends_on_sigterm():
    """A Python SIGTERM handler runs only between bytecodes: a forked child blocked in C (here a mutex locked twice,
    as glibc's resolver lock held OpenVINO's telemetry process) never ran it and outlived its parent's terminate()."""
    import ctypes

    from adamat.cli import sigterm_as_interrupt

    with sigterm_as_interrupt():
        pid = os.fork()
        if pid == 0:                                          # the child: blocked for ever in C
            libc, mutex = ctypes.CDLL(None), ctypes.create_string_buffer(64)
            libc.pthread_mutex_lock(mutex)
            libc.pthread_mutex_lock(mutex)
            os._exit(0)
        done = 0
        try:
            time.sleep(0.3)
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.1)
            assert done and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
        finally:
            if not done:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def test_ctrl_c_while_the_commands_modules_load_is_one_line(monkeypatch, capsys):
    """The parser imports the command's modules (torch: a second or two); Ctrl-C there printed a traceback."""
    import adamat.cli as cli

    def interrupted(**_):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["export", "onnx"]) == 128 + signal.SIGINT
    assert capsys.readouterr().err == "interrupted\n"
