"""The network model of a sensor type (docs/calibration.md#network-model): the median of the
RH-free linear models its co-located devices published, for devices of that type without a
reference of their own. Pure.

Each donor contributes its RH-free model (its chosen model when it uses no RH, else its RH-free
fallback; the identity counts as a = 0, b = 1). A co-located device is judged against the model
of the *other* donors (leave one out), so its own fit never scores for the network model.
"""

from __future__ import annotations

import numpy as np
from civicair.calibration.fit import HUBER, IDENTITY, OLS, CandidateFits
from civicair.calibration.grids import Bools, Floats, Ints
from civicair.calibration.select import Selection

LINEAR_RH_FREE = (OLS, HUBER)


def donor_models(sel: Selection) -> tuple[Bools, Floats, Floats]:
    """(is donor, a, b) per device."""
    m, f = sel.method, sel.fallback
    own = np.isin(m, LINEAR_RH_FREE)
    ident = m == IDENTITY
    via_fb = (m >= 0) & ~own & ~ident & np.isin(f, (*LINEAR_RH_FREE, IDENTITY))
    fb_ident = via_fb & (f == IDENTITY)
    a = np.where(own, sel.a, np.where(via_fb & ~fb_ident, sel.fa, 0.0))
    b = np.where(own, sel.b, np.where(via_fb & ~fb_ident, sel.fb, 1.0))
    donor: Bools = (own | ident | via_fb) & sel.assessed & np.isfinite(a) & np.isfinite(b)
    return donor, a, b


def network_models(types: tuple[str, ...], donor: Bools, a: Floats, b: Floats,
                   min_donors: int) -> tuple[Floats, Floats, Ints]:
    """Per device: the network model of its type (NaN without one) and the donors behind it;
    for a donor, the median of the other donors."""
    d = len(types)
    na, nb = np.full(d, np.nan), np.full(d, np.nan)
    n = np.zeros(d, np.int64)
    t = np.array(types, dtype=object)
    for name in sorted(set(types) - {""}):  # a loop over sensor types, not devices
        members = np.nonzero(t == name)[0]
        donors = members[donor[members]]
        for i in members:
            others = donors[donors != i]
            if others.size >= min_donors:
                na[i], nb[i], n[i] = float(np.median(a[others])), float(np.median(b[others])), others.size
    return na, nb, n


def network_sse(fits: CandidateFits, raw: Floats, ref: Floats, na: Floats, nb: Floats) -> Floats:
    """Held-out squared error of the network model on each device's compared hours."""
    held = fits.fold >= 0
    pred = na[:, None] + nb[:, None] * raw
    with np.errstate(invalid="ignore"):
        sse = np.where(held, (ref - pred) ** 2, 0.0).sum(axis=1)
    out: Floats = np.where(np.isfinite(na) & np.isfinite(nb) & fits.enough, sse, np.inf)
    return out
