"""Run SimPEG's own gravity tests with our ``Simulation3DIntegral`` swapped in.

SimPEG's wheels do not ship its tests: give this script a SimPEG source tree at the
installed version (``git clone --depth 1 --branch v0.25.2 https://github.com/simpeg/simpeg``)
with ``--simpeg-src`` (or ``SIMPEG_SRC``). It copies the chosen test files to a
temporary folder, adds a ``conftest.py`` that replaces
``simpeg.potential_fields.gravity.Simulation3DIntegral`` (and the module attribute of
``gravity.simulation``) with :class:`gempy_gravinv.simpeg.Simulation3DIntegral`, runs
pytest there and prints the pass / fail / xfail counts per file.

What the swap covers: every ``gravity.Simulation3DIntegral(...)`` and
``gravity.simulation.Simulation3DIntegral(...)`` those files build (all engines: ours
runs whatever ``engine`` says). SimPEG's ``SimulationEquivalentSourceLayer`` stays
SimPEG's (the equivalent-source tests compare it with our 3-D simulation), and the
tests of SimPEG's module-level helpers (``_get_conversion_factor``) still test SimPEG.

Usage::

    python benchmarks/simpeg_upstream_tests.py --simpeg-src ~/src/simpeg
    python benchmarks/simpeg_upstream_tests.py --simpeg-src ~/src/simpeg --files tests/pf/test_forward_Grav_Linear.py
    python benchmarks/simpeg_upstream_tests.py --simpeg-src ~/src/simpeg --reference   # SimPEG's own class

Exit status 0 when no test fails (xfail cases are SimPEG's own expected failures).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FILES = (
    "tests/pf/test_forward_Grav_Linear.py",
    "tests/pf/test_grav_inversion_linear.py",
    "tests/pf/test_equivalent_sources.py",
    "tests/meta/test_meta_sim.py",
    "tests/meta/test_multiprocessing_sim.py",
    "tests/meta/test_dask_meta.py",
)
CONFTEST = '''
import simpeg.potential_fields.gravity as _gravity
import simpeg.potential_fields.gravity.simulation as _gravity_simulation

from gempy_gravinv.simpeg import Simulation3DIntegral as _Ours

_gravity.Simulation3DIntegral = _Ours
_gravity_simulation.Simulation3DIntegral = _Ours


def pytest_report_header(config):
    return "gravity.Simulation3DIntegral -> gempy_gravinv.simpeg.Simulation3DIntegral"
'''


def _counts(text: str) -> dict[str, int]:
    """pytest's summary line as counts."""
    line = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|error|xfailed|skipped)", ln)]
    out: dict[str, int] = {}
    if line:
        for n, what in re.findall(r"(\d+) (passed|failed|errors?|xfailed|xpassed|skipped|deselected)", line[-1]):
            out[what.rstrip("s") if what.startswith("error") else what] = int(n)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--simpeg-src", default=os.environ.get("SIMPEG_SRC"),
                   help="SimPEG source tree at the installed version (holds tests/pf, tests/meta)")
    p.add_argument("--files", nargs="*", default=list(FILES), help="test files, relative to --simpeg-src")
    p.add_argument("--reference", action="store_true", help="run them on SimPEG's own class (no swap)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per file")
    p.add_argument("-x", "--extra", nargs=argparse.REMAINDER, default=[], help="more pytest arguments")
    args = p.parse_args(argv)
    if not args.simpeg_src:
        p.error("give --simpeg-src (or SIMPEG_SRC): a SimPEG checkout at the installed version, e.g.\n"
                "  git clone --depth 1 --branch v0.25.2 https://github.com/simpeg/simpeg")
    src = Path(args.simpeg_src).expanduser()
    import simpeg

    print(f"SimPEG {simpeg.__version__} installed; tests from {src}; "
          f"{'SimPEG reference' if args.reference else 'our class swapped in'}")
    total: dict[str, int] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="simpeg_upstream_") as tmp:
        root = Path(tmp)
        (root / "conftest.py").write_text("" if args.reference else CONFTEST)
        for rel in args.files:
            f = src / rel
            if not f.is_file():
                print(f"{rel}: not found under {src}")
                failed = True
                continue
            dest = root / rel.replace("/", "__")
            shutil.copy(f, dest)
            cmd = [sys.executable, "-m", "pytest", str(dest), "-q", "-p", "no:cacheprovider", "-rfE",
                   "--rootdir", str(root), *args.extra]
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=root)
                text = res.stdout + res.stderr
            except subprocess.TimeoutExpired as exc:
                text = f"TIMEOUT after {args.timeout} s\n{exc.stdout or ''}"
                res = None
            c = _counts(text)
            for k, v in c.items():
                total[k] = total.get(k, 0) + v
            bad = res is None or res.returncode not in (0, 5)
            failed |= bad
            print(f"{rel}: " + ", ".join(f"{v} {k}" for k, v in c.items()) + ("  <-- FAILURES" if bad else ""))
            if bad:
                fails = [ln for ln in text.splitlines() if ln.startswith(("FAILED", "ERROR", "TIMEOUT"))]
                print("\n".join("    " + ln for ln in fails[:40]) or text[-3000:])
    print("total: " + ", ".join(f"{v} {k}" for k, v in sorted(total.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
