"""The decoding value: one set of limits, checked once, with one-line errors."""

import math

import numpy as np
import pytest

from chromatize.decoding import LIMITS, Decoding, check_number
from chromatize.errors import UsageError


@pytest.mark.parametrize("name,value", [
    ("boost", -0.1), ("boost", 3.01), ("boost", math.nan), ("boost", math.inf),
    ("boost", True), ("boost", "1"), ("gain", 0), ("gain", 3.5), ("samples", 0),
    ("samples", 65), ("samples", 2.0), ("seed", -1), ("seed", 10**23), ("strength", 1e300),
])
def test_out_of_range_is_one_line(name, value):
    with pytest.raises(UsageError) as err:
        check_number(name, value)
    text = str(err.value)
    assert "\n" not in text and name in text and len(text) < 120


def test_limits_are_inclusive_and_numpy_numbers_pass():
    for name, (lo, hi) in LIMITS.items():
        assert check_number(name, hi) == hi
    assert check_number("seed", np.int64(7)) == 7
    assert check_number("boost", np.float32(0.5)) == 0.5


def test_decoding_resolves_missing_settings_from_the_checkpoint():
    d = Decoding(gain=1.2).resolved({"boost": 0.2, "gain": 1.0, "temperature": 0.38})
    assert (d.boost, d.gain, d.temperature) == (0.2, 1.2, 0.38)
    assert not Decoding().changes_distribution and Decoding(seed=1).changes_distribution
    with pytest.raises(UsageError):
        Decoding(boost=9)
    with pytest.raises(UsageError):
        Decoding(strategy="nope")
