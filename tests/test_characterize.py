"""utrans.annotate.characterize: window models on P picks of continuous records.

The published SeisT heads run on ObsPy's example record (BW.RJOB, a local
event picked by SeisT at P 00:20:07.70); every estimate column must be
filled and equal the model called directly on a window cut by hand from the
resampled trace. Tiny random-weight models of the other families check the
input layouts (DiTingMotion's z and dz), the adapters' extra columns
(MagNet's and distPT-Network's uncertainties) and the edge rules.
"""

import fractions
import shutil

import keras
import numpy as np
import obspy
import pandas as pd
import pytest
import scipy.signal
from conftest import require_reference

from utrans.annotate import Characterizer, characterize
from utrans.annotate.characterization import NOTE_COLUMN
from utrans import cli as main_cli
from utrans.cli import annotate as cli
from utrans.core.conventions import Conventions
from utrans.models import UTransBackbone, get_model

RJOB_P = "2009-08-24T00:20:07.700000Z"
SEIST = ["seist_s_pmp_diting", "seist_s_emg_diting", "seist_s_baz_diting", "seist_s_dis_diting"]


def rjob_picks(*extra):
    rows = [("BW.RJOB.", "P", RJOB_P, "EH"), ("BW.RJOB.", "S", "2009-08-24T00:20:08.62Z", "EH")]
    rows += list(extra)
    return pd.DataFrame(rows, columns=["trace_id", "phase", "peak_time", "instrument"])


@pytest.fixture(scope="module")
def seist_characterizer(tmp_path_factory):
    home = tmp_path_factory.mktemp("utrans_home")
    for name in SEIST:
        shutil.copy(require_reference(f"seist/{name}.pth"), home / f"{name}.pth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UTRANS_HOME", str(home))
        yield Characterizer(SEIST)


def hand_window(trace_rate, ratio, length, order="ZNE", p_time=RJOB_P, normalization="std"):
    """The window cut by hand: scipy's resample_poly, P at int(ratio * length), zeros outside.

    The pick sample is rounded halves up (floor(p + 0.5)); the window is
    normalised over its record samples only, the zero padding left at 0.
    """
    st = obspy.read()
    t0 = st[0].stats.starttime
    p = int(np.floor((obspy.UTCDateTime(p_time) - t0) * trace_rate + 0.5))
    start = p - int(ratio * length)
    window = np.zeros((length, len(order)))
    valid = np.zeros(length, dtype=bool)
    for c, comp in enumerate(order):
        tr = st.select(component=comp)[0]
        data = tr.data.astype(np.float64)
        up, down = fractions.Fraction(trace_rate / tr.stats.sampling_rate).as_integer_ratio()
        if up != down:
            data = scipy.signal.resample_poly(data, up, down)
        for k in range(length):
            if 0 <= start + k < len(data):
                window[k, c] = data[start + k]
                valid[k] = True
    window[valid] -= window[valid].mean(axis=0)
    if normalization == "std":
        window[valid] /= window[valid].std(axis=0)
    return window[None].astype(np.float32)


