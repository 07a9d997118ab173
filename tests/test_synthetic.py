"""The synthetic dataset: consistent physics, all layouts agree."""

import numpy as np
import pytest

from utrans.formats import load_split, open_dataset
from utrans.synthetic import write_synthetic_dataset


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn")
    return write_synthetic_dataset(out, n_events=120, n_noise=20, seed=3)


def test_complete(syn):
    for key in ("datacollected", "stead", "seisbench", "train", "valid", "test"):
        assert syn[key].exists()
    box = syn["box"]
    assert box["lat_min"] < box["lat_max"] and box["lon_min"] < box["lon_max"]
    ids = load_split(syn["train"]) + load_split(syn["valid"]) + load_split(syn["test"])
    assert len(ids) == 120 and len(set(ids)) == 120
    assert all(i.endswith("_EV") for i in ids)
    assert len(load_split(syn["train_all"])) > len(load_split(syn["train"]))


def test_physics(syn):
    ds = open_dataset(syn["datacollected"])
    sp, hypo, mags, snr, pol_ok, baz_err = [], [], [], [], [], []
    for tid in load_split(syn["train"]):
        w, m = ds.read(tid)
        assert 0 <= m["source_depth_km"] <= 114.5
        assert m["trace_p_arrival_sample"] < m["trace_s_arrival_sample"] < m["trace_coda_end_sample"] < 6000
        box = syn["box"]
        assert box["lat_min"] - 1.5 < m["source_latitude_deg"] < box["lat_max"] + 1.5
        p = int(m["trace_p_arrival_sample"])
        sp.append(m["trace_s_arrival_sample"] - p)
        hypo.append(np.hypot(m["path_ep_distance_km"], m["source_depth_km"]))
        mags.append(m["source_magnitude"])
        snr.append(np.mean(m["trace_snr_db"]))
        # first motion on Z has the polarity's sign when the P is clear
        seg = w[p:p + 6].astype(float) - w[:p].mean(axis=0)
        if m["trace_snr_db"][2] > 25:
            sign = np.sign(seg[:, 2].sum())
            pol_ok.append(sign == (1 if m["trace_p_polarity"] == "positive" else -1))
            # horizontal P motion * Z sign points away from the event
            e, n = (seg[:, 0] * np.sign(seg[:, 2])).sum(), (seg[:, 1] * np.sign(seg[:, 2])).sum()
            if np.hypot(e, n) > 0:
                away = np.degrees(np.arctan2(e, n)) % 360
                err = (away - (m["path_back_azimuth_deg"] + 180)) % 360
                baz_err.append(min(err, 360 - err))
    assert np.corrcoef(sp, hypo)[0, 1] > 0.99
    assert np.corrcoef(mags, snr)[0, 1] > 0.3
    assert len(pol_ok) > 10 and np.mean(pol_ok) > 0.9
    assert len(baz_err) > 10 and np.median(baz_err) < 20


def test_layouts_agree(syn):
    dc = open_dataset(syn["datacollected"])
    st = open_dataset(syn["stead"])
    sb = open_dataset(syn["seisbench"])
    sb_names = sb._table["trace_name_original"].tolist()
    for tid in load_split(syn["test"])[:5]:
        w1, m1 = dc.read(tid)
        w2, m2 = st.read(tid)
        w3, m3 = sb.read(sb.trace_ids()[sb_names.index(tid)])
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(w1, w3)
        for key in ("trace_p_arrival_sample", "source_depth_km", "source_magnitude",
                    "station_latitude_deg", "source_longitude_deg"):
            assert m1[key] == pytest.approx(m2[key]) == pytest.approx(m3[key])
        np.testing.assert_allclose(m1["trace_snr_db"], m2["trace_snr_db"], atol=0.01)


def test_same_seed_same_data(tmp_path):
    a = write_synthetic_dataset(tmp_path / "a", n_events=10, n_noise=2, seed=5, layouts=("datacollected",))
    b = write_synthetic_dataset(tmp_path / "b", n_events=10, n_noise=2, seed=5, layouts=("datacollected",))
    c = write_synthetic_dataset(tmp_path / "c", n_events=10, n_noise=2, seed=6, layouts=("datacollected",))
    ra, rb, rc = (open_dataset(x["datacollected"]) for x in (a, b, c))
    tid = ra.trace_ids()[0]
    np.testing.assert_array_equal(ra.read(tid)[0], rb.read(tid)[0])
    assert load_split(a["train"]) == load_split(b["train"])
    assert load_split(a["train"]) != load_split(c["train"]) or \
        not np.array_equal(ra.read(tid)[0], rc.read(rc.trace_ids()[0])[0])
    with pytest.raises(ValueError, match="bogus"):
        write_synthetic_dataset(tmp_path / "d", n_events=2, n_noise=0, layouts=("bogus",))


def test_learnable_beats_the_mean(syn):
    """A linear model on a few waveform features beats predicting the mean on held-out traces."""
    ds = open_dataset(syn["datacollected"])
    ids = load_split(syn["train"]) + load_split(syn["valid"]) + load_split(syn["test"])
    feats, targets = [], []
    for tid in ids:
        w, m = ds.read(tid)
        w = w.astype(np.float64)
        p = int(m["trace_p_arrival_sample"])
        noise = w[:p - 20].std(axis=0) + 1e-9
        horiz = np.hypot(w[:, 0], w[:, 1])
        sp = np.argmax(np.convolve(horiz[p + 50:], np.ones(50), "same"))
        peak = np.log10(np.abs(w[p:]).max(axis=0) / noise)
        hv = np.log10(np.hypot(w[p:p + 8, 0], w[p:p + 8, 1]).max() / (np.abs(w[p:p + 8, 2]).max() + 1e-9))
        feats.append([*peak, np.log10(sp + 50), hv, 1.0])
        targets.append([m["source_magnitude"], m["path_ep_distance_km"], m["source_depth_km"]])
    F, Y = np.array(feats), np.array(targets)
    n_tr = int(0.7 * len(F))
    coef, *_ = np.linalg.lstsq(F[:n_tr], Y[:n_tr], rcond=None)
    pred = F[n_tr:] @ coef
    mse = ((pred - Y[n_tr:]) ** 2).mean(axis=0)
    mse_mean = ((Y[n_tr:] - Y[:n_tr].mean(axis=0)) ** 2).mean(axis=0)
    r2 = 1 - mse / mse_mean
    assert (r2 > 0.4).all(), r2  # magnitude, distance, depth
