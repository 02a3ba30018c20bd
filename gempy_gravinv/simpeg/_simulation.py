"""A drop-in SimPEG gravity simulation running on :class:`gempy_gravinv.GravityOperator`.

SimPEG's conventions hold on this side of the boundary: the model (through ``rhoMap``)
is a density (contrast) in **g/cm³**, the data are the **upward** g_z component in
**mGal** (negative for excess mass below a station). Inside, the operator works in our
conventions (kg/m³, g_z positive downward); the conversions happen here, only through
the helpers of :mod:`gempy_gravinv._constants`, and nowhere else.

The sensitivity in SimPEG's units is ``J = S · G · dρ/dm`` with ``G`` our operator
(mGal per kg/m³, positive down) and ``S = gz_to_upward ∘ gcc_to_kgm3`` a scalar
(−1000); ``S`` is self-adjoint, so ``Jᵀ v = (dρ/dm)ᵀ · S · Gᵀ v``.
"""

from __future__ import annotations

import hashlib
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

from .._constants import gcc_to_kgm3, gz_to_upward
from .._mesh import PrismMesh
from .._operator import GravityOperator
from .._survey import Survey
from .._validation import check_choice

__all__ = ["Simulation3DIntegral"]

_STORES = ("ram", "forward_only", "matrix_free", "disk")
_NP_TO_TORCH = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}


def _torch_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    try:
        return _NP_TO_TORCH[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"dtype must be float32 or float64 (numpy or torch), got {dtype!r}") from None


def _scale_simpeg(x):
    """Our g_z per kg/m³ (positive down) -> SimPEG's upward g_z per g/cm³: the factor −1000.

    Used for both J and Jᵀ (a real scalar is its own adjoint).
    """
    return gz_to_upward(gcc_to_kgm3(x))


