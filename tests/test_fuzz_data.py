"""Property-based tests: corrupted files end in an error naming the file (and trace) or a skip.

Valid mock files of every layout (``mock_h5``) are corrupted at random:
truncation and flipped bytes (HDF5, CSV and split files), waveforms of the
wrong shape or dtype or holding NaN/inf, attributes and CSV cells missing or
absurd. Each case must end in one of two ways:

* an error of the data layer (:class:`utrans.formats.DataError`: a
  ``BadTraceError`` naming file and trace, a ``DataFileError`` or
  ``SplitFileError`` naming the file), on one line;
* a skip (``skip_bad=True``), listed with its reason; the batches that are
  produced hold finite numbers and exactly the labels the metadata gives.

Anything else (a raw h5py ``OSError`` or ``KeyError``, an ``IndexError`` from
numpy, a label computed from out-of-range metadata) fails.

The default suite runs few examples per property (``derandomize=True``, so a
run is repeatable); ``pytest -m slow`` runs many more with fresh randomness.
"""

import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mock_h5 import event_rows, make_datacollected, make_seisbench, make_stead
from utrans.data import DataGenerator, check_split, trace_problems
from utrans.formats import BadTraceError, DataError, load_split, open_dataset
from utrans.labels import get_labeller
from utrans.processing.geodesy import distance_azimuth

FAST = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

LAYOUTS = ("stead", "datacollected", "seisbench")
TASKS = ("location", "magnitude", "dpk", "baz", "polarity", "p_pick")


# --------------------------------------------------------------------------- valid files


def _rows():
    rows = event_rows(n_events=6, n_noise=2)
    rows[4]["depth"] = 30.0
    return rows


_BASE = {}


def _base(layout):
    """A valid dataset of ``layout`` (built once per process) and its trace IDs."""
    if layout not in _BASE:
        folder = Path(tempfile.mkdtemp(prefix=f"fuzz_{layout}_"))
        rows = _rows()
        if layout == "stead":
            path = make_stead(folder, rows)
        elif layout == "datacollected":
            path = make_datacollected(folder, rows)
        else:
            path = make_seisbench(folder / "sb", rows, bucketed=True)
        with open_dataset(path) as ds:
            ids = ds.trace_ids()
        _BASE[layout] = (path, ids)
    return _BASE[layout]


def _copy(layout, work):
    """Copy the valid dataset of ``layout`` into ``work``; returns (dataset path, files, ids)."""
    path, ids = _base(layout)
    if layout == "seisbench":
        dest = work / "sb"
        shutil.copytree(path, dest)
        return dest, {"hdf5": dest / "waveforms.hdf5", "csv": dest / "metadata.csv"}, ids
    dest = work / path.name
    shutil.copy(path, dest)
    files = {"hdf5": dest}
    if path.with_suffix(".csv").exists():
        shutil.copy(path.with_suffix(".csv"), dest.with_suffix(".csv"))
        files["csv"] = dest.with_suffix(".csv")
    return dest, files, ids


# --------------------------------------------------------------------------- judging


def _judged(call, names, trace=None):
    """Run ``call``; a data-layer error must be one line naming a file (and the trace).

    Returns the result, or the error when one was raised. Any other exception
    propagates and fails the test.
    """
    try:
        return call()
    except DataError as err:
        msg = str(err)
        assert "\n" not in msg, msg
        assert any(str(n) in msg for n in names), f"no file named in: {msg}"
        if trace is not None and isinstance(err, BadTraceError):
            assert err.trace_id == trace, msg
        return err


def _exercise_reader(path, names):
    reader = _judged(lambda: open_dataset(path), names)
    if isinstance(reader, Exception):
        return
    ids = _judged(reader.trace_ids, names)
    if isinstance(ids, Exception):
        return
    for tid in ids[:10]:
        w = _judged(lambda: reader.read_waveform(tid), names, tid)
        if isinstance(w, np.ndarray):
            assert w.dtype == np.float32 and w.ndim == 2 and w.shape[1] == 3
        meta = _judged(lambda: reader.read_metadata(tid), names, tid)
        if isinstance(meta, dict):
            assert meta["trace_category"] in ("earthquake", "noise")
            for key in ("source_latitude_deg", "source_depth_km", "trace_p_arrival_sample",
                        "path_back_azimuth_deg", "trace_sampling_rate_hz"):
                assert isinstance(meta[key], float), (key, meta[key])
            assert meta["trace_snr_db"].shape == (3,)
            assert meta["trace_p_polarity"] in ("positive", "negative", None)
        _judged(lambda: reader.locate(tid), names, tid)
    reader.close()


