"""utrans.stream.StreamPicker: live data give annotate's picks of the whole record, each once.

The referee is :meth:`utrans.annotate.Annotator.classify` on the whole
record. A tiny PhaseNet with random weights and low thresholds picks often
(the equality of streamed and offline picks holds for any weights); the
records are a synthetic network of :func:`utrans.stream.demo.demo_network`.
Streamed picks must equal the offline ones (same phases, times within one
sample, none missing, none doubled) for every pick earlier than the last two
windows, whether the samples are fed in pieces, come through the SeedLink
replay server with or without faults, or from an SDS archive that is being
written in 512-byte records; a restart from the saved state in the middle
of an event neither loses nor doubles a pick; the buffers stay bounded.

The streaming catalogue (:class:`utrans.stream.StreamCatalog`) is refereed
by :func:`utrans.catalog.associate_picks` on all the picks at once: the same
events (origin times within 0.5 s), each written once however the window
slides, none lost or repeated across a restart; no pick comes before the
picker's settled time; ``--catalog`` without ``--inventory`` is one line.
"""

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import obspy
import pandas as pd
import pytest
import scipy.ndimage
from conftest import require_reference
from hypothesis import given, settings
from hypothesis import strategies as st_

from utrans.annotate import Annotator, Characterizer
from utrans.core.conventions import Conventions
from utrans.models import get_model
from utrans.pipeline import Pipeline
from utrans.processing.resample import resample
from utrans.processing.stacking import Accumulator
from utrans.stream import StreamPicker
from utrans.stream.buffers import RunResampler
from utrans.stream.decoding import FinalPicks
from utrans.stream.demo import demo_network
from utrans.stream.mseed import trace_records
from utrans.stream.output import PickWriter, load_state
from utrans.stream.run import StreamRunner, resume_from
from utrans.stream.server import Faults, ReplayServer, StreamSource
from utrans.stream.sources import SDSFollower, SeedLinkSource, SelectionError

REPO = pathlib.Path(__file__).resolve().parents[1]
W = 400                       # window of the tiny picker (4 s)
THRESHOLDS = {"P": 0.34, "S": 0.34}
T0 = obspy.UTCDateTime(2024, 3, 1, 23, 57, 0)   # records cross midnight (day 061 -> 062)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return get_model("phasenet", in_samples=W)


@pytest.fixture(scope="module")
def network():
    stream, truth = demo_network(stations=3, seconds=240.0, seed=3, start=T0, every_s=50.0)
    return stream


@pytest.fixture(scope="module")
def offline(tiny, network):
    return Annotator(tiny, batch_size=8).classify(network, thresholds=THRESHOLDS).picks


def make_picker(model, **options):
    options.setdefault("batch_size", 8)
    options.setdefault("thresholds", THRESHOLDS)
    return StreamPicker(model, **options)


def pieces(stream, rng, smallest=50, largest=700, swap_every=0):
    """The traces cut into pieces in arrival order (by end time), neighbours swapped."""
    out = []
    for tr in stream:
        i = 0
        while i < tr.stats.npts:
            k = int(rng.integers(smallest, largest))
            piece = tr.copy()
            piece.data = tr.data[i:i + k]
            piece.stats.starttime = tr.stats.starttime + i / tr.stats.sampling_rate
            out.append(piece)
            i += k
    out.sort(key=lambda t: t.stats.endtime)
    if swap_every:
        for j in range(0, len(out) - 1, swap_every):
            out[j], out[j + 1] = out[j + 1], out[j]
    return out


def assert_same_picks(streamed, reference, until=None, excluded=(), rate=100.0):
    """Same picks (station, phase, time within one sample), none missing, none doubled.

    Picks at or after ``until`` and inside the ``excluded`` time spans are not compared.
    """
    streamed = pd.DataFrame(streamed, columns=list(reference.columns)) \
        if not isinstance(streamed, pd.DataFrame) else streamed

    def keep(frame):
        times = [obspy.UTCDateTime(t) for t in frame.peak_time]
        ok = [(until is None or t < until) and not any(a <= t < b for a, b in excluded)
              for t in times]
        return frame[ok]

    got, want = keep(streamed), keep(reference)
    assert len(want) > 0
    for (station, phase), mine in got.groupby(["trace_id", "phase"]):
        theirs = want[(want.trace_id == station) & (want.phase == phase)]
        a = np.sort([obspy.UTCDateTime(t).timestamp for t in mine.peak_time])
        b = np.sort([obspy.UTCDateTime(t).timestamp for t in theirs.peak_time])
        assert len(a) == len(b), (station, phase, len(a), len(b))
        assert np.abs(a - b).max() <= 1.0 / rate + 1e-6, (station, phase)
    assert len(got) == len(want)


