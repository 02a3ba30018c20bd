"""A mesh a user would build, past a hundred million sensitivity entries: INR default vs SimPEG.

Usage::

    python benchmarks/large_mesh.py [--shape 70,70,30] [--cell 20] [--stations 35]
                                    [--methods inr:auto,simpeg_l2,simpeg_sparse] [--seed 0]
                                    [--threads 2] [--setup-gib G] [--json F]

The mesh is ``shape`` cubic cells of ``cell`` metres, top at z = 0; ``stations`` x
``stations`` stations on a grid half a cell above it. Two bodies: a +300 kg/m³ box
(6 x 4 x 6 cells, top 4 cells down) and a −250 kg/m³ dike one cell wide dipping 60°
(top 2 cells down, to two thirds of the mesh depth), both placed as fractions of the
mesh, so any shape builds the same geology. Noise σ = 1% of std(g_z) + 0.1% of
max|g_z| (the suite's), seeded by ``--seed``.

Every method runs in this process on the same data (the suite's runner,
``benchmarks/suite.py``): r, RMS error over the constant-mean floor, χ²/N, wall time and
the ratio INR / SimPEG sparse, measured in the same run; the process's peak resident
memory closes the table.

``--setup-gib G``: the INR's closed-form setup plans as if G GiB were free (its design
held densely, streamed in row panels, or refused: ``plan_setup`` in
``gempy_gravinv.inversion._warmstart``), to try the smaller machine's path on this one.
"""

from __future__ import annotations

import argparse
import resource
import sys


def build(shape, cell: float, stations: int, seed: int):
    """The case (a ``SyntheticCase``) for ``shape`` cells of ``cell`` m and ``stations``² stations.

    Built with the suite's own helpers (``gempy_gravinv.cases.suite``): its mesh, bodies and
    noise.
    """
    import numpy as np

    from gempy_gravinv.cases.suite import _box, _case, _mesh, _paint

    nx, ny, nz = shape
    mesh = _mesh(cell, shape, (0.0, 0.0, -cell * nz))
    x0, y0 = 0.3 * nx * cell, 0.5 * ny * cell
    box = _box((x0 - 3 * cell, y0 - 2 * cell, -10 * cell), (x0 + 3 * cell, y0 + 2 * cell, -4 * cell), 300.0)
    dike = {"kind": "dike", "top_x_m": 0.65 * nx * cell, "top_z_m": -2 * cell, "bottom_z_m": -2 / 3 * nz * cell,
            "dip_deg": 60.0, "y_m": [y0 - 0.3 * ny * cell, y0 + 0.3 * ny * cell], "width_m": cell,
            "contrast_kgm3": -250.0}
    model, bodies = _paint(mesh, [box, dike])
    X, Y = np.meshgrid(np.linspace(0.5 * cell, (nx - 0.5) * cell, stations),
                       np.linspace(0.5 * cell, (ny - 0.5) * cell, stations))
    loc = np.c_[X.ravel(), Y.ravel(), np.full(X.size, 0.5 * cell)]
    meta = dict(case="a box and a dike dipping 60 deg", cell_size_m=cell, bodies=bodies)
    return _case("large_mesh", mesh, loc, model, bounds=(-300.0, 300.0), noise_seed=seed, meta=meta)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="70,70,30")
    ap.add_argument("--cell", type=float, default=20.0)
    ap.add_argument("--stations", type=int, default=35)
    ap.add_argument("--methods", default="inr:auto,simpeg_l2,simpeg_sparse")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--setup-gib", type=float, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch

    if args.setup_gib is not None:  # what the setup's plan sees as free memory
        import gempy_gravinv.inversion._problem as problem_module

        problem_module.available_memory = lambda device: int(args.setup_gib * 2**30)

    torch.set_num_threads(args.threads)
    import suite  # the suite's runner (this folder is on sys.path when run as a script)

    shape = tuple(int(v) for v in args.shape.split(","))
    case = build(shape, args.cell, args.stations, args.seed)
    n_entries = case.survey.n_data * case.mesh.n_cells
    print(f"large_mesh: {case.mesh.n_cells} cells x {case.survey.n_data} stations = {n_entries:.3g} "
          f"sensitivity entries; σ = {case.meta['noise_std_mgal']:.3g} mGal", flush=True)
    rows = suite.run_methods(case, args.methods.split(","), args.seed)
    print(f"peak resident memory of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    suite.write_rows(args.json, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
