"""The suite's cases inverted on their own mesh and on the mesh designed from their stations.

Usage::

    python benchmarks/designed_mesh.py [--cases deep_body,two_bodies,...] [--methods inr,simpeg_l2,simpeg_sparse]
                                       [--cell-factor 1.0] [--no-padding] [--threads 1] [--json F]

For each case of ``gempy_gravinv.cases.suite`` or random geometry ``random_S`` (of
``gempy_gravinv.cases.random_cases``; noise seed 0), every method inverts the
same data twice: on the case's own mesh (the mesh its true model was painted on) and on
``gempy_gravinv.mesh_from_survey(survey, ...)`` given the ground as a user knows it: the
tops of the case's active cell columns under topography, else the flat mesh top
(``ground_elevation``). ``--cell-factor F`` multiplies the designed cell size (0.5:
half the station spacing); ``--no-padding`` designs the meshes without padding cells.
The model on the designed mesh is read at the true model's cell centres (the designed
cell holding each), so both rows are scored on the same cells: r against the true
model, χ²/N and wall time, measured in the same run. The designed mesh's cells need not
follow the true bodies' edges, which the case's own mesh does, and it may add a margin
and padding the case's mesh lacks; the table shows what each method makes of that.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch

DEFAULT_CASES = "deep_body,two_bodies,tutorial_topo,coarse_1km,station_height_3"


def _ground(mesh) -> np.ndarray | None:
    """The tops of a mesh's active cell columns as ground points (n, 3), or None with every cell active."""
    act = mesh.active_cells
    if act is None or act.all():
        return None
    dm = mesh.source
    top = dm.cell_centers[:, 2] + np.asarray(dm.h_gridded)[:, 2] / 2
    key = np.round(dm.cell_centers[:, :2], 6)
    cols: dict = {}
    for (x, y), t in zip(map(tuple, key[act]), top[act]):
        cols[(x, y)] = max(cols.get((x, y), -np.inf), t)
    return np.array([[x, y, t] for (x, y), t in cols.items()])


def _at(model, mesh, points) -> np.ndarray:
    """A model on ``mesh``'s active cells read at ``points`` (the cell holding each; 0 in inactive cells)."""
    dm = mesh.source
    full = np.zeros(dm.n_cells)
    full[np.ones(dm.n_cells, bool) if mesh.active_cells is None else mesh.active_cells] = model
    return full[np.asarray(dm.point2index(points), dtype=int)]


def _run(method: str, case, mesh) -> tuple[np.ndarray, float]:
    """(model kg/m³ on the mesh's active cells, χ²/N) of one method."""
    import gempy_gravinv as gg

    if method == "inr":
        res = gg.invert_inr(case.survey, mesh, gg.INRConfig.auto(bounds=case.bounds, progress=False))
        return np.asarray(res.model, float), float(res.chi2)
    from gempy_gravinv.simpeg import run_inversion

    res = run_inversion(case.survey, mesh, kind="l2" if method == "simpeg_l2" else "sparse", reference=0.0,
                        bounds=case.bounds, active_cells=mesh.active_cells, seed=0)
    r = (res.gz_pred - case.survey.gz) / case.survey.std
    return np.asarray(res.model, float), float(np.mean(r ** 2))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--methods", default="inr,simpeg_l2,simpeg_sparse")
    ap.add_argument("--cell-factor", type=float, default=1.0)
    ap.add_argument("--no-padding", action="store_true", help="design the meshes without padding cells")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    import gempy_gravinv as gg
    from gempy_gravinv.cases.random_cases import random_by_name
    from gempy_gravinv.cases.suite import build_case
    from gempy_gravinv.metrics import pearson_r

    rows = []
    print(f"{'case':<18}{'method':<15}{'own r':>8}{'s':>7}{'designed r':>12}{'s':>7}{'cells own / designed':>24}")
    for name in args.cases.split(","):
        case = random_by_name(name, noise_seed=0) or build_case(name, noise_seed=0)
        ground = _ground(case.mesh)  # a flat mesh: its top is the ground, as the user knows it
        flat = None if ground is not None else float(case.mesh.source.nodes[:, 2].max())
        probe = gg.mesh_from_survey(case.survey, topography=ground, ground_elevation=flat)[1]
        designed, design = gg.mesh_from_survey(case.survey, topography=ground, ground_elevation=flat,
                                               cell_size=probe.cell_size * args.cell_factor,
                                               padding=not args.no_padding)
        for method in args.methods.split(","):
            row = {"case": name, "method": method, "design": design.to_dict()}
            for label, mesh in (("own", case.mesh), ("designed", designed)):
                np.random.seed(0)
                torch.manual_seed(0)
                t = time.perf_counter()
                model, chi2 = _run(method, case, mesh)
                wall = time.perf_counter() - t
                scored = model if mesh is case.mesh else _at(model, mesh, case.mesh.cell_centers)
                row[label] = {"r": float(pearson_r(scored, case.model)), "chi2": chi2, "wall_s": wall,
                              "n_cells": int(mesh.n_cells)}
            rows.append(row)
            print(f"{name:<18}{method:<15}{row['own']['r']:>8.3f}{row['own']['wall_s']:>7.1f}"
                  f"{row['designed']['r']:>12.3f}{row['designed']['wall_s']:>7.1f}"
                  f"{row['own']['n_cells']:>12,} / {row['designed']['n_cells']:,}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
