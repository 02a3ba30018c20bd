"""Tharsis (IGME Bouguer stations): INR and SimPEG inversions of real data, side by side.

Data choices (stated in the report, see :mod:`gempy_gravinv.cases.tharsis`): no elevations, so
the stations lie on a flat surface 1 m above the mesh top (z = 0); a least-squares planar
regional is removed; std = 0.5 mGal + 2% of |residual|; the mesh has 1 km core cells
(500 m vertically, 3 km deep) with padding (``--quick``: 2 km cells, fewer steps).

    python examples/tharsis_compare.py --out results/tharsis [--quick]

Data source: © CN Instituto Geológico y Minero de España (IGME).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/tharsis")
    ap.add_argument("--quick", action="store_true", help="coarse mesh, few steps (smoke test)")
    ap.add_argument("--methods", nargs="+", default=["inr", "inr_paper", "simpeg_l2", "simpeg_sparse"])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")

    from gempy_gravinv import compare
    from gempy_gravinv.cases import tharsis

    comp = compare.run_case("tharsis", args.out, quick=args.quick, methods=args.methods, device=args.device)
    print((Path(args.out) / "comparison.md").read_text())
    print(tharsis.attribution())
    return comp


if __name__ == "__main__":
    main()