def before_end(end, min_distance_s=1.0):
    """The span before a segment's end where annotate's end window may change the picks."""
    return end - W / 100.0 - min_distance_s, end


def until_last_two_windows(stream):
    return min(tr.stats.endtime for tr in stream) - 2 * W / 100.0


# --------------------------------------------------------------------------- pieces


def test_accumulator_released_in_pieces_equals_the_whole_segment():
    rng = np.random.default_rng(0)
    for method in ("avg", "max"):
        whole, rolling = Accumulator(2, 1000, method), Accumulator(2, 64, method)
        released = []
        for start in range(0, 1000 - 100 + 1, 60):
            prediction = rng.random((2, 100)).astype(np.float32)
            whole.add(start, prediction)
            rolling.add(start, prediction)
            released.append(rolling.release(start))
        prediction = rng.random((2, 100)).astype(np.float32)
        whole.add(900, prediction)
        rolling.add(900, prediction)
        released.append(rolling.release(1000))
        np.testing.assert_allclose(np.concatenate(released, axis=1), whole.result(), rtol=1e-6)
        assert rolling.values.shape[1] <= 300  # the windows in flight (160), not the segment


@settings(max_examples=150, deadline=None)
@given(seed=st_.integers(0, 10**6), rule=st_.sampled_from(["peaks", "regions", "highest"]),
       distance_s=st_.sampled_from([0.0, 0.05, 0.5]), smooth=st_.floats(0.5, 6.0),
       power=st_.sampled_from([1, 3]))
