"""Input processing: the one normaliser (utrans.processing.normalize) and the one resampler
(utrans.processing.resample)."""

import numpy as np
import pytest
import scipy.signal
from conftest import require_reference

from utrans.core.conventions import Conventions
from utrans.core.errors import ModelInputError
from utrans.pipeline import Pipeline
from utrans.processing.normalize import NORMALIZATIONS, normalize
from utrans.processing.resample import (interpolate, rate_fraction, resample, resample_trace,
                                        resampled_length)


# --------------------------------------------------------------------------- normalise
def test_normalize_std_statistics():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 600, 3)) * [1.0, 50.0, 1e4] + [3.0, -200.0, 7e3]).astype("float32")
    out = normalize(x, "std")
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=1), 1.0, atol=1e-5)
    # Per trace: scaling one trace does not change the others' output.
    y = x.copy()
    y[1] *= 1000
    np.testing.assert_allclose(normalize(y, "std")[0], out[0], rtol=0, atol=0)
    np.testing.assert_allclose(normalize(y, "std")[1], out[1], rtol=0, atol=1e-5)
    # the population standard deviation (ddof 0), computed in float64
    ref = (x[2].astype(np.float64) - x[2].mean(0, dtype=np.float64)) / x[2].std(0, dtype=np.float64)
    np.testing.assert_array_max_ulp(out[2], ref.astype(np.float32), maxulp=1)


def test_normalize_max_divides_by_largest_deviation_after_demeaning():
    x = np.array([0.0, 1.0, 2.0, 3.0, 10.0])  # mean 3.2
    out = normalize(np.stack([x, -x, x + 500.0], axis=1)[None], "max")[0]
    np.testing.assert_allclose(out[:, 0], (x - 3.2) / 6.8, rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], -(x - 3.2) / 6.8, rtol=1e-6)
    np.testing.assert_allclose(out[:, 2], out[:, 0], rtol=1e-6)  # the offset is removed
    assert np.abs(out).max(axis=0).tolist() == [1.0, 1.0, 1.0]


def test_a_large_batch_is_normalised_window_by_window():
    # A batch larger than a block of the normaliser (a 6000 x 3 window is 18,000 samples,
    # a block about 262,000): each window as if normalised alone, mask and flat channels too.
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((40, 6000, 3)) * [1.0, 30.0, 2e3] + [5.0, -9.0, 4e4]).astype("float32")
    x[7, :, 1] = 12.5  # flat
    valid = np.stack([np.zeros(40, int), np.full(40, 6000)], axis=1)
    valid[[3, 25, 39], 1] = [4000, 100, 5999]
    for mode in NORMALIZATIONS:
        batch = normalize(x, mode, valid)
        alone = np.concatenate([normalize(x[i:i + 1], mode, valid[i:i + 1]) for i in range(40)])
        np.testing.assert_array_equal(batch, alone, err_msg=mode)
    out = normalize(x, "max", valid)
    assert np.count_nonzero(out[7, :, 1]) == 0 and np.count_nonzero(out[25, 100:]) == 0
    assert np.abs(out[25, :100]).max(axis=0).tolist() == [1.0, 1.0, 1.0]
    # a padded window is normalised over its data: the scale over all channels counts
    # the valid samples of every channel
    for mode in NORMALIZATIONS:
        np.testing.assert_allclose(normalize(x[25:26], mode, valid[25:26])[0, :100],
                                   normalize(x[25:26, :100], mode)[0], rtol=1e-5, atol=1e-5,
                                   err_msg=mode)


