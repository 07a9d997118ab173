"""Input convention: per-trace, per-channel standardisation and shape checks."""

import numpy as np
import pytest
from conftest import require_reference

from utrans.preprocessing import check_input_shape, normalize_std


def test_normalize_std_statistics():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 600, 3)) * [1.0, 50.0, 1e4] + [3.0, -200.0, 7e3]).astype("float32")
    out = normalize_std(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=1), 1.0, atol=1e-5)
    # Per trace: scaling one trace does not change the others' output.
    y = x.copy()
    y[1] *= 1000
    np.testing.assert_allclose(normalize_std(y)[0], out[0], rtol=0, atol=0)
    np.testing.assert_allclose(normalize_std(y)[1], out[1], rtol=0, atol=1e-5)


def test_zero_and_constant_channels_stay_zero():
    x = np.zeros((2, 6000, 3), "float32")
    x[0, :, 0] = np.sin(np.arange(6000) / 10.0)
    x[0, :, 1] = 1000.3  # constant, mean rounding would otherwise leak through
    x[1, :, 2] = -7.0
    out = normalize_std(x)
    assert np.isfinite(out).all()
    assert np.count_nonzero(out[0, :, 1:]) == 0
    assert np.count_nonzero(out[1]) == 0
    assert abs(float(out[0, :, 0].std()) - 1.0) < 1e-5


def test_single_window_and_integer_input():
    x = np.arange(30, dtype=np.int32).reshape(10, 3)
    out = normalize_std(x)
    assert out.dtype == np.float32 and out.shape == (10, 3)
    np.testing.assert_allclose(out[:, 0], (np.arange(10) * 3 - 13.5) / np.std(np.arange(10) * 3), atol=1e-6)


def test_non_finite_input_is_reported():
    x = np.ones((3, 100, 3), "float32")
    x[2, 5, 1] = np.nan
    with pytest.raises(ValueError, match=r"indices \[\[2, 1\]\]"):
        normalize_std(x)


def test_reproduces_golden_input_row():
    """Row 0 of the golden file is the ObsPy example (E, N, Z) normalised this way."""
    obspy = pytest.importorskip("obspy")
    with np.load(require_reference("utrans/foundation_golden.npz")) as golden:
        expected = golden["x"][0]
    stream = obspy.read()
    stream.resample(100.0)
    window = np.zeros((6000, 3), np.float32)
    for i, component in enumerate("ENZ"):
        data = stream.select(component=component)[0].data.astype(np.float32)
        window[: len(data), i] = data
    out = normalize_std(window[None])[0]
    assert float(np.abs(out - expected).max()) <= 1e-6  # measured 0.0


def test_check_input_shape():
    x = np.zeros((2, 6000, 3), "float32")
    assert check_input_shape(x) is x
    assert check_input_shape([[[0.0] * 3] * 6000]).shape == (1, 6000, 3)
    with pytest.raises(ValueError, match=r"\(batch, 6000, 3\).*Received: shape=\(2, 5000, 3\)"):
        check_input_shape(np.zeros((2, 5000, 3)))
    with pytest.raises(ValueError, match=r"channels-first.*Received: shape=\(2, 3, 6000\)"):
        check_input_shape(np.zeros((2, 3, 6000)))
    with pytest.raises(ValueError, match=r"x\[None\].*Received: shape=\(6000, 3\)"):
        check_input_shape(np.zeros((6000, 3)))
    assert check_input_shape(np.zeros((1, 8192, 3)), length=None).shape == (1, 8192, 3)
    with pytest.raises(ValueError, match=r"\(batch, length, 2\).*Received: shape=\(1, 10, 3\)"):
        check_input_shape(np.zeros((1, 10, 3)), length=None, channels=2)
