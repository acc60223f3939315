"""``adamat gate`` (``make gate``): the accuracy of every artifact against PyTorch FP32, checked against
``benchmarks/gates.toml``."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from adamat.tables import print_table
from adamatting.config import DEFAULT_WEIGHTS
from benchmarks.gates import GATES_TOML, Gates, check, failures, table
from benchmarks.report import gate_json
from common.arguments import file_named, out_folder, path_text, positive_int
from common.errors import DataError
from common.image_files import reading_problem
from common.manifest import MANIFEST_SUFFIX, ManifestError
from common.outputs import check_writable, write_json
from common.targets import export_commands
from evaluation.accuracy import AccuracyRow, evaluate_all
from export.errors import ExportError
from export.job import add_size_argument, composited_set
from export.onnx_graph import check_checkpoint_size
from runtime.artifacts import Artifact, discover, reference, split_stale


def add_arguments(g) -> None:
    g.add_argument("--artifacts", type=path_text, default="out/export",
                   help="folder of exported artifacts with manifests")
    g.add_argument("--checkpoint", type=path_text, default=str(DEFAULT_WEIGHTS), help="the FP32 reference")
    add_size_argument(g, help="gate the artifacts of this input size, default 512 512")
    g.add_argument("--gates", type=path_text, default=str(GATES_TOML))
    g.add_argument("--val", type=path_text, default="val", help="validation set config (TOML or embedded name)")
    g.add_argument("--val-limit", type=positive_int, default=None, help="validation composites to use (default: all)")
    g.add_argument("--no-real", action="store_true", help="skip the real alphamatting.com images")
    g.add_argument("--cache", type=out_folder, default="cache/sets")
    g.add_argument("--json", type=file_named(".json"), default=None, help="also write the results as JSON here")
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(func=run)


def run(args) -> int:
    out = json_output(args.json) if args.json else None   # before the work, not after it
    size = tuple(args.size)
    gates = Gates.load(args.gates)
    _check_reference(args.checkpoint, size)
    artifacts, problems = _artifacts(args.artifacts, args.checkpoint, size)
    if not artifacts and not problems:
        print(f"error: no {size[0]}x{size[1]} artifacts with manifests in {args.artifacts}: run `adamat export all` "
              f"(or {export_commands()}) first", file=sys.stderr)
        return 2
    rows = _evaluate(args, artifacts, size)
    return _report(rows, gates, problems, out)


def _check_reference(checkpoint: str, size: tuple[int, int]) -> None:
    """FileNotFoundError where the FP32 reference is missing, a folder or not a regular file; ValueError where it
    cannot run at ``size``."""
    problem = reading_problem(Path(checkpoint), missing="the FP32 reference checkpoint is missing",
                              folder="is a folder, not the FP32 reference checkpoint")
    if problem:
        raise FileNotFoundError(f"{checkpoint}: {problem}")
    try:
        check_checkpoint_size(checkpoint, size)
    except ExportError as e:
        raise ValueError(f"--size: {e}") from None


def _artifacts(folder: str, checkpoint: str, size: tuple[int, int]) -> tuple[list[Artifact], list[str]]:
    """The up-to-date artifacts of ``size`` in ``folder`` and the problems of the stale ones; ManifestError
    naming the damaged manifests."""
    check_artifact_folder(folder)
    artifacts, damaged = discover(folder, size)
    if damaged:   # bad input, not a gate failure: refused before anything is evaluated
        raise ManifestError("; ".join(damaged))
    return split_stale(artifacts, checkpoint)


def _evaluate(args, artifacts: list[Artifact], size: tuple[int, int]) -> list[AccuracyRow]:
    """The accuracy rows of every artifact against the reference, with a progress bar unless ``--quiet``."""
    val = composited_set(args.val, size, Path(args.cache), progress=False)
    with tqdm(total=len(artifacts) + 1, desc="accuracy", unit="artifact", file=sys.stderr, disable=args.quiet) as bar:
        started: list[str] = []

        def progress(message: str) -> None:   # called as each artifact starts: the one before is done
            bar.update(len(started) > 0)
            started.append(message)
            bar.set_postfix_str(message.removeprefix("accuracy: "))
        rows = evaluate_all(reference(args.checkpoint), artifacts, size, val, real=not args.no_real,
                            val_limit=args.val_limit, progress=progress)
        bar.update(1)
    return rows


def _report(rows: list[AccuracyRow], gates: Gates, problems: list[str], out: Path | None) -> int:
    """The table, the JSON asked for and the verdict: 1 where a gate is violated, 0 where all pass."""
    results = check(rows, gates)
    print_table(table(rows, results))
    if out:
        write_json(gate_json(rows, results, gates, problems), out)
    failed = failures(problems, results)
    if failed:
        print(f"\n{len(failed)} accuracy gate(s) violated ({gates.source}):", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"\nall accuracy gates pass ({gates.source})")
    return 0


def json_output(path: Path) -> Path:
    """``--json``'s path (a ``.json`` file: its argparse type) once it can be written and is not an artifact's
    manifest, which the gate would replace with its results; DataError naming it otherwise."""
    if path.name.lower().endswith(MANIFEST_SUFFIX):
        raise DataError("--json names an artifact's manifest: give another .json file for the results", path)
    return check_writable(path)


def check_artifact_folder(folder: str) -> None:
    """DataError unless ``--artifacts`` is an existing folder (an export writes one; nothing to gate otherwise)."""
    if not Path(folder).exists():
        raise DataError("folder of artifacts not found", folder)
    if not Path(folder).is_dir():
        raise DataError("is a file, not a folder of artifacts", folder)
