"""Held-out stations: k-fold cross-validation of inversions against interpolation.

A model fitted to χ²/N = 1 under a stated noise level can still predict stations it has
not seen worse than a plain interpolation of the stations it has: then the stated noise
is too large (the fit is too smooth) or the model's structure is wrong. This module
measures that on real data: the stations are split into ``k`` seeded folds; for each
fold every method inverts the other stations and predicts the held-out ones (the
inversions through the forward operator on the same mesh, the baseline by a
thin-plate-spline interpolation of the training stations' g_z).

Units: g_z mGal, positive downward; metres, z up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .._forward import forward_gz
from .._mesh import as_prism_mesh
from .._survey import Survey
from .._validation import check_choice, check_int

logger = logging.getLogger(__name__)

CV_METHODS = ("tps", "inr", "simpeg_l2", "simpeg_sparse")


@dataclass
class StationCV:
    """Held-out prediction errors of each method (mGal).

    Attributes
    ----------
    folds : list of ndarray
        Station indices held out in each fold.
    predicted : dict
        ``{method: (n_data,) g_z predicted at each station by the run that did not see
        it}``, mGal, positive downward.
    rms : dict
        ``{method: RMS of (predicted - observed) over every station}``, mGal.
    fold_rms : dict
        ``{method: [RMS per fold]}``, mGal.
    wall_s : dict
        ``{method: seconds over all folds}``.
    notes : list of str
    """

    folds: list
    predicted: dict
    rms: dict
    fold_rms: dict
    wall_s: dict
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain values for JSON: folds, held-out predictions, RMS per method and fold, times, notes."""
        return dict(folds=[f.tolist() for f in self.folds],
                    predicted={m: v.tolist() for m, v in self.predicted.items()},
                    rms_mgal=dict(self.rms), fold_rms_mgal={m: list(v) for m, v in self.fold_rms.items()},
                    wall_s=dict(self.wall_s), notes=list(self.notes))

    def write(self, directory) -> dict:
        """Write ``station_cv.md`` (notes and table) and ``station_cv.json`` to ``directory``."""
        import json
        from pathlib import Path

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        md = d / "station_cv.md"
        md.write_text("# Held-out stations\n\n" + "\n".join(self.notes) + "\n\n```\n" + self.table() + "\n```\n",
                      encoding="utf-8")
        js = d / "station_cv.json"
        js.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return {"station_cv_md": str(md), "station_cv_json": str(js)}

    def table(self) -> str:
        """A text table: method, held-out RMS (mGal), RMS per fold, seconds."""
        lines = [f"{'method':16s} {'held-out RMS mGal':>18s}  per fold{'':24s} wall s"]
        for m in self.rms:
            per = " ".join(f"{v:.3f}" for v in self.fold_rms[m])
            lines.append(f"{m:16s} {self.rms[m]:18.3f}  {per:32s} {self.wall_s[m]:.1f}")
        return "\n".join(lines)


