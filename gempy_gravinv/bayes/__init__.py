"""Bayesian inversion of GemPy structural models with a gravity likelihood (Pyro, ArviZ).

Workflow: :class:`PriorSpec` (dips deg, surface-point elevations m, unit density
contrasts kg/m³) -> forward (:class:`MeshForward`: GemPy soft lithology on mesh cells +
our ``GravityOperator``; :class:`CenteredGridForward`: GemPy's own centered-grid gravity;
:class:`LinearUnitForward`: geometry fixed) -> alignment (:class:`OffsetAlignment` or
:class:`ReferenceAlignment`) -> likelihood (:class:`GaussianLikelihood`,
:class:`HierarchicalNoise`, :class:`StudentTLikelihood`) = :func:`make_model`; then
:func:`run_nuts` / :func:`run_svi` / :func:`prior_predictive` -> ArviZ InferenceData;
:func:`summarize` and :func:`plot_all` for diagnostics.

Ready-made cases (a synthetic contact, the Tharsis intrusion, a model from a config
file) live in :mod:`gempy_gravinv.cases.bayes`.

g_z everywhere in mGal, positive downward. Importing this subpackage does not import
GemPy or Pyro; they load when used.
"""

from ._diagnostics import plot_all, summarize
from ._geomodel import BayesProblem, default_mesh, from_geomodel, unit_densities_gcc
from ._likelihoods import (
    GaussianLikelihood,
    HierarchicalNoise,
    NoAlignment,
    OffsetAlignment,
    ReferenceAlignment,
    StudentTLikelihood,
    marginal_noise_log_lik,
)
from ._model import CenteredGridForward, LinearUnitForward, MeshForward, make_model
from ._plots import plot_arviz, plot_lithology_gempy
from ._priors import PriorSpec, as_event, normal
from ._report import constraint_table, fit_report
from ._results import compare_models, lithology_fields, posterior_geomodel, posterior_values, summarize_problem
from ._runners import prior_predictive, replay, run_nuts, run_svi, save_netcdf, seed_all

__all__ = [
    "BayesProblem",
    "compare_models",
    "default_mesh",
    "from_geomodel",
    "lithology_fields",
    "plot_arviz",
    "plot_lithology_gempy",
    "posterior_geomodel",
    "posterior_values",
    "summarize_problem",
    "unit_densities_gcc",
    "CenteredGridForward",
    "GaussianLikelihood",
    "HierarchicalNoise",
    "LinearUnitForward",
    "MeshForward",
    "NoAlignment",
    "OffsetAlignment",
    "PriorSpec",
    "ReferenceAlignment",
    "StudentTLikelihood",
    "as_event",
    "constraint_table",
    "fit_report",
    "marginal_noise_log_lik",
    "make_model",
    "normal",
    "plot_all",
    "prior_predictive",
    "replay",
    "run_nuts",
    "run_svi",
    "save_netcdf",
    "seed_all",
    "summarize",
]