def test_seist_heads_fill_every_column_and_equal_the_models_on_hand_cut_windows(
        seist_characterizer):
    table = seist_characterizer.characterize(obspy.read(), rjob_picks())
    p_row = table.iloc[0]
    columns = seist_characterizer.columns
    assert columns == ["polarity__seist_s_pmp_diting", "polarity_prob__seist_s_pmp_diting",
                       "magnitude__seist_s_emg_diting", "back_azimuth_deg__seist_s_baz_diting",
                       "distance_km__seist_s_dis_diting", NOTE_COLUMN]
    assert p_row[NOTE_COLUMN] == ""
    assert p_row[columns[:-1]].notna().all()
    # The S pick is not characterised and carries no note.
    assert table.iloc[1][columns[:-1]].isna().all() and table.iloc[1][NOTE_COLUMN] == ""

    by_name = {wm.name: wm for wm in seist_characterizer.window_models}
    for name, wm in by_name.items():
        assert wm.conventions.sampling_rate == 50.0 and wm.p_position_ratio == 0.1
        x = hand_window(50.0, 0.1, 8192)
        out = keras.ops.convert_to_numpy(wm.runner.model(x, training=False))
        if name.startswith("seist_s_pmp"):
            up = out[0, 0]
            assert p_row[f"polarity__{name}"] == ("U" if up >= 0.5 else "D")
            assert p_row[f"polarity_prob__{name}"] == pytest.approx(max(up, 1 - up), abs=1e-4)
        elif name.startswith("seist_s_baz"):
            assert p_row[f"back_azimuth_deg__{name}"] == pytest.approx(out[0, 0] % 360, abs=2e-3)
        else:
            column = "magnitude" if "emg" in name else "distance_km"
            assert p_row[f"{column}__{name}"] == pytest.approx(out[0, 0], rel=1e-4)
    # Plausible values for a local event 6.5 km away (DiTing-trained heads, not exact).
    assert 0.0 < p_row["magnitude__seist_s_emg_diting"] < 4.0
    assert 0.0 < p_row["distance_km__seist_s_dis_diting"] < 60.0


def test_seist_edges_gaps_and_unknown_stations(seist_characterizer):
    st = obspy.read()
    t0 = st[0].stats.starttime
    gap = st.copy()
    gap.cutout(t0 + 20, t0 + 23)
    picks = rjob_picks(("BW.RJOB.", "P", str(t0 + 1.0), "EH"),     # 1 s after the start
                       ("BW.RJOB.", "P", str(t0 + 25.5), "EH"),    # 4.5 s before the end
                       ("BW.RJOB.", "P", str(t0 + 21.5), "EH"),    # inside the gap
                       ("XX.NONE.", "P", str(t0 + 7.0), "HH"))
    table = seist_characterizer.characterize(gap, picks)
    assert table.iloc[0][NOTE_COLUMN] == ""
    notes = list(table[NOTE_COLUMN])
    assert "1.00 s of record before P" in notes[2] and "needs 2 s and 10 s" in notes[2]
    assert "after, needs" in notes[3]
    assert "no record at the pick time" in notes[4]
    assert "no record of XX.NONE. HH" in notes[5]
    for note in notes[2:]:  # one reason per model
        assert note.count("; ") == 3
    values = table[seist_characterizer.columns[:-1]]
    assert values.iloc[2:].isna().all().all()
    assert len(table) == len(picks)
    # The pick between the record start and the gap keeps its estimates when the
    # needed span shrinks.
    relaxed = Characterizer([seist_characterizer.window_models[1].runner.model],
                           min_span_s=(0.5, 2.0))
    row = relaxed.characterize(gap, picks.iloc[[4]])
    assert "no record at the pick time" in row[NOTE_COLUMN].iloc[0]


def tiny_models():
    keras.utils.set_random_seed(0)
    backbone = {"input_length": 400, "base_filters": 2, "num_layers": 1, "num_heads": 2,
                "projection_dim": 8}
    return [
        get_model("ditingmotion"),
        get_model("magnet", in_samples=400),
        get_model("baz_network", in_samples=400),
        get_model("distpt_network", in_samples=400, dilations=[1, 2, 4]),
        get_model("utrans_cct_polarity", backbone=UTransBackbone(**backbone),
                  tokenizer_filters=(8,), num_heads=2, num_layers=2, seed=2),
        get_model("utrans_vit_magnitude", backbone=UTransBackbone(**backbone),
                  conv_filters=(4, 4), pool_sizes=(2, 2), patch_size=5, projection_dim=8,
                  num_heads=2, num_layers=1, mlp_units=(16, 8), head_units=(16,), seed=1),
    ]


