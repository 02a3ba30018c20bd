"""Whether gravity data and density models are physically possible: wrong units caught early.

A density contrast of real rocks stays within ±:data:`MAX_CONTRAST_KGM3` kg/m³. Any
distribution of contrast within ±ρ inside a horizontal layer of thickness ``H`` produces
at most ``2πGρH`` of g_z at any point (the infinite slab: every horizontal plane of the
layer subtends a solid angle of at most 2π), so the data a mesh can explain are bounded
before any inversion runs. Data in µGal or m/s² instead of mGal, absolute gravity, or
stations far from the mesh break these bounds, and a model beyond them is not a rock.
Units: mGal (g_z positive down), kg/m³, metres.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ._constants import MAX_CONTRAST_KGM3, MGAL, G

logger = logging.getLogger(__name__)

#: No anomaly or datum offset reaches this (mGal); absolute gravity is about 9.8e5 mGal.
ABSOLUTE_GRAVITY_MGAL: float = 1e5


def slab_limit_mgal(mesh, max_contrast: float = MAX_CONTRAST_KGM3) -> float:
    """The largest |g_z| (mGal) any contrast within ±``max_contrast`` kg/m³ in ``mesh``'s depth range produces.

    ``2πGρH`` with ``H`` the vertical extent of the cells (m): the attraction of an
    infinite slab as thick as the mesh, an upper bound wherever the stations are.
    """
    e = np.asarray(mesh.extent, dtype=float)
    return 2.0 * math.pi * G * float(max_contrast) * float(e[5] - e[4]) / MGAL


def _plane_basis(xy: np.ndarray) -> np.ndarray:
    """An orthonormal basis ``Q`` (n, k) of ``[1, x, y]`` over stations ``xy`` (n, 2); the plane projects by ``Q Qᵀ``.

    ``k`` = 3, or fewer where the stations do not span an area (``[1, s]`` along a line,
    ``[1]`` at one point).
    """
    c = xy - xy.mean(0)
    span = float(np.abs(c).max()) or 1.0
    U, S, _ = np.linalg.svd(np.c_[np.ones(len(xy)), c / span], full_matrices=False)
    return U[:, S > 1e-9 * S.max()]


def check_data(gz, locations, mesh, *, max_contrast: float = MAX_CONTRAST_KGM3, chunk: int = 2048) -> None:
    """Refuse g_z data no density contrast within ±``max_contrast`` in ``mesh`` can explain, with a plane.

    The data less their least-squares plane (a datum and a regional trend, which an
    inversion can fit besides the density) are compared with what the mesh can produce:
    for data ``d`` within ±``L`` (:func:`slab_limit_mgal`), ``|(I - P) d|_i <= L (1 +
    max_i Σ_j |P_ij|)``, ``P`` the plane's projection. So nothing the mesh can produce,
    with any datum or plane, is refused. Absolute gravity (|g_z| beyond
    :data:`ABSOLUTE_GRAVITY_MGAL`) is refused first.

    Parameters
    ----------
    gz : array_like, shape (n,)
        Observed g_z, mGal, positive down.
    locations : array_like, shape (n, 3)
        Station coordinates, metres.
    mesh : PrismMesh
        The cells that carry density.
    max_contrast : float
        Largest plausible |density contrast|, kg/m³.
    chunk : int
        Stations per block of the row sums (memory ``chunk x n`` floats).

    Raises
    ------
    ValueError
        Absolute gravity, or data beyond the bound: units other than mGal (µGal), or
        stations far from the cells.
    """
    d = np.asarray(gz, dtype=float).ravel()
    if not d.size:
        return
    big = float(np.abs(d).max())
    if big > ABSOLUTE_GRAVITY_MGAL:
        raise ValueError(f"the data reach {big:.6g} mGal: absolute gravity (about 9.8e5 mGal), or another unit "
                         "than mGal? Invert an anomaly (observed minus normal gravity, e.g. a Bouguer anomaly) in "
                         "mGal")
    Q = _plane_basis(np.asarray(locations, dtype=float)[:, :2])
    r = d - Q @ (Q.T @ d)
    worst = float(np.abs(r).max())
    limit = slab_limit_mgal(mesh, max_contrast)
    if worst <= limit:  # within the bound whatever the plane's amplification: no row sums needed
        return
    gain = max(float(np.abs(Q[i:i + chunk] @ Q.T).sum(1).max()) for i in range(0, len(d), chunk))
    bound = limit * (1.0 + gain)
    if worst > bound:
        raise ValueError(
            f"the data vary by up to {worst:.4g} mGal about their best-fitting plane, more than any density "
            f"contrast within ±{max_contrast:g} kg/m³ in this mesh can produce with a datum and a plane "
            f"({bound:.4g} mGal: its cells span {float(mesh.extent[5] - mesh.extent[4]):.4g} m of depth). "
            "Are the data in µGal or another unit than mGal, or do the stations lie away from the mesh?")


def stations_beyond(mesh, locations) -> str | None:
    """A sentence on the stations beyond ``mesh``'s horizontal extent, or None where every one is over it.

    Legal geometry (a forward model may extend a profile past the cells), but in an
    inversion only the edge cells can explain those stations' data.

    Parameters
    ----------
    mesh : PrismMesh
        The cells.
    locations : array_like, shape (n, 3)
        Station coordinates, metres.
    """
    loc = np.asarray(locations, dtype=float)[:, :2]
    e = np.asarray(mesh.extent, dtype=float)
    gap = np.maximum(np.maximum(e[[0, 2]] - loc, loc - e[[1, 3]]), 0.0).max(1)
    beside = np.flatnonzero(gap > 0.0)
    if not beside.size:
        return None
    i = int(beside[np.argmax(gap[beside])])
    return (f"{beside.size} station(s) lie beyond the mesh's horizontal extent (station {i} {gap[i]:.4g} m beyond "
            "it): only the edge cells can explain their data; extend the mesh (padding) over the whole survey")


def check_inputs(gz, locations, mesh) -> None:
    """An inversion's inputs: refuse data the mesh cannot explain (:func:`check_data`), log stations beyond it.

    Parameters
    ----------
    gz : array_like, shape (n,)
        Observed g_z, mGal, positive down.
    locations : array_like, shape (n, 3)
        Their stations, metres.
    mesh : PrismMesh
        The cells that carry density.
    """
    check_data(gz, locations, mesh)
    if (why := stations_beyond(mesh, locations)) is not None:
        logger.warning("%s", why)


#: A model whose every contrast stays below this (kg/m³, and not all zero) explains no measurable density change
MIN_MODEL_KGM3: float = 0.1


def implausible_model(model, max_contrast: float = MAX_CONTRAST_KGM3) -> str | None:
    """A sentence saying why ``model`` (kg/m³) is no rock's contrast, or None where it could be one.

    Beyond ±``max_contrast`` (data in too small a unit, µGal read as mGal, or stations
    beside the mesh), or nowhere beyond ±:data:`MIN_MODEL_KGM3` without being zero
    (data in SI units read as mGal and Eötvös, or no signal above σ).

    Parameters
    ----------
    model : array_like
        Density contrast, kg/m³ (NaN cells are skipped).
    max_contrast : float
        Largest plausible |density contrast|, kg/m³.
    """
    m = np.asarray(model, dtype=float)
    m = m[np.isfinite(m)]
    top = float(np.abs(m).max()) if m.size else 0.0
    if 0.0 < top < MIN_MODEL_KGM3:
        return (f"the model reaches only {top:.3g} kg/m³, far below any measurable density contrast: are the data "
                "in SI units (g_z in m/s², gradients in 1/s² or mGal/m) instead of mGal and Eötvös, or do they "
                "carry no signal above their σ?")
    if top <= max_contrast:
        return None
    return (f"the model reaches {top:.4g} kg/m³, beyond any rock's density contrast "
            f"(±{max_contrast:g} kg/m³): check the data's unit (mGal, not µGal), their sign (g_z positive down), "
            "and that the stations lie over the mesh")