def _expected_label(labeller, meta):
    return np.asarray(labeller(meta), dtype=np.float32)


def _exercise_generator(path, ids, names, task):
    """Train-like (replace) and test-like (drop) generators, then the split check."""
    labeller = get_labeller(task)
    for skip_bad, shuffle, drop_remainder in ((False, False, False), (True, True, True),
                                              (True, False, False)):
        gen = _judged(lambda: DataGenerator(ids, path, batch_size=3, shuffle=shuffle, labeller=task,
                                            skip_bad=skip_bad, drop_remainder=drop_remainder,
                                            seed=1), names)
        if isinstance(gen, Exception):
            continue
        for i in range(len(gen)):
            out = _judged(lambda: gen.get_batch(i), names)
            if isinstance(out, Exception):
                if skip_bad and isinstance(out, BadTraceError):
                    # only a training batch that cannot be filled at all may fail
                    assert gen.fill_bad == "replace" and out.trace_id == "*", str(out)
                break
            x, y = out
            rows = gen.batch_ids(i)
            assert x.shape[0] == y.shape[0] == len(rows)
            assert np.isfinite(x).all() and np.isfinite(y).all()
            if gen.fill_bad == "drop":
                assert len(set(rows)) == len(rows)
            if task in ("location", "magnitude", "baz", "polarity"):
                for row, tid in zip(y, rows):
                    meta = gen.metadata(tid)
                    assert trace_problems(meta, labeller, 6000) == [], tid
                    np.testing.assert_allclose(row, _expected_label(labeller, meta), rtol=1e-5,
                                               atol=1e-6)
        for tid, reason in gen.skipped:
            assert reason and "\n" not in reason and tid in ids
        gen.close()
    check = _judged(lambda: check_split(ids, path, labeller=task, skip_bad=True), names)
    if not isinstance(check, Exception):
        assert len(check.ids) + len(check.skipped) == len(ids)


# --------------------------------------------------------------------------- byte corruptions

_position = st.one_of(st.integers(0, 4095), st.floats(0.0, 1.0, exclude_max=True))
_byte_corruption = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0, exclude_max=True)),
    st.tuples(st.just("flip"), st.lists(st.tuples(_position, st.integers(1, 255)),
                                        min_size=1, max_size=16)),
)


def _corrupt_bytes(path, corruption):
    data = bytearray(Path(path).read_bytes())
    kind, arg = corruption
    if kind == "truncate":
        data = data[:int(arg * len(data))]
    else:
        for pos, xor in arg:
            j = pos if isinstance(pos, int) else int(pos * len(data))
            if j < len(data):
                data[j] ^= xor
    Path(path).write_bytes(bytes(data))


def _byte_case(layout, target, corruption, task):
    with tempfile.TemporaryDirectory() as tmp:
        path, files, ids = _copy(layout, Path(tmp))
        victim = files.get(target, files["hdf5"])
        _corrupt_bytes(victim, corruption)
        names = [victim, path]
        _exercise_reader(path, names)
        _exercise_generator(path, ids, names, task)


@FAST
@given(layout=st.sampled_from(LAYOUTS), target=st.sampled_from(["hdf5", "csv"]),
       corruption=_byte_corruption, task=st.sampled_from(TASKS))
def test_byte_corruption(layout, target, corruption, task):
    _byte_case(layout, target, corruption, task)


@pytest.mark.slow
@SLOW
@given(layout=st.sampled_from(LAYOUTS), target=st.sampled_from(["hdf5", "csv"]),
       corruption=_byte_corruption, task=st.sampled_from(TASKS))
def test_byte_corruption_slow(layout, target, corruption, task):
    _byte_case(layout, target, corruption, task)


# --------------------------------------------------------------------------- waveform corruptions

_shapes = st.sampled_from([(6000, 3), (3, 6000), (6000, 2), (6000,), (), (0, 3), (5999, 3),
                           (6000, 3, 1), (100, 3)])
_dtypes = st.sampled_from(["<f4", ">f4", "<f8", "<i2", "<i4", "|u1", "|b1", "<c8", "|S4"])


