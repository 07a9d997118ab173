"""Live data source speed: SeedLink replay server, SeedLinkSource, ObsPy's client, SDS follower.

Builds a synthetic network (3-component 100 Hz stations, seeded noise with
a few events) and reports, in one run, records and samples per second and
the real-time factor (data duration x channels / wall time, i.e. how many
such channels one process keeps up with) of:

* the replay server alone, read by a bare socket (no decoding);
* :class:`utrans.stream.sources.SeedLinkSource` through the server (decoding,
  duplicate tracking);
* ObsPy's ``EasySeedLinkClient`` through the same server;
* :class:`utrans.stream.sources.SDSFollower` reading the same records from
  an SDS archive in one poll.

The machine is shared: numbers measured under load are a lower bound.

Usage::

    python benchmarks/stream_throughput.py [--stations 3] [--minutes 30]
"""

import argparse
import os
import socket
import tempfile
import time

import numpy as np
import obspy
from obspy.clients.seedlink.easyseedlink import EasySeedLinkClient

from utrans.stream.mseed import RecordHeader, trace_records
from utrans.stream.server import ReplayServer, StreamSource
from utrans.stream.sources import SDSFollower, SeedLinkSource


def synthetic(stations, minutes, seed=0):
    rng = np.random.default_rng(seed)
    npts = int(minutes * 60 * 100)
    stream = obspy.Stream()
    for s in range(stations):
        for comp in "ZNE":
            data = rng.normal(0.0, 20.0, npts)
            for onset in range(3000, npts - 2000, 60000):
                data[onset:onset + 1500] += 900 * np.exp(-np.arange(1500) / 250)
            stream += obspy.Trace(np.round(data).astype(np.int32), header={
                "network": "XX", "station": f"S{s + 1}", "channel": f"HH{comp}",
                "sampling_rate": 100.0, "starttime": obspy.UTCDateTime(2024, 1, 1)})
    return stream


def bare_reader(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        for line in ("HELLO", *[f"STATION {s} XX\rDATA" for s in sorted(
                {sid.split('.')[1] for sid in server.ring_lengths()})]):
            for part in line.split("\r"):
                sock.sendall(part.encode() + b"\r")
                sock.recv(4096)
        sock.sendall(b"END\r")
        data = 0
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk or chunk.endswith(b"END"):
                return data + len(chunk)
            data += len(chunk)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    stream = synthetic(args.stations, args.minutes)
    samples = sum(tr.stats.npts for tr in stream)
    span = args.minutes * 60 * len(stream)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    results = []

    def report(name, seconds, records):
        results.append((name, seconds, records))

    t = time.perf_counter()
    source = StreamSource(stream)
    records = sum(1 for it in source.channel_records().values() for _ in it)
    report("cut into 512-byte records (ObsPy write)", time.perf_counter() - t, records)

    with ReplayServer(StreamSource(stream), speed=None, hangup_at_end=True) as server:
        t = time.perf_counter()
        nbytes = bare_reader(server)
        report("server -> bare socket", time.perf_counter() - t, nbytes // 520)

    with ReplayServer(StreamSource(stream), speed=None, hangup_at_end=True) as server:
        t = time.perf_counter()
        stats = SeedLinkSource(server.address, "XX.*.*.*").run(lambda packet: None)
        report("server -> SeedLinkSource", time.perf_counter() - t, stats.records)

    with ReplayServer(StreamSource(stream), speed=None, hangup_at_end=True) as server:
        count = [0]
        client = EasySeedLinkClient(server.address, autoconnect=False)
        client.conn.timeout = 60     # ObsPy 1.5.1 needs a timeout to connect
        client.on_data = lambda trace: count.__setitem__(0, count[0] + 1)
        client.connect()
        for s in range(args.stations):
            client.select_stream("XX", f"S{s + 1}", "HH?")
        t = time.perf_counter()
        client.run()
        report("server -> ObsPy EasySeedLinkClient", time.perf_counter() - t, count[0])

    with tempfile.TemporaryDirectory() as root:
        for tr in stream:
            for record in trace_records(tr):
                h = RecordHeader.parse(record)
                path = os.path.join(root, str(h.starttime.year), h.network, h.station,
                                    f"{h.channel}.D",
                                    f"{h.id}.D.{h.starttime.year}.{h.starttime.julday:03d}")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "ab") as handle:
                    handle.write(record)
        follower = SDSFollower(root, "XX.*.*.*", start="begin")
        t = time.perf_counter()
        while follower.poll():
            pass
        report("SDSFollower (one backlog)", time.perf_counter() - t, follower.stats.records)

    print(f"{len(stream)} channels x {args.minutes:g} min at 100 Hz = {samples} samples")
    print(f"{'':40s} {'s':>7s} {'records/s':>10s} {'Msamples/s':>11s} {'x real time':>12s}")
    for name, seconds, records in results:
        print(f"{name:40s} {seconds:7.2f} {records / seconds:10.0f} "
              f"{samples / seconds / 1e6:11.3f} {span / seconds:12.0f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
