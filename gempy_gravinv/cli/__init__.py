"""Command-line interface: ``gempy-gravinv COMMAND ...``.

Each command lives in its own module ``gempy_gravinv.cli._<name>`` exposing
``add_parser(subparsers)`` and ``run(args) -> int``. Heavy imports stay inside ``run``
so ``gempy-gravinv --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys

#: command name -> module (order = order in --help)
COMMANDS = {
    "demo": "gempy_gravinv.cli._demo",
    "forward": "gempy_gravinv.cli._forward",
    "mesh": "gempy_gravinv.cli._mesh",
    "invert": "gempy_gravinv.cli._invert",
    "reproduce-paper": "gempy_gravinv.cli._reproduce",
    "compare": "gempy_gravinv.cli._compare",
    "bayes": "gempy_gravinv.cli._bayes",
    "bench": "gempy_gravinv.cli._bench",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command."""
    from gempy_gravinv import __version__

    parser = argparse.ArgumentParser(
        prog="gempy-gravinv",
        description="3D gravity inversion (INR, SimPEG comparison, Bayesian GemPy) on fast "
                    "differentiable gravity kernels. Units: metres (z up), kg/m³ density "
                    "contrast, g_z in mGal positive downward.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="show debug messages of the library")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="show only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in COMMANDS.values():
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:  # command not built yet
                continue
            raise
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is at the time of the message."""

    @property
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(level: int) -> None:
    """Send the library's log messages (logger ``gempy_gravinv``) to stderr at ``level``."""
    logger = logging.getLogger("gempy_gravinv")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


#: a comma list of numbers whose first is negative (``-300,0,250``, ``-1.5e2,20``)
_NEGATIVE_LIST = re.compile(r"-[0-9.][0-9.eE+-]*(,\s*[-+]?[0-9.][0-9.eE+-]*)+")


def debug_enabled() -> bool:
    """Whether ``GEMPY_GRAVINV_DEBUG`` asks for tracebacks: only ``1``, ``true`` or ``yes``."""
    import os

    return os.environ.get("GEMPY_GRAVINV_DEBUG", "").strip().lower() in ("1", "true", "yes")


def joined_negative_lists(argv: list[str]) -> list[str]:
    """``--opt -300,0,250`` as ``--opt=-300,0,250``: argparse takes a value that starts with ``-`` for an option.

    Only a comma list of numbers after an option (``--name``, no ``=``) is joined: such a
    token can be no option, and negative unit contrasts and elevations are common.
    """
    out: list[str] = []
    for tok in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_LIST.fullmatch(tok):
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gempy-gravinv`` console script; returns the exit status.

    0 on success; 2 for bad input, an unusable output folder or an unavailable device
    (one line on stderr, no traceback unless ``GEMPY_GRAVINV_DEBUG`` is 1/true/yes);
    130 when interrupted (Ctrl-C).
    """
    parser = build_parser()
    args = parser.parse_args(joined_negative_lists(sys.argv[1:] if argv is None else list(argv)))
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    args._argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    from ._common import EXIT_INTERRUPTED, release_outputs

    rc = None
    try:
        rc = int(args._run(args) or 0)
        return rc
    except KeyboardInterrupt:
        if debug_enabled():
            raise
        more = (": a run stopped before training (its setup) has no checkpoint, run it again; one stopped later "
                "resumes from its last checkpoint with --resume") if args.command == "invert" else ""
        print(f"gempy-gravinv {args.command}: interrupted before a result was kept{more}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        # bad input: one clear line, no traceback (set GEMPY_GRAVINV_DEBUG=1 for it)
        if debug_enabled():
            raise
        print(f"gempy-gravinv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        release_outputs(args, ok=rc == 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
