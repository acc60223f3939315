"""The argparse types shared by the commands (common.arguments): bounds, NaN and inf refused as the option is
read, each with a message that says what is allowed."""

import argparse
import math

import pytest

from common.arguments import file_named, number, whole_number


@pytest.mark.parametrize("text, message", [("0", "must be >= 1, got 0"), ("65", "must be at most 64, got 65"),
                                           ("2.5", "whole number >= 1, got '2.5'"), ("", "whole number")])
def test_whole_number_refuses_what_lies_outside_its_bounds(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        whole_number(1, 64)(text)


def test_whole_number_takes_its_bounds():
    assert [whole_number(1, 64)(t) for t in ("1", "64", " 7")] == [1, 64, 7]
    assert whole_number(0)("1000000") == 1_000_000


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "-0.1", "1.5", "x"])
def test_number_refuses_nan_inf_and_values_outside_its_range(text):
    with pytest.raises(argparse.ArgumentTypeError, match="from 0 to 1"):
        number(0, 1)(text)


def test_number_above_its_least_excludes_it():
    with pytest.raises(argparse.ArgumentTypeError, match="> 0"):
        number(0, above=True)("0")
    assert number(0, above=True)("1e-9") == 1e-9 and number(0, 1)("0") == 0.0
    assert math.isclose(number(-1, 1)("-0.5"), -0.5)
    with pytest.raises(argparse.ArgumentTypeError, match="above 0 and at most 4, got 5"):
        number(0, 4, above=True)("5")


@pytest.mark.parametrize("text", ["w.txt", "w", "w.pt/", "w.pt/.", "w.pt/..", "", "."])
def test_file_named_refuses_other_suffixes_and_folders(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be a \.pt file"):
        file_named(".pt")(text)


def test_file_named_takes_its_suffix_in_any_case():
    assert [str(file_named(".pt")(t)) for t in ("w.pt", "out/W.PT", "./a.b.pt")] == ["w.pt", "out/W.PT", "a.b.pt"]
