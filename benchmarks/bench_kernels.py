"""Kernel benchmark: ours vs SimPEG choclo, same run (see gempy_gravinv/benchmark.py).

Usage: .venv/bin/python benchmarks/bench_kernels.py [--sizes small,medium] [--repeat 3] [--cuda-large]
"""

import argparse

from gempy_gravinv.benchmark import __doc__ as DOC
from gempy_gravinv.benchmark import add_arguments, report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    for block in report(ap.parse_args(argv)):
        print(block, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