def kfold(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint folds of the indices ``0..n-1`` (seeded permutation), sizes within one."""
    n = check_int(n, name="n", minimum=2)
    k = check_int(k, name="k (folds)", minimum=2)
    if k > n:
        raise ValueError(f"k = {k} folds need at least {k} stations, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(f) for f in np.array_split(perm, k)]


def thin_plate_spline(train: Survey, points: np.ndarray) -> np.ndarray:
    """g_z (mGal) at ``points`` (n, 2 or 3; x, y used) from a thin-plate spline through ``train``.

    An exact interpolant of the training stations' g_z in x, y (scipy's
    ``RBFInterpolator(kernel="thin_plate_spline")``), the baseline an inversion's
    prediction has to beat.
    """
    from scipy.interpolate import RBFInterpolator

    xy = train.locations[:, :2]
    scale = float(np.ptp(xy, axis=0).max()) or 1.0  # condition the kernel: x, y in units of the extent
    rbf = RBFInterpolator(xy / scale, train.gz, kernel="thin_plate_spline")
    return rbf(np.asarray(points, float)[:, :2] / scale)


def _fit(method: str, train: Survey, mesh, *, inr_preset: str, inr_overrides: dict, bounds, reference,
         simpeg_options: dict, device: str) -> Callable[[np.ndarray], np.ndarray]:
    """What a method fitted to the training stations predicts: locations (n, 3) m -> g_z (n,) mGal."""
    if method == "inr":
        from ..inversion import INRConfig, invert_inr

        # the preset's own bounds unless the run names some (as the comparison's INR run)
        cfg = INRConfig.preset(inr_preset, **{"progress": False, **({} if bounds is None else {"bounds": bounds}),
                                              **inr_overrides})
        res = invert_inr(train, mesh, cfg, device=device)
        return lambda loc: res.predict(loc, device=device)  # with its regional, if any
    from ..simpeg import run_inversion

    kind = "l2" if method == "simpeg_l2" else "sparse"
    model = run_inversion(train, mesh, kind, reference=reference, bounds=bounds, device=device,
                          **simpeg_options).model
    return lambda loc: forward_gz(mesh, loc, model, device=device)


def station_cv(survey: Survey, mesh, *, methods: Sequence[str] = CV_METHODS, k: int = 5, seed: int = 0,
               inr_preset: str = "auto", inr_overrides: dict | None = None, bounds=None, reference: float = 0.0,
               simpeg_options: dict | None = None, device: str = "cpu",
               log: Callable[[str], None] | None = logger.info) -> StationCV:
    """k-fold cross-validation over stations: held-out g_z of each method vs the observations.

    Parameters
    ----------
    survey : Survey
        Stations with observed g_z (mGal, positive down) and std (mGal).
    mesh : PrismMesh or discretize mesh
        The mesh every inversion uses (its active cells).
    methods : sequence of str
        From :data:`CV_METHODS`: ``"tps"`` (thin-plate-spline interpolation),
        ``"inr"`` (:func:`~gempy_gravinv.invert_inr` with ``inr_preset``),
        ``"simpeg_l2"``, ``"simpeg_sparse"`` (SimPEG's recipes).
    k : int
        Number of folds (each station is held out once).
    seed : int
        Seed of the fold split.
    inr_preset : str
        :class:`~gempy_gravinv.INRConfig` preset of the ``"inr"`` method.
    inr_overrides : dict, optional
        Further INRConfig fields.
    bounds : (lo, hi), optional
        Contrast bounds of every inversion, kg/m³.
    reference : float
        Reference contrast of the SimPEG inversions, kg/m³.
    simpeg_options : dict, optional
        Extra keyword arguments of :func:`gempy_gravinv.simpeg.run_inversion`.
    device : str
        Torch device.
    log : callable, optional
        Progress messages (None: silent).

    Returns
    -------
    StationCV
    """
    if not isinstance(survey, Survey):
        raise TypeError(f"survey must be a gempy_gravinv.Survey, got {type(survey).__name__}")
    survey.require_data(need_std=True)
    mesh = as_prism_mesh(mesh)
    if isinstance(methods, str):
        raise TypeError(f"methods must be a list of method names, got the string {methods!r} (use [{methods!r}])")
    for m in methods:
        check_choice(m, CV_METHODS, name="method")
    xy = survey.locations[:, :2]
    if "tps" in methods and np.linalg.matrix_rank(np.c_[np.ones(len(xy)), xy - xy.mean(0)], tol=1e-9 * (
            float(np.ptp(xy, axis=0).max()) or 1.0)) < 3:
        raise ValueError("the thin-plate spline ('tps') needs stations that span an area; these lie on one line "
                         "or at one point in x, y: leave 'tps' out of methods")
    folds = kfold(survey.n_data, k, seed)
    say = log or (lambda s: None)
    pred = {m: np.full(survey.n_data, np.nan) for m in methods}
    wall = dict.fromkeys(methods, 0.0)
    for i, held_idx in enumerate(folds):
        train_mask = np.ones(survey.n_data, bool)
        train_mask[held_idx] = False
        train, held = survey.subset(train_mask), survey.subset(held_idx)
        for m in methods:
            t0 = time.perf_counter()
            if m == "tps":
                pred[m][held_idx] = thin_plate_spline(train, held.locations)
            else:
                predict = _fit(m, train, mesh, inr_preset=inr_preset, inr_overrides=dict(inr_overrides or {}),
                               bounds=bounds, reference=reference, simpeg_options=dict(simpeg_options or {}),
                               device=device)
                pred[m][held_idx] = predict(held.locations)
            wall[m] += time.perf_counter() - t0
            say(f"fold {i + 1}/{k}, {m}: held-out RMS "
                f"{float(np.sqrt(np.mean((pred[m][held_idx] - held.gz) ** 2))):.3f} mGal")
    fold_rms = {m: [float(np.sqrt(np.mean((pred[m][f] - survey.gz[f]) ** 2))) for f in folds] for m in methods}
    rms = {m: float(np.sqrt(np.mean((pred[m] - survey.gz) ** 2))) for m in methods}
    rms_std = float(np.sqrt(np.mean(survey.std ** 2)))
    notes = [f"{k}-fold cross-validation over {survey.n_data} stations (seed {seed}); every inversion fits "
             f"the training stations to χ²/N = 1 under their stated std (rms {rms_std:.3g} mGal) and "
             "predicts the held-out ones through the same mesh."]
    return StationCV(folds=folds, predicted=pred, rms=rms, fold_rms=fold_rms, wall_s=wall, notes=notes)
