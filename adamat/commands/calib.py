"""``adamat calib build``: build (or reuse from the cache) a composited set from a TOML config; ``adamat calib
phone`` / ``upscaled``: the phone-resolution evaluation sets (:mod:`calib_data.phone_set`)."""

from __future__ import annotations

import argparse
import sys

from adamat.tables import print_table
from calib_data.phone_set import PhoneSetConfig, build_phone_set, build_upscaled_set
from calib_data.sets import SetConfig, build_set, set_statistics
from calib_data.splits import REAL_VALIDATION, alphamatting_dev_dir
from common.arguments import out_folder


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="calib_command", required=True)
    b = sub.add_parser("build", help="build (or reuse from cache) a composited set from a TOML config")
    b.add_argument("--config", type=_named, required=True,
                   help="TOML file, or an embedded name: calib, val")
    b.add_argument("--out", type=out_folder, default="cache/sets", help="cache root; the set goes to <out>/<name>-<hash>/")
    b.add_argument("--quiet", action="store_true", help="no progress bar or table; print only the set's path")
    b.set_defaults(func=run)
    ph = sub.add_parser("phone", help="build (or reuse) the 12-megapixel procedural set with segmenter masks")
    ph.add_argument("--config", type=_named, default="phone",
                    help="TOML file, or the embedded name phone")
    ph.add_argument("--out", type=out_folder, default="cache/phone", help="cache root; the set goes to <out>/<name>-<key>/")
    ph.set_defaults(func=run_phone)
    up = sub.add_parser("upscaled", help="build (or reuse) the real alphamatting.com photos upscaled, with ground truth")
    up.add_argument("--factor", type=int, choices=(2, 4), default=2)
    up.add_argument("--root", type=_named, default=None,
                    help="alphamatting.com folder (default: the shared data's)")
    up.add_argument("--validation-only", action="store_true", help="the held-back images only")
    up.add_argument("--out", type=out_folder, default="cache/phone", help="cache root")
    up.set_defaults(func=run_upscaled)


def _named(text: str) -> str:
    """argparse type: a path that is not empty (an empty one would read the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file or folder, got an empty path")
    return text


def run(args) -> int:
    s = build_set(SetConfig.from_toml(args.config), args.out, progress=not args.quiet)
    for note in s.meta.get("notes", []):     # e.g. real foregrounds asked for but not found: procedural ones used
        print(f"note: {note}", file=sys.stderr)
    print(s.path)
    if not args.quiet:
        print_table([set_statistics(s)])
    return 0


def run_phone(args) -> int:
    print(build_phone_set(PhoneSetConfig.load(args.config), args.out))
    return 0


def run_upscaled(args) -> int:
    names = list(REAL_VALIDATION) if args.validation_only else None
    print(build_upscaled_set(args.root or alphamatting_dev_dir(), args.factor, args.out, names))
    return 0
