"""Output folders of a run: refuse to mix runs, check writability, lock, overwrite only ours.

:func:`prepare_run_folder` is what every command that writes a folder calls before any
work: it refuses an existing file, an unwritable place and a non-empty folder (unless the
run overwrites or resumes), takes a lock file so that two runs cannot write into the same
folder, and with ``overwrite`` sets aside only the files this program writes there (the
glob patterns below), never anything else: they are removed when the run ends well and
put back when it fails before writing its own, so a run that fails never costs the
earlier one's results. :func:`check_name` guards the file-name stems that go into paths.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from .._validation import check_plain_name

logger = logging.getLogger(__name__)

#: the lock file of a folder in use (holds the PID and host of the run)
LOCK_NAME = ".gempy_gravinv.lock"
#: where ``overwrite`` sets an earlier run's files aside until this run ends
ASIDE_NAME = ".gempy_gravinv.previous"

#: what an inversion writes into its folder (glob patterns relative to the folder)
INVERSION_FILES = (
    "*_model.nc", "*_model.vtr", "*_model.vtu", "*_model.vtk", "*_model.den", "*_data.csv", "*_data.nc",
    "metrics.json", "history.json", "*_metrics.json", "*_history.json", "checkpoint/inr_member*.pt",
    "checkpoint/*.pt.tmp",
    "*_sections.png", "*_data_maps.png", "*_convergence.png", "*_std.png",
    # GemPy backends (geology, hybrid)
    "*_components.npz", "*_components.vtr", "*_components.vtu", "*_components.png", "*_geology.json",
    "*_grid.vti", "*_3d.png", "*_3d_residual.png",
)
#: what ``compare`` writes
COMPARE_FILES = ("comparison.md", "comparison.csv", "comparison.json", "models.npz", "models/*.mod",
                 "sections.png", "data_*.png", "station_cv.md", "station_cv.json")
#: what ``reproduce-paper`` writes (one inversion folder per run, and the summary)
REPRODUCE_FILES = ("metrics.json",) + tuple(f"{run}/{p}" for run in ("dipping_block_*", "smooth_grf_*")
                                              for p in INVERSION_FILES)
#: what ``bayes`` writes
BAYES_FILES = ("posterior.nc", "summary.json", "summary.csv", "figures/*.png")

#: a lock file that cannot be read is taken as held for this long (a run writing it now)
_YOUNG_LOCK_S = 10.0


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is a plain file-name stem (:func:`gempy_gravinv._validation.check_plain_name`)."""
    return check_plain_name(name, name=what)


class RunFolder:
    """An output folder held by this run (from :func:`prepare_run_folder`).

    A context manager: leaving it (or :meth:`release`) removes the lock file, and the
    folder itself when this run created it and left it empty. The files ``overwrite``
    set aside are removed when the run ended well (leaving without an exception,
    ``release(ok=True)``) and put back when it failed.

    Attributes
    ----------
    path : pathlib.Path
        The folder.
    created : bool
        This run created the folder.
    removed : list of str
        Files of an earlier run that ``overwrite`` set aside (relative to the folder).
    """

    def __init__(self, path: Path, created: bool, written: Iterable[str] = ()) -> None:
        self.path = path
        self.created = created
        self.removed: list[str] = []
        self.written = tuple(written)  # the glob patterns of what this run writes
        self._lock: Path | None = None

    @property
    def lock_path(self) -> Path:
        """The lock file."""
        return self.path / LOCK_NAME

    def _acquire(self) -> None:
        lock = self.lock_path
        for attempt in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _lock_holder(lock)
                if holder is not None or attempt:
                    pid = f"PID {holder}" if holder else "another process"
                    raise ValueError(f"output folder {self.path} is in use by another gempy-gravinv run "
                                     f"({pid}; lock file {lock}); wait for it to finish or choose another "
                                     "folder (if no run is using it, delete the lock file)") from None
                logger.warning("taking over the stale lock %s (its process is gone)", lock)
                try:
                    lock.unlink()
                except FileNotFoundError:
                    pass
                continue
            except OSError as exc:
                raise ValueError(f"output folder {self.path} is not writable ({exc.strerror})") from None
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n{socket.gethostname()}\n")
            self._lock = lock
            return

    @property
    def aside_path(self) -> Path:
        """Where ``overwrite`` keeps the earlier run's files until this run ends."""
        return self.path / ASIDE_NAME

    def release(self, ok: bool = True) -> None:
        """End this run's hold on the folder.

        Parameters
        ----------
        ok : bool
            The run ended well: the earlier run's files set aside by ``overwrite`` are
            removed. Otherwise they are put back where this run wrote none of its own
            files; where it did, both are kept (the earlier ones under
            :data:`ASIDE_NAME`) and a warning says so. Then the lock is removed (if still
            ours), an empty ``checkpoint`` folder, and the folder if this run created it and
            left it empty.
        """
        if self.removed and self.aside_path.is_dir():
            _settle_aside(self, ok)
        lock, self._lock = self._lock, None
        if lock is not None:
            try:
                if _read_lock(lock)[0] == os.getpid():
                    lock.unlink()
            except OSError:
                pass
        ck = self.path / "checkpoint"  # a run stopped before its first checkpoint leaves it empty
        try:
            if ck.is_dir() and not any(ck.iterdir()):
                ck.rmdir()
        except OSError:
            pass
        if self.created:
            try:
                self.path.rmdir()  # only if empty
            except OSError:
                pass

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.release(ok=exc_type is None)


