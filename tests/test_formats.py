"""Format readers: layout detection, channel order, quirks of the real files."""

import math

import h5py
import numpy as np
import pytest

from mock_h5 import event_rows, make_datacollected, make_seisbench, make_stead, mock_wave
from utrans.formats import (BadTraceError, DataCollectedReader, SeisBenchReader, SteadReader,
                            detect_layout, geodesic_distance_azimuth, load_split, open_dataset)


@pytest.fixture
def rows():
    return event_rows(n_events=6, n_noise=2)


def _check_event(meta, row):
    assert meta["trace_category"] == "earthquake"
    assert meta["trace_p_arrival_sample"] == row["p"]
    assert meta["trace_s_arrival_sample"] == row["s"]
    assert meta["trace_coda_end_sample"] == row["coda"]
    np.testing.assert_allclose(meta["trace_snr_db"], row["snr"])
    assert meta["source_magnitude"] == pytest.approx(row["mag"])
    if np.isfinite(row["depth"]):
        assert meta["source_depth_km"] == pytest.approx(row["depth"])
    else:
        assert math.isnan(meta["source_depth_km"])
    assert meta["source_latitude_deg"] == pytest.approx(row["ev_lat"])
    assert meta["station_longitude_deg"] == pytest.approx(row["st_lon"])
    dist, baz = geodesic_distance_azimuth(row["ev_lat"], row["ev_lon"], row["st_lat"], row["st_lon"])
    assert meta["path_back_azimuth_deg"] == pytest.approx(baz)
    assert meta["path_ep_distance_km"] == pytest.approx(dist)


def _check_wave(w, row):
    assert w.dtype == np.float32 and w.shape == (6000, 3)
    # channel signature E=1, N=2, Z=3 away from the spike
    np.testing.assert_array_equal(w[10], [1.0, 2.0, 3.0])
    if row["eq"]:
        assert int(np.argmax(w[:, 2])) == int(row["p"])


@pytest.mark.parametrize("maker,layout,cls", [
    (make_stead, "stead", SteadReader),
    (make_datacollected, "datacollected", DataCollectedReader),
    (make_seisbench, "seisbench", SeisBenchReader),
])
def test_layouts_read_same_record(tmp_path, rows, maker, layout, cls):
    path = maker(tmp_path, rows)
    assert detect_layout(path) == layout
    with open_dataset(path) as ds:
        assert isinstance(ds, cls)
        ids = ds.trace_ids()
        assert len(ids) == len(rows)
        for tid, row in zip(sorted(ids), sorted(rows, key=lambda r: r["name"])) if layout != "seisbench" \
                else zip(ids, rows):
            w, meta = ds.read(tid)
            _check_wave(w, row)
            if row["eq"]:
                _check_event(meta, row)
            else:
                assert meta["trace_category"] == "noise"
                assert math.isnan(meta["trace_p_arrival_sample"])
                assert math.isnan(meta["source_depth_km"])
                assert np.isnan(meta["trace_snr_db"]).all()
                assert math.isnan(meta["path_back_azimuth_deg"])


def test_stead_attrs_without_csv_and_reported_baz_kept(tmp_path, rows):
    path = make_stead(tmp_path, rows, csv=False)
    ds = SteadReader(path)
    assert ds.csv is None
    tid = rows[0]["name"]
    meta = ds.read_metadata(tid)
    _check_event(meta, rows[0])
    assert meta["trace_category_raw"] == "earthquake_local"
    # the wrong stored value is kept aside, the geodesic one is used
    assert meta["path_back_azimuth_deg_reported"] == 999.0
    assert meta["path_back_azimuth_deg"] < 360.0
    # negative depth is returned as stored
    assert meta["source_depth_km"] == pytest.approx(-1.2)
    ds.close()


@pytest.mark.parametrize("order,dim", [("ZNE", "CW"), ("NEZ", "WC"), ("ENZ", "CW")])
def test_seisbench_component_reordering(tmp_path, rows, order, dim):
    folder = make_seisbench(tmp_path, rows, bucketed=(dim == "CW"), component_order=order,
                            dimension_order=dim)
    with open_dataset(folder) as ds:
        w, meta = ds.read(ds.trace_ids()[1])
    np.testing.assert_array_equal(w[5], [1.0, 2.0, 3.0])
    assert int(np.argmax(w[:, 2])) == 800
    assert meta["trace_p_polarity"] == "negative"
    # bucket padding is cut by the trace name's slice
    assert w.shape == (6000, 3)


def test_seisbench_bad_component_order(tmp_path, rows):
    folder = make_seisbench(tmp_path, rows)
    with h5py.File(folder / "waveforms.hdf5", "a") as f:
        del f["data_format/component_order"]
        f["data_format"].create_dataset("component_order", data="Z12")
    ds = open_dataset(folder)
    with pytest.raises(ValueError, match="Z12"):
        ds.read(ds.trace_ids()[0])


def test_datacollected_polarity_and_locate(tmp_path, rows):
    path = make_datacollected(tmp_path, rows)
    ds = open_dataset(path)
    meta = ds.read_metadata(rows[1]["name"])
    assert meta["trace_p_polarity"] == "negative"
    loc = ds.locate(rows[1]["name"])
    assert loc is not None
    fname, offset, shape, dtype = loc
    raw = np.fromfile(fname, dtype=dtype, count=shape[0] * shape[1], offset=offset).reshape(shape)
    np.testing.assert_array_equal(raw, mock_wave(rows[1]["p"]))


def test_missing_file_and_trace(tmp_path, rows):
    with pytest.raises(FileNotFoundError, match="nope.hdf5"):
        open_dataset(tmp_path / "nope.hdf5")
    path = make_datacollected(tmp_path, rows)
    ds = open_dataset(path)
    with pytest.raises(BadTraceError, match="NOT_THERE") as err:
        ds.read("NOT_THERE")
    assert str(path) in str(err.value)
    stead = open_dataset(make_stead(tmp_path, rows))
    with pytest.raises(BadTraceError, match="NOT_THERE"):
        stead.read_waveform("NOT_THERE")


def test_unknown_layout(tmp_path):
    path = tmp_path / "odd.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="odd.hdf5"):
        open_dataset(path)


def test_load_split_types(tmp_path):
    names = ["A.B_1_EV", "C.D_2_NO"]
    np.save(tmp_path / "s.npy", np.array(names))
    np.save(tmp_path / "b.npy", np.array([n.encode() for n in names]))
    np.save(tmp_path / "o.npy", np.array(names, dtype=object), allow_pickle=True)
    for f in ("s.npy", "b.npy", "o.npy"):
        assert load_split(tmp_path / f) == names
    np.save(tmp_path / "e.npy", np.array([], dtype=str))
    with pytest.raises(ValueError, match="e.npy"):
        load_split(tmp_path / "e.npy")
    with pytest.raises(FileNotFoundError):
        load_split(tmp_path / "missing.npy")


def test_bytes_trace_id(tmp_path, rows):
    ds = open_dataset(make_datacollected(tmp_path, rows))
    w, meta = ds.read(rows[0]["name"].encode())
    assert meta["trace_name"] == rows[0]["name"]


def test_reader_pickles_without_handle(tmp_path, rows):
    import pickle

    ds = open_dataset(make_datacollected(tmp_path, rows))
    ds.read(rows[0]["name"])
    clone = pickle.loads(pickle.dumps(ds))
    w, _ = clone.read(rows[0]["name"])
    assert int(np.argmax(w[:, 2])) == 700
