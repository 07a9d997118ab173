"""SeisBench datasets in SeisBench's own layout, read and brought to a model through its pipeline.

The fixture writes what ``seisbench.data.WaveformDataWriter`` writes for
SeisBench's dummy dataset (100 IPOC events at CX.PB01): ``metadata.csv``
with its columns (no ``trace_category``, no arrival columns), and
``waveforms.hdf5`` with a ``data_format`` group of datasets (``dimension_order``
``CW``, ``component_order`` ``ZNE``, ``sampling_rate`` 20, ``measurement``,
``unit``, ``instrument_response``) and traces packed in buckets
(``bucket0$3,:3,:1200``). Further datasets add what other SeisBench datasets
carry: arrivals under phase names, noise traces, per-trace rates and
component orders.
"""

import logging

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.signal

from utrans import evaluate
from utrans.core.conventions import Conventions
from utrans.core.errors import BadTraceError, DataFileError, SplitCheckError
from utrans.data import DataGenerator, check_split
from utrans.formats import SeisBenchReader, open_dataset
from utrans.pipeline import Pipeline
from utrans.train import DataFiles, fit

RATE = 20
SAMPLES = 1200
DATA_FORMAT = {"dimension_order": "CW", "component_order": "ZNE", "sampling_rate": RATE,
               "measurement": "velocity", "unit": "counts",
               "instrument_response": "not restituted"}
SPLITS = ("train",) * 12 + ("dev",) * 4 + ("test",) * 8


def _waveform(rng, p=None, channels="ZNE", samples=SAMPLES, rate=RATE, amplitude=400.0):
    """``(channels, samples)`` counts: noise plus, after sample ``p``, a 2 Hz decaying burst.

    Each component carries an offset naming it (Z 3000, N 2000, E 1000) so
    that tests can tell the components apart after reordering.
    """
    t = np.arange(samples) / rate
    offsets = {"Z": 3000.0, "N": 2000.0, "E": 1000.0}
    out = np.empty((len(channels), samples))
    for k, c in enumerate(channels):
        out[k] = offsets[c] + rng.normal(0.0, 5.0, samples)
        if p is not None:
            tp = p / rate
            out[k] += (amplitude * np.exp(-np.clip(t - tp, 0, None) / 4.0)
                       * np.sin(2 * np.pi * 2.0 * (t - tp)) * (t >= tp))
    return out


def write_seisbench(folder, rows, buckets=(12, 4, 8), data_format=None, chunk=""):
    """A SeisBench dataset as SeisBench's writer lays it out (module doc).

    Args:
        folder: the dataset folder.
        rows: one dict per trace: metadata columns, plus ``"_wave"`` the
            ``(channels, samples)`` waveform.
        buckets: traces per bucket (in row order).
        data_format: the ``data_format`` entries (default: the dummy dataset's).
        chunk: chunk name (``metadata{chunk}.csv``, ``waveforms{chunk}.hdf5``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    fmt = dict(DATA_FORMAT if data_format is None else data_format)
    meta = []
    with h5py.File(folder / f"waveforms{chunk}.hdf5", "w") as f:
        group = f.create_group("data_format")
        for key, value in fmt.items():
            group.create_dataset(key, data=value)
        data = f.create_group("data")
        at = 0
        for b, size in enumerate(buckets):
            part = rows[at:at + size]
            channels = max(r["_wave"].shape[0] for r in part)
            width = max(r["_wave"].shape[1] for r in part)
            block = np.zeros((len(part), channels, width))
            for i, r in enumerate(part):
                w = r["_wave"]
                block[i, :w.shape[0], :w.shape[1]] = w
                row = {k: v for k, v in r.items() if k != "_wave"}
                row["trace_name"] = f"bucket{b}${i},:{w.shape[0]},:{w.shape[1]}"
                meta.append(row)
            data.create_dataset(f"bucket{b}", data=block)
            at += size
    pd.DataFrame(meta).to_csv(folder / f"metadata{chunk}.csv", index=False)
    return folder


def ipoc_rows(n=24, seed=0):
    """Rows like those of SeisBench's dummy dataset: events with a source, no arrivals."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rows.append({
            "trace_start_time": f"2007/01/{1 + i // 10:02d} {i % 24:02d}:42:45.08",
            "source_latitude_deg": -20.4 - 0.05 * i, "source_longitude_deg": -69.3 + 0.03 * i,
            "source_depth_km": 80.0 + i, "source_event_category": "ID",
            "source_magnitude": 1.3 + 0.05 * i, "source_magnitude_uncertainty": 0.014,
            "station_network_code": "CX", "station_code": "PB01", "station_type": "BH",
            "station_latitude_deg": -21.04323, "station_longitude_deg": -69.4874,
            "station_elevation_m": 900.0, "source_magnitude_type": "MA", "split": SPLITS[i],
            "trace_name_original": f"2007_01_01 {i:02d}_42_45_08",
            "_wave": _waveform(rng, p=200 + 5 * i, amplitude=100.0 * (1 + i)),
        })
    return rows