def test_every_family_through_its_adapter():
    models = tiny_models()
    ch = Characterizer(models, p_position_ratio=0.25, min_span_s=(0.5, 1.0))
    quantities = {wm.name: wm.quantity for wm in ch.window_models}
    assert quantities == {"ditingmotion": "polarity", "magnet": "magnitude",
                          "baz_network": "backazimuth", "distpt_network": "distance",
                          "utrans_cct_polarity": "polarity",
                          "utrans_vit_magnitude": "magnitude"}
    cols = ch.columns
    for col in ("magnitude_std__magnet", "distance_km_std__distpt_network",
                "p_travel_s__distpt_network", "p_travel_s_std__distpt_network",
                "back_azimuth_deg__baz_network", "polarity__ditingmotion",
                "polarity_prob__utrans_cct_polarity", "magnitude__utrans_vit_magnitude"):
        assert col in cols
    assert "magnitude_std__utrans_vit_magnitude" not in cols
    table = ch.characterize(obspy.read(), rjob_picks())
    row = table.iloc[0]
    assert row[NOTE_COLUMN] == "" and row[cols[:-1]].notna().all()
    assert 0 <= row["back_azimuth_deg__baz_network"] < 360
    assert row["magnitude_std__magnet"] > 0 and row["p_travel_s_std__distpt_network"] > 0
    assert 0.5 <= row["polarity_prob__ditingmotion"] <= 1.0

    # DiTingMotion (100 Hz, 128 samples, P in the middle): normalised z and its difference.
    z = hand_window(100.0, 0.5, 128, order="Z")
    dz = np.concatenate([np.zeros((1, 1, 1)), np.diff(z, axis=1)], axis=1)
    _, polarity = models[0](np.concatenate([z, dz], axis=2), training=False)
    e = np.exp(keras.ops.convert_to_numpy(polarity)[0].astype(np.float64))
    up = e[0] / e.sum()
    assert row["polarity__ditingmotion"] == ("U" if up >= 0.5 else "D")
    assert row["polarity_prob__ditingmotion"] == pytest.approx(max(up, 1 - up), abs=1e-5)
    # MagNet (100 Hz, 400 samples, P at the option's 0.25): value and exp(log variance / 2).
    out = keras.ops.convert_to_numpy(models[1](hand_window(100.0, 0.25, 400), training=False))
    assert row["magnitude__magnet"] == pytest.approx(out[0, 0], rel=1e-4, abs=1e-5)
    assert row["magnitude_std__magnet"] == pytest.approx(np.exp(0.5 * out[0, 1]), rel=1e-4)
    # The U-Trans ViT takes E, N, Z.
    out = keras.ops.convert_to_numpy(models[5](hand_window(100.0, 0.25, 400, order="ENZ"),
                                               training=False))
    assert row["magnitude__utrans_vit_magnitude"] == pytest.approx(out[0, 0], rel=1e-4,
                                                                  abs=1e-5)


def test_batches_give_the_values_of_single_windows():
    model = tiny_models()[1]
    st = obspy.read()
    t0 = st[0].stats.starttime
    picks = pd.DataFrame({"trace_id": "BW.RJOB.", "phase": "P", "instrument": "EH",
                          "peak_time": [str(t0 + 5 + 0.37 * k) for k in range(11)]})
    together = characterize(st, picks, [model], batch_size=4, min_span_s=(0, 0))
    alone = pd.concat([characterize(st, picks.iloc[[k]], [model], min_span_s=(0, 0))
                       for k in range(11)], ignore_index=True)
    np.testing.assert_allclose(together["magnitude__magnet"], alone["magnitude__magnet"],
                               rtol=1e-5)
    assert together["magnitude__magnet"].nunique() == 11


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="Pickers go to annotate"):
        Characterizer([get_model("phasenet", in_samples=400)])
    inputs = keras.Input((100, 3))
    custom = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)),
                         name="mine")
    with pytest.raises(ValueError, match="carries no conventions"):
        Characterizer([custom])
    custom.conventions = Conventions(in_samples=100, labels=("value",), head="utrans")
    with pytest.raises(ValueError, match=r"\(model, quantity\)"):
        Characterizer([custom])
    ch = Characterizer([(custom, "magnitude")], min_span_s=(0, 0))
    assert ch.columns == ["magnitude__mine", NOTE_COLUMN]
    assert ch.window_models[0].p_position_ratio == 0.1
    with pytest.raises(ValueError, match="Received: models=\\[\\]"):
        Characterizer([])
    with pytest.raises(ValueError, match="columns trace_id"):
        ch.characterize(obspy.read(), pd.DataFrame({"time": [RJOB_P]}))


