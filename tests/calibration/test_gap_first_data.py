"""A newly installed sensor is not flagged `gap` for the days before its first reading."""

import numpy as np
from civicair.calibration.flags import gap_mask


def test_hours_before_first_data_are_not_gaps_but_later_holes_are() -> None:
    values = np.full((3, 96), np.nan)
    values[0, 48:] = 1.0  # installed on day 3, complete since
    values[1, :] = 1.0
    values[1, 30:44] = np.nan  # a 14-hour hole on day 2 (10/24 valid < 75 %)
    # row 2: silent the whole window
    mask, share = gap_mask(values)
    assert not mask[0].any()
    assert np.isnan(share[0, :2]).all() and (share[0, 2:] == 1).all()
    assert mask[1, 24:48].all() and not mask[1, :24].any() and not mask[1, 48:].any()
    assert mask[2].all()
