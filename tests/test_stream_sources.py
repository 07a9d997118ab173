"""Live data sources: the SeedLink replay server, the reconnecting client, the SDS follower.

Everything runs on loopback with a small synthetic 3-component 100 Hz
network (seeded noise plus a few events). ObsPy's own SeedLink clients are
the referee for the server; the server, with injected faults, is the test
bed for :class:`utrans.stream.sources.SeedLinkSource`.
"""

import _thread
import io
import logging
import os
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import obspy
import pytest
from obspy.clients.seedlink import Client as SeedLinkRequestClient
from obspy.clients.seedlink.client.seedlinkconnection import SeedLinkConnection
from obspy.clients.seedlink.easyseedlink import EasySeedLinkClient, create_client
from obspy.clients.seedlink.slclient import SLClient
from obspy.clients.seedlink.slpacket import SLPacket

from utrans.stream.mseed import IncompleteRecord, RecordHeader, complete_records, trace_records
from utrans.stream.server import Faults, ReplayServer, SDSSource, StreamSource
from utrans.stream.sources import SDSFollower, SeedLinkSource, SelectionError
from utrans.stream.tracker import ChannelTracker

T0 = obspy.UTCDateTime(2024, 3, 1, 23, 59, 0)   # the replay crosses midnight (day 061 -> 062)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_network(stations=3, seconds=120.0, seed=0, start=T0):
    """XX.S1..S<n>, channels HHZ/HHN/HHE at 100 Hz: seeded noise and two events."""
    rng = np.random.default_rng(seed)
    npts = int(seconds * 100)
    stream = obspy.Stream()
    for s in range(stations):
        for comp in "ZNE":
            data = rng.normal(0.0, 20.0, npts)
            for onset in (0.25 * seconds, 0.65 * seconds):
                i = int((onset + 1.5 * s) * 100)
                n = max(0, min(npts - i, 1500))
                data[i:i + n] += 900 * np.exp(-np.arange(n) / 250) * np.sin(0.5 * np.arange(n))
            stream += obspy.Trace(np.round(data).astype(np.int32), header={
                "network": "XX", "station": f"S{s + 1}", "location": "", "channel": f"HH{comp}",
                "sampling_rate": 100.0, "starttime": start})
    return stream


@pytest.fixture(scope="module")
def network():
    return synthetic_network()


def records_per_channel(stream):
    return {tr.id: len(trace_records(tr)) for tr in stream}


def assert_exactly_once(received, reference):
    """Every sample of ``reference`` once and nothing else, from (possibly unordered) traces."""
    assert sorted({tr.id for tr in received}) == sorted({tr.id for tr in reference})
    for ref in reference:
        parts = [tr for tr in received if tr.id == ref.id]
        times = np.concatenate([tr.times("timestamp") for tr in parts])
        data = np.concatenate([tr.data for tr in parts])
        assert len(times) == ref.stats.npts, ref.id
        order = np.argsort(times, kind="stable")
        np.testing.assert_allclose(times[order], ref.times("timestamp"), atol=1e-6)
        np.testing.assert_array_equal(data[order], ref.data)


def unique_records(traces):
    """Keep the first trace of each (id, starttime): undoes published duplicates."""
    seen, kept = set(), obspy.Stream()
    for tr in traces:
        key = (tr.id, tr.stats.starttime.ns)
        if key not in seen:
            seen.add(key)
            kept.append(tr)
    return kept


def easy_client(address, on_data):
    # ObsPy 1.5.1's SeedLinkConnection.connect() compares against its `timeout`,
    # which EasySeedLinkClient leaves at None (a TypeError): give it one.
    client = EasySeedLinkClient(address, autoconnect=False)
    client.on_data = on_data
    client.conn.timeout = 30
    client.conn.netto = 5
    client.conn.netdly = 1
    client.connect()
    return client


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- records