def test_zero_flat_channels_and_constant_offsets():
    x = np.zeros((2, 6000, 3), "float32")
    x[0, :, 0] = np.sin(np.arange(6000) / 10.0)
    x[0, :, 1] = 1000.3  # constant, mean rounding would otherwise leak through
    x[1, :, 2] = -7.0
    for mode in ("std", "max"):
        out = normalize(x, mode)
        assert np.isfinite(out).all()
        assert np.count_nonzero(out[0, :, 1:]) == 0
        assert np.count_nonzero(out[1]) == 0
    assert abs(float(normalize(x, "std")[0, :, 0].std()) - 1.0) < 1e-5
    assert float(np.abs(normalize(x, "max")[0, :, 0]).max()) == 1.0
    # a constant offset on a live channel changes nothing (to float32 rounding)
    shifted = x.astype(np.float64)
    shifted[0, :, 0] += 5e3
    np.testing.assert_allclose(normalize(shifted, "std")[0, :, 0], normalize(x, "std")[0, :, 0],
                               atol=1e-6)
    # a channel flat over its data but not over the padding is still flat
    pad = np.zeros((1, 10, 1))
    pad[0, :6, 0] = 4.0
    pad[0, 6:, 0] = 9.0  # garbage outside the valid range
    assert np.count_nonzero(normalize(pad, "std", valid=[[0, 6]])) == 0


