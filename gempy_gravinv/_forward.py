"""One-shot forward modelling: g_z of a density model at stations, as NumPy."""

from __future__ import annotations

import numpy as np
import torch

from ._operator import GravityOperator
from ._survey import Survey


def forward_gz(mesh, locations, model, *, device: str = "cpu", check_stations=True) -> np.ndarray:
    """g_z of a density contrast on the cells of ``mesh`` at ``locations``, in float64.

    A matrix-free :class:`GravityOperator` built for this one product (nothing is stored).

    Parameters
    ----------
    mesh : PrismMesh or discretize mesh
        Cells (metres, z up); ``model`` is on its (active) cells.
    locations : array_like (n, 3) or Survey
        Stations, metres, z up (a :class:`Survey`: its locations; its data are not read).
    model : array_like (n_cells,)
        Density contrast, kg/m³.
    device : str
        Torch device.
    check_stations : bool or "warn"
        As :class:`GravityOperator` (stations inside or below the mesh refused).

    Returns
    -------
    numpy.ndarray (n,)
        g_z in mGal, positive downward.
    """
    stations = Survey(locations.locations) if isinstance(locations, Survey) else Survey(locations)
    op = GravityOperator(mesh, stations, device=device, dtype=torch.float64, store="matrix_free",
                         check_stations=check_stations)
    return op.forward(torch.as_tensor(np.asarray(model, dtype=np.float64))).cpu().numpy()
