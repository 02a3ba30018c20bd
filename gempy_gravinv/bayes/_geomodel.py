"""A Bayesian gravity problem from a GemPy ``GeoModel`` as GemPy users build it.

:func:`from_geomodel` reads what the model already holds (the stations of its centered
grid, the unit densities of its ``geophysics_input``, its extent) and turns priors given
by name into a Pyro model; :class:`BayesProblem` runs prior predictive -> NUTS ->
posterior predictive in one call and returns ArviZ ``InferenceData`` with the unit,
orientation and surface-point names as coordinates.

Conventions at the boundary: GemPy densities are absolute g/cm³, converted here to
contrasts in kg/m³ against a stated reference density; GemPy's gravity
(``solutions.gravity``) is the upward component (negative over excess mass), ours is
g_z in mGal positive downward (``gz_convention="gempy"`` flips data given in GemPy's
sign). Dips in degrees, surface-point elevations in metres, z up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._constants import gcc_to_kgm3, gz_from_upward
from .._mesh import PrismMesh, as_prism_mesh
from .._plausible import check_inputs
from .._survey import Survey
from .._validation import as_finite_array, check_choice, check_int, check_number
from ._likelihoods import GaussianLikelihood, HierarchicalNoise, StudentTLikelihood
from ._model import CenteredGridForward, MeshForward
from ._priors import PriorSpec, normal
from ._selection import Selection, parse_prior_values, select_rows
from ._standard import SubsetForward, standard_model

__all__ = ["BayesProblem", "default_mesh", "from_geomodel", "unit_densities_gcc"]

logger = logging.getLogger(__name__)

#: units attribute of each site in the ArviZ output
SITE_UNITS = {"densities": "kg/m³ (contrast)", "dips": "deg", "sp_z": "m", "offset": "mGal",
              "gz_pred": "mGal (positive down)", "obs": "mGal (positive down)", "sigma": "mGal",
              "noise_mu": "ln(mGal)", "noise_tau": "1", "noise_z": "1"}
#: coordinate (dimension) name of each labelled site
SITE_DIMS = {"densities": "unit", "dips": "orientation", "sp_z": "surface_point"}


def unit_densities_gcc(geo_model: Any) -> np.ndarray | None:
    """Absolute unit densities of a GeoModel's ``geophysics_input``, g/cm³, GemPy id order.

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model.

    Returns
    -------
    numpy.ndarray, shape (n_units,), or None
        ``None`` when the model has no ``geophysics_input`` (or no densities in it).
    """
    gi = getattr(geo_model, "geophysics_input", None)
    rho = getattr(gi, "densities", None)
    if rho is None:
        return None
    if torch.is_tensor(rho):
        rho = rho.detach().cpu().numpy()
    return np.asarray(rho, dtype=np.float64).reshape(-1)


def default_mesh(extent, n_cells: int = 2000) -> PrismMesh:
    """A regular prism mesh over a GemPy extent, cells as close to cubes as the budget allows.

    Parameters
    ----------
    extent : sequence of 6 float
        ``(x_min, x_max, y_min, y_max, z_min, z_max)`` in metres (``geo_model.grid.extent``).
    n_cells : int
        Approximate number of cells (at least 2 per axis).

    Returns
    -------
    PrismMesh
        Uniform cells covering exactly the extent (top at ``z_max``).
    """
    ext = np.asarray(extent, dtype=np.float64).reshape(-1)
    if ext.shape != (6,) or not np.all(np.isfinite(ext)) or np.any(ext[1::2] <= ext[0::2]):
        raise ValueError(f"extent must be (xmin, xmax, ymin, ymax, zmin, zmax) with max > min (m), got {ext}")
    n_cells = check_int(n_cells, name="n_cells", minimum=8)
    lengths = ext[1::2] - ext[0::2]
    h = (np.prod(lengths) / n_cells) ** (1.0 / 3.0)
    n = np.maximum(2, np.rint(lengths / h)).astype(int)
    return PrismMesh.from_tensor(*(np.full(k, L / k) for k, L in zip(n, lengths)), origin=tuple(ext[0::2]))


def _stations(geo_model: Any, survey, stations) -> Survey:
    """The survey: given, built from station coordinates, or the model's centered grid."""
    if survey is not None:
        if isinstance(survey, Survey):
            return survey
        if hasattr(survey, "dobs") or hasattr(survey, "source_field") or hasattr(survey, "receiver_locations"):
            return Survey.from_simpeg(survey)  # SimPEG Data or gravity Survey (their sign flipped there)
        raise TypeError(f"survey must be a gempy_gravinv Survey or SimPEG data/survey, got {type(survey).__name__}")
    if stations is not None:
        return Survey(stations)
    cg = getattr(geo_model.grid, "centered_grid", None)
    centers = None if cg is None else getattr(cg, "centers", None)
    if centers is None:
        raise ValueError("no stations: the GeoModel has no centered grid (gp.set_centered_grid); "
                         "give stations=(n, 3) array in metres or survey=Survey(...)")
    return Survey(np.asarray(centers, dtype=np.float64))


