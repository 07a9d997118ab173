"""Catalogue inputs: station coordinates, velocity models, settings, atomic files."""

import json

import numpy as np
import obspy
import pandas as pd
import pytest
from catalog_support import require
from obspy.core.inventory import Inventory, Network

from utrans.catalog import (
    AssociationSettings,
    CatalogError,
    CatalogWarning,
    VelocityModel,
    match_stations,
    parse_velocity,
    read_stations,
)
from utrans.catalog.synthetic import _inventory, synthetic_stations


@pytest.fixture
def stations():
    return synthetic_stations(n_stations=4, seed=3)


# ------------------------------------------------------------------ stations


def test_stationxml_and_csv_give_the_same_table(tmp_path, stations):
    xml = tmp_path / "stations.xml"
    _inventory(stations, obspy.UTCDateTime(2024, 1, 1)).write(str(xml), format="STATIONXML")
    csv = tmp_path / "stations.csv"
    stations.to_csv(csv, index=False)
    from_xml, from_csv = read_stations(xml), read_stations(csv)
    assert list(from_xml.columns) == ["network", "station", "latitude", "longitude", "elevation_m"]
    pd.testing.assert_frame_equal(from_xml, from_csv)
    np.testing.assert_allclose(from_xml["latitude"], stations["latitude"])
    np.testing.assert_allclose(from_xml["elevation_m"], stations["elevation_m"])


def test_csv_keeps_codes_as_text(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("network,station,latitude,longitude,elevation_m\nNA,0123,1.5,2.5,10\n")
    table = read_stations(path)
    assert table.loc[0, "network"] == "NA" and table.loc[0, "station"] == "0123"


def test_inventory_without_stations_is_a_clear_error(tmp_path):
    path = tmp_path / "networks.xml"
    Inventory(networks=[Network(code="XX")], source="x").write(str(path), format="STATIONXML")
    with pytest.raises(ValueError, match=r"networks.xml holds no station coordinates"):
        read_stations(path)


def test_station_without_coordinates_is_a_clear_error(tmp_path):
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n<FDSNStationXML '
           b'xmlns="http://www.fdsn.org/xml/station/1" schemaVersion="1.1"><Source>x</Source>'
           b'<Created>2024-01-01T00:00:00</Created><Network code="XX"><Station code="A">'
           b'<Longitude>2</Longitude><Elevation>3</Elevation><Site><Name>a</Name></Site>'
           b'</Station></Network></FDSNStationXML>')
    path = tmp_path / "bad.xml"
    path.write_bytes(xml)
    with pytest.raises(CatalogError, match=r"^Station XX.A in .*bad.xml has no Latitude; "):
        read_stations(path)


@pytest.mark.parametrize("line, message", [
    ("XX,A,95.0,2.0,10", r"XX.A .*latitude must lie in \[-90, 90\]. Received: latitude=95.0"),
    ("XX,A,north,2.0,10", r"latitude must be a number. Received: latitude='north'"),
    ("XX,A,1.0,,10", r"longitude must be a number"),
    ("XX,,1.0,2.0,10", r"must be non-empty"),
])
def test_bad_station_rows(tmp_path, line, message):
    path = tmp_path / "s.csv"
    path.write_text("network,station,latitude,longitude,elevation_m\n" + line + "\n")
    with pytest.raises(ValueError, match=message):
        read_stations(path)


def test_station_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No station file"):
        read_stations(tmp_path / "absent.xml")
    path = tmp_path / "s.csv"
    path.write_text("network,station,latitude\nXX,A,1\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) longitude, elevation_m"):
        read_stations(path)
    path.write_text("network,station,latitude,longitude,elevation_m\nXX,A,1,2,0\nXX,A,1,3,0\n")
    with pytest.raises(ValueError, match="XX.A is listed .* with different coordinates"):
        read_stations(path)


def test_picked_station_missing_from_inventory_warns_and_is_skipped(stations):
    picks = pd.DataFrame({"trace_id": ["SY.S00.", "SY.S01.", "ZZ.GONE.", "ZZ.GONE."],
                          "phase": ["P", "S", "P", "S"]})
    with pytest.warns(CatalogWarning, match=r"their 2 pick\(s\) are left out: ZZ.GONE"):
        kept, sites = match_stations(picks, stations)
    assert list(kept.index) == [0, 1]
    assert list(sites["id"]) == ["SY.S00.", "SY.S01."]
    np.testing.assert_allclose(sites["latitude"], stations["latitude"][:2])


# ------------------------------------------------------------------ velocity


def test_homogeneous_text_and_travel_times():
    model = parse_velocity("vp=6.0, vs=3.5")
    assert model.is_homogeneous and model.vp == (6.0,) and model.vs == (3.5,)
    # 30 km away, 40 km deep: 50 km of straight ray; a station 1 km up adds to the depth.
    assert float(model.travel_time("P", 30.0, 40.0)) == pytest.approx(50.0 / 6.0)
    assert float(model.travel_time("S", 0.0, 9.0, elevation_m=1000.0)) == pytest.approx(10 / 3.5)


