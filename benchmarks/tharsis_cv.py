"""Held-out stations on the Tharsis data: k-fold predictions of each method vs interpolation.

Usage::

    python benchmarks/tharsis_cv.py [--methods tps,simpeg_l2,simpeg_sparse,inr] [--k 5] [--seed 0]
                                    [--inr-preset auto] [--regional none|constant|plane|auto] [--threads 1]

Every inversion fits the training stations to χ²/N = 1 under the case's stated noise
(0.5 mGal + 2% of |g_z|) on the case's mesh and predicts the held-out stations through the
same mesh; ``tps`` is a thin-plate spline through the training stations. ``--regional``
solves a datum offset or a plane with the INR's density (``INRConfig.regional``, default:
the preset's own) and adds it to its held-out predictions. Prints the
held-out RMS (mGal) per method and fold, and the wall time, measured in the same run.
``--worst N`` also lists the N stations each method predicts worst, with the distance to
the nearest other station and whether the station is a corner of the survey's convex
hull, and the RMS over the other stations.
"""

import argparse

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="tps,simpeg_l2,simpeg_sparse,inr")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inr-preset", default="auto")
    ap.add_argument("--regional", default=None, choices=("none", "constant", "plane", "auto"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worst", type=int, default=0, metavar="N", help="list the N worst-predicted stations")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from gempy_gravinv.cases.tharsis import tharsis_case
    from gempy_gravinv.compare import station_cv

    case = tharsis_case()
    overrides = {} if args.regional is None else {"regional": args.regional}
    cv = station_cv(case.survey, case.mesh, methods=[m.strip() for m in args.methods.split(",")], k=args.k,
                    seed=args.seed, inr_preset=args.inr_preset, inr_overrides=overrides,
                    bounds=(-600.0, 600.0), log=None)
    print(f"Tharsis: {case.survey.n_data} stations, {case.mesh.n_cells} cells; " + " ".join(cv.notes))
    print(cv.table())
    if args.worst > 0:
        _worst(case.survey, cv, args.worst)
    return 0


def _worst(survey, cv, n: int) -> None:
    """The ``n`` stations each method predicts worst, and the RMS without them (mGal)."""
    import numpy as np
    from scipy.spatial import ConvexHull, cKDTree

    xy = survey.locations[:, :2]
    corner = np.zeros(len(xy), bool)
    corner[ConvexHull(xy).vertices] = True
    nearest = cKDTree(xy).query(xy, k=2)[0][:, 1]
    for method, pred in cv.predicted.items():
        err = pred - survey.gz
        order = np.argsort(-np.abs(err))
        rest = np.sqrt(np.mean(err[order[n:]] ** 2))
        print(f"{method}: RMS without its {n} worst stations {rest:.3f} mGal")
        for j in order[:n]:
            print(f"  station {j}: g_z {survey.gz[j]:.2f}, error {err[j]:+.2f} mGal, nearest station "
                  f"{nearest[j]:.0f} m{', hull corner' if corner[j] else ''}")


if __name__ == "__main__":
    raise SystemExit(main())
