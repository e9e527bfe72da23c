"""Atomic writes: every file or folder is staged as a hidden temporary sibling, then renamed.

The temporary is ``.<stem>.tmp-<pid>-<hex><suffix>`` in the target's directory (same file system,
same suffix so encoders that read the format from the name still do). If anything fails,
KeyboardInterrupt included, the temporary is removed and the error re-raised, so a failure never
leaves a partial or temporary file behind. Only a hard crash can; :func:`remove_stale_temporaries`
removes such leftovers of processes that are gone (this naming only, nothing else).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from zs2_lib.encoders import ENCODERS

PathLike = str | os.PathLike[str]
_TEMP_ATTEMPTS = 100
_TAG_BYTES = 4
_TEMP_NAME = re.compile(rf"\..+\.tmp-(?P<pid>[0-9]+)-[0-9a-f]{{{2 * _TAG_BYTES}}}(\.[A-Za-z0-9]+)?")
"""A temporary's name as :func:`temporary_sibling` makes it (file or folder)."""


def stage(frames: np.ndarray, target: Path, fmt: str, *, fps: float, loop: str, comment: str | None) -> Path:
    """Encode ``frames`` to a new temporary sibling of ``target`` and return it.

    ``frames`` is already the sequence to store (loop mode applied). On any failure the
    temporary is removed and the error re-raised.
    """
    staged = temporary_sibling(target, folder=fmt == "png")
    try:
        ENCODERS[fmt](frames, staged, fmt=fmt, fps=fps, loop=loop, comment=comment)
    except BaseException:
        _remove(staged)
        raise
    return staged


def commit(staged: Path, target: Path) -> None:
    """Move a staged file or folder onto ``target``; remove it if that fails."""
    try:
        if staged.is_dir():
            check_free(target)
            os.rename(staged, target)
        else:
            os.replace(staged, target)
    except BaseException:
        _remove(staged)
        raise


def write_text(path: PathLike, text: str) -> Path:
    """Write a small text file (e.g. a video's infotext) atomically, like the videos; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = temporary_sibling(path, folder=False)
    try:
        staged.write_text(text, encoding="utf-8")
    except BaseException:
        _remove(staged)
        raise
    commit(staged, path)
    return path


def check_free(path: Path) -> None:
    """Raise FileExistsError if ``path`` exists."""
    if path.exists():
        raise FileExistsError(f"{path}: already exists; PNG frames are only written to a new directory")


def temporary_sibling(target: Path, *, folder: bool) -> Path:
    """Create an empty file (or folder) that is a hidden, unused sibling of ``target``.

    The name is ``.<stem>.tmp-<pid>-<hex><suffix>`` (a folder: ``.<name>.tmp-<pid>-<hex>``): hidden,
    in the same directory so the final rename stays on one file system, and with ``target``'s
    suffix so encoders that choose the format from the name still do. It is created exclusively,
    so two writers never share one.
    """
    for _ in range(_TEMP_ATTEMPTS):
        tag = f"tmp-{os.getpid()}-{secrets.token_hex(_TAG_BYTES)}"
        if folder:
            candidate = target.with_name(f".{target.name}.{tag}")
        else:
            candidate = target.with_name(f".{target.stem}.{tag}{target.suffix}")
        try:
            if folder:
                candidate.mkdir()
            else:
                _create_empty_file(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{target}: found no free temporary name after {_TEMP_ATTEMPTS} tries")


def _create_empty_file(path: Path) -> None:
    """Create ``path`` as an empty file, failing if it exists (permissions follow the umask)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _remove(path: Path) -> None:
    """Delete a file or folder tree if it exists, ignoring errors (used while unwinding)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def remove_all(paths: Iterable[Path]) -> None:
    """Delete each of ``paths`` (see :func:`_remove`)."""
    for path in paths:
        _remove(path)


def remove_stale_temporaries(directory: PathLike) -> list[Path]:
    """Delete this module's temporaries in ``directory`` whose process is gone; returns them.

    Only hidden names of the form :func:`temporary_sibling` makes are considered, and only those of a
    process that no longer runs (a crash mid-write): writers that are still running, this process
    included, and every other file are left alone.
    """
    directory = Path(directory)
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    stale = []
    for path in entries:
        match = _TEMP_NAME.fullmatch(path.name)
        if match is None or path.is_symlink() or _process_alive(int(match.group("pid"))):
            continue
        _remove(path)
        stale.append(path)
    return stale


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs now (ours counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except (OverflowError, ValueError, OSError):
        return False  # no process can have this id
    return True
