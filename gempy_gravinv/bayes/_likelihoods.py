"""Gravity likelihoods and datum alignment for Pyro models.

All data are g_z in mGal, positive downward. Each likelihood samples the observed site
``obs`` inside a ``stations`` plate (one log-likelihood term per station).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._validation import check_number

__all__ = [
    "GaussianLikelihood",
    "HierarchicalNoise",
    "StudentTLikelihood",
    "OffsetAlignment",
    "ReferenceAlignment",
    "NoAlignment",
]


def _vec(x, n: int, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have {n} values, got shape {tuple(t.shape)}")
    if torch.any(t <= 0):
        raise ValueError(f"{name} must be > 0 (mGal)")
    return t


def _known_sigma(sigma, survey: Any, n: int, dtype: torch.dtype, owner: str) -> torch.Tensor:
    """σ (n,) in mGal: the given ``sigma`` or, if None, the survey's std (clear error if neither)."""
    s = sigma if sigma is not None else survey.std
    if s is None:
        raise ValueError(f"{owner} needs sigma (mGal) or a survey with std")
    return _vec(s, n, "sigma").to(dtype)


class GaussianLikelihood:
    """Independent Gaussian noise with known standard deviation.

    Parameters
    ----------
    sigma : float or array_like, shape (n_data,), optional
        Standard deviation in mGal. ``None``: the survey's ``std``.
    """

    def __init__(self, sigma=None) -> None:
        self.sigma = sigma

    def __call__(self, pred: torch.Tensor, obs: torch.Tensor | None, survey: Any) -> torch.Tensor:
        import pyro
        import pyro.distributions as dist

        n = pred.shape[-1]
        sig = _known_sigma(self.sigma, survey, n, pred.dtype, "GaussianLikelihood")
        with pyro.plate("stations", n):
            return pyro.sample("obs", dist.Normal(pred, sig), obs=obs)


class HierarchicalNoise:
    """Per-station noise, hierarchical, non-centred: σ_i = exp(μ + τ z_i).

    μ ~ N(log σ₀, mu_scale), τ ~ HalfNormal(tau_scale), z_i ~ N(0, 1),
    d_i ~ N(pred_i, σ_i). The non-centred form avoids the funnel that stalls NUTS in the
    centred form (log σ_i ~ N(μ, τ)). Records ``sigma`` (mGal, per station) as a
    deterministic site.

    Parameters
    ----------
    sigma0 : float
        Typical noise level in mGal (prior median of σ_i; > 0).
    mu_scale, tau_scale : float
        Prior scales of μ and τ, natural-log units (> 0).
    """

    def __init__(self, sigma0: float, mu_scale: float = 0.5, tau_scale: float = 0.5) -> None:
        self.sigma0 = check_number(sigma0, name="sigma0 (mGal)", low=0.0, low_open=True)
        self.mu_scale = check_number(mu_scale, name="mu_scale", low=0.0, low_open=True)
        self.tau_scale = check_number(tau_scale, name="tau_scale", low=0.0, low_open=True)

    def __call__(self, pred: torch.Tensor, obs: torch.Tensor | None, survey: Any) -> torch.Tensor:
        import pyro
        import pyro.distributions as dist

        n = pred.shape[-1]
        t = lambda v: torch.tensor(v, dtype=pred.dtype)  # noqa: E731
        mu = pyro.sample("noise_mu", dist.Normal(t(math.log(self.sigma0)), t(self.mu_scale)))
        tau = pyro.sample("noise_tau", dist.HalfNormal(t(self.tau_scale)))
        with pyro.plate("stations", n):
            z = pyro.sample("noise_z", dist.Normal(t(0.0), t(1.0)))
            sigma = pyro.deterministic("sigma", torch.exp(mu + tau * z))
            return pyro.sample("obs", dist.Normal(pred, sigma), obs=obs)


class StudentTLikelihood:
    """Robust Student-t noise with known scale.

    Parameters
    ----------
    sigma : float or array_like, optional
        Scale in mGal (``None``: survey std).
    df : float
        Degrees of freedom (> 0; small values tolerate outliers).
    """

    def __init__(self, sigma=None, df: float = 4.0) -> None:
        self.sigma = sigma
        self.df = check_number(df, name="df", low=0.0, low_open=True)

    def __call__(self, pred: torch.Tensor, obs: torch.Tensor | None, survey: Any) -> torch.Tensor:
        import pyro
        import pyro.distributions as dist

        n = pred.shape[-1]
        sig = _known_sigma(self.sigma, survey, n, pred.dtype, "StudentTLikelihood")
        with pyro.plate("stations", n):
            return pyro.sample("obs", dist.StudentT(torch.tensor(self.df, dtype=pred.dtype),
                                                    pred, sig), obs=obs)


class NoAlignment:
    """Predicted g_z is compared with the data as is."""

    def __call__(self, pred: torch.Tensor, obs: torch.Tensor | None) -> torch.Tensor:
        return pred


class OffsetAlignment:
    """Infer a datum offset (mGal) added to every prediction: site ``offset``.

    Parameters
    ----------
    loc, scale : float
        Normal prior on the offset, mGal (``scale`` > 0). The offset is added to the
        prediction (positive: predictions shifted up, in the positive-down g_z). The
        default centres on 0; give a data-driven location (e.g. the data mean minus the
        mean prediction at the prior mean) when absolute levels differ a lot.
    """

    def __init__(self, loc: float = 0.0, scale: float = 10.0) -> None:
        self.scale = check_number(scale, name="offset prior scale (mGal)", low=0.0, low_open=True)
        self.loc = float(loc)

    def __call__(self, pred: torch.Tensor, obs: torch.Tensor | None) -> torch.Tensor:
        import pyro
        import pyro.distributions as dist

        off = pyro.sample("offset", dist.Normal(torch.tensor(self.loc, dtype=pred.dtype),
                                                torch.tensor(self.scale, dtype=pred.dtype)))
        return pred + off


class ReferenceAlignment:
    """The tutorial's normalisation: shift predictions to match the observed data.

    Predictions are shifted so their mean (or one station) matches the observed one.
    Deterministic; needs the observed data.

    Parameters
    ----------
    reference : "mean" or int
        Align means, or align at station index ``reference``.
    observed : array_like (n_data,), optional
        Observed g_z, mGal positive down, used when the model is run without data
        (simulation).
    """

    def __init__(self, reference="mean", observed=None) -> None:
        self.reference = reference
        self.observed = None if observed is None else torch.as_tensor(np.asarray(observed, float))

    def __call__(self, pred: torch.Tensor, obs: torch.Tensor | None) -> torch.Tensor:
        ref = obs if obs is not None else self.observed
        if ref is None:
            raise ValueError("ReferenceAlignment needs observed data (pass observed=...)")
        ref = ref.to(pred.dtype)
        if self.reference == "mean":
            return pred - pred.mean() + ref.mean()
        i = int(self.reference)
        return pred - pred[i] + ref[i]
