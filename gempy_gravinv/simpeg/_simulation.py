"""A drop-in SimPEG gravity simulation running on :class:`gempy_gravinv.GravityOperator`.

SimPEG's conventions hold on this side of the boundary: the model (through ``rhoMap``)
is a density (contrast) in **g/cm³**; the data are SimPEG's components: ``gx``, ``gy``,
``gz`` in **mGal** (``gz`` the **upward** component, negative above excess mass) and the
gradient tensor ``gxx`` … ``gzz``, ``guv`` in **Eötvös** (z up). Inside, the operators
work in our conventions (kg/m³; g_z positive downward, the other components as SimPEG's,
:mod:`gempy_gravinv._components`); the conversions happen here and nowhere else.

The sensitivity in SimPEG's units is ``J = S · G · dρ/dm`` with ``G`` our operator of
each component (unit per kg/m³) and ``S`` a scalar per component: ``gcc_to_kgm3`` (×1000)
times the component's sign (−1 for ``gz``, +1 otherwise). ``S`` is self-adjoint, so
``Jᵀ v = (dρ/dm)ᵀ · Σ_c S_c · G_cᵀ v_c``.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

# absolute imports: this package is ``gempy_gravinv.simpeg`` but ``simpeg`` below is
# the real SimPEG (Python 3 imports are absolute).
import simpeg
import torch
from simpeg import props
from simpeg.simulation import BaseSimulation
from simpeg.utils import mkvc, validate_active_indices

from .._components import SIMPEG_SIGN
from .._constants import gcc_to_kgm3
from .._device import resolve_device
from .._mesh import PrismMesh
from .._operator import GravityOperator
from .._survey import Survey
from . import _options, _storage

__all__ = ["Simulation3DIntegral"]

log = logging.getLogger(__name__)

_NP_TO_TORCH = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}
_UNSET = object()


def _torch_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    try:
        return _NP_TO_TORCH[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"dtype must be float32 or float64 (numpy or torch), got {dtype!r}") from None


def _scale(component: str) -> float:
    """Our value per kg/m³ -> SimPEG's per g/cm³ for one component: ±1000 (−1000 for gz)."""
    return float(gcc_to_kgm3(SIMPEG_SIGN[component]))