def test_record_header_matches_obspy_and_partial_buffers_wait(network):
    tr = network[0]
    records = trace_records(tr, reclen=512)
    assert len(records) > 20 and all(len(r) == 512 for r in records)
    total = 0
    for record in records:
        header = RecordHeader.parse(record)
        decoded = obspy.read(io.BytesIO(record), format="MSEED")[0]
        assert header.id == decoded.id == "XX.S1..HHZ"
        assert header.starttime == decoded.stats.starttime
        assert header.endtime == decoded.stats.endtime
        assert header.npts == decoded.stats.npts
        assert header.sampling_rate == 100.0 and header.record_length == 512
        total += header.npts
    assert total == tr.stats.npts
    blob = b"".join(records[:3])
    for cut in (0, 20, 47, 48, 100, 511, 512, 700, 1535):
        found, used = complete_records(blob[:cut])
        assert used == 512 * (cut // 512) and len(found) == cut // 512
    with pytest.raises(IncompleteRecord):
        RecordHeader.parse(blob[:40])
    with pytest.raises(ValueError, match="not a miniSEED data record"):
        complete_records(b"x" * 600)


def test_tracker_drops_duplicates_and_fills_gaps_once():
    def piece(i0, n):
        return obspy.Trace(np.arange(i0, i0 + n, dtype=np.int32), header={
            "network": "XX", "station": "A", "channel": "HHZ", "sampling_rate": 100.0,
            "starttime": T0 + i0 / 100})

    tracker = ChannelTracker()
    out = []
    for i0, n in [(0, 100), (100, 50), (200, 50), (150, 50), (150, 50), (120, 200), (400, 10),
                  (250, 100), (260, 200)]:
        out.extend(tracker.accept(piece(i0, n)))
    values = np.concatenate([p.data for p, _ in out])
    assert sorted(values.tolist()) == list(range(460))          # 0..459, each once
    assert [bool(late) for _, late in out] == [False, False, False, True, False, False, True,
                                               True, False]
    stats = tracker.stats
    assert (stats.packets, stats.duplicates, stats.late, stats.gaps) == (9, 1, 3, 2)
    assert stats.samples == 460 and stats.duplicate_samples == 810 - 460   # 810 samples offered
    assert tracker.open_gaps("XX.A..HHZ") == []
    assert tracker.state() == {"XX.A..HHZ": T0 + 4.6}


# --------------------------------------------------------------------------- ObsPy's clients


def test_obspy_easy_client_receives_the_archive(network):
    received = obspy.Stream()
    with ReplayServer(StreamSource(network), speed=None, hangup_at_end=True) as server:
        client = easy_client(server.address, received.append)
        assert "multistation" in client.capabilities
        for station in ("S1", "S2", "S3"):
            client.select_stream("XX", station, "HH?")
        client.run()
    assert len(received) == sum(records_per_channel(network).values())
    assert_exactly_once(received, network)


def test_obspy_easy_client_resumes_after_drops_and_sees_duplicates(network):
    faults = {"XX.S2": Faults(drop_after=15, max_drops=2),
              "XX.S3": Faults(duplicate_every=4, reorder_every=5)}
    received = obspy.Stream()
    with ReplayServer(StreamSource(network), speed=None, hangup_at_end=True,
                      faults=faults) as server:
        client = easy_client(server.address, received.append)
        for station in ("S1", "S2", "S3"):
            client.select_stream("XX", station, "HH?")
        client.run()
        assert server.stats["drops"] == 2 and server.stats["connections"] == 3
    counts = records_per_channel(network)
    duplicated = sum(n // 4 for cid, n in counts.items() if ".S3." in cid)
    # ObsPy resumes by sequence number: no record lost or repeated by the drops,
    # and the published duplicates arrive as such.
    assert len(received) == sum(counts.values()) + duplicated
    assert_exactly_once(unique_records(received), network)


def test_obspy_create_client_and_slclient_uni_station(network, monkeypatch):
    # The same ObsPy 1.5.1 defect as in easy_client: create_client() connects at once.
    monkeypatch.setattr(SeedLinkConnection.__init__, "__defaults__", (30.0,))
    received = obspy.Stream()
    with ReplayServer(StreamSource(network), speed=None, hangup_at_end=True) as server:
        client = create_client(server.address, on_data=received.append)
        client.select_stream("XX", "S1", "HHZ")
        client.run()
        assert_exactly_once(received, network.select(id="XX.S1..HHZ"))

        uni = SLClient(timeout=30)
        uni.slconn.set_sl_address(server.address)
        uni.selectors = "HHN"
        uni.initialize()
        packets = []

        def handler(count, packet):
            if not isinstance(packet, SLPacket):
                return True
            packets.append(packet.get_trace())
            return False

        uni.run(packet_handler=handler)
    assert_exactly_once(obspy.Stream(packets), network.select(channel="HHN"))


def test_obspy_request_client_time_windows_and_info(network):
    # ObsPy lists only stations with records in the buffer: fill it first (paced, 1000x).
    with ReplayServer(StreamSource(network), speed=1000.0) as server:
        assert server.wait_exhausted(10)
        client = SeedLinkRequestClient("127.0.0.1", server.port, timeout=20)
        assert client.get_info(station="S*", level="station") == [
            ("XX", "S1"), ("XX", "S2"), ("XX", "S3")]
        assert len(client.get_info(level="channel")) == 9
        got = client.get_waveforms("XX", "S2", "", "HHZ", T0 + 10, T0 + 20)
        several = client.get_waveforms("XX", "S*", "*", "HH*", T0 + 50, T0 + 51)
    expected = network.select(id="XX.S2..HHZ").slice(T0 + 10, T0 + 20)[0]
    assert len(got) == 1 and got[0].stats.npts == 1001
    np.testing.assert_array_equal(got[0].data, expected.data)
    assert len(several) == 9 and {tr.stats.npts for tr in several} == {101}


def test_protocol_details_on_a_raw_socket(network):
    def command(sock, text, size=4096):
        sock.sendall(text.encode() + b"\r")
        return sock.recv(size)

    with ReplayServer(StreamSource(network), speed=1000.0) as server:   # paced: fills the ring
        assert server.wait_exhausted(10)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            assert command(sock, "HELLO").startswith(b"SeedLink v3.1 ")
            assert command(sock, "STATION NOPE XX") == b"ERROR\r\n"
            assert command(sock, "STATION S1 XX") == b"OK\r\n"
            assert command(sock, "SELECT HHZ&.D") == b"ERROR\r\n"
            assert command(sock, "SELECT HHZ.D") == b"OK\r\n"
            assert command(sock, "FETCH") == b"OK\r\n"
            sock.sendall(b"END\r")
            data = b""
            while not data.endswith(b"END"):
                chunk = sock.recv(65536)
                assert chunk, "connection closed before END"
                data += chunk
    packets = data[:-3]
    assert len(packets) % 520 == 0 and len(packets) > 0
    seqs = [int(packets[i + 2:i + 8], 16) for i in range(0, len(packets), 520)]
    assert seqs == sorted(seqs) and all(packets[i:i + 2] == b"SL"
                                        for i in range(0, len(packets), 520))
    headers = [RecordHeader.parse(packets[i + 8:i + 520]) for i in range(0, len(packets), 520)]
    assert {h.id for h in headers} == {"XX.S1..HHZ"}
    assert len(headers) == records_per_channel(network)["XX.S1..HHZ"]
    # backlog="next": DATA without a sequence number waits for records published later
    with ReplayServer(StreamSource(network), speed=1000.0, backlog="next") as server:
        assert server.wait_exhausted(10)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            command(sock, "HELLO")
            assert command(sock, "STATION S1 XX") == b"OK\r\n"
            assert command(sock, "DATA") == b"OK\r\n"
            assert command(sock, "STATION S2 XX") == b"OK\r\n"
            assert command(sock, "DATA 000003") == b"OK\r\n"       # resume: from seq 3 on
            sock.sendall(b"END\r")
            sock.settimeout(0.5)
            data = b""
            with pytest.raises(TimeoutError):
                while True:
                    data += sock.recv(65536)
    seqs = [int(data[i + 2:i + 8], 16) for i in range(0, len(data), 520)]
    ids = {RecordHeader.parse(data[i + 8:i + 520]).station for i in range(0, len(data), 520)}
    s2_records = sum(n for cid, n in records_per_channel(network).items() if ".S2." in cid)
    assert ids == {"S2"} and seqs == list(range(3, s2_records))


# --------------------------------------------------------------------------- SeedLinkSource


def test_seedlink_source_every_sample_once_across_faults(network, caplog):
    faults = {"XX.S1": Faults(delay=0.2),
              "XX.S2": Faults(drop_after=12, max_drops=3),
              "XX.S3": Faults(duplicate_every=5, reorder_every=7)}
    received = []
    caplog.set_level(logging.INFO, logger="utrans.stream")
    with ReplayServer(StreamSource(network), speed=None, hangup_at_end=True,
                      faults=faults) as server:
        source = SeedLinkSource(server.address, "XX.S*.*.HH?", backoff=0.05)
        stats = source.run(received.append)
        assert server.stats["drops"] == 3
        assert stats.records == server.stats["published"]   # each record received once
    assert_exactly_once([p.trace for p in received], network)
    counts = {cid: n for cid, n in records_per_channel(network).items() if ".S3." in cid}
    assert stats.reconnects == 3
    assert stats.duplicates == sum(n // 5 for n in counts.values())
    swapped = sum(len(range(7, n, 7)) for n in counts.values())   # a 7th with a successor
    assert stats.late == swapped and stats.gaps == swapped
    assert sum(p.late for p in received) == swapped
    assert all(p.seq is not None for p in received)
    resumed = [r.message for r in caplog.records if "resumes with DATA" in r.message]
    assert len(resumed) == 3 * 3          # every station, at each of the 3 reconnects
    retries = [r.message for r in caplog.records if "reconnecting in" in r.message]
    assert len(retries) == 3 and all("ConnectionResetError" in m for m in retries)


def test_seedlink_source_resumes_from_state_by_time(network):
    first, second = [], []
    with ReplayServer(StreamSource(network), speed=None, hangup_at_end=True) as server:
        source = SeedLinkSource(server.address, "XX.*.*.*", backoff=0.05)

        def take(packet):
            first.append(packet)
            if len(first) == 60:
                source.stop()

        source.run(take)
        state = source.state()
        assert len(state) == 9
        again = SeedLinkSource(server.address, "XX.*.*.*", resume_from=state, backoff=0.05)
        stats = again.run(second.append)
    assert stats.duplicates > 0     # TIME went back one record span: repeats are dropped
    assert_exactly_once([p.trace for p in first + second], network)


def test_seedlink_source_paced_replay(network):
    short = network.slice(T0, T0 + 20)
    received = []
    with ReplayServer(StreamSource(short), speed=200.0, hangup_at_end=True) as server:
        SeedLinkSource(server.address, "XX.S1.*.*", backoff=0.05).run(received.append)
    assert_exactly_once([p.trace for p in received], short.select(station="S1"))


def test_seedlink_source_keeps_retrying_an_unreachable_server(caplog):
    caplog.set_level(logging.WARNING, logger="utrans.stream")
    source = SeedLinkSource(f"127.0.0.1:{free_port()}", "XX.*.*.*", backoff=0.02,
                            max_backoff=0.08)
    timer = threading.Timer(0.6, source.stop)
    timer.start()
    stats = source.run(lambda packet: pytest.fail("no packet expected"))
    timer.join()
    retries = [r.message for r in caplog.records if "reconnecting in" in r.message]
    assert len(retries) >= 4
    assert all("ConnectionRefusedError" in m for m in retries)
    delays = [float(m.split("reconnecting in ")[1].split(" s")[0]) for m in retries]
    assert delays[:4] == [0.02, 0.04, 0.08, 0.08]          # doubling up to max_backoff
    assert stats.packets == 0


def test_seedlink_source_selection_matching_nothing_is_a_clear_error(network):
    with ReplayServer(StreamSource(network), speed=None) as server:
        source = SeedLinkSource(server.address, "YY.*.*.BH?", backoff=0.05)
        with pytest.raises(SelectionError, match=r"select='YY\.\*\.\*\.BH\?' matches none of "
                                                 r"the 9 streams .*XX\.S1\.\.HHE"):
            source.run(lambda packet: None)


def test_seedlink_source_returns_cleanly_on_ctrl_c(network):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("Ctrl-C is delivered to the main thread only")
    received = []
    with ReplayServer(StreamSource(network), speed=1.0) as server:   # real time: 2 minutes
        source = SeedLinkSource(server.address, "XX.*.*.*", backoff=0.05)
        timer = threading.Timer(0.5, _thread.interrupt_main)
        timer.start()
        stats = source.run(received.append)          # KeyboardInterrupt arrives while waiting
        timer.join()
    assert stats is source.stats and source._sock is None
    assert all(p.trace.stats.starttime < T0 + 10 for p in received)


def test_fast_replay_waits_for_the_slowest_of_two_clients():
    five = synthetic_network(stations=1, seconds=300.0, seed=4)
    got = {"fast": [], "slow": []}
    with ReplayServer(StreamSource(five), speed=None, ring_size=8, hangup_at_end=True,
                      min_readers=2) as server:
        fast = SeedLinkSource(server.address, "XX.*.*.*")
        slow = SeedLinkSource(server.address, "XX.*.*.*")

        def sluggish(packet):
            got["slow"].append(packet.trace)
            threading.Event().wait(0.002)

        worker = threading.Thread(target=slow.run, args=(sluggish,))
        worker.start()
        fast.run(lambda packet: got["fast"].append(packet.trace))
        worker.join(60)
        assert max(server.ring_lengths().values()) <= 8
    for traces in got.values():
        assert_exactly_once(traces, five)


def test_seedlink_source_keepalive_and_silent_servers(network, caplog):
    caplog.set_level(logging.DEBUG, logger="utrans.stream")
    one = network.select(id="XX.S1..HHZ")          # a record every ~4 s in real time
    with ReplayServer(StreamSource(one), speed=1.0) as server:
        alive = SeedLinkSource(server.address, "XX.S1..HHZ", keepalive=0.2, timeout=0.6)
        threading.Timer(1.5, alive.stop).start()
        stats = alive.run(lambda packet: None)
    assert stats.reconnects == 0 and stats.packets >= 1
    assert sum("INFO ID" in r.message for r in caplog.records) >= 3   # answered keep-alives
    caplog.clear()
    with socket.socket() as silent:                    # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        mute = SeedLinkSource(f"127.0.0.1:{silent.getsockname()[1]}", "XX.*.*.*",
                              connect_timeout=0.2, backoff=0.05)
        threading.Timer(1.0, mute.stop).start()
        mute.run(lambda packet: None)
    retries = [r.message for r in caplog.records if "reconnecting in" in r.message]
    assert len(retries) >= 2 and all("TimeoutError: no answer within 0.2 s" in m
                                     for m in retries)


def test_memory_stays_bounded_over_a_long_replay():
    long = synthetic_network(stations=1, seconds=1800.0, seed=3)    # 30 min, ~1500 records
    ring = 16
    checks = {"ring": 0, "calls": 0}
    sums = {tr.id: 0 for tr in long}
    counts = {tr.id: 0 for tr in long}
    with ReplayServer(StreamSource(long), speed=None, ring_size=ring,
                      hangup_at_end=True) as server:
        source = SeedLinkSource(server.address, "XX.S1.*.*", backoff=0.05)

        def consume(packet):
            checks["calls"] += 1
            sums[packet.id] += int(packet.trace.data.astype(np.int64).sum())
            counts[packet.id] += packet.trace.stats.npts
            if checks["calls"] % 50 == 0:
                checks["ring"] = max(checks["ring"], max(server.ring_lengths().values()))

        stats = source.run(consume)
        published = server.stats["published"]
    assert published == sum(records_per_channel(long).values()) > 60 * ring
    assert checks["ring"] <= ring
    assert source.max_buffer <= 65536 + 520
    assert len(source.tracker) == 3 and source.tracker.gap_count() == 0
    assert stats.reconnects == 0 and stats.duplicates == 0
    for tr in long:
        assert counts[tr.id] == tr.stats.npts
        assert sums[tr.id] == int(tr.data.astype(np.int64).sum())


# --------------------------------------------------------------------------- SDS


def sds_writes(stream):
    """(time, path, record) of every 512-byte record of ``stream`` in an SDS layout, time order."""
    writes = []
    for tr in stream:
        for record in trace_records(tr):
            header = RecordHeader.parse(record)
            t = header.starttime
            path = os.path.join(str(t.year), header.network, header.station,
                                f"{header.channel}.D", f"{header.id}.D.{t.year}.{t.julday:03d}")
            writes.append((t, path, record))
    writes.sort(key=lambda w: w[0])
    return writes


def test_sds_follower_reads_a_file_written_in_pieces_exactly_once(tmp_path, network):
    rng = np.random.default_rng(5)
    follower = SDSFollower(tmp_path, "XX.S1.*.HH?", start="begin", poll_interval=0.01)
    received = list(follower.poll())
    for _, rel, record in sds_writes(network.select(station="S1")):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        cuts = sorted(rng.choice(np.arange(1, 512), size=2, replace=False))
        # three pieces, often cut inside the header
        for a, b in zip([0, *cuts], [*cuts, 512], strict=True):
            with open(path, "ab") as handle:
                handle.write(record[a:b])
            received.extend(follower.poll())
    received.extend(follower.poll())
    assert_exactly_once([p.trace for p in received], network.select(station="S1"))
    days = {os.path.basename(p)[-3:] for p in follower.watched()}
    assert days == {"061", "062"}                          # the midnight roll-over was seen
    assert follower.stats.duplicates == 0 and follower.stats.gaps == 0


def test_sds_follower_start_end_resume_and_garbage(tmp_path, network, caplog):
    writes = sds_writes(network.select(station="S2"))
    half = len(writes) // 2
    for _, rel, record in writes[:half]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        with open(tmp_path / rel, "ab") as handle:
            handle.write(record)
    follower = SDSFollower(tmp_path, "XX.S2.*.*", start="end")
    assert follower.poll() == []                            # existing data is skipped
    for _, rel, record in writes[half:]:
        with open(tmp_path / rel, "ab") as handle:
            handle.write(record)
    late_half = [p.trace for p in follower.poll()]
    cut = {tr.id: min(t for t, rel, _ in writes[half:] if tr.id in rel)
           for tr in network.select(station="S2")}
    assert_exactly_once(late_half, obspy.Stream(
        [tr.slice(cut[tr.id]) for tr in network.select(station="S2")]))
    # a new follower resuming from an earlier state hands over only what follows it
    resumed = SDSFollower(tmp_path, "XX.S2.*.*", resume_from=follower.state())
    assert resumed.poll() == []
    # garbage appended to a file: one error naming it, the others are still followed
    bad = tmp_path / writes[-1][1]
    with open(bad, "ab") as handle:
        handle.write(b"\x00" * 600)
    caplog.set_level(logging.ERROR, logger="utrans.stream")
    assert follower.poll() == []
    assert any(str(bad) in r.message and "not miniSEED" in r.message for r in caplog.records)


def test_sds_follower_watch_list_stays_bounded(tmp_path):
    follower = SDSFollower(tmp_path, "XX.*.*.HHZ", start="begin", keep_days=2)
    total = 0
    for day in range(10):
        start = obspy.UTCDateTime(2024, 1, 1) + day * 86400
        tr = synthetic_network(stations=1, seconds=30, seed=day, start=start).select(
            channel="HHZ")[0]
        for _, rel, record in sds_writes(obspy.Stream([tr])):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp_path / rel, "ab") as handle:
                handle.write(record)
        total += sum(p.trace.stats.npts for p in follower.poll())
        assert len(follower.watched()) <= 3
    assert total == 10 * 3000


# --------------------------------------------------------------------------- the command


def test_sds_source_cuts_longer_records_to_seedlink_size(tmp_path, network):
    tr = network.select(id="XX.S2..HHE")[0]
    path = tmp_path / "2024" / "XX" / "S2" / "HHE.D" / "XX.S2..HHE.D.2024.061"
    path.parent.mkdir(parents=True)
    tr.write(str(path), format="MSEED", reclen=4096, encoding="STEIM2")
    records = list(SDSSource(tmp_path, "XX.S2.*.*").channel_records()["XX.S2..HHE"])
    assert {len(data) for _, data in records} == {512}
    assert sum(header.npts for header, _ in records) == tr.stats.npts
    rebuilt = obspy.read(io.BytesIO(b"".join(data for _, data in records)))
    rebuilt.merge()
    np.testing.assert_array_equal(rebuilt[0].data, tr.data)


def test_server_command_replays_an_sds_archive(tmp_path, network):
    for _, rel, record in sds_writes(network):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        with open(tmp_path / rel, "ab") as handle:
            handle.write(record)
    assert len(SDSSource(tmp_path, "XX.S3.*.*").channels) == 3
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        [sys.executable, "-m", "utrans.stream.server", "--sds", str(tmp_path), "--select",
         "XX.S3.*.*", "--fast", "--port", str(port), "--hangup-at-end",
         "--fault", "XX.S3:drop_after=20,max_drops=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "on 127.0.0.1:" in process.stdout.readline()
        received = []
        stats = SeedLinkSource(f"127.0.0.1:{port}", "XX.S3.*.*", backoff=0.05).run(
            received.append)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert stats.reconnects == 1
    assert_exactly_once([p.trace for p in received], network.select(station="S3"))


def test_stream_package_imports_without_tensorflow():
    code = ("import sys, utrans.stream, utrans.stream.server, utrans.stream.sources\n"
            "print(sorted(m for m in sys.modules if m.startswith(('tensorflow', 'keras'))))")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_faults_parse_and_validate():
    assert Faults.parse("XX.S*:drop_after=5,max_drops=1,delay=0.5") == (
        "XX.S*", Faults(drop_after=5, max_drops=1, delay=0.5))
    with pytest.raises(ValueError, match="unknown fault 'drop'"):
        Faults.parse("XX.S1:drop=3")
    with pytest.raises(ValueError, match="reorder_every must be 0"):
        Faults(reorder_every=1)
    with pytest.raises(ValueError, match="speed must be a positive number"):
        ReplayServer(StreamSource(synthetic_network(1, 5)), speed=0)