@st.composite
def _waveforms(draw):
    shape = draw(_shapes)
    dtype = np.dtype(draw(_dtypes))
    if dtype.kind == "S":
        return np.full(shape, b"ab", dtype=dtype)
    elements = None
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=32)
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _replace_waveform(layout, files, trace, arr):
    with h5py.File(files["hdf5"], "a") as f:
        if layout == "stead":
            attrs = dict(f["data"][trace].attrs)
            del f["data"][trace]
            ds = f["data"].create_dataset(trace, data=arr)
            for k, v in attrs.items():
                ds.attrs[k] = v
        elif layout == "datacollected":
            del f[trace]["data"]
            f[trace].create_dataset("data", data=arr)
        else:
            del f["data"]["bucket0"]
            f["data"].create_dataset("bucket0", data=arr)


def _waveform_case(layout, which, arr, task):
    with tempfile.TemporaryDirectory() as tmp:
        path, files, ids = _copy(layout, Path(tmp))
        trace = ids[which % len(ids)]
        _replace_waveform(layout, files, trace, arr)
        names = [files["hdf5"], path]
        _exercise_reader(path, names)
        _exercise_generator(path, ids, names, task)


@FAST
@given(layout=st.sampled_from(LAYOUTS), which=st.integers(0, 7), arr=_waveforms(),
       task=st.sampled_from(TASKS))
def test_waveform_corruption(layout, which, arr, task):
    _waveform_case(layout, which, arr, task)


@pytest.mark.slow
@SLOW
@given(layout=st.sampled_from(LAYOUTS), which=st.integers(0, 7), arr=_waveforms(),
       task=st.sampled_from(TASKS))
def test_waveform_corruption_slow(layout, which, arr, task):
    _waveform_case(layout, which, arr, task)


# --------------------------------------------------------------------------- metadata corruptions

_ATTRS = {
    "stead": ["p_arrival_sample", "s_arrival_sample", "coda_end_sample", "snr_db", "source_magnitude",
              "source_depth_km", "source_latitude", "source_longitude", "receiver_latitude",
              "receiver_longitude", "trace_category", "back_azimuth_deg"],
    "datacollected": ["p_arrival_sample", "s_arrival_sample", "coda_end_sample", "snr_db", "magnitude",
                      "depth", "event_lat", "event_long", "station_lat", "station_long",
                      "data_category", "P_polarity"],
    "seisbench": ["trace_p_arrival_sample", "trace_s_arrival_sample", "trace_coda_end_sample",
                  "trace_snr_db", "source_magnitude", "source_depth_km", "source_latitude_deg",
                  "source_longitude_deg", "station_latitude_deg", "station_longitude_deg",
                  "trace_category", "trace_P_polarity", "trace_sampling_rate_hz", "trace_name"],
}

_absurd = st.one_of(
    st.none(),  # delete
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**62), 2**62),
    st.sampled_from([999.0, -999.0, 1e300, -1e-300, 0.0, 6000.0, 1e6, 360.0, -0.0]),
    st.text(max_size=12),
    st.sampled_from(["None", "nan", "[1 2 3]", "a|b|c", "[[7000.]]", "positive", "U", "noise", "1e400"]),
    st.binary(max_size=8),
    hnp.arrays(np.float64, st.sampled_from([(0,), (2,), (3,), (2, 2), (1, 1)]),
               elements=st.floats(allow_nan=True, allow_infinity=True)),
    st.complex_numbers(allow_nan=False, max_magnitude=1e3),
)


def _csv_row(files, trace):
    """Row number of ``trace`` in the metadata CSV (None without a CSV)."""
    if "csv" not in files:
        return None
    table = pd.read_csv(files["csv"], dtype=str, keep_default_na=False)
    return int(np.flatnonzero(table["trace_name"] == trace)[0])


def _set_metadata(layout, files, trace, row, key, value):
    if row is not None:
        csv = files["csv"]
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        col = key
        if col not in table.columns:
            table[col] = ""
        idx = row
        if value is None:
            table.loc[idx, col] = ""
        else:
            table.loc[idx, col] = str(value.tolist() if isinstance(value, np.ndarray) else value)
        table.to_csv(csv, index=False)
        return
    with h5py.File(files["hdf5"], "a") as f:
        obj = f["data"][trace] if layout == "stead" else f[trace]
        if value is None:
            if key in obj.attrs:
                del obj.attrs[key]
        elif isinstance(value, str) and "\x00" in value:  # HDF5 strings cannot hold NUL
            obj.attrs[key] = value.replace("\x00", "")
        elif isinstance(value, bytes) and b"\x00" in value:
            obj.attrs[key] = value.replace(b"\x00", b"")
        else:
            obj.attrs[key] = value