def test_command_line_characterize_to_csv_and_quakeml(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UTRANS_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for name in SEIST + ["seist_s_dpk_diting"]:
        shutil.copy(require_reference(f"seist/{name}.pth"), tmp_path / "home" / f"{name}.pth")
    obspy.read().write(str(tmp_path / "rec.mseed"), format="MSEED")
    out = tmp_path / "out"
    code = main_cli.console(["annotate", str(tmp_path / "rec.mseed"), "--model",
                             "seist_s_dpk_diting", "--characterize", ",".join(SEIST),
                             "--quakeml", "--output", str(out), "--no_plots", "--no_progress"])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "Characterize with seist_s_pmp_diting (polarity)" in printed
    table = pd.read_csv(out / "picks.csv", keep_default_na=False)
    assert sorted(table.phase) == ["P", "S"]
    p = table[table.phase == "P"].iloc[0]
    assert p["polarity__seist_s_pmp_diting"] in ("U", "D")
    assert float(p["magnitude__seist_s_emg_diting"]) > 0
    catalog = obspy.read_events(str(out / "picks.xml"))
    assert len(catalog) == 1
    picks = sorted(catalog[0].picks, key=lambda p: p.time)
    assert [(str(p.time), p.phase_hint) for p in picks] == \
        [(str(obspy.UTCDateTime(t)), ph) for t, ph in zip(table.peak_time, table.phase)]
    estimates = [c for c in table.columns if "__" in c]
    assert estimates == ["polarity__seist_s_pmp_diting", "polarity_prob__seist_s_pmp_diting",
                         "magnitude__seist_s_emg_diting", "back_azimuth_deg__seist_s_baz_diting",
                         "distance_km__seist_s_dis_diting"]
    for pick, (_, row) in zip(picks, table.iterrows()):
        # The instrument, not one component: the phase is picked on all three.
        assert pick.waveform_id.get_seed_string() == "BW.RJOB..EH?"
        assert pick.waveform_id.channel_code == "EH?"
        texts = [c.text for c in pick.comments]
        assert texts[0] == f"probability={row.peak_value!r}"  # in full: it reads back exactly
        if row.phase == "S":  # not characterised: no polarity, no estimate comments
            assert pick.polarity is None and texts == texts[:1]
            continue
        assert pick.polarity == {"U": "positive", "D": "negative"}[row[estimates[0]]]
        comments = dict(text.split("=", 1) for text in texts[1:])
        assert list(comments) == estimates
        assert comments[estimates[0]] == row[estimates[0]]
        for column in estimates[1:]:
            assert float(comments[column]) == pytest.approx(float(row[column]), rel=1e-3)
        # Plausible values for a local event 6.5 km away (DiTing-trained heads, not exact).
        assert 0.0 < float(comments["magnitude__seist_s_emg_diting"]) < 4.0
        assert 0.0 <= float(comments["back_azimuth_deg__seist_s_baz_diting"]) < 360.0
        assert 0.0 < float(comments["distance_km__seist_s_dis_diting"]) < 60.0
    code = cli.main([str(tmp_path / "rec.mseed"), "--model", "seist_s_dpk_diting",
                     "--characterize", "seist_s_dpk_diting", "--output", str(tmp_path / "o2")])
    assert code == 2
    assert "Pickers go to annotate" in capsys.readouterr().err
