"""What the sub-commands share: the output folder, the device check, an interrupted run.

Not a command. Light at import (argparse only); the output folder guard itself lives in
:mod:`gempy_gravinv.output._folder`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

#: exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it)
EXIT_INTERRUPTED = 130


def with_process_group(run, args: argparse.Namespace) -> int:
    """``run(args)``, then the ``torch.distributed`` process group (if any) shut down.

    On an error the group is left without waiting for the other ranks (they fail on
    their own collective's timeout instead of hanging).
    """
    from gempy_gravinv._distributed import shutdown_distributed

    try:
        rc = run(args)
    except BaseException:
        shutdown_distributed(wait=False)
        raise
    shutdown_distributed()
    return rc


def int_at_least(minimum: int):
    """An argparse ``type``: an integer ``>= minimum``, refused with the option's name otherwise.

    Parameters
    ----------
    minimum : int
        The smallest value allowed (0 for seeds, 1 for counts and threads).
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def add_overwrite_argument(p: argparse.ArgumentParser) -> None:
    """Add ``--overwrite`` (replace this program's files in a non-empty output folder)."""
    p.add_argument("--overwrite", action="store_true",
                   help="use a non-empty output folder, removing the files this program wrote there "
                        "(model files, metrics.json, history.json, figures, checkpoint/); other files are kept")


def add_prior_argument(p: argparse.ArgumentParser, scope: str = "") -> None:
    """Add ``--prior data|compact|smooth`` (the INR default's prior: from the data, or set by the user)."""
    p.add_argument("--prior", default=None, choices=["data", "compact", "smooth"],
                   help=f"the prior of the INR default{scope}: chosen from the data (default), or set: compact "
                        "(bodies in a quiet background) or smooth (a distributed Matérn field); every other scale "
                        "is still derived from the problem")


def prior_overrides(args: argparse.Namespace) -> dict:
    """The INRConfig overrides of ``--prior`` (with the settings a set prior implies); empty for ``data``."""
    from gempy_gravinv.inversion._config_checks import implied_overrides

    return {} if args.prior in (None, "data") else implied_overrides({"prior": args.prior})


def hold_output(args: argparse.Namespace, written, *, resume: bool = False) -> Path:
    """Prepare ``args.output`` as this run's folder (refuse, overwrite, lock); its path.

    The folder stays locked until :func:`release_outputs` (called by
    :func:`gempy_gravinv.cli.main` when the command returns, fails or is interrupted).

    Parameters
    ----------
    args : argparse.Namespace
        Reads ``output`` and ``overwrite``.
    written : iterable of str
        Glob patterns of the files this command writes (``--overwrite`` removes those).
    resume : bool
        The run continues an earlier one there (a non-empty folder is accepted).

    Returns
    -------
    pathlib.Path
    """
    from ..output import prepare_run_folder

    folder = prepare_run_folder(args.output, written=written, overwrite=bool(getattr(args, "overwrite", False)),
                                resume=resume)
    held = getattr(args, "_folders", None)
    if held is None:
        held = []
        args._folders = held
    held.append(folder)
    if folder.removed:
        print(f"--overwrite: set aside {len(folder.removed)} file(s) of an earlier run in {folder.path}/ (removed "
              "when this run ends well, put back if it fails)", flush=True)
    return folder.path


def release_outputs(args: argparse.Namespace, ok: bool = True) -> None:
    """Unlock the folders :func:`hold_output` took for ``args``.

    ``ok``: the command ended well, so the earlier run's files ``--overwrite`` set aside
    are removed; otherwise they are put back (:meth:`gempy_gravinv.output.RunFolder.release`).
    """
    for folder in getattr(args, "_folders", None) or []:
        folder.release(ok=ok)
    args._folders = []


def check_device(value: str, option: str = "--device") -> str:
    """``value`` if it names a device this machine has; a ``ValueError`` naming ``option`` otherwise."""
    from .._operator import resolve_device

    try:
        resolve_device(value)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ValueError(f"{option} {value!r}: {exc}") from None
    return value


def resume_command(args: argparse.Namespace) -> str:
    """The command line that resumes this run: the same arguments with ``--resume``."""
    argv = [a for a in getattr(args, "_argv", None) or [] if a != "--overwrite"]
    if "--resume" not in argv:
        argv.append("--resume")
    return shlex.join(["gempy-gravinv", *argv])


#: The outputs without which the run is lost: where one of them fails the command exits with status 1.
ESSENTIAL_OUTPUTS = {"netcdf": "the model NetCDF ({}_model.nc)", "ubc": "the UBC model ({}_model.den)",
                     "data_csv": "the data CSV ({}_data.csv)"}


def count_written(written: dict, out, command: str, name: str = "inr") -> tuple[str, str | None]:
    """What ``save_inversion`` wrote, said in words, and the error line where an essential output failed.

    Parameters
    ----------
    written : dict
        ``{kind: path or "failed: <reason>"}`` (:func:`gempy_gravinv.output.save_inversion`).
    out : path-like
        The output folder.
    command : str
        The sub-command, for the error line.
    name : str
        The file-name prefix of the model files.

    Returns
    -------
    said : str
        ``"wrote N outputs into OUT/"``, N counting only the outputs written, and the
        kinds that failed.
    error : str or None
        ``"gempy-gravinv COMMAND: error: could not write ..."`` naming each of
        :data:`ESSENTIAL_OUTPUTS` that failed and why; None when they were all written.
    """
    failed = {k: str(v)[len("failed:"):].strip() for k, v in written.items() if str(v).startswith("failed:")}
    said = f"wrote {len(written) - len(failed)} outputs into {out}/"
    if failed:
        said += f" ({len(failed)} could not be written: {', '.join(failed)})"
    lost = [f"{what.format(name)}: {failed[k]}" for k, what in ESSENTIAL_OUTPUTS.items() if k in failed]
    return said, (f"gempy-gravinv {command}: error: could not write {'; '.join(lost)}" if lost else None)


def finish_interrupted(args: argparse.Namespace, exc, out: Path, *, figures: bool, name: str = "inr") -> int:
    """Write the kept state of an interrupted inversion, say how to resume; the exit status (130).

    Parameters
    ----------
    args : argparse.Namespace
        The command's options (for the resume command line).
    exc : gempy_gravinv.inversion.InversionInterrupted
        Carries ``result`` (the kept state so far) and ``checkpoint``.
    out : pathlib.Path
        Output folder.
    figures : bool
        Draw the figures too.
    name : str
        File-name prefix of the model files.
    """
    from ..output import save_inversion

    res = exc.result
    written = save_inversion(res, out, figures=figures, name=name)
    said, error = count_written(written, out, args.command, name)
    print(f"gempy-gravinv {args.command}: interrupted after {res.timings.get('steps')} steps; the best state so far "
          f"(chi2/N = {res.chi2:.3f}, marked interrupted): {said}; resume with: {resume_command(args)}",
          file=sys.stderr, flush=True)
    if error is not None:
        print(error, file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def add_active_arguments(p) -> None:
    """Add ``--topography`` / ``--active-model`` (the cells that carry density) to a sub-command."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--topography", metavar="FILE",
                   help="ground points x, y, z (m, z up; CSV, text or UBC topo file): only cells below "
                        "the ground carry density (discretize's active_from_xyz)")
    g.add_argument("--active-model", metavar="FILE",
                   help="UBC model file on MESH: cells with a non-zero value carry density")


def active_cells(args, dmesh, locations=None):
    """The active-cell mask of ``--topography`` / ``--active-model`` on a discretize mesh, or None.

    A topography is checked against the mesh and the stations ``locations`` (m, (n, 3))
    first (:func:`gempy_gravinv.check_topography`).
    """
    import numpy as np

    from gempy_gravinv import active_from_topography, check_topography
    from gempy_gravinv.io import read_topography, read_ubc_model

    if getattr(args, "topography", None):
        topo = read_topography(args.topography)
        check_topography(dmesh, topo, locations)
        return active_from_topography(dmesh, topo, locations)
    if getattr(args, "active_model", None):
        values = np.asarray(read_ubc_model(args.active_model, dmesh), dtype=float)
        mask = np.isfinite(values) & (values != 0)
        if not mask.any():
            raise ValueError(f"{args.active_model}: no active cell (every value is 0 or no-data)")
        return mask
    return None


def csv_floats(v, option: str) -> list[float] | None:
    """``"a,b,c"`` (or a sequence) as a list of floats; ``None`` for ``None`` or ``""``.

    Parameters
    ----------
    v : str, sequence of numbers or None
        The option's value.
    option : str
        The option's name, for the error (e.g. ``"--unit-densities"``).

    Raises
    ------
    ValueError
        A value that is not a number, naming ``option``.
    """
    if v is None or v == "":
        return None
    if isinstance(v, str):
        try:
            return [float(t) for t in v.replace(" ", "").split(",") if t]
        except ValueError:
            raise ValueError(f"{option} {v!r}: comma-separated numbers expected") from None
    import numpy as np

    return [float(t) for t in np.atleast_1d(v)]
