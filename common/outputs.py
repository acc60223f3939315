"""Output paths: checked before a command's work, so that a bad one fails at once and names itself, and
written atomically (:func:`atomic_path`).

No OpenCV or torch here: the on-device benchmark (benchmarks.device_bench) uses it on machines without them.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from common.errors import DataError


NAME_MAX = 255   # bytes of one file name: ext4, APFS, and NTFS's 255 UTF-16 units hold at least this many


def check_file_path(final: str | Path) -> Path:
    """``final`` as a Path once it names a file: a :class:`DataError` when it ends with a path separator
    (``out.jpg/`` names a folder; Path would drop the separator and a file ``out.jpg`` would be written), is a
    directory already, or its name is longer than a file system takes (:data:`NAME_MAX` bytes: said now, not when
    it is written)."""
    text = os.fspath(final)
    if text.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)):
        raise DataError(f"names a folder, not a file (the path given ends with {text[-1]!r}); give a file name", final)
    size = len(os.fsencode(Path(final).name))
    if size > NAME_MAX:        # before any look at the file system, which refuses the name (ENAMETOOLONG)
        raise DataError(f"the file name is {size} bytes long; a file system takes at most {NAME_MAX}", final)
    if Path(final).is_dir():
        raise DataError("is a directory; give a file name", final)
    return Path(final)


def described_suffix(path: str | Path) -> str:
    """A file name's suffix as an error shows it: "'.gif'", "no suffix", or, for a name that is only a dot and
    a suffix (".mp4": a hidden file's name, whose suffix is none), what to give instead."""
    path = Path(path)
    if path.suffix:
        return repr(path.suffix)
    if path.name.startswith(".") and path.name.count(".") == 1 and len(path.name) > 1:
        return f"no suffix ({path.name!r} is a name, not a suffix: give one before it, e.g. out{path.name})"
    return "no suffix"


TEMPORARY_MAX = 64   # bytes of the final name in a temporary one's prefix, and of its suffix


def _temporary_prefix(final: Path) -> str:
    """The hidden prefix of a temporary file or folder beside ``final``: its name, cut at a character to at most
    :data:`TEMPORARY_MAX` bytes, so that with :func:`_temporary_suffix` and mkstemp's 8 characters the
    temporary name stays within :data:`NAME_MAX`."""
    return f".{os.fsencode(final.name)[:TEMPORARY_MAX].decode('utf-8', 'ignore')}."


def _temporary_suffix(suffix: str) -> str:
    """``suffix`` (what a writer may need to see: ``.onnx.tmp``) where it fits in :data:`TEMPORARY_MAX` bytes,
    else ``.tmp``."""
    return suffix if len(os.fsencode(suffix)) <= TEMPORARY_MAX else ".tmp"


def check_writable(final: str | Path) -> Path:
    """``final`` as a Path once it names a file (:func:`check_file_path`), its folder exists (made if needed)
    and it can be written there: a clear :class:`DataError` naming it otherwise (its folder is a file, it is a
    directory, no permission). Commands call this before their work, so that a bad output path fails in a
    second rather than after the run."""
    final = check_file_path(final)
    check_folder(final.parent, final)
    return final


_MADE: list[Path] = []   # the folders check_folder made in this process, in the order made


def check_folder(folder: str | Path, name: str | Path | None = None) -> Path:
    """``folder``, made if needed, once files can be written in it; DataError naming ``name`` (the output
    being written, default the folder) otherwise. The folders it makes are remembered, so that a run that
    fails can remove those it left empty (:func:`remove_made_folders`)."""
    folder = Path(folder)
    name = folder if name is None else name
    missing = [p for p in reversed((folder, *folder.parents)) if not p.exists()]   # outermost first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:   # a parent is a file (FileExistsError / NotADirectoryError), or no permission
        file = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        why = f"{file} is a file, not a folder" if file is not None else e.strerror or e
        raise DataError(f"cannot create the folder {folder}: {why}", name) from None
    finally:
        _MADE.extend(p for p in missing if p.is_dir())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"cannot write here: no permission to write in {folder} (or a read-only file system)", name)
    return folder


def folders_made() -> int:
    """A mark for :func:`remove_made_folders`: how many folders :func:`check_folder` has made so far."""
    return len(_MADE)


def remove_made_folders(since: int = 0) -> None:
    """Remove the folders :func:`check_folder` made after the mark ``since`` that are still empty, innermost
    first: what a failed command made for its outputs and never filled. A folder that holds anything (or that
    cannot be removed) stays."""
    for folder in reversed(_MADE[since:]):
        try:
            folder.rmdir()
        except OSError:
            pass
    del _MADE[since:]