@pytest.fixture(scope="module")
def ipoc(tmp_path_factory):
    return write_seisbench(tmp_path_factory.mktemp("sb") / "dummy", ipoc_rows())


def test_reads_the_data_format_and_the_rate_it_states(ipoc):
    reader = open_dataset(ipoc)
    assert isinstance(reader, SeisBenchReader)
    assert reader.data_format == DATA_FORMAT
    ids = reader.trace_ids()
    assert ids[0] == "bucket0$0,:3,:1200" and ids[12] == "bucket1$0,:3,:1200"
    rates = {reader.read_metadata(t)["trace_sampling_rate_hz"] for t in ids}
    assert rates == {20.0}  # data_format/sampling_rate
    waveform = reader.read_waveform(ids[5])
    assert waveform.shape == (1200, 3)
    np.testing.assert_allclose(np.median(waveform, axis=0), [1000, 2000, 3000], atol=30)
    assert reader.trace_samples(ids[5]) == 1200
    meta = reader.read_metadata(ids[5])
    # every column is read, under SeisBench's name
    assert meta["source_event_category"] == "ID"
    assert meta["source_magnitude_uncertainty"] == pytest.approx(0.014)
    assert meta["trace_name_original"] == "2007_01_01 05_42_45_08"
    reader.close()


def test_traces_without_trace_category_are_events_when_they_have_arrivals_or_a_source(tmp_path):
    rng = np.random.default_rng(1)
    rows = ipoc_rows(8)
    for r in rows[:4]:  # events with arrivals and no source, as in pick-only datasets
        for key in ("source_latitude_deg", "source_longitude_deg", "source_depth_km",
                    "source_magnitude"):
            r[key] = np.nan
        r["trace_P1_arrival_sample"] = 300.0
        r["trace_Pg_arrival_sample"] = 310.0
        r["trace_S1_arrival_sample"] = 520.0
    for r in rows[6:]:  # noise: no source, no arrival
        for key in ("source_latitude_deg", "source_longitude_deg", "source_depth_km",
                    "source_magnitude"):
            r[key] = np.nan
        r["_wave"] = _waveform(rng)
    folder = write_seisbench(tmp_path / "mixed", rows, buckets=(8,))
    with open_dataset(folder) as reader:
        metas = [reader.read_metadata(t) for t in reader.trace_ids()]
    # events by their arrivals or their source, noise without either
    assert [m["trace_category"] for m in metas] == ["earthquake"] * 6 + ["noise"] * 2
    assert metas[0]["trace_p_arrival_sample"] == 300.0  # the earliest P phase
    assert metas[0]["trace_s_arrival_sample"] == 520.0
    assert np.isnan(metas[5]["trace_p_arrival_sample"])


