"""Cases for the Bayesian GemPy gravity workflow, built in code (no downloads).

- :func:`synthetic_contact`: a tiny one-surface GemPy model (a unit over a basement,
  the contact controlled by two orientations), a tensor mesh and stations; used by tests,
  the recovery check and the benchmark.
- :func:`tharsis_intrusion`: the Tharsis intrusion, a one-surface model (plutonites
  above the surface, host rock below, as in GemPy-Probability's gravity tutorial) over
  the extent of the Tharsis Bouguer stations (IGME), 2 orientations, priors dips
  N(10°, 10°), density contrasts N([2.9 - 2.67, 2.3 - 2.67] g/cm³, 0.15 g/cm³) for
  (plutonites, host rock), sampled as the plutonite contrast relative to the host rock
  (identifiable with the free datum offset), hierarchical per-station noise integrated
  out; NUTS.
  :func:`tharsis_intrusion_model` is its GemPy model alone, the built-in
  ``--geomodel tharsis-intrusion`` of the GemPy density backends.
- :func:`from_config`: a case from a user's TOML/JSON file (:data:`CONFIG_SCHEMA`).

Conventions: metres (z up); density contrast kg/m³ (GemPy id order: the unit above the
surface first, the basement below it last); g_z in mGal, positive downward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._constants import gcc_to_kgm3
from .._mesh import PrismMesh
from .._survey import Survey
from .._validation import check_choice, check_int, check_number
from ..geomodel import LoadedGeoModel

__all__ = ["BayesCase", "CONFIG_SCHEMA", "THARSIS_DENSITY_MEAN_GCC", "THARSIS_DENSITY_STD_GCC", "THARSIS_UNIT_NAMES",
           "build_contact_geomodel", "from_config", "synthetic_contact", "tharsis_intrusion",
           "tharsis_intrusion_model"]


@dataclass
class BayesCase:
    """Everything a run needs: the GemPy model, mesh, survey, model and metadata.

    Attributes
    ----------
    geo_model : gempy GeoModel
    mesh : PrismMesh
        Cells for the mesh forward (metres).
    survey : Survey
        Stations (metres, local origin) with g_z (mGal, positive down) when observed.
    model : callable
        Pyro model from :func:`gempy_gravinv.bayes.make_model`.
    forward : object
        The forward used (``MeshForward`` / ``CenteredGridForward``).
    truth : dict
        True parameter values for synthetic cases (``densities`` kg/m³, ``dips`` deg,
        ``offset`` mGal), empty for real data.
    meta : dict
        Origin shift, unit names, notes.
    """

    geo_model: Any
    mesh: PrismMesh
    survey: Survey
    model: Any
    forward: Any
    truth: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def build_contact_geomodel(extent, sp_xyz, ori_xyz, ori_dip_deg, ori_azimuth_deg, *,
                           surface: str = "contact", basement: str = "basement",
                           name: str = "contact") -> Any:
    """A one-surface GemPy model: unit ``surface`` above, ``basement`` below.

    Parameters
    ----------
    extent : sequence of 6 float
        xmin, xmax, ymin, ymax, zmin, zmax (m).
    sp_xyz : array_like, shape (n, 3)
        Surface points on the contact (m).
    ori_xyz : array_like, shape (k, 3)
        Orientation positions (m).
    ori_dip_deg, ori_azimuth_deg : array_like, shape (k,)
        Dip (deg) and dip direction (deg from north) of each orientation (polarity +1).
    surface : str
        Name of the unit above the contact (and of the contact surface).
    basement : str
        Name of the unit below, used in reports only.
    name : str
        GemPy project name.

    Returns
    -------
    gempy GeoModel
        Id 1 = ``surface`` unit (above the contact), id 2 = basement (below; GemPy always
        names it "basement", ``basement`` is the name used in reports).
    """
    import contextlib
    import io

    import gempy as gp

    from ..geomodel import gradients_from_dips

    sp = np.asarray(sp_xyz, float)
    ori = np.asarray(ori_xyz, float)
    g = gradients_from_dips(np.asarray(ori_dip_deg, float), np.asarray(ori_azimuth_deg, float)).numpy()
    with contextlib.redirect_stdout(io.StringIO()):
        spt = gp.data.SurfacePointsTable.from_arrays(x=sp[:, 0], y=sp[:, 1], z=sp[:, 2], names=surface)
        ort = gp.data.OrientationsTable.from_arrays(x=ori[:, 0], y=ori[:, 1], z=ori[:, 2],
                                                    G_x=g[:, 0], G_y=g[:, 1], G_z=g[:, 2],
                                                    names=surface)
        frame = gp.data.StructuralFrame.from_data_tables(spt, ort)
        gm = gp.create_geomodel(project_name=name, extent=list(map(float, extent)), resolution=None,
                                refinement=1, structural_frame=frame)
    return gm


def synthetic_contact(*, n_cells=(8, 8, 6), n_stations=(5, 5), dips=(15.0, 5.0),
                      densities=(230.0, -370.0), offset: float = 0.0, noise: float = 0.05,
                      sigmoid_slope: float = 100.0, seed: int = 0) -> dict[str, Any]:
    """A tiny synthetic one-surface model on a 1 km x 1 km x 600 m block.

    The contact passes through five surface points at z = -300 m (four corners) and
    -250 m (centre); orientation 0 at x = 300 m dips east, orientation 1 at x = 700 m
    dips east, with the given dips.

    Parameters
    ----------
    n_cells : (nx, ny, nz)
        Tensor-mesh cells (the mesh spans x, y in [0, 1000], z in [-600, 0] m).
    n_stations : (nx, ny)
        Station grid 1 m above the top, inside [100, 900] m.
    dips : (2,) float
        True dips in degrees of the two orientations.
    densities : (2,) float
        True contrasts (kg/m³) of the upper unit and the basement.
    offset : float
        Datum offset added to the data, mGal.
    noise : float
        Gaussian noise std, mGal (seeded).
    sigmoid_slope : float
        Sharpness of GemPy's soft lithology used for the clean data (normalised frame).
    seed : int
        Seed of the noise (numpy ``default_rng``).

    Returns
    -------
    dict
        ``geo_model`` (built with dip 10° on both orientations: the prior mean),
        ``mesh``, ``stations`` (n, 3), ``gz`` (noisy data, mGal), ``gz_clean``,
        ``truth`` (``densities``, ``dips``, ``offset``), ``noise``.
    """
    import torch

    from .._operator import GravityOperator
    from ..geomodel import TorchGeoModel

    nx, ny, nz = n_cells
    ext = [0.0, 1000.0, 0.0, 1000.0, -600.0, 0.0]
    sp = np.array([[200, 200, -300], [800, 200, -300], [200, 800, -300], [800, 800, -300],
                   [500, 500, -250]], float)
    ori = np.array([[300, 500, -280], [700, 500, -280]], float)
    gm = build_contact_geomodel(ext, sp, ori, [10.0, 10.0], [90.0, 90.0], surface="upper")
    mesh = PrismMesh.from_tensor(np.full(nx, 1000.0 / nx), np.full(ny, 1000.0 / ny),
                                 np.full(nz, 600.0 / nz), origin=(0.0, 0.0, -600.0))
    sx, sy = n_stations
    st = np.stack(np.meshgrid(np.linspace(100, 900, sx), np.linspace(100, 900, sy), [1.0],
                              indexing="ij"), -1).reshape(-1, 3)
    tg = TorchGeoModel(gm, mesh.cell_centers, sigmoid_slope=sigmoid_slope)
    op = GravityOperator(mesh, Survey(st), device="cpu", store="dense")
    with torch.no_grad():
        d = tg.density(torch.as_tensor(densities, dtype=torch.float64),
                       dips=torch.as_tensor(dips, dtype=torch.float64), dip_index=[0, 1])
        clean = op.forward(d).numpy() + offset
    rng = np.random.default_rng(seed)
    gz = clean + noise * rng.standard_normal(clean.size)
    return {"geo_model": gm, "mesh": mesh, "stations": st, "gz": gz, "gz_clean": clean,
            "truth": {"densities": np.asarray(densities, float), "dips": np.asarray(dips, float),
                      "offset": float(offset)}, "noise": noise, "sigmoid_slope": sigmoid_slope}


#: prior means of the Tharsis intrusion's density contrasts against 2.67 g/cm³, g/cm³, in
#: GemPy id order: plutonites (2.9 - 2.67, above the surface), host rock (2.3 - 2.67, basement)
THARSIS_DENSITY_MEAN_GCC = (0.23, -0.37)
#: unit names of the Tharsis intrusion, GemPy id order
THARSIS_UNIT_NAMES = ("plutonite", "host_rock")
#: prior standard deviation of both contrasts, g/cm³
THARSIS_DENSITY_STD_GCC = 0.15


def tharsis_intrusion(*, subset: int | None = None, n_cells=(16, 12, 8), depth: float = 6000.0,
                      sigmoid_slope: float = 100.0, sigma0: float = 1.0, offset_scale: float = 20.0,
                      forward: str = "mesh", seed: int = 0, path=None) -> BayesCase:
    """The Tharsis intrusion: plutonites over host rock under the Tharsis stations.

    Geometry (built in code): one surface, the base of the plutonites (GemPy puts a
    unit above its surface points, as in GemPy-Probability's gravity tutorial), over the
    station extent (local origin at the south-west corner of the stations, rounded down
    to 1 km), shallow (-1.5 km) in the west where the Bouguer low is and deepening
    eastwards (-3.5 km), constrained by four surface points and two orientations (west
    and east), whose dips (prior N(10°, 10°), dip direction east) are sampled.
    Plutonites are id 1 (above), host rock the basement (id 2, below).

    Priors: the tutorial's density contrasts against 2.67 g/cm³, plutonites
    2.9 - 2.67 = +0.23 g/cm³ (+230 kg/m³) and host rock 2.3 - 2.67 = -0.37 g/cm³
    (-370 kg/m³), std 0.15 g/cm³ each. A datum offset N(mean(data), ``offset_scale``)
    mGal is inferred (the absolute Bouguer level is not modelled), so a uniform shift of
    both contrasts is not identified: the host rock is the reference unit and the
    sampled density is ``densities_rel`` = plutonite minus host rock, prior
    N(+600, 212) kg/m³ (the difference the tutorial's prior implies). Hierarchical
    per-station noise (σ₀ = ``sigma0`` mGal), integrated out of the sampler
    (``HierarchicalNoise(marginal=True)``). Stations are on a flat surface 1 m above the
    model top (the file has no elevations); station labels are the file's ``ID``s.

    Parameters
    ----------
    subset : int, optional
        Use K stations (a seeded random subset) instead of all 208.
    n_cells : (nx, ny, nz)
        Tensor mesh over the extent (+1 km margin) down to ``depth`` metres.
    depth : float
        Model depth, metres.
    sigmoid_slope : float
        Sharpness of GemPy's soft lithology (normalised frame).
    sigma0 : float
        Prior median of the station noise, mGal.
    offset_scale : float
        Prior std of the datum offset, mGal.
    forward : {"mesh", "centered"}
        (a) mesh + GravityOperator, or (b) GemPy's centered grid.
    seed : int
        Seed of the station subset.
    path : optional
        Stations GeoJSON (default: the packaged file).

    Returns
    -------
    BayesCase
    """
    from ..bayes import (
        CenteredGridForward,
        HierarchicalNoise,
        MeshForward,
        OffsetAlignment,
        PriorSpec,
        make_model,
        normal,
    )
    from .tharsis import load_stations

    check_choice(forward, ("mesh", "centered"), name="forward")
    sv = load_stations(path, z=0.0)
    loc = sv.locations.copy()
    gz = np.asarray(sv.gz, float)
    ids = _station_ids(path, len(gz))
    if subset is not None:
        if not 2 <= int(subset) <= len(gz):
            raise ValueError(f"subset must be in [2, {len(gz)}], got {subset}")
        idx = np.sort(np.random.default_rng(seed).choice(len(gz), int(subset), replace=False))
        loc, gz, ids = loc[idx], gz[idx], [ids[i] for i in idx]
    origin = np.floor(sv.locations[:, :2].min(axis=0) / 1000.0) * 1000.0
    loc[:, :2] -= origin
    loc[:, 2] = 1.0
    survey = Survey(loc, gz=gz, name="tharsis")
    full = sv.locations[:, :2] - origin
    xmin, ymin = np.floor(full.min(0) / 1000.0) * 1000.0 - 1000.0
    xmax, ymax = np.ceil(full.max(0) / 1000.0) * 1000.0 + 1000.0
    ext = [xmin, xmax, ymin, ymax, -float(depth), 0.0]
    Lx, Ly = xmax - xmin, ymax - ymin
    xw, xe = xmin + 0.25 * Lx, xmin + 0.75 * Lx
    zw, ze = -1500.0, -3500.0
    sp = np.array([[xw, ymin + 0.25 * Ly, zw], [xw, ymin + 0.75 * Ly, zw],
                   [xe, ymin + 0.25 * Ly, ze], [xe, ymin + 0.75 * Ly, ze]])
    ori = np.array([[xmin + 0.15 * Lx, ymin + 0.5 * Ly, zw + 200.0],
                    [xmin + 0.85 * Lx, ymin + 0.5 * Ly, ze - 200.0]])
    gm = build_contact_geomodel(ext, sp, ori, [10.0, 10.0], [90.0, 90.0],
                                surface=THARSIS_UNIT_NAMES[0], basement=THARSIS_UNIT_NAMES[1],
                                name="tharsis_intrusion")
    nx, ny, nz = n_cells
    mesh = PrismMesh.from_tensor(np.full(nx, Lx / nx), np.full(ny, Ly / ny),
                                 np.full(nz, depth / nz), origin=(xmin, ymin, -float(depth)))
    if forward == "mesh":
        fw = MeshForward(gm, mesh, survey, sigmoid_slope=sigmoid_slope, store="dense")
    else:  # centered
        fw = CenteredGridForward(gm, survey, resolution=(8, 8, 8), radius=[Lx / 2, Ly / 2, depth],
                                 sigmoid_slope=sigmoid_slope)
    priors = PriorSpec(
        densities=normal(gcc_to_kgm3(np.asarray(THARSIS_DENSITY_MEAN_GCC)),
                         gcc_to_kgm3(THARSIS_DENSITY_STD_GCC)),
        dips=normal([10.0, 10.0], [10.0, 10.0]),
        dip_index=[0, 1],
        unit_names=list(THARSIS_UNIT_NAMES), dip_names=["west", "east"],
        reference_unit=THARSIS_UNIT_NAMES[1],
    )
    model = make_model(fw, priors, HierarchicalNoise(sigma0, marginal=True), survey,
                       alignment=OffsetAlignment(float(np.mean(gz)), offset_scale), station_names=ids)
    meta = {"origin_xy_m": origin.tolist(), "extent_m": ext, "unit_names": list(THARSIS_UNIT_NAMES),
            "reference_unit": THARSIS_UNIT_NAMES[1], "sigma0_mgal": float(sigma0),
            "gempy_unit_names": list(fw.unit_names),
            "n_stations": survey.n_data, "forward": forward,
            "notes": ["stations on a flat surface 1 m above the model top (no elevations given)",
                      "datum offset inferred: the absolute Bouguer level is not modelled",
                      "Data © CN Instituto Geológico y Minero de España (IGME)"]}
    return BayesCase(geo_model=gm, mesh=mesh, survey=survey, model=model, forward=fw, meta=meta)


def _station_ids(path, n: int) -> list[str]:
    """The ``ID`` property of each Tharsis station (file order), or ``0 .. n-1``."""
    import json
    from pathlib import Path

    from .tharsis import data_path

    try:
        doc = json.loads(Path(data_path() if path is None else path).read_text())
        ids = [str(f["properties"]["ID"]) for f in doc["features"]]
    except (OSError, KeyError, TypeError, ValueError):
        ids = []
    return ids if len(ids) == n and len(set(ids)) == n else [str(i) for i in range(n)]


CONFIG_SCHEMA = """\
Config file for ``gempy-gravinv bayes --config FILE`` (TOML, or JSON with the same keys).
Relative paths are relative to the config file. Units: metres (z up), kg/m³ density
contrasts (GemPy id order: unit above the first surface first, basement last), degrees,
g_z in mGal positive downward (excess mass below gives positive values).

[model]                       # a GemPy model from GemPy's own CSV files
extent = [xmin, xmax, ymin, ymax, zmin, zmax]
name = "my_model"             # optional: a plain name (letters, digits, _ . -), not a path
surface_points = "surface_points.csv"   # columns X, Y, Z, formation
orientations = "orientations.csv"       # columns X, Y, Z, formation and either
                                        # azimuth, dip, polarity or G_x, G_y, G_z
[stations]
file = "stations.csv"         # header x,y,z,gz[,std]; gz in mGal positive down (other units
                              # in brackets are converted: "z (ft)", "gz (uGal)")
subset = 50                   # optional: a seeded random subset of stations

[mesh]                        # forward (a): tensor mesh over the model extent
shape = [16, 12, 8]           # cells along x, y, z (each >= 1)

[forward]
kind = "mesh"                 # "mesh" (GemPy soft lithology + our operator) or "centered"
sigmoid_slope = 100.0
resolution = [8, 8, 8]        # centered only: GemPy centered-grid resolution
radius = 2000.0               # centered only: kernel radius (m)

[priors]
densities_mean_kgm3 = [230.0, -370.0]   # one per unit (n_units = surfaces + basement)
densities_std_kgm3 = [150.0, 150.0]
dip_index = [0, 1]                       # rows of geo_model.orientations_copy
dips_mean_deg = [10.0, 10.0]
dips_std_deg = [10.0, 10.0]
sp_index = []                            # rows of geo_model.surface_points_copy
sp_z_mean_m = []
sp_z_std_m = []

[likelihood]
kind = "hierarchical"         # "gaussian" (sigma or the stations' std), "hierarchical", "student_t"
sigma0 = 1.0                  # hierarchical: prior median of the station noise (mGal)
sigma = 1.0                   # gaussian / student_t: noise (mGal); omit to use the std column
df = 4.0                      # student_t

[alignment]
kind = "offset"               # "offset" (inferred datum), "reference" (align means), "none"
loc = "data_mean"             # offset prior mean in mGal, or "data_mean"
scale = 20.0                  # offset prior std (mGal)
"""


def from_config(path, *, subset: int | None = None, seed: int = 0) -> BayesCase:
    """Build a :class:`BayesCase` from a config file (schema: :data:`CONFIG_SCHEMA`).

    Every entry is checked before GemPy is imported, with a message naming it: the
    extent (min < max), ``[model] name`` (a plain name, never a path), ``[mesh] shape``
    (three integers >= 1), numbers (finite, scales > 0), indices (integers >= 0), and the
    density priors (kg/m³ contrasts: g/cm³ values such as 2.67 are refused, absolute
    densities such as 2670 warned about). The stations file is read with
    :func:`gempy_gravinv.io.read_csv` (units in its header are converted).

    Parameters
    ----------
    path : str or path-like
        TOML or JSON config.
    subset : int, optional
        Overrides ``[stations] subset``.
    seed : int
        Seed of the station subset.

    Returns
    -------
    BayesCase
        ``truth`` empty; ``meta`` with the config path, extent (m), unit names, number
        of stations and forward kind.

    Raises
    ------
    FileNotFoundError
        The config, the GemPy CSV files or the stations file is missing.
    ValueError
        A missing section or entry, or a value out of its range (named in the message).
    """
    from pathlib import Path

    from ..io import read_config, read_csv
    from . import _bayes_config as C

    cfg = read_config(path)
    base = Path(path).resolve().parent
    for sec in ("model", "stations", "priors"):
        if not isinstance(cfg.get(sec), dict):
            raise ValueError(f"config {path}: missing section [{sec}] (see `bayes --help-config`)")
    for sec in ("mesh", "forward", "likelihood", "alignment"):
        if not isinstance(cfg.get(sec, {}), dict):
            raise ValueError(f"config {path}: [{sec}] must be a section (a table of settings)")
    mc = cfg["model"]
    for key in ("extent", "surface_points", "orientations"):
        if key not in mc:
            raise ValueError(f"config [model] needs {key!r}")
    ext = C.extent(mc["extent"])
    name = C.plain_name(mc.get("name", "user_model"), name="[model] name")
    sp_file, ori_file = base / str(mc["surface_points"]), base / str(mc["orientations"])
    for f in (sp_file, ori_file):
        if not f.is_file():
            raise FileNotFoundError(f"GemPy input file not found: {f}")
    sc = cfg["stations"]
    st_file = base / str(sc.get("file", ""))
    if not st_file.is_file():
        raise FileNotFoundError(f"stations file not found: {st_file}")
    sv = read_csv(st_file)
    if not sv.has_data:
        raise ValueError(f"stations file {st_file} needs a header with x,y,z,gz[,std] (gz in mGal, positive down)")
    k = subset if subset is not None else sc.get("subset")
    if k is not None:
        k = check_int(k, name="[stations] subset", minimum=2)
        if k > sv.n_data:
            raise ValueError(f"subset must be in [2, {sv.n_data}], got {k}")
        sv = sv.subset(np.sort(np.random.default_rng(seed).choice(sv.n_data, k, replace=False)))
    survey = Survey(sv.locations, gz=sv.gz, std=sv.std)
    fc = cfg.get("forward", {})
    kind = check_choice(fc.get("kind", "mesh"), ("mesh", "centered"), name="[forward] kind")
    slope = check_number(fc.get("sigmoid_slope", 100.0), name="[forward] sigmoid_slope", low=0.0, low_open=True)
    resolution = C.integers(fc.get("resolution", [8, 8, 8]), name="[forward] resolution", n=3, minimum=1)
    radius = C.numbers(fc.get("radius", 2000.0), name="[forward] radius (m)", low=0.0, low_open=True,
                       scalar_ok=True)
    shape = C.integers(cfg.get("mesh", {}).get("shape", [16, 12, 8]), name="[mesh] shape (cells along x, y, z)",
                       n=3, minimum=1)
    pc = cfg["priors"]
    if "densities_mean_kgm3" not in pc:
        raise ValueError("[priors] needs densities_mean_kgm3 and densities_std_kgm3")
    d_mean = C.numbers(pc["densities_mean_kgm3"], name="[priors] densities_mean_kgm3", scalar_ok=True)
    d_std = C.numbers(pc.get("densities_std_kgm3", 150.0), name="[priors] densities_std_kgm3", low=0.0,
                      low_open=True, scalar_ok=True)
    C.check_density_prior(d_mean, d_std)
    dip_index = C.integers(pc.get("dip_index", []), name="[priors] dip_index")
    sp_index = C.integers(pc.get("sp_index", []), name="[priors] sp_index")
    if dip_index:
        dips = (C.numbers(pc.get("dips_mean_deg"), name="[priors] dips_mean_deg", scalar_ok=True),
                C.numbers(pc.get("dips_std_deg"), name="[priors] dips_std_deg", low=0.0, low_open=True,
                          scalar_ok=True))
    if sp_index:
        spz = (C.numbers(pc.get("sp_z_mean_m"), name="[priors] sp_z_mean_m", scalar_ok=True),
               C.numbers(pc.get("sp_z_std_m"), name="[priors] sp_z_std_m", low=0.0, low_open=True,
                         scalar_ok=True))
    lc = cfg.get("likelihood", {})
    lk = check_choice(lc.get("kind", "hierarchical"), ("gaussian", "hierarchical", "student_t"),
                      name="[likelihood] kind")
    sigma0 = check_number(lc.get("sigma0", 1.0), name="[likelihood] sigma0 (mGal)", low=0.0, low_open=True)
    sigma = lc.get("sigma")
    if sigma is not None:  # its length is checked against the stations by the likelihood
        sigma = C.numbers(sigma, name="[likelihood] sigma (mGal)", low=0.0, low_open=True, scalar_ok=True)
        sigma = sigma[0] if len(sigma) == 1 else sigma
    if lk != "hierarchical" and sigma is None and survey.std is None:
        raise ValueError(f"[likelihood] kind = {lk!r} needs sigma (mGal) or a std column in {st_file}")
    df = check_number(lc.get("df", 4.0), name="[likelihood] df", low=0.0, low_open=True)
    ac = cfg.get("alignment", {})
    ak = check_choice(ac.get("kind", "offset"), ("offset", "reference", "none"), name="[alignment] kind")
    loc0 = ac.get("loc", "data_mean")
    loc0 = float(np.mean(survey.gz)) if loc0 == "data_mean" else check_number(loc0, name="[alignment] loc (mGal)")
    scale = check_number(ac.get("scale", 20.0), name="[alignment] scale (mGal)", low=0.0, low_open=True)
    return _build_config_case(path, ext, name, sp_file, ori_file, survey, kind, slope, resolution, radius, shape,
                              (d_mean, d_std), (dip_index, dips if dip_index else None),
                              (sp_index, spz if sp_index else None), lk, sigma0, sigma, df, ak, loc0, scale,
                              ac.get("reference", "mean"))


def _build_config_case(path, ext, name, sp_file, ori_file, survey, kind, slope, resolution, radius, shape,
                       dens, dips, spz, lk, sigma0, sigma, df, ak, loc0, scale, reference) -> BayesCase:
    """The GemPy model, mesh, forward and Pyro model of :func:`from_config` (values checked)."""
    import contextlib
    import io
    from pathlib import Path

    import gempy as gp

    from ..bayes import (
        CenteredGridForward,
        GaussianLikelihood,
        HierarchicalNoise,
        MeshForward,
        NoAlignment,
        OffsetAlignment,
        PriorSpec,
        ReferenceAlignment,
        StudentTLikelihood,
        make_model,
        normal,
    )

    with contextlib.redirect_stdout(io.StringIO()):
        gm = gp.create_geomodel(
            project_name=name, extent=ext, resolution=None, refinement=1,
            importer_helper=gp.data.ImporterHelper(path_to_surface_points=str(sp_file),
                                                   path_to_orientations=str(ori_file)))
    L = [ext[1] - ext[0], ext[3] - ext[2], ext[5] - ext[4]]
    mesh = PrismMesh.from_tensor(*(np.full(n, l / n) for n, l in zip(shape, L)),
                                 origin=(ext[0], ext[2], ext[4]))
    if kind == "mesh":
        fw = MeshForward(gm, mesh, survey, sigmoid_slope=slope)
    else:  # centered
        fw = CenteredGridForward(gm, survey, resolution=resolution,
                                 radius=radius[0] if len(radius) == 1 else radius, sigmoid_slope=slope)
    pri = PriorSpec(densities=normal(*dens))
    if dips[1] is not None:
        pri.dips, pri.dip_index = normal(*dips[1]), dips[0]
    if spz[1] is not None:
        pri.sp_z, pri.sp_index = normal(*spz[1]), spz[0]
    if lk == "hierarchical":
        lik = HierarchicalNoise(sigma0)
    elif lk == "gaussian":
        lik = GaussianLikelihood(sigma)
    else:  # student_t
        lik = StudentTLikelihood(sigma, df)
    if ak == "offset":
        align = OffsetAlignment(loc0, scale)
    elif ak == "reference":
        align = ReferenceAlignment(reference)
    else:  # none
        align = NoAlignment()
    model = make_model(fw, pri, lik, survey, alignment=align)
    meta = {"config": str(Path(path).resolve()), "extent_m": ext, "unit_names": list(fw.unit_names),
            "n_stations": survey.n_data, "forward": kind, "model_name": name}
    return BayesCase(geo_model=gm, mesh=mesh, survey=survey, model=model, forward=fw, meta=meta)


def tharsis_intrusion_model() -> LoadedGeoModel:
    """The built-in ``--geomodel tharsis-intrusion``: :func:`tharsis_intrusion`'s GemPy model.

    Plutonites (id 1) over host rock (id 2, the basement), in the case's local coordinates.

    Returns
    -------
    LoadedGeoModel
        The GeoModel (dips 10°, the prior means), the prior-mean unit contrasts in kg/m³
        (:data:`THARSIS_DENSITY_MEAN_GCC`: plutonites +230, host rock -370) and the
        origin: the south-west station corner rounded down to 1 km, in UTM metres
        (EPSG:23030), z = 0.
    """
    case = tharsis_intrusion(n_cells=(2, 2, 2), subset=2)  # only the GeoModel is used
    ox, oy = case.meta["origin_xy_m"]
    return LoadedGeoModel(case.geo_model, gcc_to_kgm3(np.asarray(THARSIS_DENSITY_MEAN_GCC, float)),
                          np.array([ox, oy, 0.0]), "tharsis-intrusion",
                          ["GemPy model of gempy_gravinv.cases.bayes.tharsis_intrusion (prior means: "
                           "dips 10 deg, plutonites +230, host rock -370 kg/m3)",
                           "local coordinates: origin at the SW station corner rounded down to 1 km"])