def test_padding_is_excluded_and_left_zero():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((6, 3)) * [1.0, 10.0, 100.0] + [5.0, -3.0, 40.0]
    window = np.full((1, 10, 3), 123.0)  # whatever lies outside the record is ignored
    window[0, 2:8] = data
    for mode in ("std", "max"):
        out = normalize(window, mode, valid=[[2, 8]])
        assert np.count_nonzero(out[0, :2]) == 0 and np.count_nonzero(out[0, 8:]) == 0
        # the record samples are normalised over themselves only
        np.testing.assert_allclose(out[0, 2:8], normalize(data[None], mode)[0], rtol=1e-6,
                                   atol=1e-7)
    std = normalize(window, "std", valid=[[2, 8]])[0, 2:8]
    np.testing.assert_allclose(std.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(std.std(axis=0), 1.0, rtol=1e-6)
    # "none" leaves the data alone but still zeroes the padding
    none = normalize(window, "none", valid=[[2, 8]])[0]
    np.testing.assert_array_equal(none[2:8], data.astype(np.float32))
    assert np.count_nonzero(none[:2]) == 0 and np.count_nonzero(none[8:]) == 0
    # per window: a fully valid row next to a padded one
    two = np.concatenate([window, window])
    out = normalize(two, "std", valid=[[0, 10], [2, 8]])
    np.testing.assert_allclose(out[0], normalize(window, "std")[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(out[1], normalize(window, "std", valid=[[2, 8]])[0])


def test_zero_padding_no_longer_scales_a_short_record():
    """Deliberate change: SeisT normalised over the padding; a short record's amplitudes then
    depended on the window length. Now a record gives the same values in any window."""
    rng = np.random.default_rng(0)
    rec = rng.standard_normal((300, 3))
    short = np.zeros((1, 600, 3))
    short[0, :300] = rec
    longer = np.zeros((1, 3000, 3))
    longer[0, :300] = rec
    a = normalize(short, "std", valid=[[0, 300]])[0, :300]
    b = normalize(longer, "std", valid=[[0, 300]])[0, :300]
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # over the padding (the reference's way) the two windows disagree: the standard
    # deviation over 300 of 600 samples is ~sqrt(5) times that over 300 of 3000
    old_a = normalize(short, "std")[0, :300]
    old_b = normalize(longer, "std")[0, :300]
    ratio = np.abs(old_a).max(axis=0) / np.abs(old_b).max(axis=0)
    np.testing.assert_allclose(ratio, 1 / np.sqrt(5.0), rtol=0.02)


def test_single_window_and_integer_input():
    x = np.arange(30, dtype=np.int32).reshape(1, 10, 3)
    out = normalize(x, "std")
    assert out.dtype == np.float32 and out.shape == (1, 10, 3)
    np.testing.assert_allclose(out[0, :, 0], (np.arange(10) * 3 - 13.5) / np.std(np.arange(10) * 3),
                               atol=1e-6)
    # float32 computation (windows cut around a pick, as the SeisT reference) agrees
    np.testing.assert_allclose(normalize(x, "std", dtype=np.float32), out, atol=1e-6)


def test_normalize_rejects_bad_shapes_and_modes():
    assert NORMALIZATIONS == ("std", "max", "none", "seisbench_std", "seisbench_std_all",
                              "seisbench_peak")
    with pytest.raises(ValueError, match=r"\(batch, samples, channels\).*Received: shape=\(6000, 3\)"):
        normalize(np.zeros((6000, 3)), "std")
    with pytest.raises(ValueError, match="Received: 'bogus'"):
        normalize(np.zeros((1, 10, 3)), "bogus")


# The normaliser no longer checks for NaN / inf: non-finite samples are refused where
# records are read (utrans.data: a bad trace; utrans.processing.streams: StationError).


def test_reproduces_golden_input_row():
    """Row 0 of the golden file is the ObsPy example (E, N, Z) normalised over the whole
    zero-padded window (the U-Trans reference convention)."""
    obspy = pytest.importorskip("obspy")
    with np.load(require_reference("utrans/foundation_golden.npz")) as golden:
        expected = golden["x"][0]
    stream = obspy.read()
    stream.resample(100.0)
    window = np.zeros((6000, 3), np.float32)
    for i, component in enumerate("ENZ"):
        data = stream.select(component=component)[0].data.astype(np.float32)
        window[: len(data), i] = data
    whole = normalize(window[None], "std")[0]
    # The golden row was computed in float32 with a naive sum over 6000 samples; the
    # normaliser computes in float64, so they differ by the golden's own rounding
    # (measured 2.77e-4 for values up to 10.6; a float64 formula shows the same 2.77e-4).
    assert float(np.abs(whole - expected).max()) <= 3e-4
    w64 = window.astype(np.float64)
    exact = ((w64 - w64.mean(0)) / w64.std(0)).astype(np.float32)
    np.testing.assert_array_max_ulp(whole, exact, maxulp=1)
    # Deliberate change: the pipeline normalises over the 3000 record samples only and
    # leaves the padding 0 (the golden row normalised over the padding too).
    conv = Conventions(sampling_rate=100.0, component_order="ENZ", in_samples=6000,
                       normalization="std", labels=("E", "N", "Z"), head="reconstruction")
    inputs, frame = Pipeline(conv).record_inputs(window[None, :3000], 100.0, "ENZ")
    assert inputs.shape == (1, 6000, 3) and frame.valid.tolist() == [[0, 3000]]
    assert np.count_nonzero(inputs[0, 3000:]) == 0
    np.testing.assert_allclose(inputs[0, :3000].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(inputs[0, :3000].std(0), 1.0, rtol=1e-5)
    # the same samples, affinely rescaled: the golden's data part renormalised over itself
    renorm = normalize(expected[None, :3000], "std")[0]
    np.testing.assert_allclose(inputs[0, :3000], renorm, atol=5e-4)
    assert float(np.abs(inputs[0] - expected).max()) > 1.0  # the two conventions differ


# --------------------------------------------------------------------------- resample
def test_rate_fraction_and_lengths():
    assert rate_fraction(100.0, 50.0) == (1, 2)
    assert rate_fraction(100.0, 75.0) == (3, 4)
    assert rate_fraction(100.0, 40.0) == (2, 5)
    assert rate_fraction(40.0, 100.0) == (5, 2)
    assert rate_fraction(200.0, 200.0) == (1, 1)
    assert resampled_length(6000, 100.0, 50.0) == 3000
    assert resampled_length(1001, 100.0, 50.0) == 501  # ceil(n * up / down)
    assert resampled_length(7, 100.0, 75.0) == 6
    with pytest.raises(ValueError, match="from_rate=0"):
        rate_fraction(0.0, 100.0)
    with pytest.raises(ValueError, match="to_rate=nan"):
        rate_fraction(100.0, float("nan"))


def test_resample_is_scipy_resample_poly_along_the_axis():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1001, 3)).astype(np.float32)
    out = resample(x, 100.0, 40.0, axis=1)
    assert out.dtype == np.float64 and out.shape == (2, resampled_length(1001, 100.0, 40.0), 3)
    assert out.shape[1] == 401
    np.testing.assert_allclose(out, scipy.signal.resample_poly(x.astype(np.float64), 2, 5, axis=1),
                               rtol=0, atol=0)
    same = resample(x, 100.0, 100.0, axis=1)
    assert same.dtype == np.float64
    np.testing.assert_array_equal(same, x)


def test_resample_keeps_band_limited_signal_and_pick_times():
    rate, new = 100.0, 75.0
    t = np.arange(3000) / rate
    tone = np.sin(2 * np.pi * 3.0 * t)  # 3 Hz, well below both Nyquist frequencies
    out = resample(tone, rate, new)
    t_new = np.arange(out.size) / new  # the first sample keeps its time
    inner = slice(200, out.size - 200)  # away from the record ends
    # (the Kaiser filter's pass-band ripple: measured 1.26e-3)
    np.testing.assert_allclose(out[inner], np.sin(2 * np.pi * 3.0 * t_new[inner]), atol=2e-3)
    # linear phase: a pulse's peak keeps its time (12.00 s at 100 Hz -> sample 900 at 75 Hz)
    pulse = np.exp(-0.5 * ((t - 12.0) / 0.05) ** 2)
    assert int(np.argmax(resample(pulse, rate, new))) == 900
    assert int(np.argmax(resample(pulse, rate, 50.0))) == 600
    # anti-alias filter: 40 Hz is removed when going down to 50 Hz (Nyquist 25 Hz)
    alias = resample(np.sin(2 * np.pi * 40.0 * t), rate, 50.0)
    assert float(np.abs(alias[200:-200]).max()) < 0.01


def test_resample_in_pieces_equals_whole_away_from_the_cut():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(4000)
    whole = resample(x, 100.0, 50.0)
    first = resample(x[:2000], 100.0, 50.0)
    second = resample(x[2000:], 100.0, 50.0)
    np.testing.assert_allclose(first[:900], whole[:900], atol=1e-3)
    np.testing.assert_allclose(second[100:], whole[1100:], atol=1e-3)


def test_resample_trace_copies_and_sets_the_rate():
    obspy = pytest.importorskip("obspy")
    tr = obspy.Trace(np.arange(200, dtype=np.int32), header={"sampling_rate": 100.0})
    out = resample_trace(tr, 50.0)
    assert out is not tr and out.stats.sampling_rate == 50.0 and out.stats.npts == 100
    assert tr.stats.sampling_rate == 100.0 and tr.data.dtype == np.int32  # untouched
    np.testing.assert_allclose(out.data, resample(tr.data, 100.0, 50.0), rtol=0, atol=0)
    assert out.stats.starttime == tr.stats.starttime
    assert resample_trace(tr, 100.0) is tr


def test_interpolate_curves_keeps_the_ends():
    curve = np.array([[0.0, 1.0, 0.0, 0.5, 1.0]])
    out = interpolate(curve, 9)
    assert out.dtype == np.float32 and out.shape == (1, 9)
    np.testing.assert_allclose(out[0], [0.0, 0.5, 1.0, 0.5, 0.0, 0.25, 0.5, 0.75, 1.0])
    back = interpolate(out, 5)
    np.testing.assert_allclose(back, curve)
    x3 = np.zeros((2, 4, 3), np.float32)
    x3[:, -1] = 1.0
    y3 = interpolate(x3, 7, axis=1)
    assert y3.shape == (2, 7, 3)
    np.testing.assert_allclose(y3[0, :, 0], [0, 0, 0, 0, 0, 0.5, 1], atol=1e-7)


def test_blank_window_has_the_model_input_shape_and_needs_a_window_length():
    pipeline = Pipeline(Conventions(sampling_rate=100.0, component_order="ZNE", in_samples=400,
                                    labels=("P", "S")))
    window = pipeline.blank_window("m", "annotate")
    assert window.shape == (1, 400, 3) and window.dtype == np.float32 and not window.any()
    open_ended = Pipeline(Conventions(sampling_rate=100.0, component_order="ZNE",
                                      labels=("P", "S")))
    with pytest.raises(ModelInputError, match="'m' has no fixed window length.*characterize"):
        open_ended.blank_window("m", "characterize")