def test_final_picks_are_the_decoder_on_the_whole_curve(seed, rule, distance_s, smooth, power):
    """Random curves (dense or sparse peaks) released in random stretches."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 2500))
    curve = scipy.ndimage.gaussian_filter1d(rng.random(n) ** power, smooth)
    curve = (curve / curve.max()).astype(np.float32)
    pipeline = Pipeline(Conventions(sampling_rate=100.0, component_order="Z", in_samples=200,
                                    labels=("P",), thresholds={"P": 0.3},
                                    min_peak_distance_s=distance_s, pick_rule=rule))
    starts = list(range(0, max(n - 200, 0) + 1, 100))
    if starts[-1] + 200 < n:
        starts.append(n - 200)
    peaks = pipeline.picks(curve, "P", 0.3, windows=(np.array(starts), 200))
    extents = pipeline.extents(curve, peaks, 0.3)
    decoder = FinalPicks(pipeline, {"P": 0.3}, window_length=200)
    found, i, w = [], 0, 0
    while i < n:
        j = min(n, i + int(rng.integers(1, 300)))
        while w < len(starts) and starts[w] < j:
            decoder.add_window(starts[w])
            w += 1
        found += decoder.feed(curve[None, i:j])
        i = j
    for start in starts[w:]:
        decoder.add_window(start)
    found += decoder.close()
    assert sorted((p.peak, p.extent) for p in found) == \
        [(int(p), tuple(int(v) for v in e)) for p, e in zip(peaks, extents)]
    assert len(decoder.curves["P"].values) == 0


@pytest.mark.parametrize("rate", [20.0, 40.0, 50.0, 120.0, 200.0, 250.0])
def test_run_resampler_equals_resampling_the_whole_record(rate):
    rng = np.random.default_rng(int(rate))
    x = rng.standard_normal(4000)
    resampler, out, i = RunResampler(rate, 100.0), [], 0
    while i < len(x):
        k = int(rng.integers(1, 500))
        out.append(resampler.push(x[i:i + k]))
        i += k
    out.append(resampler.finish())
    np.testing.assert_allclose(np.concatenate(out), resample(x, rate, 100.0), atol=1e-12)


def test_streamed_pieces_give_the_picks_of_the_whole_record(tiny):
    """Out-of-order pieces, 40/100/200 Hz stations, a vertical-only one and a gap."""
    net, _ = demo_network(stations=2, seconds=180.0, seed=5, start=T0, every_s=40.0)
    other, _ = demo_network(stations=3, seconds=180.0, seed=6, start=T0, network="YY")
    for tr in other.select(station="S01"):
        tr.resample(40.0)
    for tr in other.select(station="S02"):
        tr.resample(200.0)
    vertical = other.select(station="S03", channel="HHZ")
    gap = (T0 + 70.0, T0 + 95.5)
    gapped = net.select(station="S02").copy()
    gapped = gapped.slice(T0, gap[0] - 0.001) + gapped.slice(gap[1], T0 + 180)
    stream = net.select(station="S01") + gapped + other.select(station="S01") \
        + other.select(station="S02") + vertical
    for tr in stream:
        tr.data = tr.data.astype(np.float64)
    reference = Annotator(tiny, batch_size=8).classify(stream, thresholds=THRESHOLDS).picks
    picker = make_picker(tiny)
    emitted = []
    for j, piece in enumerate(pieces(stream, np.random.default_rng(1), 100, 500, swap_every=7)):
        picker.feed(piece)
        if j % 5 == 0:
            emitted += picker.process()
    emitted += picker.close()
    assert {g.gid: g.refused for g in picker.groups.values()} == dict.fromkeys(
        ["XX.S01..HH", "XX.S02..HH", "YY.S01..HH", "YY.S02..HH", "YY.S03..HH"])
    assert picker.counts["windows"] > 100
    # the window before the gap is annotate's end window: picks within it (and within the
    # minimum pick distance of it) may differ
    assert_same_picks(emitted, reference, until_last_two_windows(stream),
                      excluded=[before_end(gap[0])])
    assert all(row["latency_s"] >= 0 for row in emitted)


def test_a_station_that_goes_silent_or_appears_late(tiny, network, caplog):
    """S02 stops after 100 s, S03 starts at 120 s; the clock says how long S02 is quiet."""
    now = [0.0]
    silent = network.select(station="S02").slice(T0, T0 + 100 - 0.001)
    late = network.select(station="S03").slice(T0 + 120, T0 + 240)
    stream = network.select(station="S01") + silent + late
    picker = make_picker(tiny, clock=lambda: now[0], silence_s=60.0)
    emitted = []
    with caplog.at_level("INFO", logger="utrans.stream.picker"):
        for piece in pieces(stream, np.random.default_rng(6)):
            now[0] = max(now[0], piece.stats.endtime - T0)  # arrives as it is recorded
            picker.feed(piece, arrival=now[0])
            emitted += picker.process()
        emitted += picker.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("XX.S02..HH: no data for") for m in messages)
    assert "XX.S03..HH: new instrument" in messages
    reference = Annotator(tiny, batch_size=8).classify(stream, thresholds=THRESHOLDS).picks
    assert_same_picks(emitted, reference, until_last_two_windows(stream.select(station="S01")),
                      excluded=[before_end(T0 + 100)])
    assert {row["trace_id"] for row in emitted} == {"XX.S01.", "XX.S02.", "XX.S03."}


def test_characterised_p_picks_carry_annotate_estimates(tiny, network):
    keras.utils.set_random_seed(1)
    models = [get_model("ditingmotion"), get_model("magnet", in_samples=400)]
    characterizer = Characterizer(models, p_position_ratio=0.25, min_span_s=(0.5, 1.0))
    stream = network.select(station="S01")
    picker = make_picker(tiny, characterizer=characterizer)
    emitted = []
    for piece in pieces(stream, np.random.default_rng(2)):
        picker.feed(piece)
        emitted += picker.process()
    emitted += picker.close()
    reference = Annotator(tiny, batch_size=8).classify(stream, thresholds=THRESHOLDS).picks
    until = until_last_two_windows(stream)
    assert_same_picks(emitted, reference, until)
    expected = characterizer.characterize(stream, reference)
    got = pd.DataFrame(emitted)
    got = got[got.phase == "P"].sort_values("peak_time").reset_index(drop=True)
    expected = expected[expected.phase == "P"].sort_values("peak_time").reset_index(drop=True)
    early = [obspy.UTCDateTime(t) < until for t in expected.peak_time]
    for column in ("polarity_prob__ditingmotion", "magnitude__magnet", "magnitude_std__magnet"):
        np.testing.assert_allclose(got[column][early].astype(float),
                                   expected[column][early].astype(float), atol=1e-4)
    assert got.polarity__ditingmotion[early].fillna("").tolist() == \
        expected.polarity__ditingmotion[early].fillna("").tolist()
    assert got.polarity__ditingmotion[early].notna().sum() > 10
    assert list(picker.columns())[-1] == "latency_s"


# --------------------------------------------------------------------------- live sources


def run_from_server(model, stream, faults=None, state_dir=None, writer=None, stop_when=None):
    """Pick a stream replayed by the SeedLink replay server; returns (picks, runner, result).

    The server ends the stream when it has sent everything, unless ``stop_when(picker)``
    is given: the run is then stopped when it turns true.
    """
    picks = []
    picker = make_picker(model, on_pick=picks.append)
    server = ReplayServer(StreamSource(stream), speed=None, faults=faults or {},
                          hangup_at_end=stop_when is None).start()
    try:
        source = SeedLinkSource(server.address, "*.*.*.HH?", backoff=0.05, max_backoff=0.2,
                                resume_from=resume_from(state_dir) if state_dir else None)
        runner = StreamRunner(source, picker, writer, state_dir=state_dir, poll_s=0.05)
        runner.restore()
        if stop_when is not None:
            def watch():
                while not stop_when(picker):
                    time.sleep(0.01)
                runner.stop()
            threading.Thread(target=watch, daemon=True).start()
        result = runner.run()
    finally:
        server.stop()
    return picks, runner, result


@pytest.mark.parametrize("faults", [None, {
    "*.S01": Faults(drop_after=30, max_drops=2),
    "*.S02": Faults(reorder_every=3, duplicate_every=4),
    "*.S03": Faults(drop_after=55, max_drops=1, reorder_every=5)}], ids=["clean", "faults"])
def test_picks_through_the_replay_server_equal_classify(tiny, network, offline, faults):
    picks, runner, result = run_from_server(tiny, network, faults)
    assert not result.interrupted
    if faults:
        assert result.stats.reconnects >= 2 and result.stats.duplicates > 0
        assert result.stats.late > 0 or result.stats.gaps > 0
    assert_same_picks(picks, offline, until_last_two_windows(network))


def sds_records(stream, root):
    """``{channel: [(day file, 512-byte record), ...]}`` of a stream written as an SDS archive."""
    per_channel = {}
    for tr in stream:
        t = tr.stats.starttime
        midnight = obspy.UTCDateTime(t.year, t.month, t.day) + 86400
        for part in (tr.slice(t, midnight - 0.001), tr.slice(midnight)):
            if part.stats.npts == 0:
                continue
            s = part.stats
            path = root / f"{s.starttime.year}" / s.network / s.station / f"{s.channel}.D" / (
                f"{part.id}.D.{s.starttime.year}.{s.starttime.julday:03d}")
            per_channel.setdefault(tr.id, []).extend(
                (path, record) for record in trace_records(part, reclen=512))
    return per_channel


def write_progressively(per_channel, chunk=4, pause=0.01):
    """Append the records to their day files a few at a time per channel, as a writer does."""
    longest = max(len(v) for v in per_channel.values())
    for i in range(0, longest, chunk):
        for items in per_channel.values():
            for path, record in items[i:i + chunk]:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as handle:
                    handle.write(record)
        time.sleep(pause)


def test_picks_from_a_followed_sds_archive_equal_classify(tiny, network, offline, tmp_path):
    root = tmp_path / "sds"
    root.mkdir()
    records = sds_records(network, root)
    picks = []
    picker = make_picker(tiny, on_pick=picks.append)
    source = SDSFollower(root, "XX.*.*.HH?", poll_interval=0.02, start="begin")
    runner = StreamRunner(source, picker, poll_s=0.05)
    total = sum(tr.stats.npts for tr in network)
    writer = threading.Thread(target=write_progressively, args=(records,))
    writer.start()

    def stop_when_all_read():
        writer.join()
        while picker.counts["samples"] < total:
            time.sleep(0.02)
        runner.stop()

    threading.Thread(target=stop_when_all_read, daemon=True).start()
    result = runner.run()
    assert result.interrupted  # a followed archive never ends: stopped once everything was read
    assert source.stats.records == sum(len(v) for v in records.values())
    assert {len(r) for items in records.values() for _, r in items} == {512}
    assert_same_picks(picks, offline, until_last_two_windows(network))


def test_an_archive_read_once_ends_the_run_with_every_pick(tiny, network, offline, tmp_path):
    records = sds_records(network, tmp_path)
    write_progressively(records, chunk=1000, pause=0)
    picks = []
    source = SDSFollower(tmp_path, "XX.*.*.HH?", start="begin")
    result = StreamRunner(source, make_picker(tiny, on_pick=picks.append), follow=False).run()
    assert not result.interrupted
    assert_same_picks(picks, offline, until_last_two_windows(network))
    assert len(picks) >= len(offline) - 10  # the end of the record too, but for its last window


def test_restart_from_the_state_in_the_middle_of_an_event(tiny, network, offline, tmp_path):
    """A server holds the data up to half a second after a P; the picker is stopped there
    and restarted from its state on a server that holds everything."""
    state_dir, out_dir = tmp_path / "state", tmp_path / "out"
    p_times = sorted(obspy.UTCDateTime(t) for t in offline[offline.phase == "P"].peak_time)
    middle = next(t for t in p_times if t > T0 + 100) + 0.5
    first_part = network.slice(T0, middle)
    held = sum(tr.stats.npts for tr in first_part)
    columns = make_picker(tiny).columns()
    first, _, result = run_from_server(
        tiny, first_part, state_dir=state_dir, writer=PickWriter(out_dir, columns, "phasenet"),
        stop_when=lambda picker: picker.counts["samples"] >= held)
    assert result.interrupted
    state = load_state(state_dir)
    resume = min(obspy.UTCDateTime(t) for t in state["resume"].values())
    assert resume < middle - W / 100.0  # back far enough to rebuild the unsettled picks
    second, _, result = run_from_server(
        tiny, network, state_dir=state_dir, writer=PickWriter(out_dir, columns, "phasenet"))
    assert not result.interrupted
    # picks before the stop were still unsettled then, and given after the restart
    assert any(obspy.UTCDateTime(row["peak_time"]) < middle for row in second)
    written = pd.read_csv(out_dir / "picks.csv")
    assert len(written) == len(first) + len(second)
    assert not written.duplicated(["trace_id", "phase", "peak_time"]).any()
    assert_same_picks(written, offline, until_last_two_windows(network))
    assert sorted(p.name for p in (out_dir / "quakeml").iterdir()) == [
        "picks_2024-03-01T23.xml", "picks_2024-03-02T00.xml"]


def test_memory_stays_flat_over_a_long_replay(tiny):
    """Two hours of one station: the held samples stop growing after the first minutes."""
    stream, _ = demo_network(stations=1, seconds=7200.0, seed=9, start=T0, every_s=60.0)
    picker = make_picker(tiny, batch_size=64)
    peaks, emitted = [], 0
    for k, piece in enumerate(pieces(stream, np.random.default_rng(3), 300, 600)):
        picker.feed(piece)
        if k % 20 == 0:
            emitted += len(picker.process())
            peaks.append(picker.sizes())
    early = peaks[len(peaks) // 6]  # after 20 minutes
    for kind in ("ring", "stacked", "curves", "marks", "untaken", "channel_waiting",
                 "remembered"):
        most_early = max(p.get(kind, 0) for p in peaks[:len(peaks) // 6])
        most_late = max(p.get(kind, 0) for p in peaks[len(peaks) // 6:])
        assert most_late <= max(most_early, 1) * 1.05 + 4 * W, (kind, most_early, most_late)
    assert early["ring"] == picker.ring_capacity * 3
    assert emitted > 1000 and picker.counts["windows"] > 3000


# --------------------------------------------------------------------------- bad input


def test_unusable_stations_are_named_and_the_others_picked(tiny, network, caplog):
    rotated = network.select(station="S02").copy()
    for tr in rotated:
        tr.stats.station = "ROT"
        tr.stats.channel = {"Z": "HHZ", "N": "HHR", "E": "HHT"}[tr.stats.channel[-1]]
        if tr.stats.channel == "HHZ":
            tr.stats.channel = "HHU"
    mixed = network.select(station="S03").copy()
    for tr in mixed:
        tr.stats.station = "MIX"
    mixed[1].resample(50.0)
    stream = network.select(station="S01") + rotated + mixed
    picker = make_picker(tiny)
    emitted = []
    with caplog.at_level("ERROR", logger="utrans.stream.picker"):
        for piece in pieces(stream, np.random.default_rng(4)):
            picker.feed(piece)
            emitted += picker.process()
        emitted += picker.close()
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "XX.ROT..HH: not picked: no usable component for a ZNE model" in messages
    assert "XX.MIX..HH: not picked: mixed sampling rates" in messages
    assert {row["trace_id"] for row in emitted} == {"XX.S01."}
    reference = Annotator(tiny, batch_size=8).classify(network.select(station="S01"),
                                                        thresholds=THRESHOLDS).picks
    assert_same_picks(emitted, reference, until_last_two_windows(network))


def test_unreachable_server_is_retried_with_a_message_each_time(caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = SeedLinkSource(f"127.0.0.1:{port}", "XX.*.*.HH?", backoff=0.02, max_backoff=0.05)
    with caplog.at_level("WARNING", logger="utrans.stream.sources"):
        timer = threading.Timer(0.6, source.stop)
        timer.start()
        assert list(source.packets()) == []
        timer.join()
    retries = [r.getMessage() for r in caplog.records if "reconnecting in" in r.getMessage()]
    assert len(retries) >= 3
    assert "ConnectionRefusedError" in retries[0] and "(attempt 1)" in retries[0]


def run_cli(*argv, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import sys; from utrans.cli import console; sys.exit(console(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_help_answers_without_tensorflow():
    code = ("import sys\nfrom utrans.cli import main\n"
            "for command in ('stream', 'stream-demo'):\n"
            "    try:\n        main([command, '--help'])\n"
            "    except SystemExit:\n        pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('tensorflow', 'keras'))))")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--seedlink HOST:PORT" in result.stdout and "--stations" in result.stdout
    assert result.stdout.strip().endswith("[]")


def test_a_selection_matching_nothing_stops_the_run(tiny, network):
    with ReplayServer(StreamSource(network), speed=None) as server:
        source = SeedLinkSource(server.address, "ZZ.*.*.HH?", backoff=0.05)
        with pytest.raises(SelectionError, match=r"select='ZZ.\*.\*.HH\?' matches none of "
                                                 r"the 9 streams"):
            StreamRunner(source, make_picker(tiny), poll_s=0.05).run()


def test_cli_missing_archive_is_one_line(tmp_path):
    missing = run_cli("stream", "--sds", str(tmp_path / "nowhere"), "--model", "phasenet",
                      "--random_weights", "--output", str(tmp_path / "out"))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"utrans stream: error: --sds {tmp_path / 'nowhere'}: no such folder"]


@pytest.mark.slow
def test_cli_selection_matching_nothing_is_one_line(tmp_path, network):
    with ReplayServer(StreamSource(network), speed=None) as server:
        nothing = run_cli("stream", "--seedlink", server.address, "--select", "ZZ.*.*.HH?",
                          "--model", "phasenet", "--random_weights", "--output",
                          str(tmp_path / "out"))
    assert nothing.returncode == 2, nothing.stderr
    assert nothing.stderr.strip().splitlines()[-1].startswith(
        "utrans stream: error: select='ZZ.*.*.HH?' matches none of the 9 streams")


@pytest.mark.slow
def test_ctrl_c_stops_with_one_line_and_the_state_saved(tmp_path, network):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import sys; from utrans.cli import console; sys.exit(console(sys.argv[1:]))"
    with ReplayServer(StreamSource(network), speed=2.0) as server:
        process = subprocess.Popen(
            [sys.executable, "-c", code, "stream", "--seedlink", server.address, "--model",
             "phasenet", "--random_weights", "--output", str(tmp_path / "out"), "--state",
             str(tmp_path / "state")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env)
        try:
            deadline = time.time() + 300
            while not (tmp_path / "state" / "state.json").exists() and time.time() < deadline:
                time.sleep(0.5)
            time.sleep(2.0)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=120)
        finally:
            process.kill()
    assert process.returncode == 130, err
    lines = out.strip().splitlines()
    assert lines[-1].startswith("Stopped: ") and lines[-1].endswith(
        f"state saved in {tmp_path / 'state'}.")
    assert "Traceback" not in err
    state = load_state(tmp_path / "state")
    assert set(state["resume"]) == {f"XX.S0{s}..HH{c}" for s in (1, 2, 3) for c in "ZNE"}


@pytest.mark.slow
def test_stream_demo_runs(tmp_path):
    result = run_cli("stream-demo", "--model", "phasenet", "--random_weights", "--stations", "2",
                     "--minutes", "2", "--speed", "0", "--faults", "--P_threshold", "0.34",
                     "--output", str(tmp_path / "demo"), "--state", str(tmp_path / "state"))
    assert result.returncode == 0, result.stderr
    assert "true P arrivals picked within 0.5 s" in result.stdout
    written = pd.read_csv(tmp_path / "demo" / "picks.csv")
    assert len(written) > 10 and "latency_s" in written.columns
    assert (tmp_path / "state" / "state.json").exists()



def test_stream_demo_threads_with_a_characteriser(tmp_path):
    # --threads is set before any model opens: with --characterize the characteriser's model
    # opened first, and TensorFlow refused the later thread count (RuntimeError).
    keras.utils.set_random_seed(0)
    window_model = tmp_path / "pmp.keras"
    get_model("seist_s_pmp", in_samples=256, layer_blocks=[1, 1, 1, 1]).save(window_model)
    result = run_cli("stream-demo", "--model", "phasenet", "--random_weights", "--stations", "1",
                     "--minutes", "1", "--speed", "0", "--threads", "1",
                     "--characterize", str(window_model), "--output", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "true P arrivals picked within 0.5 s" in result.stdout


# --------------------------------------------------------------------------- a real picker


@pytest.mark.slow
def test_published_seist_through_the_server_with_faults(utrans_home):
    shutil.copy(require_reference("seist/seist_m_dpk_diting.pth"),
                utrans_home / "seist_m_dpk_diting.pth")
    model = "seist_m_dpk_diting"
    stream, truth = demo_network(stations=3, seconds=600.0, seed=1)
    offline = Annotator(model, batch_size=8).classify(stream).picks
    picks = []
    picker = StreamPicker(model, batch_size=8, on_pick=picks.append)
    faults = {"*.S01": Faults(drop_after=60, max_drops=2),
              "*.S02": Faults(reorder_every=4, duplicate_every=5)}
    with ReplayServer(StreamSource(stream), speed=None, faults=faults,
                      hangup_at_end=True) as server:
        source = SeedLinkSource(server.address, "*.*.*.HH?", backoff=0.05)
        result = StreamRunner(source, picker, poll_s=0.05).run()
    assert result.stats.reconnects >= 2
    until = min(tr.stats.endtime for tr in stream) - 2 * picker.plan.in_samples / 100.0
    assert_same_picks(picks, offline, until)
    found = pd.DataFrame(picks)
    errors = []
    for row in truth[(truth.phase == "P") & (truth.time < until)].itertuples():
        mine = found[(found.phase == "P") & (found.trace_id == f"XX.{row.station}.")]
        errors.append(min(abs(obspy.UTCDateTime(t) - row.time) for t in mine.peak_time))
    assert len(errors) >= 15 and max(errors) <= 0.1, errors


# --------------------------------------------------------------------------- streaming catalogue


def synthetic_catalog_picks(n_events=6, duration_s=900.0, seed=0):
    """Picks of utrans catalog's synthetic network (false picks included) and its stations."""
    from utrans.catalog import (synthetic_arrivals, synthetic_events, synthetic_picks,
                                synthetic_stations)
    stations = synthetic_stations(8, seed=seed)
    events = synthetic_events(stations, n_events, duration_s, seed=seed + 1)
    arrivals = synthetic_arrivals(events, stations, seed=seed + 2)
    picks = synthetic_picks(arrivals, events, stations, false_per_hour=6.0, seed=seed + 3)
    return picks.drop(columns=["true_event_id"]), stations, events