def test_layered_csv(tmp_path):
    path = tmp_path / "model.csv"
    path.write_text("depth,vp,vs\n0,5.0,2.9\n10,6.5,3.7\n30,8.0,4.6\n")
    model = parse_velocity(path)
    assert model.depth_km == (0.0, 10.0, 30.0) and model.vs == (2.9, 3.7, 4.6)
    nodes = model.pyocto_nodes(0.5)
    assert list(nodes["depth"]) == [0.0, 9.75, 10.0, 29.75, 30.0]
    assert list(nodes["vp"]) == [5.0, 5.0, 6.5, 6.5, 8.0]


@pytest.mark.parametrize("text, message", [
    ("depth,vp,vs\n0,3.0,3.5\n", r"S must be slower than P. Received: vp=3.0, vs=3.5"),
    ("depth,vp,vs\n0,6.0,3.5\n5,6.2,6.2\n", r"layer 2, depth 5 km.*vp=6.2, vs=6.2"),
    ("depth,vp,vs\n0,-6.0,3.5\n", r"positive numbers. Received: vp=-6.0"),
    ("depth,vp,vs\n0,6.0,3.5\n-5,6.5,3.7\n", r"0 or more. Received: depth=-5.0"),
    ("depth,vp,vs\n0,6.0,3.5\n10,6.5,3.7\n8,7.0,4.0\n",
     r"must increase .*Received: depth=8.0 after depth=10.0"),
    ("depth,vp,vs\n2,6.0,3.5\n",
     r"first layer starts at the surface: its depth must be 0 km. Received: depth=2.0"),
    ("depth,vp,vs\n0,fast,3.5\n", r"vp must be a number. Received: vp='fast'"),
    ("depth,vp\n0,6.0\n", r"lacks the column\(s\) vs"),
])
def test_bad_layered_models(tmp_path, text, message):
    path = tmp_path / "model.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        parse_velocity(path)
    assert "model.csv" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("vp=3.5,vs=6.0", r"S must be slower than P. Received: vp=3.5, vs=6.0"),
    ("vp=6.0,vs=-3.5", r"Received: vs=-3.5"),
    ("vp=6.0", r"needs both vp and vs"),
    ("vp=6.0,vs=x", r"vs must be a number \(km/s\). Received: vs='x'"),
    ("vp=6,vq=3", r"reads 'vp=6.0,vs=3.5'"),
])
def test_bad_homogeneous_models(text, message):
    with pytest.raises(ValueError, match=message):
        parse_velocity(text)


def test_missing_velocity_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at"):
        parse_velocity(tmp_path / "none.csv")


def test_layered_travel_times_follow_the_layers():
    require("pyrocko")
    one_layer_as_two = VelocityModel(depth_km=(0.0, 10.0), vp=(6.0, 6.0), vs=(3.5, 3.5))
    straight = VelocityModel.homogeneous(6.0, 3.5)
    distance = np.array([0.0, 5.0, 20.0, 40.0])
    np.testing.assert_allclose(one_layer_as_two.travel_time("P", distance, 12.0),
                               straight.travel_time("P", distance, 12.0), rtol=0.01, atol=0.03)
    # A fast half-space under 10 km: vertical time through the layers, and a
    # head wave overtaking the direct wave far away.
    layered = VelocityModel(depth_km=(0.0, 10.0), vp=(5.0, 8.0), vs=(2.9, 4.6))
    assert float(layered.travel_time("P", 0.0, 20.0)) == pytest.approx(10 / 5 + 10 / 8, abs=0.03)
    head = 150.0 / 8.0 + 2 * 10.0 * np.sqrt(1 / 5.0 ** 2 - 1 / 8.0 ** 2)
    assert float(layered.travel_time("P", 150.0, 0.0)) == pytest.approx(head, rel=0.01)
    assert float(layered.travel_time("P", 150.0, 0.0)) < 150.0 / 5.0


# ------------------------------------------------------------------ settings


def test_settings_json_round_trip(tmp_path):
    settings = AssociationSettings(min_picks=6, min_p_picks=3, min_s_picks=3, chunk_s=600.0,
                                   area=(47.0, 48.0, 11.0, 13.0), magnitude_column="magnitude__m")
    path = settings.write(tmp_path / "settings.json", overlap_s=27.0)
    data = json.loads(path.read_text())
    assert data["settings"]["area"] == [47.0, 48.0, 11.0, 13.0]
    assert data["resolved"] == {"overlap_s": 27.0}
    assert AssociationSettings.read(path) == settings


@pytest.mark.parametrize("kwargs, message", [
    ({"min_picks": 0}, r"min_picks must be an integer >= 1. Received: min_picks=0"),
    ({"min_picks": 5}, r"at least min_p_picks \+ min_s_picks"),
    ({"min_p_and_s_stations": 3}, r"cannot exceed min_p_picks or min_s_picks"),
    ({"tolerance_s": -1.0}, r"tolerance_s must be a number >= 0. Received: tolerance_s=-1.0"),
    ({"chunk_s": float("nan")}, r"chunk_s must be a number"),
    ({"depth_range_km": (30.0, 0.0)}, r"top above bottom"),
    ({"area": (48.0, 47.0, 11.0, 12.0)}, r"minimum below its maximum"),
    ({"overlap_s": -5}, r"overlap_s must be a number >= 0"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AssociationSettings(**kwargs)


def test_unknown_setting_in_json():
    with pytest.raises(ValueError, match="Unknown association setting"):
        AssociationSettings.from_dict({"min_pick": 3})