class Simulation3DIntegral(BaseSimulation):
    r"""Gravity (``gz``) integral simulation on our kernels; a drop-in for SimPEG's.

    Swap it for ``simpeg.potential_fields.gravity.simulation.Simulation3DIntegral`` in an
    existing SimPEG workflow (data misfits, regularisations, directives, optimisers):
    it subclasses :class:`simpeg.simulation.BaseSimulation`, declares the invertible
    property ``rho`` (``rhoMap``, ``rhoDeriv``) and provides :meth:`fields`,
    :meth:`dpred`, :meth:`Jvec`, :meth:`Jtvec`, :meth:`getJtJdiag`, :meth:`getJ` and
    :attr:`G`, all float64 NumPy on the host.

    Units and sign are SimPEG's: density (contrast) in g/cm³, ``gz`` in mGal, the
    **upward** component (negative above excess mass). The products run on
    :class:`gempy_gravinv.GravityOperator` (closed-form prisms with node sharing, on CPU
    or CUDA).

    Parameters
    ----------
    mesh : discretize.TensorMesh or discretize.TreeMesh
        3-D mesh, metres, z up.
    survey : simpeg.potential_fields.gravity.survey.Survey
        Survey whose receivers measure ``"gz"`` only.
    active_cells : array_like of bool or int, optional
        Cells that carry density (all by default). Stations must not lie strictly
        inside an active cell (a clear ``ValueError`` says which one does).
    rho : array_like, optional
        Density on the active cells, g/cm³ (when no ``rhoMap`` is used).
    rhoMap : simpeg.maps.IdentityMap, optional
        Mapping from the model to density on the active cells (g/cm³).
    store_sensitivities : {"ram", "forward_only", "matrix_free"}
        ``"ram"`` builds and keeps the sensitivity (fast products, n_data x n_cells
        memory); ``"forward_only"`` and ``"matrix_free"`` never build it and recompute
        kernel blocks at every product (memory-lean; every J product costs a forward).
        ``"disk"`` is accepted for compatibility and treated as ``"ram"`` (warning).
    device : str
        ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"`` or ``"auto"``. Inputs and outputs
        stay NumPy on the host either way.
    dtype : numpy or torch float dtype
        Precision of the operator (default float64). float32 is faster on GPUs but loses
        accuracy far from prisms; results are returned as float64.
    ind_active : array_like, optional
        Deprecated alias of ``active_cells`` (removed from SimPEG in 0.24); accepted with a
        ``FutureWarning``.
    engine, numba_parallel, n_processes, sensitivity_dtype :
        Accepted so that SimPEG constructor calls work unchanged. ``engine``,
        ``numba_parallel`` and ``n_processes`` are ignored; ``sensitivity_dtype`` sets
        ``dtype`` when ``dtype`` is not given.
    method, kernel, quadrature, memory_budget :
        Passed to :class:`~gempy_gravinv.GravityOperator` (``kernel="point"`` switches to
        Gauss–Legendre point masses, approximate near stations).
    **kwargs
        Passed to :class:`simpeg.simulation.BaseSimulation` (``counter``, ``verbose``...).

    Examples
    --------
    >>> import numpy as np, discretize
    >>> from simpeg import maps
    >>> from simpeg.potential_fields import gravity
    >>> from gempy_gravinv.simpeg import Simulation3DIntegral
    >>> mesh = discretize.TensorMesh([[(50.0, 4)], [(50.0, 4)], [(50.0, 2)]], origin=(0, 0, -100))
    >>> rx = gravity.receivers.Point(np.array([[100.0, 100.0, 1.0]]), components="gz")
    >>> survey = gravity.survey.Survey(gravity.sources.SourceField([rx]))
    >>> sim = Simulation3DIntegral(mesh, survey=survey, rhoMap=maps.IdentityMap(nP=mesh.n_cells))
    >>> bool(sim.dpred(np.full(mesh.n_cells, 0.3))[0] < 0)  # upward gz: negative over excess mass
    True
    """

    rho, rhoMap, rhoDeriv = props.Invertible("Density (contrast), g/cm³")

    def __init__(self, mesh, survey=None, active_cells=None, rho=None, rhoMap=None,
                 store_sensitivities: str = "ram", device: str = "cpu", dtype: Any = None, *,
                 method: str = "nodes", kernel: str = "prism", quadrature: int = 2,
                 memory_budget: int | None = None, engine: str | None = None,
                 numba_parallel: bool | None = None, n_processes: int | None = None,
                 sensitivity_dtype: Any = None, ind_active=None, **kwargs) -> None:
        import discretize

        if ind_active is not None:
            if active_cells is not None:
                raise TypeError("pass either active_cells or the deprecated ind_active, not both")
            warnings.warn("'ind_active' is deprecated (removed from SimPEG in 0.24): use 'active_cells'",
                          FutureWarning, stacklevel=2)
            active_cells = ind_active
        if not isinstance(mesh, (discretize.TensorMesh, discretize.TreeMesh)) or mesh.dim != 3:
            raise TypeError(f"mesh must be a 3-D discretize TensorMesh or TreeMesh, got {type(mesh).__name__}")
        if store_sensitivities != "disk":  # "disk" is accepted for compatibility, not advertised
            check_choice(store_sensitivities, _STORES[:3], name="store_sensitivities")
        else:
            warnings.warn("store_sensitivities='disk' is not supported: the sensitivity is kept in RAM",
                          UserWarning, stacklevel=2)
            store_sensitivities = "ram"
        if dtype is None:
            dtype = np.float64 if sensitivity_dtype is None else sensitivity_dtype
        self._torch_dtype = _torch_dtype(dtype)
        # ignored SimPEG engine options (kept so constructor calls work unchanged)
        self.engine = engine
        self.numba_parallel = numba_parallel
        self.n_processes = n_processes

        self._mesh = mesh
        if active_cells is None:
            active_cells = np.ones(mesh.n_cells, dtype=bool)
        else:
            active_cells = validate_active_indices("active_cells", active_cells, mesh.n_cells)
        self._active_cells = active_cells
        self.nC = int(np.sum(active_cells))
        self.store_sensitivities = store_sensitivities
        self.device = device
        self.method = method
        self.kernel = kernel
        self.quadrature = quadrature
        self.memory_budget = memory_budget
        self._op: GravityOperator | None = None
        super().__init__(survey=survey, **kwargs)
        self.rho = rho
        self.rhoMap = rhoMap

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
        """The SimPEG gravity survey; setting it drops the cached operator."""
        return self._survey

    @survey.setter
    def survey(self, value):
        BaseSimulation.survey.fset(self, value)
        self._clear_operator()

    @property
    def sensitivity_dtype(self):
        """NumPy dtype of the operator (products are returned as float64)."""
        return np.float64 if self._torch_dtype == torch.float64 else np.float32

    def _clear_operator(self) -> None:
        self._op = None
        for name in ("_G", "_gtg_diagonal", "_weights_sha256"):
            if hasattr(self, name):
                delattr(self, name)

    @property
    def operator(self) -> GravityOperator:
        """The underlying :class:`~gempy_gravinv.GravityOperator` (our units), built on first use."""
        if self._op is None:
            if self.survey is None:
                raise AttributeError("the simulation has no survey: set simulation.survey first")
            stations = Survey.from_simpeg(self.survey, dobs=None)
            prisms = PrismMesh.from_discretize(self.mesh, active_cells=self.active_cells)
            # "ram" on the host keeps G as a NumPy array (see _host_G); on a GPU the operator
            # keeps it on the device
            store = "dense" if self.store_sensitivities == "ram" and not self._host else "matrix_free"
            self._op = GravityOperator(prisms, stations, device=self.device, dtype=self._torch_dtype,
                                       store=store, method=self.method, kernel=self.kernel,
                                       quadrature=self.quadrature, memory_budget=self.memory_budget)
        return self._op

    @property
    def _host(self) -> bool:
        return self.operator_device.type == "cpu"

    @property
    def operator_device(self) -> torch.device:
        """The torch device the operator runs on."""
        from .._operator import resolve_device

        return resolve_device(self.device)

    def _host_G(self) -> np.ndarray | None:
        """G in SimPEG's units as a NumPy array, for ``"ram"`` on the CPU (else None).

        Small dense products are far cheaper in NumPy/BLAS than through torch's thread
        pool, and SimPEG's CG calls Jvec/Jtvec hundreds of times.
        """
        if self.store_sensitivities != "ram" or not self._host:
            return None
        if getattr(self, "_G", None) is None:
            g = self.operator.dense()  # built in chunks by our kernels; not kept by the operator
            g = g.to(dtype=torch.float64).numpy()
            np.multiply(g, _scale_simpeg(1.0), out=g)  # -> upward mGal per g/cm³, in place
            self._G = g
        return self._G

    # ------------------------------------------------------------------ boundary
    def _apply_G(self, rho_gcc) -> np.ndarray:
        """G·ρ in SimPEG's units: ρ (nC,) g/cm³ -> upward g_z (nD,) mGal."""
        G = self._host_G()
        if G is not None:
            return G @ np.asarray(rho_gcc, dtype=np.float64)
        op = self.operator
        v = torch.as_tensor(np.ascontiguousarray(rho_gcc, dtype=np.float64))
        gz = op.forward(v)  # ours: mGal positive down per kg/m³
        return _scale_simpeg(gz.to(device="cpu", dtype=torch.float64).numpy())

    def _apply_Gt(self, v) -> np.ndarray:
        """Gᵀ·v in SimPEG's units: v (nD,) (upward mGal space) -> (nC,) (g/cm³ space)."""
        G = self._host_G()
        if G is not None:
            return G.T @ np.asarray(v, dtype=np.float64)
        op = self.operator
        r = torch.as_tensor(np.ascontiguousarray(v, dtype=np.float64))
        out = op.adjoint(r).to(device="cpu", dtype=torch.float64).numpy()
        return _scale_simpeg(out)

    # ------------------------------------------------------------------ SimPEG API
    def fields(self, m=None) -> np.ndarray:
        """Forward-model ``gz`` at the receivers.

        Parameters
        ----------
        m : (n_param,) numpy.ndarray, optional
            Model; mapped to density (g/cm³) by ``rhoMap``. The current model if omitted.

        Returns
        -------
        (nD,) numpy.ndarray
            Upward ``gz`` in mGal (negative above excess mass), float64.
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
        """Predicted data: upward ``gz`` (mGal) for model ``m`` (or the fields ``f`` given).

        Parameters
        ----------
        m : (n_param,) numpy.ndarray, optional
            Model (density g/cm³ through ``rhoMap``).
        f : (nD,) numpy.ndarray, optional
            Fields from :meth:`fields`; returned as they are.

        Returns
        -------
        (nD,) numpy.ndarray
            Upward ``gz``, mGal.
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
        """The full sensitivity ``G · dρ/dm`` (stored modes) or a SciPy LinearOperator.

        Parameters
        ----------
        m : (n_param,) numpy.ndarray
        f : ignored

        Returns
        -------
        (nD, n_param) numpy.ndarray or scipy.sparse.linalg.LinearOperator
            Upward mGal per model unit.
        """
        from scipy.sparse.linalg import LinearOperator

        self.model = m
        if self.store_sensitivities == "ram":
            deriv = self.rhoDeriv
            return np.asarray((deriv.T @ self.G.T).T)
        n_param = len(self.model)
        return LinearOperator((self.survey.nD, n_param), dtype=np.float64,
                              matvec=lambda x: self.Jvec(m, mkvc(x)),
                              rmatvec=lambda y: self.Jtvec(m, mkvc(y)))

    @property
    def G(self) -> np.ndarray:
        """Sensitivity of the active cells (nD, nC), upward mGal per g/cm³, float64.

        Available when ``store_sensitivities="ram"``. On the CPU this is the stored
        matrix itself (do not modify it); on a GPU, a host copy is made (and cached) on
        first access.
        """
        if self.store_sensitivities != "ram":
            raise AttributeError(f"G is not stored with store_sensitivities={self.store_sensitivities!r}: "
                                 "use Jvec/Jtvec or getJ (a LinearOperator)")
        G = self._host_G()
        if G is not None:
            return G
        if getattr(self, "_G", None) is None:
            g = self.operator.dense().to(device="cpu", dtype=torch.float64).numpy()
            self._G = _scale_simpeg(g)
        return self._G

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
            (upward mGal per model unit)² times the weights.

        Notes
        -----
        Caches ``diag(Gᵀ WᵀW G)`` with the sha256 of the weights (as SimPEG does), so the
        directives that call it at every iteration with the same ``W`` pay once.
        """
        self.model = m
        weights = W.diagonal() ** 2 if W is not None else np.ones(self.survey.nD, dtype=np.float64)
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        sha = hashlib.sha256(weights)
        cached = getattr(self, "_weights_sha256", None)
        if getattr(self, "_gtg_diagonal", None) is None or cached is None or cached.digest() != sha.digest():
            G = self._host_G()
            if G is not None:  # already in SimPEG's units
                self._gtg_diagonal = np.einsum("i,ij,ij->j", weights, G, G)
            else:
                jtj = self.operator.jtj_diag(torch.as_tensor(np.sqrt(weights)))
                # (−1000)²: the SimPEG unit scale applied twice (J = S·G, diag(JᵀJ) = S²·diag(GᵀG))
                jtj = jtj.to(device="cpu", dtype=torch.float64).numpy()
                self._gtg_diagonal = _scale_simpeg(_scale_simpeg(jtj))
            self._weights_sha256 = sha
        return _deriv_weighted_colsum(self.rhoDeriv, self._gtg_diagonal)

    @property
    def _delete_on_model_update(self):
        # the forward is linear in rho: nothing model-dependent is cached
        return super()._delete_on_model_update

    def __repr__(self) -> str:
        op = "not built" if self._op is None else repr(self._op)
        nd = None if self.survey is None else self.survey.nD
        return (f"gempy_gravinv.simpeg.Simulation3DIntegral(nC={self.nC}, nD={nd}, "
                f"store_sensitivities={self.store_sensitivities!r}, device={self.device!r}, operator: {op})")


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