def stream_picks(catalog, picks, step_s, stop_after=None):
    """Hand the picks to a StreamCatalog in time order, ``step_s`` of settled time at a time."""
    rows = picks.to_dict("records")
    times = np.array([obspy.UTCDateTime(t).timestamp for t in picks.peak_time])
    out, k = [], 0
    for edge in np.arange(times[0], times[-1] + step_s, step_s):
        if stop_after is not None and edge > stop_after:
            return out, k
        batch = []
        while k < len(rows) and times[k] < edge:
            batch.append(rows[k])
            k += 1
        catalog.add(batch)
        out += catalog.advance(edge)
    catalog.add(rows[k:])
    return out + catalog.close(), len(rows)


def origin_seconds(events):
    return np.sort([obspy.UTCDateTime(t).timestamp for t in
                    (events["time"] if isinstance(events, pd.DataFrame)
                     else [e["time"] for e in events])])


@pytest.mark.parametrize("every_s", [5.0, 40.0])
def test_streamed_events_are_the_offline_association_each_once(every_s, tmp_path):
    pytest.importorskip("pyocto")
    from utrans.catalog import associate_picks
    from utrans.quakeml import EVENT_COLUMNS
    from utrans.stream import StreamCatalog
    from utrans.stream.output import EventWriter

    picks, stations, true = synthetic_catalog_picks()
    offline = associate_picks(picks, stations, "vp=6.0,vs=3.5").events
    assert len(offline) == len(true) == 6
    catalog = StreamCatalog(stations, "vp=6.0,vs=3.5", writer=EventWriter(tmp_path),
                            every_s=every_s)
    events, _ = stream_picks(catalog, picks, step_s=5.0)
    assert catalog.passes >= 900.0 / every_s / 3   # the window slid, event by event
    streamed = origin_seconds(events)
    assert len(streamed) == len(offline)
    assert np.abs(streamed - origin_seconds(offline)).max() <= 0.5
    assert len({e["event_id"] for e in events}) == len(events)
    written = pd.read_csv(tmp_path / "events.csv")
    assert list(written.columns) == EVENT_COLUMNS
    assert list(written.event_id) == [e["event_id"] for e in events]
    assert (written.n_picks >= 8).all()
    arrivals = pd.read_csv(tmp_path / "arrivals.csv")
    # an arrival names its pick by its row among the picks given (picks.csv's row)
    for row in arrivals.itertuples():
        assert picks.iloc[row.pick_index].trace_id == row.trace_id
        assert picks.iloc[row.pick_index].peak_time == row.time
    assert len(arrivals.pick_index) == len(set(arrivals.pick_index))
    files = sorted((tmp_path / "quakeml").glob("event_*.xml"))
    assert len(files) == len(events)
    one = obspy.read_events(str(files[0]))
    assert len(one.events) == 1 and len(one.events[0].origins[0].arrivals) == events[0]["n_picks"]