@dataclass
class BayesProblem:
    """A GemPy model, its stations and data, and priors by name: ready to sample.

    Built by :func:`from_geomodel`; see there for the meaning of each choice.

    Attributes
    ----------
    geo_model : gempy GeoModel
        The user's model (not modified).
    survey : Survey
        Stations (m) and, once given, g_z (mGal, positive down) and std (mGal).
    mesh : PrismMesh or None
        Cells of the mesh forward (``None`` with GemPy's centered grid).
    forward : MeshForward or CenteredGridForward
        Full-unit forward: contrasts (n_units,) kg/m³ -> g_z mGal.
    unit_names : list of str
        GemPy's units, id order (faults count as units).
    reference_density_gcc : float
        The density (g/cm³) the contrasts are relative to.
    unit_contrasts : numpy.ndarray, shape (n_units,)
        Current contrast of every unit, kg/m³ (the fixed values and the default means).
    density_units : list of str
        Units whose contrast is random; density prior mean and std in ``density_prior``.
    dips, sp_z : Selection
        Random orientations (deg) and surface-point elevations (m).
    noise : str
        ``"gaussian"``, ``"hierarchical"`` or ``"student"``.
    offset_std : float or None
        Prior std of a datum offset (mGal), ``None``: no offset.
    notes : list of str
        What was read and decided (reference density, sign, mesh, stations).
    """

    geo_model: Any
    survey: Survey
    mesh: PrismMesh | None
    forward: Any
    unit_names: list
    reference_density_gcc: float
    unit_contrasts: np.ndarray
    density_units: list
    density_prior: np.ndarray
    dips: Selection
    sp_z: Selection
    noise: str = "gaussian"
    offset_std: float | None = None
    forward_kind: str = "mesh"
    notes: list = field(default_factory=list)

    # ------------------------------------------------------------------ building blocks
    @property
    def free_units(self) -> list[int]:
        """Indices (GemPy id - 1) of the units with a random density."""
        return [self.unit_names.index(u) for u in self.density_units]

    def priors(self) -> PriorSpec:
        """The :class:`PriorSpec` of the random sites (densities of ``density_units`` only)."""
        spec = PriorSpec()
        if self.density_units:
            spec.densities = normal(self.density_prior[:, 0], self.density_prior[:, 1])
        else:
            spec.fixed_densities = [0.0]  # the subset forward ignores it
        if len(self.dips):
            spec.dips, spec.dip_index = normal(self.dips.mean, self.dips.std), list(self.dips.rows)
        if len(self.sp_z):
            spec.sp_z, spec.sp_index = normal(self.sp_z.mean, self.sp_z.std), list(self.sp_z.rows)
        return spec

    def predict(self, densities: dict | None = None, dips: dict | None = None,
                sp_z: dict | None = None) -> np.ndarray:
        """g_z of the model at given parameters (no noise), mGal positive down.

        Parameters
        ----------
        densities : dict, optional
            ``{unit_name: contrast kg/m³}``; other units keep ``unit_contrasts``.
        dips : dict, optional
            ``{surface_name: dip deg}`` applied to every orientation of that surface
            (azimuth and polarity kept).
        sp_z : dict, optional
            ``{surface_name: dz m}``: shift of every surface point of that surface.

        Returns
        -------
        numpy.ndarray, shape (n_data,)
        """
        from ._selection import element_names_of_rows

        rho = self.unit_contrasts.copy()
        for name, v in (densities or {}).items():
            rho[self._unit_index(name)] = float(v)
        params: dict[str, Any] = {}
        tg = self.forward.geomodel
        if dips:
            names = element_names_of_rows(self.geo_model, "orientations")
            rows = [i for i, n in enumerate(names) if n in dips]
            _check_names(dips, names, "orientations")
            params.update(dips=torch.as_tensor([float(dips[names[i]]) for i in rows]), dip_index=rows)
        if sp_z:
            names = element_names_of_rows(self.geo_model, "surface_points")
            rows = [i for i, n in enumerate(names) if n in sp_z]
            _check_names(sp_z, names, "surface_points")
            z = [tg.surface_points_xyz[i, 2] + float(sp_z[names[i]]) for i in rows]
            params.update(sp_z=torch.as_tensor(z), sp_index=rows)
        with torch.no_grad():
            return self.forward(torch.as_tensor(rho), **params).numpy().copy()

    def _unit_index(self, name: str) -> int:
        if name not in self.unit_names:
            raise ValueError(f"unknown unit {name!r}; units of this model (GemPy id order): {self.unit_names}")
        return self.unit_names.index(name)

    def with_data(self, gz, std=None, *, gz_convention: str = "down") -> BayesProblem:
        """The same problem with observed data.

        Parameters
        ----------
        gz : array_like, shape (n_data,)
            Observed gravity in mGal: positive down (``gz_convention="down"``, ours and
            Bouguer maps) or GemPy's ``solutions.gravity`` sign (``"gempy"``, negative
            over excess mass; flipped here).
        std : float or array_like, optional
            Standard deviation of each datum, mGal.
        gz_convention : {"down", "gempy"}
            Sign of ``gz``.

        Returns
        -------
        BayesProblem
        """
        import copy

        check_choice(gz_convention, ("down", "gempy"), name="gz_convention")
        d = np.asarray(gz, dtype=np.float64).reshape(-1)
        if gz_convention == "gempy":
            d = np.asarray(gz_from_upward(d))
        out = copy.copy(self)
        out.survey = self.survey.with_data(d, std)
        out.notes = list(self.notes) + [f"data: {d.size} values, sign {gz_convention!r} -> mGal positive down"]
        return out

    def model(self):
        """The Pyro model of this problem (sites as in :func:`gempy_gravinv.bayes.make_model`).

        The parameters are sampled in standard units (``*_decentered`` sites) and
        recorded in physical units under their usual names; see :func:`~gempy_gravinv.bayes._standard.standard_model`.
        """
        if self.survey.gz is None:
            raise ValueError("no observed data: give gz= to from_geomodel, or use problem.with_data(gz, std)")
        sub = SubsetForward(self.forward, self.unit_contrasts, self.free_units)
        if self.noise == "hierarchical":
            sd = self.survey.std
            s0 = float(np.median(sd)) if sd is not None else 0.1 * float(np.std(self.survey.gz))
            lik = HierarchicalNoise(sigma0=max(s0, 1e-6))
        else:
            if self.survey.std is None:
                raise ValueError(f"noise={self.noise!r} needs the data's std (mGal): give std= "
                                 "or noise='hierarchical'")
            lik = GaussianLikelihood() if self.noise == "gaussian" else StudentTLikelihood()
        off = None
        if self.offset_std is not None:
            off = (float(np.mean(self.survey.gz) - np.mean(self.predict())), float(self.offset_std))
        spec = self.priors()
        spec.unit_names = list(self.density_units) or None
        spec.dip_names = list(self.dips.labels) or None
        spec.point_names = list(self.sp_z.labels) or None
        sub.unit_names = list(self.density_units) or ["fixed"]
        sites = {}
        if self.density_units:
            sites["densities"] = (self.density_prior[:, 0], self.density_prior[:, 1])
        if len(self.dips):
            sites["dips"] = (self.dips.mean, self.dips.std)
        if len(self.sp_z):
            sites["sp_z"] = (self.sp_z.mean, self.sp_z.std)
        return standard_model(sub, spec, sites, lik, self.survey, off)

    # ------------------------------------------------------------------ running
    def run(self, *, method: str = "nuts", chains: int = 2, num_samples: int = 200, warmup: int = 200,
            seed: int = 0, num_prior: int = 50, progress: bool = False, **kwargs) -> Any:
        """Prior predictive -> NUTS (or SVI) -> posterior predictive, as ArviZ InferenceData.

        Gradients are switched on for the run (GemPy's PyTorch backend may have left them
        off process-wide) and the grad mode is restored afterwards.

        Parameters
        ----------
        method : {"nuts", "svi"}
            Sampler (:func:`~gempy_gravinv.bayes.run_nuts` or :func:`~gempy_gravinv.bayes.run_svi`).
        chains, num_samples, warmup : int
            NUTS chains, kept draws and warmup steps per chain (SVI: ``num_samples`` draws).
        seed : int
            Seed of everything.
        num_prior : int
            Prior predictive draws.
        progress : bool
            Progress bars.
        **kwargs
            Passed to the runner (e.g. ``max_tree_depth``, ``full_mass``, ``steps``).

        Returns
        -------
        arviz.InferenceData
            ``densities`` (coordinate ``unit`` = unit names, kg/m³ contrasts), ``dips``
            (``orientation``, deg), ``sp_z`` (``surface_point``, m), ``offset`` (mGal),
            ``gz_pred``/``obs`` (``station``, mGal positive down), groups ``prior``,
            ``prior_predictive``, ``posterior_predictive``, ``log_likelihood``,
            ``observed_data``, ``sample_stats``; ``posterior.attrs`` hold the reference
            density (g/cm³), the fixed contrasts and the notes.
        """
        from ._runners import run_nuts, run_svi
        from ._state import sampling_state

        check_choice(method, ("nuts", "svi"), name="method")
        with sampling_state():  # GemPy may have switched gradients off or patched torch; restored after
            model = self.model()
            if method == "nuts":
                idata = run_nuts(model, chains=chains, num_samples=num_samples, warmup=warmup, seed=seed,
                                 num_prior=num_prior, progress=progress, **kwargs)
            else:
                idata, _, _ = run_svi(model, num_samples=num_samples, seed=seed, num_prior=num_prior,
                                      progress=progress, **kwargs)
        return self.label(idata)

    def label(self, idata) -> Any:
        """Name the coordinates (units, orientations, surface points) and add units attributes.

        Parameters
        ----------
        idata : arviz.InferenceData
            Output of a runner on :meth:`model`.

        Returns
        -------
        arviz.InferenceData
            The same object, relabelled in place.
        """
        labels = {"densities": list(self.density_units), "dips": list(self.dips.labels),
                  "sp_z": list(self.sp_z.labels)}
        for gname in idata.groups():
            grp = idata[gname]
            grp = grp.drop_vars([v for v in grp.data_vars if str(v).endswith("_decentered")])
            grp = grp.drop_dims([d for d in grp.dims if "_decentered" in str(d)], errors="ignore")
            for var, dim in SITE_DIMS.items():
                if var not in grp.data_vars or not labels[var]:
                    continue
                vdim = grp[var].dims[-1]
                if grp.sizes[vdim] != len(labels[var]):
                    continue
                if vdim != dim:
                    grp = grp.rename({vdim: dim})
                grp = grp.assign_coords({dim: labels[var]})
            for var in grp.data_vars:
                if var in SITE_UNITS and "units" not in grp[var].attrs:
                    grp[var].attrs["units"] = SITE_UNITS[var]
            setattr(idata, gname, grp)  # idata[g] = ... would list the group twice
        post = idata.posterior
        post.attrs.update({
            "reference_density_gcc": float(self.reference_density_gcc),
            "unit_names": ",".join(self.unit_names),
            "unit_contrasts_kgm3": np.asarray(self.unit_contrasts, dtype=np.float64),
            "forward": self.forward_kind,
            "sign_convention": "g_z positive downward (excess mass gives positive values)",
            "notes": " | ".join(self.notes),
        })
        if len(self.dips):
            post.attrs["dip_index"] = np.asarray(self.dips.rows, dtype=np.int64)
        if len(self.sp_z):
            post.attrs["sp_index"] = np.asarray(self.sp_z.rows, dtype=np.int64)
        return idata


