"""The manifest every exported artifact carries: what it is, what it expects, how it was checked.

It is written beside the artifact as ``<artifact name>.manifest.json`` (for ``model.onnx``:
``model.onnx.manifest.json``) and, for ONNX, also into the model's ``metadata_props``. It records the
SHA-256 of every file the artifact consists of (:func:`artifact_files`: an OpenVINO IR's ``.xml`` and
``.bin``, every file of a CoreML ``.mlpackage`` folder). A consumer (runtime backend, export reuse, gate,
benchmark) loads it with :func:`load_manifest`, which refuses an artifact unless every one of those files is
present, unchanged and alone (truncated, damaged, replaced or added files), and, with
:func:`check_expected`, one whose facts differ from what the consumer expects (input encoding, size, steps,
...). Refusing is better than producing silently wrong alpha.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import platform
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from common.encoding import INPUT_ENCODING
from common.outputs import atomic_path

FORMAT = "adamatting-artifact/2"        # 2: ``files`` hashes every file of the artifact
# Bump when the meaning of the model's inputs or outputs changes; consumers compare it.
ENCODING_VERSION = 1
INPUT_NAMES = ("image", "trimap")
OUTPUT_NAMES = ("alpha", "trimap_prob")
OUTPUT_DOC = {
    "alpha": "N x 1 x H x W float32 in [0, 1]: the final alpha matte",
    "trimap_prob": "N x 3 x H x W float32: softmax of the adapted trimap over (background, unknown, foreground)",
}


# The sources that decide what an exported graph is: the network, the BatchNorm folding, the input encoding
# and every exporter (graph rewrites, quantizers, the precision policy).
_ROOT = Path(__file__).resolve().parent.parent
EXPORT_CODE = ("adamatting/model", "adamatting/fuse.py", "common/encoding.py", "export")


@functools.lru_cache(maxsize=1)
def export_code_sha() -> str:
    """SHA-256 of the export code (``EXPORT_CODE``: .py and .toml files, relative names included). Every new
    manifest records it, so ``export all`` re-exports an artifact made by other code — after a change to an
    exporter or a graph rewrite, reusing it would measure and gate the old graph."""
    h = hashlib.sha256()
    for entry in EXPORT_CODE:
        path = _ROOT / entry
        files = sorted(f for f in path.rglob("*") if f.suffix in (".py", ".toml")) if path.is_dir() else [path]
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(_ROOT)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


class ManifestError(ValueError):
    """An artifact without a usable manifest, or one that does not match what the consumer expects."""


@dataclass
class Manifest:
    backend: str                       # torch | onnxruntime | openvino | tensorrt | coreml
    precision: str                     # fp32 | fp16 | int8 | w8 | w8a8 | ...
    model_config: dict[str, Any]
    input_size: list[int]              # [H, W]
    batch: int | str = 1               # 1, or "dynamic"
    pu_steps: int = 3
    encoding_version: int = ENCODING_VERSION
    encoding: dict[str, str] = field(default_factory=lambda: dict(INPUT_ENCODING))
    input_names: list[str] = field(default_factory=lambda: list(INPUT_NAMES))
    output_names: list[str] = field(default_factory=lambda: list(OUTPUT_NAMES))
    outputs: dict[str, str] = field(default_factory=lambda: dict(OUTPUT_DOC))
    checkpoint_sha256: str = ""
    export_code_sha256: str = field(default_factory=export_code_sha)   # the code that made it (see above)
    artifact_sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)   # every file of the artifact -> its SHA-256
    tools: dict[str, str] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def metadata_props(self) -> dict[str, str]:
        """Flat string facts for ONNX ``metadata_props`` (the full manifest under ``adamatting_manifest``)."""
        d = asdict(self)
        d.pop("artifact_sha256")  # the file cannot hold its own hash
        d.pop("files")
        return {"adamatting_manifest": json.dumps(d, sort_keys=True), "encoding_version": str(self.encoding_version),
                "input_size": "x".join(map(str, self.input_size)), "pu_steps": str(self.pu_steps),
                "precision": self.precision, "model_config": self.model_config.get("name", "")}


MANIFEST_SUFFIX = ".manifest.json"   # a manifest's name: its artifact's name and this


def manifest_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, or of every file of a directory artifact (relative names included)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode())
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def artifact_files(artifact: str | Path) -> list[Path]:
    """The files an artifact consists of: every file of a folder artifact (a CoreML ``.mlpackage``), an
    OpenVINO IR's ``.xml`` and its ``.bin``, otherwise the file itself. A TensorRT timing cache is a build
    input shared by engine builds, not part of an engine: TensorRT itself refuses a mismatched one."""
    artifact = Path(artifact)
    if artifact.is_dir():
        return sorted(p for p in artifact.rglob("*") if p.is_file())
    if artifact.suffix == ".xml":
        return [artifact, artifact.with_suffix(".bin")]
    return [artifact]


def file_hashes(artifact: str | Path) -> dict[str, str]:
    """{name relative to the artifact's folder: SHA-256} for every file of ``artifact`` that exists."""
    artifact = Path(artifact)
    return {p.relative_to(artifact.parent).as_posix(): sha256_of(p) for p in artifact_files(artifact) if p.is_file()}


_SHA256 = re.compile(r"[0-9a-f]{64}")


def verify_files(artifact: str | Path, m: "Manifest") -> None:
    """Refuse (ManifestError) ``artifact`` unless its manifest hashes it whole and every file it consists of
    is there, unchanged, with no file added. The one integrity check of every consumer."""
    artifact = Path(artifact)
    recorded = m.files if isinstance(m.files, dict) else {}
    if not _SHA256.fullmatch(str(m.artifact_sha256)) or not recorded \
            or not all(isinstance(h, str) and _SHA256.fullmatch(h) for h in recorded.values()):
        raise ManifestError(f"{manifest_path(artifact)}: invalid manifest: it does not hold the SHA-256 of the "
                            f"artifact and of each of its files; re-export it")
    found = file_hashes(artifact)
    problems = [f"{n} is missing" for n in sorted(set(recorded) - set(found))]
    problems += [f"{n} is not part of the export" for n in sorted(set(found) - set(recorded))]
    problems += [f"{n} was changed" for n in sorted(set(found) & set(recorded)) if found[n] != recorded[n]]
    if not problems and sha256_of(artifact) != m.artifact_sha256:
        problems.append(f"{artifact.name} does not match the artifact's hash")
    if problems:
        raise ManifestError(f"{artifact}: does not match its manifest ({'; '.join(problems)}): truncated, damaged "
                            f"or replaced after export; re-export it")


def tool_versions(*packages: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in ("torch", "numpy", *packages):
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_manifest(artifact: str | Path, manifest: Manifest) -> Path:
    """Hash the finished artifact into the manifest and write it atomically beside the artifact."""
    manifest.artifact_sha256 = sha256_of(artifact)
    manifest.files = file_hashes(artifact)
    path = manifest_path(artifact)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(manifest.to_json())
    except BaseException:   # an artifact without its manifest is refused by every loader: leave neither
        remove_artifact(artifact)
        if path.is_file():   # a previous export's manifest describes an artifact that is gone
            path.unlink()
        raise
    return path


def remove_artifact(artifact: str | Path) -> None:
    """Delete an artifact: a file, an OpenVINO IR's .xml and .bin, or a CoreML .mlpackage folder."""
    artifact = Path(artifact)
    if artifact.is_dir():
        shutil.rmtree(artifact, ignore_errors=True)
        return
    artifact.unlink(missing_ok=True)
    if artifact.suffix == ".xml":
        artifact.with_suffix(".bin").unlink(missing_ok=True)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_text_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def _is_text_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# The shape of a manifest: every key of Manifest -> (test of its JSON value, what it must be).
SCHEMA: dict[str, tuple[Any, str]] = {
    "backend": (lambda v: isinstance(v, str), "a string"),
    "precision": (lambda v: isinstance(v, str), "a string"),
    "model_config": (lambda v: isinstance(v, dict), "an object (the model config's fields)"),
    "input_size": (lambda v: isinstance(v, list) and (v == [] or len(v) == 2 and all(_is_int(x) and x > 0 for x in v)),
                   "[height, width] in pixels"),
    "batch": (lambda v: (_is_int(v) and v >= 1) or v == "dynamic", 'a positive integer or "dynamic"'),
    "pu_steps": (lambda v: _is_int(v) and v >= 0, "a whole number"),
    "encoding_version": (_is_int, "an integer"),
    "encoding": (_is_text_map, "an object of strings"),
    "input_names": (_is_text_list, "a list of strings"),
    "output_names": (_is_text_list, "a list of strings"),
    "outputs": (_is_text_map, "an object of strings"),
    "checkpoint_sha256": (lambda v: isinstance(v, str), "a string"),
    "export_code_sha256": (lambda v: isinstance(v, str), "a string"),
    "artifact_sha256": (lambda v: isinstance(v, str), "a string"),
    "files": (_is_text_map, "an object of file names and hashes"),
    "tools": (_is_text_map, "an object of strings"),
    "validation": (lambda v: isinstance(v, dict), "an object"),
    "calibration": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "extra": (lambda v: isinstance(v, dict), "an object"),
    "format": (lambda v: isinstance(v, str), "a string"),
    "created": (lambda v: isinstance(v, str), "a string"),
}
REQUIRED = tuple(f.name for f in dataclasses.fields(Manifest)
                 if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_manifest(data: bytes, mpath: str | Path) -> Manifest:
    """A manifest from the bytes of its file, once its shape is :data:`SCHEMA`'s: ManifestError naming
    ``mpath`` and every problem otherwise (not UTF-8, not JSON, not an object, a missing, unknown or mistyped key)."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ManifestError(f"{mpath}: unreadable manifest: not UTF-8 text (byte 0x{data[e.start]:02x} at "
                            f"offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{mpath}: unreadable manifest: not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"{mpath}: invalid manifest: expected a JSON object, got {_shown(raw)}; re-export the "
                            f"artifact")
    if raw.get("format") != FORMAT:
        raise ManifestError(f"{mpath}: unknown manifest format {raw.get('format')!r} (expected {FORMAT!r})")
    raw.setdefault("export_code_sha256", "")   # written before it was recorded: made by unknown code
    problems = [f"{k} is missing" for k in REQUIRED if k not in raw]
    problems += [f"unknown key {k!r}" for k in raw if k not in SCHEMA]
    problems += [f"{k} must be {what}, got {_shown(raw[k])}" for k, (ok, what) in SCHEMA.items()
                 if k in raw and not ok(raw[k])]
    if problems:
        raise ManifestError(f"{mpath}: invalid manifest: {'; '.join(problems)}; re-export the artifact")
    return Manifest(**raw)


def load_manifest(artifact: str | Path) -> Manifest:
    """The artifact's manifest (its shape checked by :func:`parse_manifest`), once :func:`verify_files` has
    checked every file of the artifact against it."""
    artifact = Path(artifact)
    mpath = manifest_path(artifact)
    if not artifact.exists():
        raise ManifestError(f"{artifact}: artifact not found")
    if not mpath.is_file():
        raise ManifestError(f"{artifact}: no manifest ({mpath.name}) beside it; re-export the artifact")
    m = parse_manifest(mpath.read_bytes(), mpath)
    verify_files(artifact, m)
    return m


def check_expected(m: Manifest, artifact: str | Path, **expected: Any) -> None:
    """Refuse ``m`` unless every expected fact matches; the encoding version is always checked."""
    expected.setdefault("encoding_version", ENCODING_VERSION)
    problems = []
    for key, want in expected.items():
        have = getattr(m, key) if hasattr(m, key) else m.extra.get(key)
        if isinstance(have, (list, tuple)) and isinstance(want, (list, tuple)):
            have, want = list(have), list(want)
        if have != want:
            problems.append(f"{key} is {have!r}, expected {want!r}")
    if problems:
        raise ManifestError(f"{artifact}: artifact does not match what is expected: " + "; ".join(problems))
