"""``utrans catalog``: an SDS archive and a station file through the whole chain, and its bad input.

The archive is the synthetic network of :mod:`utrans.catalog.synthetic`
(six stations over 30 km, three events in ten minutes); the station file
lists five of them. The published SeisT-S picker (``seist_s_dpk_diting``)
and magnitude model (``seist_s_emg_diting``) run in this process.

* Bad input (time range, velocity, layered model, station file, settings)
  stops with one line and exit code 2, and nothing is written: not even the
  output folder.
* The chain finds the three events within 5 km, skips the station without
  coordinates with a warning, writes every file, and its QuakeML reads back
  to the tables value by value.
* The same command again resumes: done station-days are skipped and the
  catalogue is the same; a period without data gives empty tables with
  their headers; settings that find no event give empty events and
  arrivals tables.
"""

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys

import obspy
import pandas as pd
import pytest
from catalog_support import assert_quakeml_matches_tables, require
from conftest import REPO_ROOT, require_reference
from obspy.core.inventory import Inventory, Network

from utrans.catalog import write_synthetic_network
from utrans.catalog.scoring import score_catalogue
from utrans.cli import catalog as cli
from utrans.quakeml import ARRIVAL_COLUMNS, EVENT_COLUMNS

require("pyocto")

PICKER, MAGNITUDE = "seist_s_dpk_diting", "seist_s_emg_diting"
START, END = "2024-03-01T00:00:00", "2024-03-01T00:10:00"
LOOSE = ["--min_picks", "6", "--min_p_picks", "3", "--min_s_picks", "2"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """The synthetic archive, and a station CSV without its last station."""
    folder = tmp_path_factory.mktemp("network")
    net = write_synthetic_network(folder, n_stations=6, aperture_km=30.0, n_events=3,
                                  duration_s=600.0, seed=11)
    stations = folder / "stations.csv"
    net.stations.iloc[:5].to_csv(stations, index=False)
    return net, stations


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("utrans_home")
    for name in (PICKER, MAGNITUDE):
        shutil.copy(require_reference(f"seist/{name}.pth"), home / f"{name}.pth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UTRANS_HOME", str(home))
        yield home


def command(network, output, *extra, start=START, end=END):
    net, stations = network
    return [str(net.sds), "--inventory", str(stations), "--start", start, "--end", end,
            "--model", PICKER, "--output", str(output), "--workers", "0", "--no_progress",
            *extra]


def run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- the package


def test_utrans_catalog_is_the_package_and_callable_without_loading_tensorflow():
    code = ("import sys, utrans; c = utrans.catalog; import utrans.catalog.chain as chain; "
            "assert utrans.catalog is c and callable(c) and c.read_stations and "
            "c.catalog is chain.catalog; assert 'tensorflow' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.stdout.strip() == "ok", done.stderr


# --------------------------------------------------------------------------- bad input


def _layers(tmp_path):
    path = tmp_path / "layers.csv"
    path.write_text("depth,vp,vs\n0,5.5,3.2\n10,6.3,3.6\n8,6.8,3.9\n")
    return path


def _stationxml_without_latitude(tmp_path):
    path = tmp_path / "stations.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<FDSNStationXML xmlns="http://www.fdsn.org/'
        'xml/station/1" schemaVersion="1.1"><Source>x</Source><Created>2024-01-01T00:00:00'
        '</Created><Network code="SY"><Station code="S00"><Latitude>47.5</Latitude><Longitude>'
        '12</Longitude><Elevation>300</Elevation><Site><Name>a</Name></Site></Station><Station '
        'code="S01"><Longitude>12.1</Longitude><Elevation>400</Elevation><Site><Name>b</Name>'
        '</Site></Station></Network></FDSNStationXML>\n')
    return path


def _networks_only(tmp_path):
    path = tmp_path / "networks.xml"
    Inventory(networks=[Network(code="SY")], source="x").write(str(path), format="STATIONXML")
    return path


BAD = {
    "start after end": (
        lambda tmp: ["--start", "2024-03-01T00:10:00", "--end", "2024-03-01T00:00:00"],
        r"end must be after start. Received: start=2024-03-01T00:10:00.000000Z, "
        r"end=2024-03-01T00:00:00.000000Z"),
    "vs not below vp": (
        lambda tmp: ["--velocity", "vp=3.5,vs=6.0"],
        r"S must be slower than P. Received: vp=3.5, vs=6.0"),
    "negative velocity": (
        lambda tmp: ["--velocity", "vp=-6.0,vs=3.5"],
        r"Velocities must be positive numbers. Received: vp=-6.0"),
    "non-monotonic depths": (
        lambda tmp: ["--velocity_model", str(_layers(tmp))],
        r"Velocity file .*layers.csv: Layer depths must increase from row to row. "
        r"Received: depth=8.0 after depth=10.0"),
    "station without latitude": (
        lambda tmp: ["--inventory", str(_stationxml_without_latitude(tmp))],
        r"Station SY.S01 in .*stations.xml has no Latitude"),
    "inventory without stations": (
        lambda tmp: ["--inventory", str(_networks_only(tmp))],
        r"networks.xml holds no station coordinates"),
    "bad setting": (
        lambda tmp: ["--min_picks", "4", "--min_p_picks", "3", "--min_s_picks", "2"],
        r"min_picks must be at least min_p_picks \+ min_s_picks. Received: min_picks=4"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_writes_nothing(network, tmp_path, capsys, case):
    extra, message = BAD[case]
    output = tmp_path / "out"
    argv = command(network, output)
    code, out, err = run(argv + extra(tmp_path), capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("utrans catalog: error: "), err
    assert re.search(message, lines[0]), lines[0]
    assert not output.exists()


def test_no_station_with_coordinates(network, tmp_path, capsys):
    net, _ = network
    other = tmp_path / "other.csv"
    net.stations.assign(network="XX").to_csv(other, index=False)
    code, _, err = run(command(network, tmp_path / "out", "--inventory", str(other)), capsys)
    assert code == 2
    assert "None of the 6 archive station(s) has coordinates in" in err
    assert "SY.S00, SY.S01" in err and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the chain


@pytest.fixture(scope="module")
def first(network, home, tmp_path_factory):
    output = tmp_path_factory.mktemp("catalog") / "out"
    argv = command(network, output, "--characterize", MAGNITUDE, *LOOSE)
    with contextlib.redirect_stdout(io.StringIO()) as out, \
            contextlib.redirect_stderr(io.StringIO()) as err:
        code = cli.main(argv)
    return code, output, argv, out.getvalue(), err.getvalue()


def test_chain_finds_the_events(first, network):
    code, output, _, out, err = first
    assert code == 0, err
    assert "Located 3 event(s) from" in out
    net, _ = network
    events = pd.read_csv(output / "events.csv")
    assert list(events.columns) == EVENT_COLUMNS
    assert len(events) == 3
    score = score_catalogue(net.events, events)          # within 2 s and 10 km
    assert score["n_matched"] == 3, score["matches"]
    assert score["median_epicentral_km"] <= 5.0
    assert (events["n_picks"] >= 6).all() and (events["rms_s"] < 0.5).all()
    # Event magnitudes: the median of five station magnitudes from seist_s_emg_diting.
    assert (events["magnitude_n_stations"] == 5).all() and events["magnitude"].notna().all()


def test_chain_skips_the_station_without_coordinates(first, network):
    _, output, _, _, err = first
    # A warning naming the station, printed as one line by the command.
    assert [line for line in err.splitlines() if line.startswith("warning: ")] == [
        f"warning: 1 station(s) of the archive have no coordinates in {network[1]} and are "
        f"skipped: SY.S05"]
    picks = pd.read_csv(output / "picks.csv", keep_default_na=False)
    assert len(picks) > 0 and not picks["trace_id"].str.startswith("SY.S05.").any()
    assert sorted(p.name for p in (output / "picking" / "units").iterdir()) == \
        [f"SY.S0{k}" for k in range(5)]
    run_info = json.loads((output / "settings.json").read_text())["run"]
    assert run_info["skipped_stations"] == ["SY.S05"]


def test_chain_writes_every_file_and_the_quakeml_reads_back(first):
    output = first[1]
    events, arrivals, picks = assert_quakeml_matches_tables(output)
    names = sorted(p.relative_to(output).as_posix() for p in output.glob("**/*")
                   if p.is_file() and not p.relative_to(output).as_posix().startswith("picking"))
    assert names == sorted(["arrivals.csv", "catalog.xml", "events.csv", "map.png", "picks.csv",
                            "settings.json"] + [f"events/{e}.png" for e in events["event_id"]])
    assert all((output / n).read_bytes()[:8] == PNG for n in names if n.endswith(".png"))
    assert list(arrivals.columns[:len(ARRIVAL_COLUMNS)]) == ARRIVAL_COLUMNS
    assert f"magnitude__{MAGNITUDE}" in arrivals.columns
    assert (picks["event_id"] != "").sum() == len(arrivals)
    settings = json.loads((output / "settings.json").read_text())
    assert settings["settings"]["min_picks"] == 6 and settings["resolved"]["overlap_s"] > 0
    assert settings["run"]["model"] == PICKER and settings["run"]["characterize"] == [MAGNITUDE]


def test_the_same_command_resumes(first, tmp_path, capsys):
    _, output, argv, _, _ = first
    copy = tmp_path / "copy"
    shutil.copytree(output, copy)
    events = (copy / "events.csv").read_text()
    # A run killed after two station-days: their markers and the catalogue are gone.
    (copy / "events.csv").unlink()
    markers = sorted((copy / "picking" / "units").glob("*/*.done"))
    for marker in markers[:3]:
        marker.unlink()
    resumed = [copy if a == str(output) else a for a in argv]
    code, out, err = run([str(a) for a in resumed], capsys)
    assert code == 0, err
    assert "Station-days: 3 processed, 2 already done, 0 failed" in out
    assert (copy / "events.csv").read_text() == events


def test_no_events_gives_headers_and_a_message(first, tmp_path, capsys):
    _, output, argv, _, _ = first
    copy = tmp_path / "copy"
    shutil.copytree(output, copy)
    strict = [str(copy) if a == str(output) else a for a in argv] + ["--min_picks", "40"]
    code, out, err = run(strict, capsys)
    assert code == 0, err
    assert "Station-days: 0 processed, 5 already done" in out
    assert "No events from" in out and "wrote empty events and arrivals tables" in out
    assert (copy / "events.csv").read_text().strip() == ",".join(EVENT_COLUMNS)
    assert (copy / "arrivals.csv").read_text().split("\n")[0].split(",")[:9] == ARRIVAL_COLUMNS
    assert not list((copy / "events").glob("*.png"))          # the old figures are gone
    picks = pd.read_csv(copy / "picks.csv", keep_default_na=False)
    assert len(picks) > 0 and (picks["event_id"] == "").all()


def test_no_picks_gives_headers_and_a_message(network, home, tmp_path, capsys):
    output = tmp_path / "quiet"
    argv = command(network, output, *LOOSE, start="2024-03-01T02:00:00",
                   end="2024-03-01T02:05:00")            # the records end at 00:10
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "No picks between 2024-03-01T02:00:00.000000Z and 2024-03-01T02:05:00.000000Z: " \
           "wrote empty tables with their headers" in out
    assert (output / "events.csv").read_text().strip() == ",".join(EVENT_COLUMNS)
    assert len(pd.read_csv(output / "picks.csv")) == 0
    assert len(obspy.read_events(str(output / "catalog.xml"))) == 1     # the empty pick event


# --------------------------------------------------------------------------- full size


@pytest.mark.slow
def test_synthetic_network_of_ten_stations_and_twenty_events(tmp_path, monkeypatch, capsys):
    """The README network (10 stations over 50 km, 20 events in 3 h, a seed no test tuned)."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("seist_m_dpk_diting", "seist_m_emg_diting"):
        shutil.copy(require_reference(f"seist/{name}.pth"), home / f"{name}.pth")
    monkeypatch.setenv("UTRANS_HOME", str(home))
    net = write_synthetic_network(tmp_path / "network", seed=7)
    output = tmp_path / "catalog"
    code, out, err = run([str(net.sds), "--inventory", str(net.stationxml), "--start",
                          str(net.start), "--end", str(net.start + net.duration_s), "--model",
                          "seist_m_dpk_diting", "--characterize", "seist_m_emg_diting",
                          "--workers", "2", "--output", str(output), "--no_progress"], capsys)
    assert code == 0, err
    events, _, _ = assert_quakeml_matches_tables(output)
    score = score_catalogue(net.events, events)
    assert score["recall"] >= 0.9, score["matches"]
    assert score["median_epicentral_km"] <= 5.0
    assert len(list((output / "events").glob("*.png"))) == len(events)