def _settle_aside(folder: RunFolder, ok: bool) -> None:
    """Remove (``ok``) or put back the earlier run's files ``overwrite`` set aside."""
    import shutil

    aside = folder.aside_path
    if ok:
        shutil.rmtree(aside, ignore_errors=True)
        logger.info("--overwrite: removed %d file(s) of an earlier run in %s", len(folder.removed), folder.path)
        return
    if _matches(folder.path, folder.written):  # this run wrote files of its own: keep both
        logger.warning("this run failed after writing files into %s; the %d file(s) of the earlier run it was to "
                       "replace are kept in %s", folder.path, len(folder.removed), aside)
        return
    for rel in folder.removed:
        src, dst = aside / rel, folder.path / rel
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        except OSError as exc:
            logger.warning("could not put %s back (%s): the earlier run's files are kept in %s", rel, exc.strerror,
                           aside)
            return
    shutil.rmtree(aside, ignore_errors=True)
    logger.info("this run failed: the %d file(s) of the earlier run in %s are back", len(folder.removed), folder.path)


def _read_lock(lock: Path) -> tuple[int | None, str]:
    """(PID, host) written in a lock file; PID None when unreadable."""
    try:
        lines = lock.read_text(encoding="utf-8").split("\n")
        return int(lines[0]), (lines[1].strip() if len(lines) > 1 else "")
    except (OSError, ValueError, IndexError):
        return None, ""


def _lock_holder(lock: Path) -> int | str | None:
    """The PID holding ``lock`` (``"unknown"`` if it cannot be told), None if stale."""
    pid, host = _read_lock(lock)
    if pid is None:
        try:
            young = time.time() - lock.stat().st_mtime < _YOUNG_LOCK_S
        except OSError:
            return None  # removed meanwhile
        return "unknown" if young else None
    if host and host != socket.gethostname():
        return pid  # another machine's process: cannot be checked, taken as alive
    if pid == os.getpid():
        return pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        return pid
    except OSError:
        return pid
    return pid


def _matches(folder: Path, patterns: Iterable[str]) -> list[Path]:
    """Files (not folders) under ``folder`` matching the glob ``patterns``."""
    found: dict[Path, None] = {}
    for pat in patterns:
        for p in sorted(folder.glob(pat)):
            if p.is_file() or p.is_symlink():
                found[p] = None
    return list(found)


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in (LOCK_NAME, ASIDE_NAME))


def _holds_checkpoint(folder: Path) -> bool:
    """Whether ``folder/checkpoint`` exists and holds anything (an empty one is no checkpoint)."""
    ck = folder / "checkpoint"
    return ck.is_dir() and any(ck.iterdir())


