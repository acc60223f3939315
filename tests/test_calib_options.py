"""``adamat calib build / phone / upscaled``: a bad config key or option is one error line naming the file and
the key (or the option), exit 2, before anything is built or written.

Nothing here builds a set: the drawing of images is replaced by a failure, so a check that came too late
would show as that failure rather than as a long build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adamat.cli import main as cli_main
from adamat.commands import calib as calib_command
from calib_data import phone_set
from calib_data.readers import AlphaMattingReader
from calib_data.synth import Synthesizer

SET = 'name = "tiny"\ncount = 3\nsize = [64, 64]\nseed = 7\n'
PHONE = 'name = "tiny"\ncount = 1\nsize = [64, 64]\nseed = 7\nkinds = ["hair"]\n'


@pytest.fixture(autouse=True)
def nothing_is_built(monkeypatch):
    """Drawing an image, or reading a photo to upscale, fails: a bad input must be refused before."""
    def built(*args, **kwargs):
        raise AssertionError("an image was made from a bad input")

    monkeypatch.setattr(Synthesizer, "sample", built)
    monkeypatch.setattr(phone_set, "make_foreground", built)
    monkeypatch.setattr(AlphaMattingReader, "__getitem__", built)
    monkeypatch.setattr(calib_command, "build_upscaled_set", built)


def refused(tmp_path: Path, capsys, command: str, text: str, *words: str) -> str:
    """Run ``adamat calib <command>`` on a config holding ``text``: exit 2, one stderr line naming the config
    and holding ``words``, nothing written but the config."""
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code = cli_main(["calib", command, "--config", str(config), "--out", str(tmp_path / "sets")])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2 and captured.out == "", err
    assert err.startswith(f"error: {config}: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]
    return err


@pytest.mark.parametrize("text, words", [
    (SET.replace("[64, 64]", "[32, 2000000000]"), ["size must be [height, width]", "50,000,000 pixels",
                                                   "[32, 2000000000]"]),
    (SET.replace("count = 3", "count = 100000000000"), ["count must be at most", "100000000000"]),
    (SET.replace("[64, 64]", "[4000, 4000]").replace("count = 3", "count = 300"),
     ["count must be at most 250 at size [4000, 4000]"]),
    (SET.replace("seed = 7", "seed = -1"), ["seed must be from 0", "got -1"]),
    (SET.replace("[64, 64]", "[32, 100000]"), ["the long side at most 8 times the short one", "[32, 100000]"]),
    (SET + "mask_band = -4\n", ["mask_band must be from 0 to 1024, got -4"]),
    (SET + "mask_band = 100000\n", ["mask_band must be from 0 to 1024, got 100000"]),
])
def test_bad_numbers_of_a_set_are_refused(tmp_path, capsys, text, words):
    refused(tmp_path, capsys, "build", text, *words)


@pytest.mark.parametrize("weights, words", [
    ("procedural = -1.0", ["[foregrounds] procedural must be a weight from 0 to 1,000,000, got -1.0"]),
    ("procedural = nan", ["[foregrounds] procedural must be a weight", "got nan"]),
    ("procedural = inf", ["[foregrounds] procedural must be a weight", "got inf"]),
    ("real = -inf", ["[foregrounds] real must be a weight", "got -inf"]),
    ("procedural = 'much'", ["[foregrounds] procedural must be a weight", "got 'much'"]),
    ("procedural = 0\nreal = 0", ["[foregrounds] procedural and real are both 0"]),
])
def test_bad_foreground_weights_are_refused(tmp_path, capsys, weights, words):
    refused(tmp_path, capsys, "build", f"{SET}[foregrounds]\n{weights}\n", *words)


@pytest.mark.parametrize("text, words", [
    (SET + "[foregrounds]\nreal_split = [1]\n", ["real_split must be one of train, validation, all, got [1]"]),
    (SET + "[foregrounds]\nreal = 1.0\nreal_root = 5\n", ["[foregrounds] real_root must be a folder path", "5"]),
    (SET + "[foregrounds]\nrgba_root = \"a\\u0000b\"\n", ["[foregrounds] rgba_root must be a folder path"]),
    (SET + "[backgrounds]\nfolder = 5\n", ["[backgrounds] folder must be a folder path", "got 5"]),
    (SET + "[backgrounds]\nsources = 'natural'\n", ["[backgrounds] sources must be a list of names among natural"]),
    (SET + "[backgrounds]\nsources = ['moon']\n", ["[backgrounds] sources must be a list", "['moon']"]),
    (SET + "[backgrounds]\nsources = []\n", ["[backgrounds] sources must name at least one", "got []"]),
    (SET + "[backgrounds]\nsources = ['folder']\n", ["sources lists 'folder' but [backgrounds] folder is not set"]),
    (SET + "kinds = 'hair'\n", ["kinds must be a list of names among hair", "got 'hair'"]),
    (SET + "kinds = ['cat']\n", ["kinds must be a list of names among hair", "['cat']"]),
])
def test_bad_sources_of_a_set_are_refused(tmp_path, capsys, text, words):
    refused(tmp_path, capsys, "build", text, *words)


BAD_NAMES = [("''", "name '' is not a plain set name"), ("\"a\\nb\"", "name 'a\\nb' is not a plain set name"),
             ("'-x'", "not a plain set name"), ("'.hidden'", "not a plain set name"),
             ("'..'", "name '..' would not be a file directly in this folder"),
             ("'a b'", "not a plain set name"), (f"'{'x' * 65}'", "1 to 64 letters, digits"),
             ("5", "name must be a string")]


@pytest.mark.parametrize("command, text", [("build", SET), ("phone", PHONE)])
@pytest.mark.parametrize("name, words", BAD_NAMES)
def test_set_names_are_plain_visible_one_line_names(tmp_path, capsys, command, text, name, words):
    refused(tmp_path, capsys, command, text.replace('"tiny"', name), words, "letters, digits, '-', '_' or '.'")


@pytest.mark.parametrize("text, words", [
    (PHONE.replace("[64, 64]", "[64, 2000000000]"), ["size must be [height, width]", "50,000,000 pixels"]),
    (PHONE.replace("count = 1", "count = 100000000000"), ["count must be at most 1000", "100000000000"]),
    (PHONE.replace("[64, 64]", "[64, 100000]"), ["the long side at most 8 times the short one", "[64, 100000]"]),
    (PHONE.replace("count = 1", "count = 0"), ["count must be at least 1, got 0"]),
    (PHONE.replace("seed = 7", "seed = -1"), ["seed must be at least 0, got -1"]),
    (PHONE.replace("[64, 64]", "[20, 20]"), ["size must be [height, width] of at least 64 px", "[20, 20]"]),
    (PHONE + 'recipe = "bogus"\n', ["recipe must be one of", "got 'bogus'"]),
    (PHONE.replace('["hair"]', '["bogus"]'), ["kinds must be a list among", "['bogus']"]),
])
def test_bad_numbers_of_a_phone_set_are_refused(tmp_path, capsys, text, words):
    refused(tmp_path, capsys, "phone", text, *words)


def test_a_folder_given_as_the_phone_config_is_named(tmp_path, capsys):
    folder = tmp_path / "configs"
    folder.mkdir()
    assert cli_main(["calib", "phone", "--config", str(folder), "--out", str(tmp_path / "sets")]) == 2
    assert capsys.readouterr().err == f"error: {folder}: is a folder, not a config file\n"
    assert not (tmp_path / "sets").exists()


@pytest.mark.parametrize("argv, words", [
    (["upscaled", "--root", ""], "argument --root: must name a file or folder, got an empty path"),
    (["build", "--config", ""], "argument --config: must name a file or folder, got an empty path"),
    (["phone", "--config", " "], "argument --config: must name a file or folder, got an empty path"),
])
def test_empty_paths_are_refused_as_options(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as e:
        cli_main(["calib", *argv, "--out", str(tmp_path / "sets")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "sets").exists()


def test_a_photo_too_large_once_upscaled_is_refused_from_its_header(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(calib_command, "build_upscaled_set", phone_set.build_upscaled_set)
    photo = tmp_path / "dev" / "input_lowres" / "GT01.png"
    photo.parent.mkdir(parents=True)
    (tmp_path / "dev" / "gt").mkdir()                 # its ground truth is never read: the header refuses first
    Image.fromarray(np.zeros((2000, 2000), np.uint8)).save(photo)
    out = tmp_path / "sets"
    assert cli_main(["calib", "upscaled", "--root", str(tmp_path / "dev"), "--factor", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {photo}: 2000x2000 upscaled 4x is 8000x8000 (64 megapixels); the limit is 50 "
                   "megapixels: scale it down first\n"), err
    assert not out.exists()
