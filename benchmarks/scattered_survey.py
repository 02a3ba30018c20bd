"""Two blocks under a scattered survey of hundreds to thousands of stations: INR default vs SimPEG.

Usage::

    python benchmarks/scattered_survey.py [--stations 400,3000] [--shape 40,40,20] [--cell 50]
                                          [--height 0.4] [--methods inr:auto,simpeg_l2,simpeg_sparse]
                                          [--seed 0] [--threads 2] [--json F]

A ground survey as a user compiles it: ``stations`` points scattered uniformly at random
(seeded by ``--seed``) over the mesh, one cell inside its sides, ``height`` cells above its
flat top (z = 0). The mesh is ``shape`` cubic cells of ``cell`` metres. Two blocks placed
as fractions of the mesh, so any shape builds the same geology: +300 kg/m³ (0.15 x 0.2 of
the horizontal extent, 0.15–0.35 of the mesh's depth: 150–350 m on the default mesh) and
−250 kg/m³ (0.2 x 0.15, 0.25–0.5 of the depth: 250–500 m). Noise σ = 1% of std(g_z) + 0.1% of max|g_z| (the
suite's), bounds ±450 kg/m³ (1.5 x the largest contrast, the suite's rule).

For each station count every method runs in this process on the same data (the suite's
runner, ``benchmarks/suite.py``): r, RMS error over the constant-mean floor, χ²/N, wall
time and the ratio INR / SimPEG sparse, measured in the same run. The process's peak
resident memory closes the output.
"""

from __future__ import annotations

import argparse
import resource
import sys


def build(stations: int, shape, cell: float, height: float, seed: int):
    """The case (a ``SyntheticCase``) with ``stations`` scattered stations over ``shape`` cells of ``cell`` m.

    Built with the suite's own helpers (``gempy_gravinv.cases.suite``): its mesh, bodies and
    noise; ``height`` in cells above the top.
    """
    import numpy as np

    from gempy_gravinv.cases.suite import _box, _case, _mesh, _paint

    nx, ny, nz = shape
    lx, ly, depth = nx * cell, ny * cell, nz * cell
    mesh = _mesh(cell, shape, (0.0, 0.0, -depth))
    pos = _box((0.275 * lx, 0.3 * ly, -0.35 * depth), (0.425 * lx, 0.5 * ly, -0.15 * depth), 300.0)
    neg = _box((0.6 * lx, 0.525 * ly, -0.5 * depth), (0.8 * lx, 0.675 * ly, -0.25 * depth), -250.0)
    model, bodies = _paint(mesh, [pos, neg])
    rng = np.random.default_rng([seed, stations])
    xy = np.array([cell, cell]) + np.array([lx - 2 * cell, ly - 2 * cell]) * rng.random((stations, 2))
    loc = np.c_[xy, np.full(stations, height * cell)]
    meta = dict(case=f"two blocks under {stations} scattered stations", cell_size_m=cell, bodies=bodies)
    return _case(f"scattered_{stations}", mesh, loc, model, bounds=(-450.0, 450.0), noise_seed=seed, meta=meta)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", default="400,3000", help="station counts, comma-separated")
    ap.add_argument("--shape", default="40,40,20")
    ap.add_argument("--cell", type=float, default=50.0)
    ap.add_argument("--height", type=float, default=0.4, help="station height above the mesh top, in cells")
    ap.add_argument("--methods", default="inr:auto,simpeg_l2,simpeg_sparse")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import suite  # the suite's runner (this folder is on sys.path when run as a script)

    shape = tuple(int(v) for v in args.shape.split(","))
    rows = []
    for n in (int(v) for v in args.stations.split(",")):
        case = build(n, shape, args.cell, args.height, args.seed)
        print(f"{case.name}: {case.mesh.n_cells} cells x {case.survey.n_data} stations; "
              f"σ = {case.meta['noise_std_mgal']:.3g} mGal", flush=True)
        rows += suite.run_methods(case, args.methods.split(","), args.seed, indent="  ")
    print(f"peak resident memory of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    suite.write_rows(args.json, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