def _check_names(given: dict, names: list[str], table: str) -> None:
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"no {table.replace('_', ' ')} on surface(s) {unknown}; known: {sorted(set(names))}")


def from_geomodel(geo_model: Any, *, gz=None, std=None, gz_convention: str = "down", survey=None,
                  stations=None, densities: dict | None = None, dips=None, sp_z=None,
                  reference_density: float | None = None, unit_densities=None, mesh=None,
                  n_cells: int = 2000, forward: str = "mesh", noise: str = "gaussian",
                  offset: float | None = None, sigmoid_slope: float = 100.0) -> BayesProblem:
    """A Bayesian gravity problem from a GemPy GeoModel, priors given by name.

    Parameters
    ----------
    geo_model : gempy GeoModel
        The structural model as built in GemPy (not modified). Its centered grid
        (``gp.set_centered_grid``) gives the stations unless ``survey``/``stations`` are
        given; its ``geophysics_input.densities`` (absolute g/cm³, GemPy id order, faults
        included) give the unit densities unless ``unit_densities`` is given.
    gz : array_like, shape (n_data,), optional
        Observed gravity, mGal (sign: ``gz_convention``). Can be given later
        (:meth:`BayesProblem.with_data`); a ``survey`` with data needs none.
    std : float or array_like, optional
        Standard deviation of the data, mGal.
    gz_convention : {"down", "gempy"}
        ``"down"``: g_z positive downward (ours, Bouguer maps); ``"gempy"``: GemPy's
        ``solutions.gravity`` (negative over excess mass), flipped on reading.
    survey : Survey or SimPEG Data / gravity Survey, optional
        Stations (and data); SimPEG's sign and units are converted.
    stations : array_like, shape (n, 3), optional
        Station coordinates, m (z up).
    densities : dict, optional
        ``{unit_name: std or (mean, std)}``, kg/m³: units whose density contrast is
        random (mean: the model's contrast). Every other unit stays fixed.
    dips : dict or (mask, prior), optional
        ``{surface_name: std or (mean, std)}`` in degrees for every orientation of that
        surface, or ``(boolean mask over orientations_copy rows, std or (mean, std))``.
    sp_z : dict or (mask, prior), optional
        The same for surface-point elevations, metres.
    reference_density : float, optional
        g/cm³ the contrasts are taken against. Default: the basement's density (the
        last unit), so the basement's contrast is zero.
    unit_densities : array_like, shape (n_units,), optional
        Absolute densities in g/cm³ (GemPy id order) instead of ``geophysics_input``.
    mesh : PrismMesh or discretize mesh, optional
        Cells of the mesh forward; default :func:`default_mesh` over the model extent.
    n_cells : int
        Cell budget of the default mesh.
    forward : {"mesh", "centered"}
        Our prism operator on the mesh (default) or GemPy's centered-grid gravity
        (resolution and radius of the model's centered grid).
    noise : {"gaussian", "hierarchical", "student"}
        Known Gaussian noise (``std``), hierarchical per-station noise, or Student-t.
    offset : float, optional
        Prior std (mGal) of a free datum offset added to every prediction; ``None``
        (default): the data are anomalies of the same reference (no offset).
    sigmoid_slope : float
        Sharpness of GemPy's soft lithology used for gradients.

    Returns
    -------
    BayesProblem
        ``.run()`` samples it; ``.predict()`` evaluates it; ``.notes`` says what was read.

    Raises
    ------
    ValueError
        Unknown unit or surface names (the message lists the known ones), densities
        missing or of the wrong length, no stations, a free offset together with random
        densities for every unit (not identifiable: a uniform shift of every contrast
        acts like the offset), or a bad setting.
    """
    from .._constants import check_gcc_density

    check_choice(forward, ("mesh", "centered"), name="forward")
    check_choice(noise, ("gaussian", "hierarchical", "student"), name="noise")
    check_choice(gz_convention, ("down", "gempy"), name="gz_convention")
    check_number(offset, name="offset (prior std, mGal)", low=0.0, low_open=True, allow_none=True)
    notes: list[str] = []
    names = [str(n) for n in geo_model.structural_frame.elements_names]
    rho_abs = (unit_densities_gcc(geo_model) if unit_densities is None
               else as_finite_array(unit_densities, name="unit_densities (g/cm³)").reshape(-1))
    if rho_abs is None:
        raise ValueError("the GeoModel has no geophysics_input densities: give unit_densities= "
                         f"(absolute g/cm³ for units {names})")
    if rho_abs.size != len(names):
        raise ValueError(f"{rho_abs.size} unit densities for {len(names)} units {names} (GemPy id order, "
                         "faults count as units)")
    check_gcc_density(rho_abs, name="unit densities (g/cm³)")
    src = "geophysics_input" if unit_densities is None else "unit_densities"
    ref = float(rho_abs[-1]) if reference_density is None else float(reference_density)
    check_gcc_density(np.asarray([ref]), name="reference_density (g/cm³)")
    contrasts = np.asarray(gcc_to_kgm3(rho_abs - ref), dtype=np.float64)
    notes.append(f"densities from {src} (g/cm³) {dict(zip(names, rho_abs.round(4).tolist()))}; contrasts in kg/m³ "
                 f"against reference {ref:g} g/cm³" + (" (the basement's)" if reference_density is None else ""))

    sv = _stations(geo_model, survey, stations)
    notes.append(f"{sv.n_data} stations from " + ("the survey" if survey is not None else
                                                 "stations=" if stations is not None else "the centered grid"))
    if gz is not None:
        d = np.asarray(gz, dtype=np.float64).reshape(-1)
        sv = sv.with_data(np.asarray(gz_from_upward(d)) if gz_convention == "gempy" else d, std)
    elif std is not None and sv.gz is not None:
        sv = sv.with_data(sv.gz, std)

    dens_units = list(densities or {})
    prior = np.zeros((len(dens_units), 2))
    for k, u in enumerate(dens_units):
        if u not in names:
            raise ValueError(f"density prior for unknown unit {u!r}; units (GemPy id order): {names}")
        prior[k] = parse_prior_values(densities[u], contrasts[names.index(u)], f"density of {u} (kg/m³)")
    if offset is not None and len(dens_units) == len(names):
        raise ValueError("a free datum offset with random densities for every unit is not identifiable (a uniform "
                         "shift of all contrasts acts like the offset): leave the reference unit out of densities=")

    m = None
    if forward == "mesh":
        m = as_prism_mesh(mesh) if mesh is not None else default_mesh(geo_model.grid.extent, n_cells)
        if sv.gz is not None:  # data no contrast in the mesh can explain: another unit than mGal?
            check_inputs(sv.gz, sv.locations, m)
        fw = MeshForward(geo_model, m, sv, sigmoid_slope=sigmoid_slope)
        notes.append(f"mesh forward: {m.n_cells} cells" + ("" if mesh is not None else " over the model extent"))
    else:
        cg = getattr(geo_model.grid, "centered_grid", None)
        res = [int(v) for v in np.asarray(cg.resolution)] if cg is not None else [10, 10, 10]
        rad = np.asarray(cg.radius, dtype=float).tolist() if cg is not None else 1000.0
        fw = CenteredGridForward(geo_model, sv, resolution=res, radius=rad, sigmoid_slope=sigmoid_slope)
        notes.append(f"GemPy centered-grid forward: resolution {res}, radius {rad} m")
    tg = fw.geomodel
    dsel = select_rows(geo_model, "orientations", dips, tg.dips_deg, "deg")
    ssel = select_rows(geo_model, "surface_points", sp_z, tg.surface_points_xyz[:, 2], "m")
    if not (dens_units or len(dsel) or len(ssel)):
        raise ValueError("nothing is random: give densities=, dips= or sp_z= priors by name")
    for lab, r in zip(dsel.labels, dsel.rows):
        if tg.azimuths_deg is not None and abs(tg.dips_deg[r]) < 1e-9:
            notes.append(f"orientation {lab} is flat: its dip tilts towards azimuth {tg.azimuths_deg[r]:.0f} deg")
    for n in notes:
        logger.info("from_geomodel: %s", n)
    return BayesProblem(geo_model=geo_model, survey=sv, mesh=m, forward=fw, unit_names=names,
                        reference_density_gcc=ref, unit_contrasts=contrasts, density_units=dens_units,
                        density_prior=prior, dips=dsel, sp_z=ssel, noise=noise, offset_std=offset,
                        forward_kind=forward, notes=notes)
