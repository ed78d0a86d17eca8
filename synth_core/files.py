"""User files, read and written safely: bounded reads of regular files, atomic replacement of outputs.

Why a module of its own: every input the project reads (drawings, SVGs, images, checkpoints) can be
a path to something that is not a file (a directory, a pipe that blocks forever, ``/dev/zero`` that
never ends) or a file far larger than anything sensible; and every output is written through a
temporary file and a rename, which must never rename over something that is not a regular file
(``--out /dev/null`` run as root once replaced the device with a file). Refusals raise
``FileRefused`` (reading) or ``UnwritableTarget`` (writing) with a one-line reason.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

MB = 1 << 20


class FileRefused(ValueError):
    """An input path that is not a readable regular file of a sensible size; the message says why."""


class UnwritableTarget(OSError):
    """An output path that must not be replaced (a directory, a pipe, a device); ``strerror`` says why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(errno.EINVAL, reason, str(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _kind(mode: int) -> str:
    """What a non-regular file is, in words a user recognises."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _size(n: int) -> str:
    return f"{n / MB:.0f} MB" if n >= MB else f"{n} bytes"


def open_regular(path: str | os.PathLike, max_bytes: int, what: str = "file") -> BinaryIO:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes``.

    Opened non-blocking first so that a named pipe cannot stall us before we look at it; the size
    is checked on the open descriptor, so a file swapped in between cannot slip past.
    """
    flags = os.O_RDONLY
    for name in ("O_NONBLOCK", "O_BINARY", "O_CLOEXEC"):  # whichever this platform has
        flags |= getattr(os, name, 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileRefused(f"cannot read {what} {str(path)!r}: it does not exist") from None
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise FileRefused(f"cannot read {what} {str(path)!r}: it is a directory, not a file") from None
        raise FileRefused(f"cannot read {what} {str(path)!r}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"cannot read {what} {str(path)!r}: it is {_kind(st.st_mode)}, "
                              "not a regular file")
        if st.st_size > max_bytes:
            raise FileRefused(f"cannot read {what} {str(path)!r}: it is {_size(st.st_size)}, over the "
                              f"{_size(max_bytes)} limit")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (reads one byte more to catch growth)."""
    with open_regular(path, max_bytes, what) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise FileRefused(f"cannot read {what} {str(path)!r}: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise FileRefused(f"cannot read {what} {str(path)!r}: it is over the {_size(max_bytes)} limit")
    return data


# ---------------------------------------------------------------------------------------------
# Writing
def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (links followed): an output must never be its own input."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # either one missing: not the same
        return False


def _is_null_device(st: os.stat_result) -> bool:
    """``/dev/null`` (or a node of the same device): writing there means "discard", not "replace"."""
    if not stat.S_ISCHR(st.st_mode):
        return False
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(null.st_mode) and st.st_rdev == null.st_rdev


def _existing(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise UnwritableTarget(path, "a parent of it is a file, not a directory") from None
    except OSError as e:  # a symbolic link loop, a name too long, no permission to look
        raise UnwritableTarget(path, e.strerror or str(e)) from None


def check_target(path: str | os.PathLike) -> Path:
    """The real path an output will go to; UnwritableTarget if it exists and is not a regular file.

    Symbolic links are followed (the link stays, its target is written), the null device is
    accepted (output discarded), anything else that is not a regular file is refused, and so is
    a path below something that is not a directory.
    """
    real = Path(os.path.realpath(path))
    st = _existing(real)
    if st is not None:
        if stat.S_ISREG(st.st_mode) or _is_null_device(st):
            return real
        raise UnwritableTarget(path, f"is {_kind(st.st_mode)}, not a regular file: refusing to replace it")
    for parent in real.parents:
        pst = _existing(parent)
        if pst is None:
            continue
        if not stat.S_ISDIR(pst.st_mode):
            raise UnwritableTarget(path, f"{parent} is not a directory")
        break
    return real


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file beside ``path`` and rename it, so readers never see half a file.

    Never renames over anything but a regular file (see ``check_target``); keeps an existing
    file's permissions; leaves no temporary file behind when anything fails.
    """
    path = Path(path)
    real = check_target(path)
    st = _existing(real)
    if st is not None and _is_null_device(st):
        return path
    real.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".part", dir=real.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
        check_target(real)  # still a regular file (or gone) just before the rename
        os.replace(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
