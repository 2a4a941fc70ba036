"""Guards around outputs: one writer at a time, never over the input, no stale temporaries.

* ``OutputLock``: an advisory ``fcntl.flock`` on a lock file beside (or inside) the output,
  held for the whole command; a second distil process on the same output gets a one-line
  error naming the holder's pid instead of mixing its results in.
* ``check_separate``: an output that is, contains or lies inside its input is refused
  before anything is written (``--overwrite`` could otherwise delete the input).
* ``remove_stale_temporaries``: temporary folders of processes that were killed are
  removed by the next run (their names carry the pid of their writer).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from pathlib import Path

from distil_cli.errors import ConfigError

log = logging.getLogger(__name__)


def lock_path(out: Path) -> Path:
    """A hidden sibling of the output (file or folder): the same path whether or not the output exists yet.

    The path is resolved first (symlinks, ``..``, a relative spelling): two spellings of one output
    take one lock."""
    out = Path(out).expanduser().resolve()
    return out.with_name(f".{out.name}.lock")


class OutputLock:
    """``with OutputLock(out):`` holds an exclusive advisory lock on ``out`` (released on exit or death).

    ``wait=True`` waits for a holder to finish instead of refusing (a cache both processes may fill).
    ``shared=True`` takes a shared lock: many shared holders at once, but no exclusive one (a run
    writing one file of a folder holds the folder's lock shared, so a run over the whole folder is
    refused while it works, and another file's run is not)."""

    def __init__(self, out: Path, what: str = "output", wait: bool = False, shared: bool = False):
        self.out, self.what, self.wait, self.shared = Path(out), what, wait, shared
        self.path = lock_path(self.out)
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no locking
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # the holder may remove the file between our open and our lock: try again
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
                fcntl.flock(fd, mode | (0 if self.wait else fcntl.LOCK_NB))
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise ConfigError(
                    f"{self.out} is in use by another distil process (pid {holder}); "
                    f"wait for it to finish or choose another {self.what}"
                ) from None
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
                self.fd = fd
                return self
            os.close(fd)
        raise ConfigError(f"{self.out}: could not take its lock file {self.path}; try again")

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        if not self.shared:  # another shared holder may still hold this file
            with contextlib.suppress(OSError):
                self.path.unlink()  # before unlocking: a waiting process re-checks the path it locked
        os.close(self.fd)
        self.fd = None


def holder_of(out: Path) -> int | None:
    """The pid holding ``out``'s lock, or None when no live process holds it."""
    path = lock_path(out)
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    else:
        return None  # a lock file nobody holds (left by a killed process)
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def check_separate(source: Path, out: Path, out_flag: str = "--out") -> None:
    """Refuse an output that is the input, contains it or lies inside it (before anything is written)."""
    src, dst = Path(source).resolve(), Path(out).resolve()
    if dst == src:
        raise ConfigError(f"{out_flag} {out} is the input itself; write to another path")
    if dst in src.parents:
        raise ConfigError(f"{out_flag} {out} contains the input {source}; write to another path")
    if src in dst.parents:
        raise ConfigError(f"{out_flag} {out} lies inside the input {source}; write outside it")


def temporary_name(name: str, kind: str = "tmp") -> str:
    """A hidden temporary name that records the writer's pid (see ``remove_stale_temporaries``)."""
    return f".{name}.{kind}-{os.getpid()}"


def remove_stale_temporaries(folder: Path, name: str) -> None:
    """Remove ``.NAME.<kind>-<pid>...`` entries in ``folder`` whose writer is no longer alive."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.[a-z]+-(\d+)")
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if match and not _alive(int(match.group(1))):
            log.info("Removing %s, left by a process that was killed", entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