def test_an_event_is_confirmed_once_no_later_pick_can_change_it():
    pytest.importorskip("pyocto")
    from utrans.stream import StreamCatalog

    picks, stations, true = synthetic_catalog_picks(n_events=3, duration_s=400.0, seed=4)
    catalog = StreamCatalog(stations, "vp=6.0,vs=3.5", every_s=1.0)
    first = obspy.UTCDateTime(true.time[0]).timestamp
    catalog.add(picks.to_dict("records"))   # every pick in hand, settled time held back
    assert catalog.wait_s > 20.0            # the longest S travel time + 1.5 s
    assert catalog.advance(first + catalog.wait_s - 2.0) == []
    confirmed = catalog.advance(first + catalog.wait_s + 2.0)
    assert len(confirmed) == 1
    assert abs(obspy.UTCDateTime(confirmed[0]["time"]) - first) < 0.5
    assert catalog.advance(first + catalog.wait_s + 4.0) == []   # not twice
    assert len(catalog.close()) == 2


def test_a_restarted_catalogue_neither_loses_nor_repeats_an_event(tmp_path):
    pytest.importorskip("pyocto")
    from utrans.stream import StreamCatalog
    from utrans.stream.output import EventWriter, append_csv

    picks, stations, _ = synthetic_catalog_picks(seed=7)
    whole, _ = stream_picks(StreamCatalog(stations, every_s=10.0), picks, step_s=5.0)
    middle = obspy.UTCDateTime(picks.peak_time.iloc[len(picks) // 2]).timestamp
    before = StreamCatalog(stations, writer=EventWriter(tmp_path), every_s=10.0)
    first, given = stream_picks(before, picks, step_s=5.0, stop_after=middle)
    append_csv(picks.iloc[:given], tmp_path / "picks.csv")   # what the pick writer wrote
    state = before.state()
    after = StreamCatalog(stations, writer=EventWriter(tmp_path), every_s=10.0)
    after.restore(state, tmp_path)
    assert after.next_index == given
    rest, _ = stream_picks(after, picks.iloc[given:], step_s=5.0)
    assert 0 < len(first) < len(whole)
    assert np.abs(origin_seconds(first + rest) - origin_seconds(whole)).max() <= 0.5
    assert len(pd.read_csv(tmp_path / "events.csv")) == len(whole)


def test_settled_time_is_never_passed_by_a_later_pick(tiny, network):
    picker = make_picker(tiny)
    settled, late = [], []
    for j, piece in enumerate(pieces(network, np.random.default_rng(2), 200, 900)):
        picker.feed(piece)
        if j % 4 == 0:
            rows = picker.process()
            if settled:
                late += [r for r in rows
                         if obspy.UTCDateTime(r["peak_time"]).timestamp < settled[-1] - 0.01]
            settled.append(picker.settled_time())
    assert picker.counts["picks"] > 20
    assert late == []
    finite = [t for t in settled if np.isfinite(t)]
    assert len(finite) > 10 and finite == sorted(finite)
    assert finite[-1] > network[0].stats.starttime.timestamp + 120.0
    picker.close()
    assert picker.settled_time() == np.inf


def test_cli_catalog_needs_an_inventory_one_line(tmp_path, capsys):
    from utrans.cli import main

    sds = tmp_path / "sds"
    sds.mkdir()
    common = ["--sds", str(sds), "--catalog", "--model", "phasenet", "--random_weights",
              "--output", str(tmp_path / "out")]
    assert main(["stream", *common]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "utrans stream: error: --catalog needs --inventory stations.xml|stations.csv: the "
        "station coordinates"]
    bad = tmp_path / "stations.csv"
    bad.write_text("network,station,latitude\nXX,S01,47.0\n")
    assert main(["stream", *common, "--inventory", str(bad)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"utrans stream: error: Station file {bad} lacks the column(s) longitude, elevation_m")


@pytest.mark.slow
def test_streamed_demo_events_equal_the_offline_association(utrans_home, tmp_path):
    pytest.importorskip("pyocto")
    from utrans.catalog import AssociationSettings, associate_picks
    from utrans.stream import StreamCatalog
    from utrans.stream.demo import demo_catalog_network
    from utrans.stream.output import EventWriter

    shutil.copy(require_reference("seist/seist_m_dpk_diting.pth"),
                utrans_home / "seist_m_dpk_diting.pth")
    demo = demo_catalog_network(stations=6, seconds=600.0, seed=0)
    settings = AssociationSettings(min_picks=6, min_p_picks=3)
    offline = Annotator("seist_m_dpk_diting", batch_size=8).classify(demo.stream).picks
    expected = associate_picks(offline, demo.stations, demo.velocity, settings).events
    picker = StreamPicker("seist_m_dpk_diting", batch_size=8)
    catalog = StreamCatalog(demo.stations, demo.velocity, settings,
                            writer=EventWriter(tmp_path))
    with ReplayServer(StreamSource(demo.stream), speed=None, hangup_at_end=True) as server:
        source = SeedLinkSource(server.address, "*.*.*.HH?", backoff=0.05)
        result = StreamRunner(source, picker, PickWriter(tmp_path, picker.columns(),
                                                         picker.name),
                              poll_s=0.05, catalog=catalog).run()
    assert result.events == len(expected) >= 4
    assert np.abs(origin_seconds(catalog.events) - origin_seconds(expected)).max() <= 0.5
    assert len(pd.read_csv(tmp_path / "events.csv")) == len(expected)
