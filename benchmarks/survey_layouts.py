"""One block under four surveys that cover part of the mesh: INR default vs SimPEG.

Usage::

    python benchmarks/survey_layouts.py [--layouts profile,two_profiles,few,corner]
                                        [--methods inr:auto,inr:auto+prior='compact',simpeg_l2,simpeg_sparse]
                                        [--seed 0] [--threads 2] [--json F]

The mesh is 40 x 40 x 20 cubic cells of 25 m (1 km x 1 km x 500 m), top at z = 0. One
+300 kg/m³ block, 200 x 200 m, from 100 to 250 m down, centred at (500, 500). The
stations are 10 m above the top, in one of four layouts:

- ``profile``: 60 stations on one line through the block (y = 500 m);
- ``two_profiles``: two crossing lines of 40 stations, at y = 450 m and x = 500 m;
- ``few``: 8 stations scattered over the block's 400 m x 400 m neighbourhood;
- ``corner``: a grid of 15 x 15 stations over the quarter x, y < 450 m, beside the block.

Noise σ = 1% of std(g_z) + 0.1% of max|g_z| (the suite's), seeded by ``--seed``; bounds
±450 kg/m³ (1.5 x the contrast, the suite's rule). Every method
runs in this process on the same data (the suite's runner, ``benchmarks/suite.py``): r,
RMS error over the constant-mean floor, χ²/N and wall time, measured in the same run.
``inr:auto+prior='compact'`` is the default with the compact prior set, to show what
the prior's choice costs where the data are too few to make it.
"""

from __future__ import annotations

import argparse
import sys

LAYOUTS = ("profile", "two_profiles", "few", "corner")


def stations(layout: str, seed: int):
    """Station locations (n, 3) m of ``layout``, 10 m above the mesh top."""
    import numpy as np

    if layout == "profile":
        x = np.linspace(50.0, 950.0, 60)
        xy = np.c_[x, np.full_like(x, 500.0)]
    elif layout == "two_profiles":
        x = np.linspace(50.0, 950.0, 40)
        xy = np.unique(np.r_[np.c_[x, np.full_like(x, 450.0)], np.c_[np.full_like(x, 500.0), x]], axis=0)
    elif layout == "few":
        rng = np.random.default_rng([seed, 8])
        xy = rng.uniform(300.0, 700.0, (8, 2))
    elif layout == "corner":
        g = np.linspace(50.0, 450.0, 15)
        xx, yy = np.meshgrid(g, g)
        xy = np.c_[xx.ravel(), yy.ravel()]
    else:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    return np.c_[xy, np.full(len(xy), 10.0)]


def build(layout: str, seed: int):
    """The case (a ``SyntheticCase``) of one block under ``layout``, noise seeded by ``seed``."""
    from gempy_gravinv.cases.suite import _box, _case, _mesh, _paint

    mesh = _mesh(25.0, (40, 40, 20), (0.0, 0.0, -500.0))
    model, bodies = _paint(mesh, [_box((400.0, 400.0, -250.0), (600.0, 600.0, -100.0), 300.0)])
    return _case(f"layout_{layout}", mesh, stations(layout, seed), model, bounds=(-450.0, 450.0), noise_seed=seed,
                 meta=dict(case=f"one block under {layout}", cell_size_m=25.0, bodies=bodies))


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layouts", default=",".join(LAYOUTS))
    ap.add_argument("--methods", default="inr:auto,inr:auto+prior='compact',simpeg_l2,simpeg_sparse")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    import suite  # the suite's runner (this folder is on sys.path when run as a script)

    rows = []
    for layout in args.layouts.split(","):
        case = build(layout.strip(), args.seed)
        print(f"{case.name}: {case.survey.n_data} stations over {case.mesh.n_cells} cells", flush=True)
        rows += suite.run_methods(case, args.methods.split(","), args.seed, indent="  ")
    suite.write_rows(args.json, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