def test_trace_category_column_wins_when_it_holds_a_value(tmp_path):
    rows = ipoc_rows(4)
    rows[0]["trace_category"] = "noise"
    rows[1]["trace_category"] = "earthquake_local"
    folder = write_seisbench(tmp_path / "cat", rows, buckets=(4,))
    with open_dataset(folder) as reader:
        cats = [reader.read_metadata(t)["trace_category"] for t in reader.trace_ids()]
    assert cats == ["noise", "earthquake", "earthquake", "earthquake"]


def test_per_trace_rates_and_component_orders(tmp_path):
    rng = np.random.default_rng(2)
    rows = ipoc_rows(4)
    rows[1]["trace_sampling_rate_hz"] = 40.0
    rows[1]["_wave"] = _waveform(rng, samples=2400, rate=40)
    rows[2]["trace_dt_s"] = 0.025
    rows[3]["trace_component_order"] = "ENZ"
    rows[3]["_wave"] = _waveform(rng, channels="ENZ")
    folder = write_seisbench(tmp_path / "rates", rows, buckets=(4,))
    with open_dataset(folder) as reader:
        ids = reader.trace_ids()
        rates = [reader.read_metadata(t)["trace_sampling_rate_hz"] for t in ids]
        assert rates == [20.0, 40.0, 40.0, 20.0]
        assert reader.read_waveform(ids[1]).shape == (2400, 3)
        for t in (ids[0], ids[3]):  # stored ZNE and ENZ, returned E, N, Z
            np.testing.assert_allclose(np.median(reader.read_waveform(t), axis=0),
                                       [1000, 2000, 3000], atol=30)


def test_a_vertical_only_dataset_reads_zeros_for_the_horizontals(tmp_path, caplog):
    rng = np.random.default_rng(3)
    rows = ipoc_rows(2)
    for r in rows:
        r["_wave"] = _waveform(rng, p=300, channels="Z")
    folder = write_seisbench(tmp_path / "z", rows, buckets=(2,),
                             data_format=dict(DATA_FORMAT, component_order="Z"))
    with caplog.at_level(logging.WARNING), open_dataset(folder) as reader:
        waveform = reader.read_waveform(reader.trace_ids()[0])
    assert np.all(waveform[:, :2] == 0) and np.median(waveform[:, 2]) == pytest.approx(3000, abs=30)
    assert "have no E/N" in caplog.text


def test_unknown_horizontal_orientation_and_disagreeing_chunks_are_refused(tmp_path):
    rows = ipoc_rows(2)
    folder = write_seisbench(tmp_path / "z12", rows, buckets=(2,),
                             data_format=dict(DATA_FORMAT, component_order="Z12"))
    with open_dataset(folder) as reader, pytest.raises(BadTraceError, match="'Z12'"):
        reader.read_waveform(reader.trace_ids()[0])
    with open_dataset(folder, component_order="ZNE") as reader:  # the user says which is which
        assert reader.read_waveform(reader.trace_ids()[0]).shape == (1200, 3)
    chunked = tmp_path / "chunked"
    write_seisbench(chunked, rows, buckets=(2,), chunk="a")
    write_seisbench(chunked, rows, buckets=(2,), chunk="b",
                    data_format=dict(DATA_FORMAT, sampling_rate=50))
    (chunked / "chunks").write_text("a\nb\n")
    with open_dataset(chunked) as reader, pytest.raises(DataFileError, match="data_format differs"):
        reader.read_metadata(reader.trace_ids()[0])


# --------------------------------------------------------------------------- to the model

MODEL = Conventions(sampling_rate=100.0, component_order="ZNE", in_samples=3000,
                    normalization="std", head="utrans")