def prepare_run_folder(path, *, written: Iterable[str] = INVERSION_FILES, overwrite: bool = False,
                       resume: bool = False) -> RunFolder:
    """Make ``path`` this run's output folder, or refuse with a clear ``ValueError``.

    Before any work: ``path`` must not be a file; the folder is created if missing and
    must be writable; a lock file (created with ``O_EXCL``, holding the PID) refuses a
    second run on the same folder (a lock whose process is gone is taken over); a folder
    holding anything is refused unless ``resume`` (continue a run there) or ``overwrite``
    (set the files matching ``written`` aside first: only what this program writes,
    never other files; they are removed when the run ends well and put back when it
    fails, :meth:`RunFolder.release`).

    Parameters
    ----------
    path : str or path-like
        The output folder.
    written : iterable of str
        Glob patterns (relative to the folder) of the files this command writes, e.g.
        :data:`INVERSION_FILES`.
    overwrite : bool
        Set those files aside first.
    resume : bool
        Accept a non-empty folder as it is (a run continues there).

    Returns
    -------
    RunFolder
        Holds the lock until released (use it as a context manager).

    Raises
    ------
    ValueError
        ``overwrite`` and ``resume`` together; ``path`` is a file or lies under a file;
        the folder cannot be created or written; it is in use by another run; it is not
        empty (and neither ``overwrite`` nor ``resume``).
    """
    if overwrite and resume:
        raise ValueError("give --overwrite or --resume, not both (overwrite removes the checkpoint a resume needs)")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"output {p} is an existing file, not a folder; choose a folder")
    created = False
    if not p.exists():
        try:
            p.mkdir(parents=True)
            created = True
        except FileExistsError:
            if not p.is_dir():
                raise ValueError(f"output {p} is an existing file, not a folder; choose a folder") from None
        except NotADirectoryError:
            raise ValueError(f"cannot create output folder {p}: a part of the path is a file") from None
        except OSError as exc:
            raise ValueError(f"cannot create output folder {p} ({exc.strerror})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise ValueError(f"output folder {p} is not writable")
    folder = RunFolder(p, created, written)
    folder._acquire()
    try:
        _probe(p)
        entries = _entries(p)
        if (p / ASIDE_NAME).exists():
            kept = (f"output folder {p} holds {ASIDE_NAME}, the files of an earlier run that a failed --overwrite "
                    "kept")
            if overwrite:  # a second set of files would mix with them
                raise ValueError(f"{kept}: move what you need out of it and delete it, or choose another folder")
            logger.warning("%s; they stay there until you move or delete them", kept)
        if entries and overwrite:
            _set_aside(folder, written)
            entries = _entries(p)
            if entries:
                logger.info("--overwrite kept %d entr%s this program did not write in %s: %s", len(entries),
                            "y" if len(entries) == 1 else "ies", p, ", ".join(entries[:5]))
        elif entries and not resume:
            hint = ("it holds a checkpoint: pass --resume to continue that run, --overwrite to start again"
                    if _holds_checkpoint(p) else
                    "pass --overwrite to replace the files this program wrote there")
            raise ValueError(f"output folder {p} is not empty ({len(entries)} entries: "
                             f"{', '.join(entries[:4])}{', ...' if len(entries) > 4 else ''}); {hint}, "
                             "or choose another folder")
        if resume and not _holds_checkpoint(p):
            logger.warning("resume: %s holds no checkpoint (the run stopped before its first one, or never ran "
                           "there); this run starts from the beginning", p)
    except BaseException:
        folder.release(ok=False)
        raise
    return folder


def _probe(folder: Path) -> None:
    """Write and remove a small file: ``os.access`` cannot see read-only mounts and some ACLs."""
    probe = folder / f".gempy_gravinv.probe.{os.getpid()}"
    try:
        with open(probe, "w") as f:
            f.write("")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"output folder {folder} is not writable ({exc.strerror or errno.errorcode.get(exc.errno)})"
                         ) from None


def _set_aside(folder: RunFolder, written: Iterable[str]) -> None:
    """Move the files matching ``written`` under :attr:`RunFolder.aside_path`.

    Each moved file's relative path goes into ``folder.removed`` as it is moved (so a
    failure part-way puts back what had moved); folders they leave empty are removed.
    """
    root, aside = folder.path, folder.aside_path
    moved = folder.removed
    parents = set()
    for f in _matches(root, written):
        rel = f.relative_to(root)
        try:
            (aside / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, aside / rel)
        except OSError as exc:
            raise ValueError(f"--overwrite: cannot move {f} aside ({exc.strerror})") from None
        moved.append(str(rel))
        parents.update(q for q in f.parents if q != root and root in q.parents)
    for d in sorted(parents, key=lambda q: len(q.parts), reverse=True):
        try:
            d.rmdir()
        except OSError:
            pass
