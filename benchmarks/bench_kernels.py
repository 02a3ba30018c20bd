"""Kernel benchmark: ours vs SimPEG choclo, same run (see gempy_gravinv/benchmark.py).

Usage: .venv/bin/python benchmarks/bench_kernels.py [--sizes small,medium] [--repeat 3] [--cuda-large]
"""

from gempy_gravinv.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
