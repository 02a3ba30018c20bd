"""HybridDensity: geology as the prior mean + a bounded INR residual.

``ρ(x) = ρ_geology(x) + w(x) · r(x)``: :class:`~gempy_gravinv.density.GeologyDensity`
(a GemPy model with unit contrasts, optionally trainable) plus an
:class:`~gempy_gravinv.density.INRDensity` residual ``r`` bounded in ``bounds`` (kg/m³),
optionally confined by a weight ``w(x) ∈ [0, 1]``: the summed soft membership of chosen
units (``residual_units``) times an indicator of a depth range (``depth_range``).
Trained with the INR trainer: ``invert_inr(survey, mesh, cfg, density=factory)``.

Conventions: metres, z up; density contrast in kg/m³.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ._geology import GeologyDensity
from ._inr import INRDensity, evaluate_on_mesh

__all__ = ["HybridDensity"]


#: Options of the default residual INR that differ from :class:`INRDensity`'s defaults.
RESIDUAL_DEFAULTS = dict(width=256, depth=4, output="tanh", last_layer_gain=1.0, dtype="float64",
                         encoding_options={"n_frequencies": 2})


class HybridDensity(nn.Module):
    """Geology (GemPy units) + bounded INR residual, as one density backend.

    Parameters
    ----------
    geology : GeologyDensity, optional
        The prior mean. It is deep-copied (its GemPy model and lithology cache are
        shared, its parameters are not), so ensemble members train independent copies.
    geo_model, unit_densities : optional
        Alternative to ``geology``: build ``GeologyDensity(geo_model, unit_densities,
        **geology_options)``.
    geology_options : dict, optional
        Extra :class:`GeologyDensity` options when built here.
    learn_densities : bool, optional
        Train the unit contrasts jointly with the residual (``None`` keeps the
        geology's setting).
    residual : torch.nn.Module, optional
        The residual field ``points -> kg/m³``; default: an :class:`INRDensity` built from
        ``mesh``/``points`` and ``inr_options``, starting at 0 kg/m³.
    residual_units : sequence of str or int, optional
        Units (names, or GemPy ids 1..n_units) the residual may live in; ``w`` is their
        summed soft membership. ``None``: everywhere.
    depth_range : (z_min, z_max), optional
        Elevation range (m, z up) where the residual may live (e.g. ``(-400, -50)``);
        outside it ``w = 0``. ``None``: no limit.
    mesh, points :
        Where the default INR's coordinate normalisation comes from (and the geology is
        pre-evaluated).
    bounds : (lo, hi)
        Residual bounds, kg/m³ (passed to the default INR).
    init_value : float
        Initial residual, kg/m³ (default 0: the hybrid starts at the geology).
    **inr_options
        Further :class:`INRDensity` options (``encoding``, ``width``, ``depth``,
        ``output``, ``seed``, ``dtype``...; the INR trainer passes its
        :meth:`INRConfig.field_options`). Unset options take the residual's defaults,
        :data:`RESIDUAL_DEFAULTS`: a 4 x 256 LeakyReLU MLP on a 2-octave positional
        encoding, tanh output, last-layer gain 1, float64 (the encoding options only
        with the positional encoding).

    Notes
    -----
    ``forward(points)`` returns the total density contrast (n,) kg/m³;
    :meth:`components` returns the geology, residual and weight separately.
    Gradients reach the INR weights and (with ``learn_densities``) the unit contrasts.
    """

    def __init__(self, geology: GeologyDensity | None = None, *, geo_model: Any = None,
                 unit_densities=None, geology_options: dict | None = None,
                 learn_densities: bool | None = None, residual: nn.Module | None = None,
                 residual_units: Sequence[str | int] | None = None,
                 depth_range: Sequence[float] | None = None, mesh=None, points=None,
                 bounds=(-600.0, 600.0), init_value: float | None = 0.0, **inr_options) -> None:
        super().__init__()
        if geology is None:
            if geo_model is None or unit_densities is None:
                raise ValueError("HybridDensity needs geology=GeologyDensity(...) or geo_model= and "
                                 "unit_densities= (kg/m³)")
            geology = GeologyDensity(geo_model, unit_densities, **dict(geology_options or {}))
        elif not isinstance(geology, GeologyDensity):
            raise TypeError(f"geology must be a GeologyDensity, got {type(geology).__name__}")
        else:
            geology = copy.deepcopy(geology)
        if learn_densities is not None:
            geology.set_learn_densities(learn_densities)
        self.geology = geology
        if residual is None:
            if mesh is None and points is None:
                raise ValueError("HybridDensity needs mesh= or points= to normalise the residual INR's "
                                 "coordinates (or an explicit residual= module)")
            opts = {**RESIDUAL_DEFAULTS, **inr_options}
            if opts.get("encoding", "positional") != "positional" and "encoding_options" not in inr_options:
                opts.pop("encoding_options")  # the default options are the positional encoding's
            residual = INRDensity(mesh, points=points, bounds=bounds, init_value=init_value, **opts)
        elif inr_options:
            raise TypeError(f"INR options {sorted(inr_options)} given with an explicit residual module")
        self.residual = residual
        self.residual_units = self._unit_ids(residual_units)
        if depth_range is not None:
            zr = [float(v) for v in depth_range]
            if len(zr) != 2 or not np.all(np.isfinite(zr)) or zr[0] >= zr[1]:
                raise ValueError(f"depth_range must be (z_min, z_max) elevations in m with z_min < z_max, "
                                 f"got {depth_range}")
            self.depth_range: tuple[float, float] | None = (zr[0], zr[1])
        else:
            self.depth_range = None
        ref = mesh.cell_centers if mesh is not None else points
        if ref is not None:
            self.geology.membership(ref)  # warm the lithology cache (one GemPy run)

    def _unit_ids(self, units) -> list[int] | None:
        if units is None:
            return None
        names = self.geology.unit_names
        out = []
        for u in ([units] if isinstance(units, (str, int)) else units):
            if isinstance(u, str):
                if u not in names:
                    raise ValueError(f"residual unit {u!r} is not a unit of the model {names}")
                out.append(names.index(u) + 1)
            else:
                if not 1 <= int(u) <= len(names):
                    raise ValueError(f"residual unit id {u} outside 1..{len(names)} (units {names})")
                out.append(int(u))
        if not out:
            raise ValueError("residual_units is empty: give None (everywhere) or at least one unit")
        return sorted(set(out))

    # ------------------------------------------------------------------ evaluation
    def weight(self, points) -> torch.Tensor | None:
        """Confinement weight w (n,) in [0, 1] of the residual (None = 1 everywhere)."""
        w = None
        if self.residual_units is not None:
            memb = self.geology.membership(points)
            w = memb[:, [i - 1 for i in self.residual_units]].sum(1).clamp(0.0, 1.0)
        if self.depth_range is not None:
            p = torch.as_tensor(points)
            z = p[:, 2].to(torch.float64)
            inside = ((z >= self.depth_range[0]) & (z <= self.depth_range[1])).to(torch.float64)
            w = inside if w is None else w * inside.to(w.device)
        return w

    def components(self, points) -> dict[str, torch.Tensor]:
        """``{"geology", "residual", "weight", "total"}`` at points, kg/m³ (weight: 0..1).

        ``residual`` is the confined residual ``w · r``; ``total = geology + residual``.
        """
        g = self.geology(points)
        r = self.residual(points).to(torch.float64)
        w = self.weight(points)
        if w is not None:
            r = r * w.to(device=r.device)
        else:
            w = torch.ones_like(r)
        return {"geology": g, "residual": r, "weight": w, "total": g.to(r.device) + r}

    def forward(self, points) -> torch.Tensor:
        """Density contrast (n,) in kg/m³ at ``points`` (n, 3) m, z up (float64)."""
        return self.components(points)["total"]

    def on_mesh(self, mesh, quadrature: int = 1) -> torch.Tensor:
        """Cell-average density (n_cells,) kg/m³ on a :class:`~gempy_gravinv.PrismMesh`."""
        return evaluate_on_mesh(self, mesh, quadrature)

    def extra_repr(self) -> str:
        return f"residual_units={self.residual_units}, depth_range={self.depth_range}"
