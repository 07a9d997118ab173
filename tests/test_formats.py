"""Format readers: layout detection, channel order, quirks of the real files."""

import math
import os
import pickle

import h5py
import pandas as pd
import numpy as np
import pytest

from mock_h5 import event_rows, make_datacollected, make_seisbench, make_stead, mock_wave
from utrans.formats import (BadTraceError, DataCollectedReader, DataFileError, SeisBenchReader,
                            SplitFileError, SteadReader, UnsafeSplitError, detect_layout,
                            load_split, metadata_problems, open_dataset)
from utrans.processing.geodesy import distance_azimuth


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
    dist, _, baz = distance_azimuth(row["ev_lat"], row["ev_lon"], row["st_lat"], row["st_lon"])
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
    ds = open_dataset(make_datacollected(tmp_path, rows))
    ds.read(rows[0]["name"])
    clone = pickle.loads(pickle.dumps(ds))
    w, _ = clone.read(rows[0]["name"])
    assert int(np.argmax(w[:, 2])) == 700


# --------------------------------------------------------------------------- split files


class _Marker:
    """Pickles to a call that would create a marker file when unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_split_with_pickled_code_is_refused_before_running(tmp_path):
    marker = tmp_path / "marker"
    np.save(tmp_path / "evil.npy", np.array(["A.B_1_EV", _Marker(marker)], dtype=object),
            allow_pickle=True)
    with pytest.raises(UnsafeSplitError, match="evil.npy.*system") as err:
        load_split(tmp_path / "evil.npy")
    assert isinstance(err.value, SplitFileError) and isinstance(err.value, ValueError)
    assert not marker.exists()
    # numpy itself would have run it: the test's payload is live
    np.load(tmp_path / "evil.npy", allow_pickle=True)
    assert marker.exists()


def test_split_plain_pickle_is_not_loaded(tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "p.npy").write_bytes(pickle.dumps([_Marker(marker)]))
    with pytest.raises(SplitFileError, match="p.npy.*not a .npy file"):
        load_split(tmp_path / "p.npy")
    assert not marker.exists()


def test_split_object_arrays_of_old_pickle_protocols(tmp_path):
    arr = np.array([b"A.B_1_EV", "C.D_2_NO", np.str_("E.F_3_EV")], dtype=object)
    for protocol in (0, 2, 3, 5):
        path = tmp_path / f"p{protocol}.npy"
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False,
                                                      "shape": (3,)})
            pickle.dump(arr, fh, protocol=protocol)
        assert load_split(path) == ["A.B_1_EV", "C.D_2_NO", "E.F_3_EV"], protocol


def test_split_integer_ids(tmp_path):
    np.save(tmp_path / "i.npy", np.array([3, 10, 7], dtype=np.int64))
    assert load_split(tmp_path / "i.npy") == ["3", "10", "7"]


@pytest.mark.parametrize("name,make,pattern", [
    ("float.npy", lambda p: np.save(p, np.arange(3.0)), r"strings or integers.*float64"),
    ("bool.npy", lambda p: np.save(p, np.array([True])), r"strings or integers.*bool"),
    ("twod.npy", lambda p: np.save(p, np.array([["a", "b"]])), r"1-D.*\(1, 2\)"),
    ("empty.npy", lambda p: np.save(p, np.array([], dtype=str)), "holds no trace IDs"),
    ("dict.npy", lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
     "builtins.dict|not a string"),
    ("intobj.npy", lambda p: np.save(p, np.array([1, "a"], dtype=object), allow_pickle=True),
     "position 0 is not a string"),
    ("blank.npy", lambda p: np.save(p, np.array(["a", " "])), "position 1 is empty"),
    ("latin.npy", lambda p: np.save(p, np.array([b"\xff\xfe"])), "not UTF-8"),
    ("text.npy", lambda p: p.write_text("A.B_1_EV\nC.D_2_NO\n"), "not a .npy file"),
])
def test_split_refusals_name_the_file(tmp_path, name, make, pattern):
    path = tmp_path / name
    make(path)
    with pytest.raises(SplitFileError, match=pattern) as err:
        load_split(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("dtype", ["U", "O"])
def test_split_truncated(tmp_path, dtype):
    path = tmp_path / "s.npy"
    arr = np.array([f"ST{i:02d}.XX_2019_EV" for i in range(50)])
    np.save(path, arr.astype(object) if dtype == "O" else arr, allow_pickle=True)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(SplitFileError, match="truncated") as err:
        load_split(path)
    assert str(path) in str(err.value)


# --------------------------------------------------------------------------- metadata ranges


def test_geodesic_refuses_out_of_range_with_the_value():
    with pytest.raises(ValueError, match=r"Received: event_lat=999.0$"):
        distance_azimuth(999.0, 0.0, 10.0, 10.0)
    with pytest.raises(ValueError, match=r"Received: station_lon=inf$"):
        distance_azimuth(1.0, 0.0, 10.0, float("inf"))
    assert all(math.isnan(v) for v in distance_azimuth(float("nan"), 0.0, 1.0, 1.0))
    dist, az, baz = distance_azimuth(0.0, 1.0, 0.0, 0.0)  # event due east of the station
    assert dist == pytest.approx(111.32, abs=0.01) and baz == pytest.approx(90.0)
    assert az == pytest.approx(270.0)


@pytest.mark.parametrize("maker", [make_stead, make_datacollected, make_seisbench])
def test_reader_with_absurd_latitude_names_the_coordinate(tmp_path, rows, maker):
    rows[0]["ev_lat"] = 999.0
    path = maker(tmp_path, rows)
    with open_dataset(path) as ds:
        tid = ds.trace_ids()[0] if maker is make_seisbench else rows[0]["name"]
        meta = ds.read_metadata(tid)  # no ObsPy 'lat1 out of bounds'
    assert math.isnan(meta["path_back_azimuth_deg"])
    problems = metadata_problems(meta, ["path_back_azimuth_deg", "source_latitude_deg"])
    assert any("path_back_azimuth_deg cannot be computed" in p and "source_latitude_deg=999.0" in p
               for p in problems)
    assert any(p.startswith("source_latitude_deg must be in [-90, 90]") for p in problems)


@pytest.mark.parametrize("key,value,ok", [
    ("source_depth_km", -999.0, False), ("source_depth_km", -1.2, True),
    ("source_depth_km", 799.0, True), ("source_depth_km", 900.0, False),
    ("source_magnitude", 12.0, False), ("source_magnitude", -1.0, True),
    ("source_longitude_deg", 360.0, False), ("source_longitude_deg", 359.9, True),
    ("path_back_azimuth_deg", -1.0, False), ("path_ep_distance_km", -3.0, False),
    ("trace_sampling_rate_hz", 0.0, False), ("trace_sampling_rate_hz", 50.0, True),
    ("trace_p_arrival_sample", 6000.0, False), ("trace_p_arrival_sample", 5999.0, True),
    ("trace_p_arrival_sample", -1.0, False), ("trace_p_polarity", "up", False),
    ("trace_p_polarity", "positive", True), ("source_magnitude", "big", False),
])
def test_metadata_ranges(key, value, ok):
    problems = metadata_problems({key: value}, [key], samples=6000)
    assert (problems == []) == ok, problems
    if not ok:
        assert key in problems[0] and repr(value) in problems[0]


def test_s_must_follow_p_and_optional_keys_only_when_present():
    meta = {"trace_p_arrival_sample": 900.0, "trace_s_arrival_sample": 800.0}
    assert metadata_problems(meta, optional=["trace_p_arrival_sample", "trace_s_arrival_sample"]) \
        == ["S must come after P. Received: trace_p_arrival_sample=900.0, trace_s_arrival_sample=800.0"]
    assert metadata_problems({"trace_p_arrival_sample": math.nan},
                             optional=["trace_p_arrival_sample"]) == []
    assert metadata_problems({}, ["source_magnitude"]) == ["missing source_magnitude (Received: None)"]


def test_unknown_polarity_reports_the_stored_text(tmp_path, rows):
    rows[0]["pol"] = "X"
    ds = open_dataset(make_datacollected(tmp_path, rows))
    meta = ds.read_metadata(rows[0]["name"])
    assert meta["trace_p_polarity"] is None and meta["trace_p_polarity_raw"] == "X"
    assert metadata_problems(meta, ["trace_p_polarity"]) == [
        "trace_p_polarity must be one of positive, negative. Received: trace_p_polarity='X'"]


# --------------------------------------------------------------------------- broken files


def test_not_hdf5_and_truncated_hdf5_name_the_file(tmp_path, rows):
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(DataFileError, match="bad.hdf5"):
        open_dataset(bad)
    path = make_datacollected(tmp_path, rows)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3])
    with pytest.raises(DataFileError, match="DataCollected.hdf5") as err:
        DataCollectedReader(path).read(rows[0]["name"])
    assert "\n" not in str(err.value)


def test_unparsable_csv_names_the_file(tmp_path, rows):
    path = make_stead(tmp_path, rows)
    path.with_suffix(".csv").write_bytes(b'trace_name,x\n"unterminated,1\n\xff\xfe\x00')
    with pytest.raises(DataFileError, match="merge.csv"):
        SteadReader(path).read_metadata(rows[0]["name"])


def test_waveform_of_text_or_wrong_rank_is_a_bad_trace(tmp_path, rows):
    waves = {rows[0]["name"]: np.array([["a", "b", "c"]] * 10, dtype="S1"),
             rows[1]["name"]: np.zeros((6000, 3, 2), np.float32)}
    for maker in (make_datacollected, make_stead):
        path = maker(tmp_path, rows, waves=waves)
        ds = open_dataset(path)
        with pytest.raises(BadTraceError, match=r"numbers. Received: dtype=\|S1"):
            ds.read_waveform(rows[0]["name"])
        with pytest.raises(BadTraceError, match="dtype"):
            ds.locate(rows[0]["name"])
        with pytest.raises(BadTraceError, match=r"Received: shape=\(6000, 3, 2\)"):
            ds.read_waveform(rows[1]["name"])


def test_seisbench_bucket_name_not_fitting_the_bucket(tmp_path, rows):
    folder = make_seisbench(tmp_path, rows)
    meta = pd.read_csv(folder / "metadata.csv")
    meta.loc[0, "trace_name"] = "bucket0$99,:3,:6000"
    meta.loc[1, "trace_name"] = "bucket0$1,:x,:6000"
    meta.loc[2, "trace_name"] = "bucket7$1,:3,:6000"
    meta.to_csv(folder / "metadata.csv", index=False)
    ds = open_dataset(folder)
    for tid, pattern in (("bucket0$99,:3,:6000", "does not fit"), ("bucket0$1,:x,:6000", "cannot parse"),
                         ("bucket7$1,:3,:6000", "not found")):
        with pytest.raises(BadTraceError, match=pattern) as err:
            ds.read_waveform(tid)
        assert str(folder) in str(err.value) and tid in str(err.value)
