"""``gempy-gravinv bench``: kernel throughput vs SimPEG (choclo) measured in the same run."""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``bench`` sub-command."""
    from gempy_gravinv.benchmark import add_arguments

    p = sub.add_parser("bench", help="kernel benchmark: ours vs SimPEG choclo, same run",
                       description="Forward/adjoint times and cell-station pairs per second of "
                                   "GravityOperator vs SimPEG Simulation3DIntegral(engine='choclo'), "
                                   "printed with their ratios.")
    add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, printing each size's report as soon as it is measured."""
    from gempy_gravinv.benchmark import report

    for block in report(args):
        print(block, flush=True)
    return 0
