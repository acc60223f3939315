"""``adamat calib build``: build (or reuse from the cache) a composited set from a TOML config."""

from __future__ import annotations

from adamat.tables import print_table
from calib_data.sets import SetConfig, build_set, set_statistics


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="calib_command", required=True)
    b = sub.add_parser("build", help="build (or reuse from cache) a composited set from a TOML config")
    b.add_argument("--config", required=True, help="TOML file, or an embedded name: calib, val")
    b.add_argument("--out", default="cache/sets", help="cache root; the set goes to <out>/<name>-<hash>/")
    b.add_argument("--quiet", action="store_true", help="no progress bar or table; print only the set's path")
    b.set_defaults(func=run)


def run(args) -> int:
    s = build_set(SetConfig.from_toml(args.config), args.out, progress=not args.quiet)
    print(s.path)
    if not args.quiet:
        print_table([set_statistics(s)])
    return 0