def _metadata_case(layout, which, edits, task, use_csv):
    with tempfile.TemporaryDirectory() as tmp:
        path, files, ids = _copy(layout, Path(tmp))
        if layout == "stead" and not use_csv:
            files.pop("csv").unlink()
        trace = ids[which % len(ids)]
        row = _csv_row(files, trace)
        for key_index, value in edits:
            keys = _ATTRS[layout]
            key = keys[key_index % len(keys)]
            if layout == "seisbench" and key == "trace_name" and value is None:
                continue
            _set_metadata(layout, files, trace, row, key, value)
        names = [files.get("csv", files["hdf5"]), files["hdf5"], path]
        _exercise_reader(path, names)
        _exercise_generator(path, ids, names, task)


_edits = st.lists(st.tuples(st.integers(0, 20), _absurd), min_size=1, max_size=4)


@FAST
@given(layout=st.sampled_from(LAYOUTS), which=st.integers(0, 7), edits=_edits,
       task=st.sampled_from(TASKS), use_csv=st.booleans())
def test_metadata_corruption(layout, which, edits, task, use_csv):
    _metadata_case(layout, which, edits, task, use_csv)


@pytest.mark.slow
@SLOW
@given(layout=st.sampled_from(LAYOUTS), which=st.integers(0, 7), edits=_edits,
       task=st.sampled_from(TASKS), use_csv=st.booleans())
def test_metadata_corruption_slow(layout, which, edits, task, use_csv):
    _metadata_case(layout, which, edits, task, use_csv)


# --------------------------------------------------------------------------- split files

_split_arrays = st.one_of(
    hnp.arrays(st.sampled_from([np.dtype("U12"), np.dtype("S12"), np.int64, np.int16, np.float64,
                                np.bool_, np.complex64]),
               hnp.array_shapes(min_dims=0, max_dims=2, max_side=4)),
    st.lists(st.one_of(st.text(max_size=10), st.binary(max_size=10), st.integers(), st.none(),
                       st.floats(), st.tuples(st.text(max_size=3))), max_size=5)
    .map(lambda xs: np.array(xs + [None], dtype=object)[:-1]),
)


def _split_case(arr, corruption):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "split.npy"
        np.save(path, arr, allow_pickle=True)
        if corruption is not None:
            _corrupt_bytes(path, corruption)
        ids = _judged(lambda: load_split(path), [path])
        if isinstance(ids, Exception):
            return
        assert ids and all(isinstance(t, str) and t.strip() for t in ids)
        if corruption is None:  # the uncorrupted file reads as numpy would read it
            ref = np.load(path, allow_pickle=True).reshape(-1)
            assert ids == [v.decode() if isinstance(v, bytes) else str(v) for v in ref.tolist()]
        dataset, _ = _base("datacollected")
        _judged(lambda: check_split(path, dataset, labeller="location", skip_bad=True), [path, dataset])


@FAST
@given(arr=_split_arrays, corruption=st.one_of(st.none(), _byte_corruption))
def test_split_file_corruption(arr, corruption):
    _split_case(arr, corruption)


@pytest.mark.slow
@SLOW
@given(arr=_split_arrays, corruption=st.one_of(st.none(), _byte_corruption))
def test_split_file_corruption_slow(arr, corruption):
    _split_case(arr, corruption)


def test_fuzz_harness_sees_a_corruption():
    """The harness is live: a flipped superblock is reported, naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path, files, ids = _copy("datacollected", Path(tmp))
        _corrupt_bytes(path, ("flip", [(0, 0xFF)]))
        err = _judged(lambda: open_dataset(path).trace_ids(), [path])
        assert isinstance(err, DataError) and str(path) in str(err)


_lat = st.floats(-90, 90)
_lon = st.floats(-180, 360, exclude_max=True)
_any = st.floats(allow_nan=True, allow_infinity=True)


@FAST
@given(coords=st.tuples(st.one_of(_lat, _any), st.one_of(_lon, _any), st.one_of(_lat, _any),
                        st.one_of(_lon, _any)))
def test_geodesic_never_raises_foreign_errors(coords):
    """In range: finite distance and azimuths; out of range: a ValueError echoing the value."""
    try:
        dist, az, baz = distance_azimuth(*coords)
    except ValueError as err:
        assert "Received:" in str(err)
        return
    if any(np.isnan(c) for c in coords):
        assert np.isnan(dist) and np.isnan(az) and np.isnan(baz)
    else:
        assert 0.0 <= dist <= 20040.0 and 0.0 <= az <= 360.0 and 0.0 <= baz <= 360.0