def test_generator_brings_20_hz_traces_to_the_models_rate_and_window(ipoc):
    ids = SeisBenchReader(ipoc).split_ids("train")
    gen = DataGenerator(ids, ipoc, Pipeline(MODEL), "magnitude", batch_size=4, shuffle=False,
                        augmentation=False)
    x, y = gen.get_batch(0)  # 1200 samples at 20 Hz: 6000 at 100 Hz, then the model window
    assert x.shape == (4, 3000, 3)
    assert y[:, 0].tolist() == pytest.approx([1.3, 1.35, 1.4, 1.45])
    # the record is the stored trace resampled 20 -> 100 Hz by the one resampler
    stored = gen.reader.read_waveform(ids[2])
    record = scipy.signal.resample_poly(stored.astype(np.float64), 5, 1, axis=0)
    window = record[:3000, ::-1]  # E, N, Z -> the model's Z, N, E
    expected = (window - window.mean(axis=0)) / window.std(axis=0)
    np.testing.assert_allclose(x[2], expected, atol=2e-3)
    gen.close()


def test_picks_and_long_traces_are_placed_around_the_arrivals(tmp_path):
    rng = np.random.default_rng(4)
    rows = ipoc_rows(4)
    rows[0]["trace_p_arrival_sample"] = 210.0
    rows[0]["trace_s_arrival_sample"] = 400.0
    # 100 Hz, 90 s: P at 70 s lies beyond the first 60 s of a record
    rows[1]["trace_sampling_rate_hz"] = 100.0
    rows[1]["trace_p_arrival_sample"] = 7000.0
    rows[1]["trace_s_arrival_sample"] = 7900.0
    rows[1]["_wave"] = _waveform(rng, p=7000, samples=9000, rate=100)
    rows[2]["trace_sampling_rate_hz"] = 5.0  # 20 times below 100 Hz
    rows[2]["_wave"] = _waveform(rng, samples=300, rate=5)
    folder = write_seisbench(tmp_path / "placed", rows, buckets=(4,))
    ids = SeisBenchReader(folder).trace_ids()
    gen = DataGenerator(ids[:2], folder, None, "p_pick", batch_size=2, shuffle=False,
                        augmentation=False)
    meta = gen.metadata(ids[0])
    assert (meta["trace_p_arrival_sample"], meta["trace_s_arrival_sample"]) == (1050.0, 2000.0)
    assert meta["trace_sampling_rate_hz"] == 100.0 and meta["trace_stored_sampling_rate_hz"] == 20.0
    moved = gen.metadata(ids[1])  # the record starts 600 samples (LEAD) before P, within the trace
    assert moved["trace_record_start_sample"] == 3000
    assert moved["trace_p_arrival_sample"] == 4000.0
    x, y = gen.get_batch(0)
    assert x.shape == (2, 6000, 3)
    assert np.argmax(y[0, :, 0]) == 1050 and np.argmax(y[1, :, 0]) == 4000
    gen.close()
    with pytest.raises(SplitCheckError, match=r"bucket0\$2,:3,:300: sampled at 5 Hz, 20 times below"):
        check_split(ids, folder, "magnitude")
    check = check_split(ids, folder, "magnitude", skip_bad=True)
    assert [t for t, _ in check.skipped] == [ids[2]]


def test_trains_and_tests_on_a_20_hz_dataset(ipoc, tmp_path):
    reader = SeisBenchReader(ipoc)
    splits = {}
    for name in ("train", "dev", "test"):
        splits[name] = tmp_path / f"{name}.npy"
        np.save(splits[name], np.array(reader.split_ids(name)))
    data = DataFiles(hdf5=str(ipoc), train=str(splits["train"]), valid=str(splits["dev"]),
                     test=str(splits["test"]))
    result = fit("magnitude", model="magnet", data=data, output_name=str(tmp_path / "m"),
                 epochs=1, in_samples=256, batch_size=4, augmentation=False, verbose=0,
                 run_eagerly=True, model_kwargs={"conv_channels": [4, 4], "lstm_dim": 4})
    assert result.history.epoch.tolist() == [1]
    frame = evaluate.test("magnitude", output_name=str(tmp_path / "m"), run_eagerly=True,
                          batch_size=4)
    assert sorted(frame.trace_name) == sorted(reader.split_ids("test"))
    assert frame.true_magnitude.tolist() == pytest.approx([1.3 + 0.05 * i for i in range(16, 24)])
    assert np.isfinite(frame.pred_magnitude).all()
