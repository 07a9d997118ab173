"""A network archive to a pick catalogue: SDS station-days, resumable outputs, Dask workers.

The archive: two stations, two days, 20 minutes of coloured noise around
midnight with RJOB-like events (ObsPy's example event, rotated, scaled, its
sign flipped) at known times, one of them with its P just before midnight
and its S just after, written as day files. The published SeisT-S picker
(``seist_s_dpk_diting``) picks them.

* Station-days processed one by one must give exactly the picks of one
  continuous record (nothing lost or doubled at midnight), each in the day
  of its peak time; a rerun skips every done station-day.
* Two Dask worker processes (a ``LocalCluster`` on loopback) must give the
  same catalogue, also with 10-minute units and a worker killed while
  station-days are in flight.
* The command killed mid-run and run again gives the same catalogue.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import obspy
import pandas as pd
import pytest
from conftest import REPO_ROOT, require_reference
from obspy.clients.filesystem.sds import Client as SDSClient
from scipy.signal import butter, sosfiltfilt

from utrans.annotate import classify
from utrans.annotate.archive import StationDay, UnitStore, plan_units, read_table, read_unit
from utrans.annotate.characterization import NOTE_COLUMN
from utrans.annotate.network import run_network
from utrans.cli import annotate as cli
from utrans.cli.network import QuietWorkers
from utrans.core.io import TMP_PREFIX

MODEL = "seist_s_dpk_diting"
T0 = obspy.UTCDateTime("2024-01-01T23:50:00")
MIDNIGHT = obspy.UTCDateTime("2024-01-02")
SECONDS = 1200.0
P_TIMES = ["2024-01-01T23:52:30", "2024-01-01T23:57:10", "2024-01-01T23:59:59.50",
           "2024-01-02T00:01:40", "2024-01-02T00:04:10", "2024-01-02T00:07:50"]
P_OFFSET, S_OFFSET = 4.70, 5.62  # RJOB's P and S after the start of obspy.read()
MOVEOUT = 1.3  # the second station records every event 1.3 s later


def _template():
    st = obspy.read()
    st.detrend("demean")
    data = np.stack([st.select(component=c)[0].data for c in "ZNE"]).astype(np.float64)
    taper = np.ones(data.shape[1])
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(200) / 200)
    taper[:100] = ramp[::2]
    taper[-200:] = ramp[::-1]
    return data * taper, data[:, :400].std(axis=1)


def write_archive(root, stations=("STA1", "STA2"), seed=0, fs=100.0):
    """Day files of an SDS archive; returns [(trace_id, P time, S time)]."""
    template, noise_std = _template()
    sos = butter(4, [1.0, 20.0], btype="band", fs=fs, output="sos")
    truth = []
    for k, sta in enumerate(stations):
        rng = np.random.default_rng(seed + k)
        data = sosfiltfilt(sos, rng.standard_normal((3, int(SECONDS * fs))), axis=1)
        data *= (0.3 * noise_std / data.std(axis=1))[:, None]
        for p in P_TIMES:
            p = obspy.UTCDateTime(p) + MOVEOUT * k
            i = round((p - T0 - P_OFFSET) * fs)
            angle = rng.uniform(0, 2 * np.pi)
            z, n, e = template
            rotated = np.stack([z, np.cos(angle) * n - np.sin(angle) * e,
                                np.sin(angle) * n + np.cos(angle) * e])
            data[:, i:i + template.shape[1]] += rng.choice([-1, 1]) * 10 ** rng.uniform(
                -0.15, 0.3) * rotated
            truth.append((f"XX.{sta}.", p, p + S_OFFSET - P_OFFSET))
        for c, comp in enumerate("ZNE"):
            trace = obspy.Trace(np.round(data[c]).astype(np.int32), header={
                "network": "XX", "station": sta, "channel": f"HH{comp}",
                "sampling_rate": fs, "starttime": T0})
            for day in (obspy.UTCDateTime("2024-01-01"), MIDNIGHT):
                piece = trace.slice(day, day + 86400 - 1 / fs)
                path = (pathlib.Path(root) / "2024" / "XX" / sta / f"HH{comp}.D" /
                        f"XX.{sta}..HH{comp}.D.2024.{day.julday:03d}")
                path.parent.mkdir(parents=True, exist_ok=True)
                piece.write(str(path), format="MSEED", encoding="STEIM2")
    return truth


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    home = tmp_path_factory.mktemp("utrans_home")
    shutil.copy(require_reference(f"seist/{MODEL}.pth"), home / f"{MODEL}.pth")
    root = tmp_path_factory.mktemp("sds")
    truth = write_archive(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UTRANS_HOME", str(home))
        yield root, truth


@pytest.fixture(scope="module")
def single(archive, tmp_path_factory):
    """The catalogue of station-days processed one by one in this process."""
    root, _ = archive
    folder = tmp_path_factory.mktemp("single")
    result = run_network(root, "2024-01-01", "2024-01-03", MODEL, output=folder, workers=0)
    return result


def picks_of(frame):
    return frame[["trace_id", "phase", "peak_time"]].reset_index(drop=True)


def assert_same_catalogue(a, b):
    pd.testing.assert_frame_equal(picks_of(a), picks_of(b))
    np.testing.assert_allclose(a.peak_value, b.peak_value, rtol=1e-5)


# --------------------------------------------------------------------------- units, files


def test_plan_units_selection_grid_and_ids(archive):
    root, _ = archive
    units = plan_units(root, "2024-01-01", "2024-01-03")
    assert [u.unit_id for u in units] == ["XX.STA1.2024-01-01", "XX.STA2.2024-01-01",
                                          "XX.STA1.2024-01-02", "XX.STA2.2024-01-02"]
    assert units[0].end - units[0].start == 86400
    assert [u.unit_id for u in plan_units(root, "2024-01-01T23:00", "2024-01-02T01:00",
                                          station="*2", chunk_s=3600)] == \
        ["XX.STA2.2024-01-01T230000", "XX.STA2.2024-01-02T000000"]
    clipped = plan_units(root, "2024-01-01T06:00", "2024-01-02", station="STA1")
    assert len(clipped) == 1 and clipped[0].start == obspy.UTCDateTime("2024-01-01T06:00")
    with pytest.raises(ValueError, match="No station of the archive"):
        plan_units(root, "2024-01-01", "2024-01-03", network="YY")
    with pytest.raises(ValueError, match="end must be after start"):
        plan_units(root, "2024-01-03", "2024-01-01")
    with pytest.raises(ValueError, match="Received: start='soon'"):
        plan_units(root, "soon", "2024-01-01")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        plan_units(root / "nowhere", "2024-01-01", "2024-01-03")


def test_read_unit_reads_across_midnight(archive):
    root, _ = archive
    unit = plan_units(root, "2024-01-02", "2024-01-03", station="STA1")[0]
    st = read_unit(root, unit, pad_s=(120.0, 0.0))
    assert len(st) == 3  # the two day files joined into one trace per channel
    for tr in st:
        assert tr.stats.starttime == MIDNIGHT - 120
        assert tr.stats.endtime == T0 + SECONDS - 0.01
    assert len(read_unit(root, unit, channel="HHZ")) == 1


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_store_writes_table_then_marker_and_checks_them(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    store = UnitStore(tmp_path, fmt)
    unit = StationDay("NA", "ST1", obspy.UTCDateTime("2024-01-01"),
                      obspy.UTCDateTime("2024-01-02"))
    picks = pd.DataFrame({"trace_id": ["NA.ST1."], "phase": ["P"],
                          "peak_time": ["2024-01-01T10:00:00.000000Z"], "peak_value": [0.9],
                          "polarity__m": ["U"], "characterize_note": [""]})
    assert not store.is_done(unit)
    marker = store.write(unit, picks, seconds=1.5)
    assert marker["rows"] == 1 and store.is_done(unit)
    assert json.loads(store.marker_path(unit).read_text())["seconds"] == 1.5
    back = store.read(unit)
    assert back.trace_id[0] == "NA.ST1."  # network "NA" stays text
    assert back.characterize_note[0] == ""
    pd.testing.assert_frame_equal(back, picks, check_dtype=False)
    # A table changed after its marker (or a torn write) is not done.
    table = store.table_path(unit)
    table.write_bytes(table.read_bytes()[:-3])
    assert not store.is_done(unit)
    # The temporary file of a writer killed mid-write (named as atomic_write names it).
    stale = table.parent / f"{TMP_PREFIX}abc.{table.name}"
    stale.write_text("half")
    assert store.clean() == 1 and not stale.exists()
    assert table.is_file() and store.marker_path(unit).is_file()  # only the debris goes


def test_parquet_without_pyarrow_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ValueError, match="pip install pyarrow"):
        UnitStore(tmp_path, "parquet")


# --------------------------------------------------------------------------- one process


def test_station_days_equal_one_continuous_record(archive, single):
    root, truth = archive
    assert single.failed == [] and single.count("done") == 4
    catalogue = single.catalogue
    whole = SDSClient(str(root)).get_waveforms("XX", "*", "*", "*", T0 - 60, T0 + SECONDS + 60)
    continuous = classify(MODEL, whole).picks
    continuous = continuous.sort_values(["peak_time", "trace_id", "phase"]).reset_index(drop=True)
    assert_same_catalogue(catalogue, continuous)
    # Every event picked once, each pick in the day of its peak time.
    assert len(catalogue) == 2 * len(truth)
    for trace_id, p, s in truth:
        for phase, when in (("P", p), ("S", s)):
            rows = catalogue[(catalogue.trace_id == trace_id) & (catalogue.phase == phase)]
            gap = min(abs(obspy.UTCDateTime(t) - when) for t in rows.peak_time)
            assert gap <= 0.1, (trace_id, phase, str(when))
    store = UnitStore(single.folder)
    for unit in single.units:
        for t in store.read(unit).peak_time:
            assert unit.contains(obspy.UTCDateTime(t))
    midnight = store.read(single.units[0])
    assert (midnight.phase == "P").sum() == 3 and (midnight.phase == "S").sum() == 2
    assert (pathlib.Path(single.folder) / "picks.csv").is_file()


def test_rerun_skips_done_station_days_and_refuses_other_settings(archive, single):
    root, _ = archive
    again = run_network(root, "2024-01-01", "2024-01-03", MODEL, output=single.folder,
                        workers=0)
    assert again.count("skipped") == 4 and again.count("done") == 0
    assert_same_catalogue(again.catalogue, single.catalogue)
    # One station-day lost its marker (killed between table and marker): only it is redone.
    store = UnitStore(single.folder)
    store.marker_path(single.units[2]).unlink()
    again = run_network(root, "2024-01-01", "2024-01-03", MODEL, output=single.folder,
                        workers=0)
    assert again.count("done") == 1 and again.count("skipped") == 3
    assert_same_catalogue(again.catalogue, single.catalogue)
    with pytest.raises(ValueError, match="P_threshold|thresholds"):
        run_network(root, "2024-01-01", "2024-01-03", MODEL, output=single.folder, workers=0,
                    thresholds={"P": 0.5})


def test_parquet_tables_quakeml_and_figure(archive, single, tmp_path):
    pytest.importorskip("pyarrow")
    root, _ = archive
    result = run_network(root, "2024-01-01", "2024-01-03", MODEL, output=tmp_path, workers=0,
                         fmt="parquet", quakeml=True, plot=True)
    assert sorted(p.name for p in result.files) == ["catalogue.png", "picks.csv", "picks.xml"]
    assert len(list(tmp_path.glob("units/*/*.parquet"))) == 4
    assert_same_catalogue(result.catalogue, single.catalogue)
    event = obspy.read_events(str(tmp_path / "picks.xml"))[0]
    assert len(event.picks) == len(single.catalogue)
    assert {p.waveform_id.get_seed_string() for p in event.picks} == {"XX.STA1..HH?",
                                                                       "XX.STA2..HH?"}
    assert (tmp_path / "catalogue.png").stat().st_size > 10_000


# --------------------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def cluster(archive):
    from distributed import Client, LocalCluster  # optional (the dask extra): imported lazily

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield cluster, client


def _markers(folder):
    return sorted(pathlib.Path(folder).glob("units/*/*.done"))


def test_two_dask_workers_equal_one_process_even_when_one_is_killed(archive, single, cluster,
                                                                    tmp_path):
    root, _ = archive
    cluster, client = cluster
    first = run_network(root, "2024-01-01", "2024-01-03", MODEL, output=tmp_path / "days",
                        scheduler=cluster.scheduler_address)
    assert first.failed == [] and first.count("done") == 4
    assert_same_catalogue(first.catalogue, single.catalogue)
    workers = {json.loads(p.read_text())["worker"] for p in _markers(tmp_path / "days")}
    assert len(workers) == 2  # both worker processes took station-days

    # 10-minute units (2 stations x 8), a worker killed as soon as the first unit is
    # written, while others are in flight.
    folder = tmp_path / "chunks"
    outcome = {}

    def run():
        outcome["result"] = run_network(
            root, "2024-01-01T23:20", "2024-01-02T00:40", MODEL, output=folder,
            chunk_s=600, scheduler=cluster.scheduler_address)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 600
    while not _markers(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = client.run(os.getpid)
    busy = [addr for addr, keys in client.processing().items() if keys]
    assert busy, "no station-day in flight when the worker was to be killed"
    victim = pids[busy[0]]
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=900)
    assert not thread.is_alive()
    result = outcome["result"]
    if result.failed:  # a unit lost with its worker too often: the rerun completes it
        result = run_network(root, "2024-01-01T23:20", "2024-01-02T00:40", MODEL,
                             output=folder, chunk_s=600, scheduler=cluster.scheduler_address)
    assert result.failed == [] and len(result.units) == 16
    assert len(_markers(folder)) == 16
    assert_same_catalogue(result.catalogue, single.catalogue)
    assert victim not in {p for p in client.run(os.getpid).values()}


def test_command_killed_mid_run_then_rerun(archive, single, tmp_path):
    root, _ = archive
    out = tmp_path / "cli"
    # The utrans-annotate console script (utrans.cli.annotate:main) in a process of its own.
    command = [sys.executable, "-c",
               "import sys; from utrans.cli.annotate import main; sys.exit(main())",
               "--sds", str(root), "--start",
               "2024-01-01T23:30", "--end", "2024-01-02T00:30", "--chunk_s", "600",
               "--model", MODEL, "--workers", "0", "--output", str(out), "--no_progress",
               "--no_plots"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while len(_markers(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(_markers(out))
    assert 3 <= done_before < 12 and not (out / "picks.csv").exists()
    assert cli.main(command[3:]) == 0
    catalogue = read_table(out / "picks.csv")
    assert_same_catalogue(catalogue, single.catalogue)
    assert len(_markers(out)) == 12
    # A station-day without data has an empty table with the pick columns.
    empty = out / "units" / "XX.STA1" / "XX.STA1.2024-01-01T233000.csv"
    assert list(read_table(empty).columns[:3]) == ["trace_id", "phase", "peak_time"]
    assert json.loads(empty.with_name(empty.name + ".done").read_text())["note"] == "no data"


@pytest.mark.slow
def test_characterised_catalogue_over_two_workers(archive, tmp_path):
    """Every window model on every pick, station-days over two local worker processes."""
    root, _ = archive
    heads = ["seist_s_pmp_diting", "seist_s_emg_diting", "seist_s_baz_diting",
             "seist_s_dis_diting"]
    home = pathlib.Path(os.environ["UTRANS_HOME"])
    for name in heads:
        shutil.copy(require_reference(f"seist/{name}.pth"), home / f"{name}.pth")
    runs = [run_network(root, "2024-01-01", "2024-01-03", MODEL, output=tmp_path / str(n),
                        workers=n, characterize=heads,
                        worker_plugin=QuietWorkers() if n else None) for n in (0, 2)]
    one, two = (r.catalogue for r in runs)
    assert_same_catalogue(one, two)
    estimates = [c for c in one.columns if "__" in c]
    assert len(estimates) == 5
    p_rows = one[one.phase == "P"]
    assert len(p_rows) == 12 and p_rows[estimates].notna().all().all()
    assert (p_rows[NOTE_COLUMN] == "").all()
    numeric = [c for c in estimates if not c.startswith("polarity__")]
    np.testing.assert_allclose(one[numeric].to_numpy(float), two[numeric].to_numpy(float),
                               rtol=1e-5)
