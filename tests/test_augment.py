"""Augmentation steps: each does its job, labels move with the waveform, seeded."""

import numpy as np
import pytest

import utrans.augment as augment_module
from utrans.augment import (AddEvent, AddGap, AddNoise, Batch, DropChannel, FrequencyMask,
                            PreEmphasis, ScaleAmplitude, ShiftEvent, TimeMask,
                            reference_steps)

T = 6000


def spiky(n=4, p=700, s=1500, coda=3000, snr=30.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, T)).astype(np.float32) * 0.01
    x[:, :, p] += 100.0
    x[:, :, s] += 50.0
    return Batch(x, p=[p] * n, s=[s] * n, coda=[coda] * n, snr_min=[snr] * n, noise=[False] * n)


def test_rows_limit_a_step_and_normalisation_is_not_a_step():
    # Normalisation moved to the pipeline (utrans.processing.normalize; tested in
    # test_preprocessing.py): there is no Normalize step any more.
    assert not hasattr(augment_module, "Normalize")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 3, T)) * [[[2.0], [5.0], [0.0]]] + 7.0).astype(np.float32)
    b = Batch(x.copy())
    PreEmphasis(0.97)(b, rng, rows=np.array([0, 2]))
    np.testing.assert_array_equal(b.x[1], x[1])  # untouched row
    for i in (0, 2):
        np.testing.assert_allclose(b.x[i, :, 1:], x[i, :, 1:] - 0.97 * x[i, :, :-1], rtol=1e-5)


def test_shift_moves_picks_with_waveform():
    b = spiky(n=8)
    ShiftEvent(1.0)(b, np.random.default_rng(3))
    for i in range(8):
        assert b.p[i] != 700
        assert int(np.argmax(b.x[i, 2])) == int(b.p[i])
        assert b.s[i] - b.p[i] == 800
        assert b.coda[i] - b.p[i] == 2300
        assert b.coda[i] <= T
    b0 = spiky(n=8)
    ShiftEvent(0.0)(b0, np.random.default_rng(3))
    assert (b0.p == 700).all()


def test_shift_skips_noise_and_missing_coda():
    b = spiky(n=2)
    b.noise[0] = True
    b.coda[1] = np.nan
    ShiftEvent(1.0)(b, np.random.default_rng(0))
    assert (b.p == 700).all()


def test_add_event_records_second_picks():
    b = spiky(n=6)
    clean = b.x.copy()
    AddEvent(1.0)(b, np.random.default_rng(1))
    for i in range(6):
        start = int(b.p2[i])
        assert start >= 3000
        assert b.s2[i] - b.p2[i] == 800
        added = b.x[i, 2, start] - clean[i, 2, start]
        k = clean[i, 2, 700] / added
        assert abs(k - round(k)) < 1e-3 and 1 <= round(k) <= 9
    low = spiky(n=2, snr=5.0)
    AddEvent(1.0)(low, np.random.default_rng(1))
    assert np.isnan(low.p2).all()


def test_add_noise_level_and_snr_gate():
    b = spiky(n=4)
    before = b.x.copy()
    AddNoise(1.0, level=(0.1, 0.1))(b, np.random.default_rng(0))
    diff = (b.x - before)[:, :, 4000:]
    np.testing.assert_allclose(diff.std(-1), 10.0 * np.ones((4, 3)), rtol=0.1)
    gated = spiky(n=2, snr=9.0)
    before = gated.x.copy()
    AddNoise(1.0)(gated, np.random.default_rng(0))
    np.testing.assert_array_equal(gated.x, before)


def test_drop_channel_keeps_one_and_compensates():
    b = spiky(n=32)
    before = b.x.copy()
    DropChannel(1.0)(b, np.random.default_rng(0))
    alive = (b.x != 0).any(-1)
    assert alive.any(1).all()
    n_alive = alive.sum(1)
    assert (n_alive < 3).any()
    for i in range(32):
        ch = np.flatnonzero(alive[i])
        np.testing.assert_allclose(b.x[i, ch], before[i, ch] * 3.0 / n_alive[i], rtol=1e-6)


def test_gap_only_on_noise_rows():
    b = spiky(n=4)
    b.noise[:2] = True
    before = b.x.copy()
    AddGap(1.0)(b, np.random.default_rng(0))
    np.testing.assert_array_equal(b.x[2:], before[2:])
    for i in range(2):
        z = np.flatnonzero((b.x[i] == 0).all(0))
        if len(z):
            assert z[0] <= 4000 and z[-1] < 5500
            assert len(z) == z[-1] - z[0] + 1


def test_scale_and_pre_emphasis():
    b = spiky(n=64)
    before = b.x.copy()
    ScaleAmplitude(0.5)(b, np.random.default_rng(0))
    ratio = b.x[:, 2, 700] / before[:, 2, 700]
    assert ((ratio >= 1 / 3 - 1e-6) & (ratio <= 3 + 1e-6)).all()
    assert (ratio > 1).any() and (ratio < 1).any()
    b = spiky(n=1)
    x0 = b.x.copy()
    PreEmphasis(0.97)(b, np.random.default_rng(0))
    np.testing.assert_allclose(b.x[0, :, 1:], x0[0, :, 1:] - 0.97 * x0[0, :, :-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(b.x[0, :, 0], x0[0, :, 0])


def test_masks():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, T)).astype(np.float32)
    b = Batch(x.copy())
    TimeMask(600)(b, np.random.default_rng(0))
    zeros = (b.x == 0).all(1).sum(1)
    assert ((zeros >= 1) & (zeros < 600)).all()
    b = Batch(x.copy())
    FrequencyMask(300)(b, np.random.default_rng(0))
    spec = np.abs(np.fft.rfft(b.x, axis=-1))
    masked = (spec < 1e-3).all(1).sum(1)
    assert ((masked >= 1) & (masked < 300)).all()
    assert b.x.dtype == np.float32


def test_seeded_and_reference_pipeline():
    clean, aug = reference_steps(add_event_r=0.6, add_gap_r=0.2, shift_event_r=0.99,
                                 add_noise_r=0.3, drop_channel_r=0.5)
    # no Normalize step at the end: the model's pipeline normalises every window
    assert [type(s).__name__ for s in clean] == ["ShiftEvent"]
    assert clean[0].rate == pytest.approx(0.495)
    names = [type(s).__name__ for s in aug]
    assert names == ["ShiftEvent", "AddEvent", "AddNoise", "DropChannel", "AddGap"]
    assert aug[0].rate == pytest.approx(0.99) and aug[3].rate == pytest.approx(0.5)
    assert aug[3].on == "all" and aug[4].on == "noise"
    full = reference_steps(shift_event_r=0.2, scale_amplitude_r=0.4, pre_emphasis=True)[1]
    assert [type(s).__name__ for s in full] == ["ShiftEvent", "ScaleAmplitude", "PreEmphasis"]
    assert reference_steps() == ([], [])

    def run(seed):
        b = spiky(n=8, seed=1)
        rng = np.random.default_rng(seed)
        for s in aug:
            s(b, rng)
        return b

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.p, b.p)
    assert not np.array_equal(a.x, c.x)
    with pytest.raises(ValueError, match="rate"):
        ShiftEvent(1.5)
