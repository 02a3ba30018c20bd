"""Ready-made problems with their data.

Synthetic cases with known truth, the Tharsis real-data case, a layered GemPy case and
the Bayesian GemPy cases.

- :mod:`gempy_gravinv.cases.synthetic`: the paper's dipping block and smooth Gaussian
  random field, a single block for fast tests (mesh, noisy survey, true model).
- :mod:`gempy_gravinv.cases.tharsis`: the IGME Tharsis Bouguer stations (packaged),
  detrended, weighted and meshed.
- :mod:`gempy_gravinv.cases.geology`: a three-unit layered GemPy model plus a dense body
  it does not contain (the benchmark of the hybrid density backend).
- :mod:`gempy_gravinv.cases.bayes`: GemPy models with priors for the Bayesian workflow
  (a synthetic contact, the Tharsis intrusion, a config-file builder).
- :mod:`gempy_gravinv.cases.geomodels`: the built-in GemPy models by name
  (``invert --geomodel NAME``).

Importing this subpackage imports none of them (and so neither GemPy nor Pyro); import
the module you need: ``from gempy_gravinv.cases import synthetic``.

Conventions: metres, z up; density contrast in kg/m³; g_z in mGal, positive downward.
"""