class Simulation3DIntegral(BaseSimulation):
    r"""Gravity integral simulation on our kernels, every component; a drop-in for SimPEG's.

    Swap it for ``simpeg.potential_fields.gravity.simulation.Simulation3DIntegral`` in an
    existing SimPEG workflow (data misfits, regularisations, directives, optimisers, meta
    simulations): it subclasses :class:`simpeg.simulation.BaseSimulation`, declares the
    invertible property ``rho`` (``rhoMap``, ``rhoDeriv``) and provides :meth:`fields`,
    :meth:`dpred`, :meth:`Jvec`, :meth:`Jtvec`, :meth:`getJtJdiag`, :meth:`getJ` and
    :attr:`G`, as NumPy arrays on the host.

    Units and signs are SimPEG's: density (contrast) in g/cm³; ``gx``, ``gy``, ``gz`` in
    mGal (``gz`` is the **upward** component, negative above excess mass); ``gxx``,
    ``gxy``, ``gxz``, ``gyy``, ``gyz``, ``gzz``, ``guv`` in Eötvös (z up; ``gzz`` positive
    above excess mass). The data vector is ordered as SimPEG orders it (receiver by
    receiver, the components of each location consecutive). The products run on
    :class:`gempy_gravinv.GravityOperator` (closed-form prisms with node sharing, on CPU
    or CUDA), one per component, always computed in ``dtype`` (float64 by default).

    Parameters
    ----------
    mesh : discretize.TensorMesh or discretize.TreeMesh
        3-D mesh, metres, z up.
    survey : simpeg.potential_fields.gravity.survey.Survey
        Receivers with any of the components above (an unknown component is refused
        when the survey is set).
    active_cells : array_like of bool or int, optional
        Cells that carry density (all by default). Stations must not lie strictly
        inside an active cell (a clear ``ValueError`` says which one does); stations far
        from or below the mesh only warn.
    rho : array_like, optional
        Density on the active cells, g/cm³ (when no ``rhoMap`` is used).
    rhoMap : simpeg.maps.IdentityMap, optional
        Mapping from the model to density on the active cells (g/cm³).
    store_sensitivities : {"ram", "disk", "forward_only"}
        As SimPEG: ``"ram"`` builds and keeps the sensitivity ``G`` (nD x nC, in
        ``sensitivity_dtype``); ``"disk"`` writes it to a memory-mapped file at
        ``sensitivity_path`` (a file with ``engine="choclo"``, ``sensitivity.npy`` in
        that folder with ``engine="geoana"``); ``"forward_only"`` never builds it and
        recomputes kernels at every product (``G`` is then a SciPy ``LinearOperator``;
        with ``engine="geoana"``, SimPEG's default, ``G`` and ``getJ`` raise
        ``NotImplementedError`` as SimPEG's do, while every product still works).
        ``"matrix_free"`` is an alias of ``"forward_only"``.
    device : str
        ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"`` or ``"auto"``. Inputs and outputs
        stay NumPy on the host either way.
    dtype : numpy or torch float dtype
        Precision the kernels are computed in (default float64). float32 is faster on
        GPUs but loses accuracy far from prisms.
    sensitivity_dtype : {np.float32, np.float64}
        Storage of ``G`` with ``"ram"``/``"disk"`` (SimPEG's default float32: half the
        memory, 1e-7 relative rounding of each entry; the entries are computed in float64).
        Products with the stored ``G`` run as SimPEG runs them: the vector is cast to
        ``sensitivity_dtype`` and multiplied in it (float32 products return float32, with
        float32 sums; on a GPU, where G stays on the device, they run in ``dtype``);
        ``getJtJdiag`` sums in float64. Reports ``np.float64`` with
        ``"forward_only"``, as SimPEG does.
    product_dtype : None or np.float64
        None (default): SimPEG's products, in ``sensitivity_dtype``. ``np.float64``: the
        products with a float32 ``G`` sum its entries in float64 over row blocks (float64
        results whose error does not grow with the number of cells).
    engine : {"geoana", "choclo"}
        Accepted and checked as SimPEG checks it (and it decides where ``"disk"`` puts
        the file); the products always run on our kernels.
    numba_parallel : bool
        Checked (a bool) and ignored.
    n_processes : int or None
        Checked (an int >= 1 or None) and ignored; with ``engine="choclo"`` a given value
        warns and becomes None, as in SimPEG.
    sensitivity_path : str, optional
        Where ``"disk"`` stores G (default ``./sensitivity``).
    ind_active : array_like, optional
        Deprecated alias of ``active_cells`` (removed from SimPEG in 0.24); accepted with a
        ``FutureWarning``.
    method, kernel, quadrature, memory_budget, compile :
        Passed to :class:`~gempy_gravinv.GravityOperator` (``kernel="point"`` switches to
        Gauss–Legendre point masses, approximate near stations).
    **kwargs
        Passed to :class:`simpeg.simulation.BaseSimulation` (``counter``, ``verbose``...).
        ``LinearSimulation``'s ``model_map``, ``linear_model`` and ``G`` are refused with
        a message naming ``rhoMap``.

    Notes
    -----
    Fork safety: a worker forked by SimPEG's multiprocessing meta simulations runs its
    products eagerly on one torch thread (see :mod:`gempy_gravinv._runtime`).

    Examples
    --------
    >>> import numpy as np, discretize
    >>> from simpeg import maps
    >>> from simpeg.potential_fields import gravity
    >>> from gempy_gravinv.simpeg import Simulation3DIntegral
    >>> mesh = discretize.TensorMesh([[(50.0, 4)], [(50.0, 4)], [(50.0, 2)]], origin=(0, 0, -100))
    >>> rx = gravity.receivers.Point(np.array([[100.0, 100.0, 1.0]]), components=["gz", "gzz"])
    >>> survey = gravity.survey.Survey(gravity.sources.SourceField([rx]))
    >>> sim = Simulation3DIntegral(mesh, survey=survey, rhoMap=maps.IdentityMap(nP=mesh.n_cells))
    >>> gz, gzz = sim.dpred(np.full(mesh.n_cells, 0.3))
    >>> bool(gz < 0 and gzz > 0)  # upward gz negative, gzz positive over excess mass
    True
    """

    rho, rhoMap, rhoDeriv = props.Invertible("Density (contrast), g/cm³")

    def __init__(self, mesh, survey=None, active_cells=None, rho=None, rhoMap=None,
                 store_sensitivities: str = "ram", device: str = "cpu", dtype: Any = np.float64, *,
                 sensitivity_dtype: Any = np.float32, engine: str = "geoana", numba_parallel: bool = True,
                 n_processes: Any = _UNSET, method: str = "nodes", kernel: str = "prism", quadrature: int = 2,
                 memory_budget: int | None = None, compile: bool | str = "auto", ind_active=None,
                 product_dtype: Any = None, **kwargs) -> None:
        import discretize

        _options.refuse_linear_simulation_kwargs(kwargs)
        if ind_active is not None:
            if active_cells is not None:
                raise TypeError("pass either active_cells or the deprecated ind_active, not both")
            warnings.warn("'ind_active' is deprecated (removed from SimPEG in 0.24): use 'active_cells'",
                          FutureWarning, stacklevel=2)
            active_cells = ind_active
        if not isinstance(mesh, (discretize.TensorMesh, discretize.TreeMesh)) or mesh.dim != 3:
            raise TypeError(f"mesh must be a 3-D discretize TensorMesh or TreeMesh, got {type(mesh).__name__}")
        self._store = _options.check_store(store_sensitivities)
        self.sensitivity_dtype = sensitivity_dtype
        self._product_dtype = _options.check_product_dtype(product_dtype)
        self._torch_dtype = _torch_dtype(dtype)
        self.engine = engine
        self.numba_parallel = numba_parallel
        self._mesh = mesh
        if active_cells is None:
            active_cells = np.ones(mesh.n_cells, dtype=bool)
        else:
            active_cells = validate_active_indices("active_cells", active_cells, mesh.n_cells)
        self._active_cells = active_cells
        self.nC = int(np.sum(active_cells))
        self.device = device
        self.method = method
        self.kernel = kernel
        self.quadrature = quadrature
        self.memory_budget = memory_budget
        self.compile = compile
        self._ops: dict | None = None
        super().__init__(survey=survey, **kwargs)
        given = n_processes is not _UNSET
        self._n_processes = _options.check_n_processes(1 if not given else n_processes, engine, given)
        _options.check_sensitivity_path(self.sensitivity_path, self.engine, self._store)
        self.rho = rho
        self.rhoMap = rhoMap

    # ------------------------------------------------------------------ options (SimPEG's checks)
    @property
    def store_sensitivities(self) -> str:
        """``"ram"``, ``"disk"`` or ``"forward_only"`` (``"matrix_free"`` reads as given)."""
        return self._store

    @store_sensitivities.setter
    def store_sensitivities(self, value):
        self._store = _options.check_store(value)
        self._clear_operator()

    @property
    def _forward_only(self) -> bool:
        return self._store in ("forward_only", "matrix_free")

    @property
    def sensitivity_dtype(self):
        """Storage dtype of ``G``: ``np.float32`` or ``np.float64`` (``np.float64`` when forward only)."""
        if self._forward_only:
            return np.float64
        return self._sensitivity_dtype

    @sensitivity_dtype.setter
    def sensitivity_dtype(self, value):
        self._sensitivity_dtype = _options.check_sensitivity_dtype(value)
        if hasattr(self, "_G"):
            del self._G

    @property
    def engine(self) -> str:
        """SimPEG's engine name (checked; our kernels run either way)."""
        return self._engine

    @engine.setter
    def engine(self, value):
        self._engine = _options.check_engine(value)

    @property
    def numba_parallel(self) -> bool:
        """Checked as SimPEG checks it (a bool); ignored."""
        return self._numba_parallel

    @numba_parallel.setter
    def numba_parallel(self, value):
        self._numba_parallel = _options.check_numba_parallel(value)

    @property
    def n_processes(self):
        """Checked as SimPEG checks it (None or an int >= 1); ignored."""
        return self._n_processes

    @n_processes.setter
    def n_processes(self, value):
        self._n_processes = _options.check_n_processes(value, self.engine, False)

    # ------------------------------------------------------------------ properties
    @property
    def mesh(self):
        """The discretize mesh (read-only)."""
        return self._mesh

    @property
    def active_cells(self) -> np.ndarray:
        """Boolean mask of the active cells of :attr:`mesh`."""
        return self._active_cells

    @property
    def ind_active(self) -> np.ndarray:
        """Deprecated alias of :attr:`active_cells`."""
        warnings.warn("'ind_active' is deprecated: use 'active_cells'", FutureWarning, stacklevel=2)
        return self._active_cells

    @property
    def survey(self):
        """The SimPEG gravity survey; setting it checks its components and drops the operators."""
        return self._survey

    @survey.setter
    def survey(self, value):
        if value is not None and hasattr(value, "source_field"):
            _storage.component_rows(value)  # refuse an unknown component now, not at the first dpred
        BaseSimulation.survey.fset(self, value)
        self._clear_operator()

    def _clear_operator(self) -> None:
        self._ops = None
        for name in ("_G", "_gtg_diagonal", "_weights_sha256"):
            if hasattr(self, name):
                delattr(self, name)

    @property
    def operators(self) -> dict:
        """``component -> (rows, GravityOperator)``: our operator of each component (our units), built on first use."""
        if self._ops is None:
            if self.survey is None:
                raise AttributeError("the simulation has no survey: set simulation.survey first")
            prisms = PrismMesh.from_discretize(self.mesh, active_cells=self.active_cells)
            # as SimPEG: receivers anywhere (inside cells too: borehole data), odd places warned about
            prisms.check_stations(self.survey.receiver_locations, outside="warn", inside="warn")
            # "ram"/"disk" on the host store G as a NumPy array here; on a GPU the operators keep it
            store = "dense" if not self._forward_only and not self._host else "matrix_free"
            self._ops = {}
            for comp, (rows, loc) in _storage.component_rows(self.survey).items():
                op = GravityOperator(prisms, Survey(loc), device=self.device, dtype=self._torch_dtype,
                                     store=store, method=self.method, kernel=self.kernel,
                                     quadrature=self.quadrature, memory_budget=self.memory_budget,
                                     compile=self.compile, component=comp, check_stations=False)
                self._ops[comp] = (rows, op)
        return self._ops

    @property
    def operator(self) -> GravityOperator:
        """The :class:`~gempy_gravinv.GravityOperator` of a single-component survey (our units)."""
        ops = self.operators
        if len(ops) != 1:
            raise AttributeError(f"the survey has {len(ops)} components ({', '.join(ops)}): use .operators")
        return next(iter(ops.values()))[1]

    @property
    def _host(self) -> bool:
        return self.operator_device.type == "cpu"

    @property
    def operator_device(self) -> torch.device:
        """The torch device the operators run on."""
        return resolve_device(self.device)

    def _stored_G(self) -> np.ndarray | None:
        """G in SimPEG's units (``sensitivity_dtype``, RAM or memmap) for ``"ram"``/``"disk"``, else None."""
        if self._forward_only:
            return None
        if getattr(self, "_G", None) is None:
            path = _storage.sensitivity_file(self.sensitivity_path, self.engine)
            ops = {comp: (rows, op, _scale(comp)) for comp, (rows, op) in self.operators.items()}
            G = _storage.build((self.survey.nD, self.nC), self.sensitivity_dtype, self._store, path, ops)
            self._G = G
        return self._G

    # ------------------------------------------------------------------ boundary
    def _apply_G(self, rho_gcc) -> np.ndarray:
        """G·ρ in SimPEG's units: ρ (nC,) g/cm³ -> data (nD,); a stored G's dtype (SimPEG's rule), else float64."""
        rho = np.asarray(rho_gcc, dtype=np.float64)
        if self._host:
            G = self._stored_G()
            if G is not None:
                return _storage.matvec(G, rho, self._product_dtype)
        out = np.empty(self.survey.nD, dtype=np.float64)
        v = torch.as_tensor(np.ascontiguousarray(rho))
        for comp, (rows, op) in self.operators.items():
            out[rows] = op.forward(v).to(device="cpu", dtype=torch.float64).numpy() * _scale(comp)
        return out

    def _apply_Gt(self, v) -> np.ndarray:
        """Gᵀ·v in SimPEG's units: v (nD,) data space -> (nC,) (g/cm³ space); dtype as :meth:`_apply_G`."""
        v = np.asarray(v, dtype=np.float64)
        if self._host:
            G = self._stored_G()
            if G is not None:
                return _storage.rmatvec(G, v, self._product_dtype)
        out = np.zeros(self.nC, dtype=np.float64)
        for comp, (rows, op) in self.operators.items():
            r = torch.as_tensor(np.ascontiguousarray(v[rows]))
            out += op.adjoint(r).to(device="cpu", dtype=torch.float64).numpy() * _scale(comp)
        return out

    # ------------------------------------------------------------------ SimPEG API
    def fields(self, m=None) -> np.ndarray:
        """Forward-model the survey's components at the receivers (SimPEG's data order).

        Parameters
        ----------
        m : (n_param,) numpy.ndarray, optional
            Model; mapped to density (g/cm³) by ``rhoMap``. The current model if omitted.

        Returns
        -------
        (nD,) numpy.ndarray
            mGal (``gx``, ``gy``, upward ``gz``: negative above excess mass) or Eötvös
            (gradients); float64, or float32 from a stored float32 ``G`` (SimPEG's
            ``G @ rho.astype(sensitivity_dtype)``; see ``product_dtype``).
        """
        if m is not None:
            self.model = m
        if self.rho is None:
            raise ValueError("no density: set rho (g/cm³) or rhoMap and a model")
        rho = np.asarray(self.rho, dtype=np.float64)
        if rho.shape != (self.nC,):
            raise ValueError(f"density has shape {rho.shape}, expected ({self.nC},) on the active cells")
        return self._apply_G(rho)

    def dpred(self, m=None, f=None) -> np.ndarray:
        """Predicted data (SimPEG's units and order) for model ``m``, or the fields ``f`` given.

        Parameters
        ----------
        m : (n_param,) numpy.ndarray, optional
            Model (density g/cm³ through ``rhoMap``).
        f : (nD,) numpy.ndarray, optional
            Fields from :meth:`fields`; returned as they are.

        Returns
        -------
        (nD,) numpy.ndarray
            mGal (accelerations, ``gz`` upward) or Eötvös (gradients).
        """
        if self.survey is None:
            raise AttributeError("The survey has not yet been set and is required to compute data. "
                                 "Please set the survey for the simulation: simulation.survey = survey")
        if m is not None:
            self.model = m
        if f is not None:
            return np.asarray(f)
        return self.fields(self.model)

    def Jvec(self, m, v, f=None) -> np.ndarray:
        """J·v: sensitivity (upward mGal per model unit) times a model-space vector.

        Parameters
        ----------
        m : (n_param,) numpy.ndarray
            Model at which ``rhoDeriv`` is evaluated.
        v : (n_param,) numpy.ndarray
            Model perturbation.
        f : ignored

        Returns
        -------
        (nD,) numpy.ndarray
            Upward ``gz`` perturbation, mGal.
        """
        self.model = m
        dmu_dm_v = self.rhoDeriv @ v
        return self._apply_G(mkvc(np.asarray(dmu_dm_v)))

    def Jtvec(self, m, v, f=None) -> np.ndarray:
        """Jᵀ·v: adjoint of :meth:`Jvec` (data space -> model space).

        Parameters
        ----------
        m : (n_param,) numpy.ndarray
            Model at which ``rhoDeriv`` is evaluated.
        v : (nD,) numpy.ndarray
            Data-space vector (upward mGal space).
        f : ignored

        Returns
        -------
        (n_param,) numpy.ndarray
        """
        self.model = m
        gtv = self._apply_Gt(mkvc(np.asarray(v)))
        return np.asarray(self.rhoDeriv.T @ gtv)

    def getJ(self, m, f=None):
        """The sensitivity ``G · dρ/dm``: an array (stored modes) or a SciPy ``LinearOperator`` (forward only).

        Parameters
        ----------
        m : (n_param,) numpy.ndarray
        f : ignored

        Returns
        -------
        (nD, n_param) numpy.ndarray or scipy.sparse.linalg.LinearOperator
            Data units (mGal or Eötvös) per model unit.
        """
        from scipy.sparse.linalg import LinearOperator, aslinearoperator

        self.model = m
        G = self.G
        if isinstance(G, LinearOperator):
            return G @ aslinearoperator(self.rhoDeriv)
        return G @ self.rhoDeriv

    @property
    def G(self):
        """Sensitivity of the active cells (nD, nC), SimPEG's units per g/cm³.

        ``"ram"``: a NumPy array in ``sensitivity_dtype`` (do not modify it); ``"disk"``:
        a ``numpy.memmap`` on ``sensitivity_path``; ``"forward_only"``: a SciPy
        ``LinearOperator`` (float64 products, nothing stored). On a GPU, the stored modes
        keep G on the device and this is a host copy made on first access.
        """
        from scipy.sparse.linalg import LinearOperator

        if self._forward_only and self.engine == "geoana":
            raise NotImplementedError(
                'Accessing matrix G with store_sensitivities="forward_only" and engine="geoana" hasn\'t been '
                'implemented yet. Choose store_sensitivities="ram" or "disk", or another engine, like "choclo".'
                " (SimPEG's behaviour, kept for drop-in fidelity: this simulation computes the same products "
                'with either engine; engine="choclo" gives G as a LinearOperator.)')
        if self._forward_only:
            return LinearOperator((self.survey.nD, self.nC), dtype=np.float64,
                                  matvec=lambda x: self._apply_G(mkvc(x)),
                                  rmatvec=lambda y: self._apply_Gt(mkvc(y)))
        return self._stored_G()

    def getJtJdiag(self, m, W=None, f=None) -> np.ndarray:
        r"""Diagonal of :math:`\mathbf{J}^T \mathbf{W}^T \mathbf{W} \mathbf{J}`, as SimPEG computes it.

        Parameters
        ----------
        m : (n_param,) numpy.ndarray
            Model at which ``rhoDeriv`` is evaluated.
        W : (nD, nD) diagonal matrix, optional
            Square roots of the data weights (``L2DataMisfit.W``); identity if omitted.
        f : ignored

        Returns
        -------
        (n_param,) numpy.ndarray
            (data units per model unit)² times the weights, float64.

        Notes
        -----
        Caches ``diag(Gᵀ WᵀW G)`` with the sha256 of the weights (as SimPEG does), so the
        directives that call it at every iteration with the same ``W`` pay once. Forward
        only, it is accumulated from kernel blocks without storing G.
        """
        self.model = m
        weights = W.diagonal() ** 2 if W is not None else np.ones(self.survey.nD, dtype=np.float64)
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        sha = hashlib.sha256(weights)
        cached = getattr(self, "_weights_sha256", None)
        if getattr(self, "_gtg_diagonal", None) is None or cached is None or cached.digest() != sha.digest():
            G = self._stored_G() if self._host else None
            if G is not None:  # already in SimPEG's units
                self._gtg_diagonal = _storage.weighted_colsum_sq(G, weights)
            else:
                gtg = np.zeros(self.nC, dtype=np.float64)
                for comp, (rows, op) in self.operators.items():
                    jtj = op.jtj_diag(torch.as_tensor(np.sqrt(weights[rows])))
                    gtg += jtj.to(device="cpu", dtype=torch.float64).numpy() * _scale(comp) ** 2
                self._gtg_diagonal = gtg
            self._weights_sha256 = sha
        return _deriv_weighted_colsum(self.rhoDeriv, self._gtg_diagonal)

    @property
    def _delete_on_model_update(self):
        # the forward is linear in rho: nothing model-dependent is cached
        return super()._delete_on_model_update

    def __repr__(self) -> str:
        op = "not built" if self._ops is None else ", ".join(repr(o) for _, o in self._ops.values())
        nd = None if self.survey is None else self.survey.nD
        return (f"gempy_gravinv.simpeg.Simulation3DIntegral(nC={self.nC}, nD={nd}, "
                f"store_sensitivities={self.store_sensitivities!r}, device={self.device!r}, operators: {op})")


def _deriv_weighted_colsum(deriv, gtg: np.ndarray) -> np.ndarray:
    """Σ_i gtg_i · (dρ/dm)_ij² — the mapped diagonal, as SimPEG's gravity simulation forms it."""
    from simpeg.utils import Identity

    if isinstance(deriv, Identity):
        return np.asarray(gtg, dtype=np.float64).copy()
    if sp.issparse(deriv):
        d = sp.csr_matrix(deriv)
        return mkvc(np.asarray((sp.diags(np.sqrt(gtg)) @ d).power(2).sum(axis=0)))
    d = np.asarray(deriv, dtype=np.float64)
    if d.ndim == 1:  # a diagonal given as a vector
        return gtg * d**2
    return ((np.sqrt(gtg)[:, None] * d) ** 2).sum(0)


# keep a module-level reference so linters see the absolute import is intentional
_SIMPEG_VERSION = simpeg.__version__