@contextmanager
def no_folders_left_on_failure() -> Iterator[None]:
    """Where the block raises, the folders :func:`check_folder` made in it and left empty are removed: an API call
    that fails leaves what the command line leaves (``bokeh_file(..., "new/dirs/out.jpg")`` on a corrupt photo
    leaves no ``new/``)."""
    mark = folders_made()
    try:
        yield
    except BaseException:
        remove_made_folders(mark)
        raise


def inside(folder: str | Path, name: str) -> Path:
    """``folder / name`` for a file name that cannot leave ``folder``: one path component, not '.' or '..',
    no separator of any platform. Names built from data (a checkpoint's config name, a user's ``--name``) go
    through here, so an output is always a direct child of the folder the user named."""
    bad = (not name or name in (".", "..") or any(c in name for c in "/\\\0")
           or Path(name).name != name or Path(name).is_absolute())
    if bad:
        raise DataError(f"output name {name!r} would not be a file directly in this folder", folder)
    return Path(folder) / name


@contextmanager
def atomic_path(final: str | Path, suffix: str | None = None, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; move it to ``final`` only if the block succeeds.

    An exception (or an interrupt) removes the temporary file: nothing is ever left under the final name.
    ``replace=False`` publishes with a move that cannot replace (:func:`publish_new`): a file that appeared
    at ``final`` while the block ran is kept, and the block's file is refused with a :class:`DataError`.
    """
    final = check_writable(final)
    tmp = None
    try:
        try:
            fd, name = tempfile.mkstemp(prefix=_temporary_prefix(final), dir=final.parent,
                                        suffix=_temporary_suffix(suffix or final.suffix + ".tmp"))
        except OSError as e:
            raise DataError(f"cannot write here: {e.strerror or e}", final) from None
        tmp = Path(name)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make every artifact private to its writer
        try:
            yield tmp
            if replace:
                os.replace(tmp, final)
            else:
                try:
                    publish_new(tmp, final)
                except FileExistsError:
                    raise DataError("exists already (it appeared while this ran, and is kept): give --overwrite "
                                    "to replace it", final) from None
        except OSError as e:   # disk full, a read-only or special file system: name the output, not the temp file
            raise DataError(f"cannot write here: {e.strerror or e}", final) from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def publish_new(tmp: Path, final: Path) -> None:
    """Move the finished file ``tmp`` to ``final``, which must not exist: FileExistsError if it does, even if it
    appeared a moment ago (the check and the move are one system call). A hard link, then the temporary name
    removed: the file appears whole. Where the file system has no hard links (FAT, some network and FUSE
    mounts), an exclusive create of ``final`` and a copy instead: it still cannot replace, and a failed copy
    removes what it created."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in _NO_HARD_LINKS:
            raise
        _copy_new(tmp, final)
    tmp.unlink()


_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}


def _copy_new(src: Path, final: Path) -> None:
    with open(final, "xb") as out:   # O_CREAT | O_EXCL: FileExistsError if anything is there
        try:
            with open(src, "rb") as f:
                shutil.copyfileobj(f, out)
            os.chmod(final, os.stat(src).st_mode & 0o777)
        except BaseException:
            out.close()
            final.unlink()
            raise


@contextmanager
def atomic_folder(final: str | Path, done: str | None = None) -> Iterator[Path]:
    """Yield a new temporary folder beside ``final``; rename it onto ``final`` only if the block succeeds, and
    remove it otherwise: an interrupted build never leaves a half-written folder under the final name.

    ``done``: the file that marks a finished folder. A folder at ``final`` without it is debris of an older
    build and is replaced; one with it means another process finished the same build first, which is fine."""
    final = Path(final)
    check_folder(final.parent)    # the folders it makes are removed again if the command fails
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(final), suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.is_dir() and not (done and (final / done).is_file()):
            shutil.rmtree(final)
        try:
            os.replace(tmp, final)
        except OSError:
            if not (done and (final / done).is_file()):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_path`): the old file or the whole new one, never half."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(data, path: str | Path) -> Path:
    """``data`` as indented JSON, written atomically."""
    return write_text(json.dumps(data, indent=2) + "\n", path)


def one_file_twice(paths: list[str | Path]) -> tuple[str | Path, str | Path] | None:
    """The first two of ``paths`` (earlier, later) that name one file (:func:`same_file`: the same path, or one
    file through a link), or None: a list of files meant to differ."""
    for i, later in enumerate(paths):
        for earlier in paths[:i]:
            if same_file(Path(earlier), Path(later)):
                return earlier, later
    return None


def same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file: the same path once links are resolved, or (both there) one file through a
    hard link."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False
