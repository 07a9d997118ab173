"""DataGenerator: labels right, seeded, reference batch semantics, bad inputs, LR schedule."""

from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import pytest

from mock_h5 import event_rows, make_datacollected, make_seisbench, make_stead, mock_wave
from utrans.augment import ShiftEvent, reference_steps
from utrans.core.errors import BadTraceError, SplitCheckError
from utrans.data import DataGenerator, bad_trace_error, check_split, lr_schedule, make_lr_schedule
from utrans.formats import DataCollectedReader
from utrans.labels import LocationLabeller, PickLabeller
from utrans.synthetic import write_synthetic_dataset

_CLEAN, _AUGMENTED = reference_steps(add_event_r=0.6, shift_event_r=0.99, add_noise_r=0.3,
                                     drop_channel_r=0.5, add_gap_r=0.2)
FULL_AUG = dict(augmentation=True, steps=_CLEAN, augment_steps=_AUGMENTED)


@pytest.fixture
def rows():
    rs = event_rows(n_events=6, n_noise=2)
    rs[4]["depth"] = 30.0  # keep every event usable for location here
    return rs


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("syn"), n_events=48, n_noise=8, seed=1,
                                   layouts=("datacollected", "stead"))


def test_location_labels_exact(tmp_path, rows):
    path = make_datacollected(tmp_path, rows)
    events = [r for r in rows if r["eq"]]
    gen = DataGenerator([r["name"] for r in events], path, batch_size=3, shuffle=False,
                        labeller="location")
    assert len(gen) == 2
    lab = LocationLabeller()
    for b in range(2):
        x, y = gen[b]
        assert x.shape == (3, 6000, 3) and x.dtype == np.float32
        assert y.shape == (3, 3) and y.dtype == np.float32
        for j, tid in enumerate(gen.batch_ids(b)):
            r = next(r for r in events if r["name"] == tid)
            dep = max(r["depth"], 0.0)
            np.testing.assert_allclose(y[j], [r["st_lat"] - r["ev_lat"], r["st_lon"] - r["ev_lon"],
                                              (dep - 1e-5) / (114.5 - 1e-5)], rtol=1e-5, atol=1e-6)
            meta = gen.metadata(tid)
            lat, lon, depth = lab.inverse(y[j].astype(np.float64), meta["station_latitude_deg"],
                                          meta["station_longitude_deg"])
            assert lat == pytest.approx(r["ev_lat"], abs=1e-5)
            assert depth == pytest.approx(dep, abs=1e-4)
            # std-normalised: the Z spike sits on the P sample
            assert int(np.argmax(x[j, :, 2])) == int(r["p"])


def test_layouts_give_same_batches(tmp_path, rows):
    ids = [r["name"] for r in rows if r["eq"]]
    a = DataGenerator(ids, make_datacollected(tmp_path, rows), batch_size=6, shuffle=False)
    b = DataGenerator(ids, make_stead(tmp_path, rows), batch_size=6, shuffle=False)
    xa, ya = a[0]
    xb, yb = b[0]
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_allclose(ya, yb, rtol=1e-6)
    sb = make_seisbench(tmp_path / "sb", rows)
    c = DataGenerator([f"bucket0${i},:3,:6000" for i in range(6)], sb, batch_size=6, shuffle=False)
    xc, yc = c[0]
    np.testing.assert_allclose(xa, xc, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ya, yc, rtol=1e-6)


def test_picks_follow_shifted_waveform(tmp_path, rows):
    path = make_datacollected(tmp_path, rows)
    ids = [r["name"] for r in rows if r["eq"]]
    gen = DataGenerator(ids, path, labeller=PickLabeller("P", "triangle"), steps=[ShiftEvent(1.0)],
                        batch_size=6, shuffle=False, seed=4)
    x, y = gen[0]
    moved = 0
    for j, tid in enumerate(gen.batch_ids(0)):
        p0 = next(r["p"] for r in rows if r["name"] == tid)
        peak = int(np.argmax(x[j, :, 2]))
        assert y[j, peak, 0] == 1.0
        moved += peak != p0
    assert moved == 6


def test_same_seed_same_batches_different_seed_differs(syn):
    kw = dict(batch_size=8, labeller="p_pick", **FULL_AUG)
    a = DataGenerator(syn["train_all"], syn["datacollected"], seed=7, **kw)
    b = DataGenerator(syn["train_all"], syn["datacollected"], seed=7, **kw)
    c = DataGenerator(syn["train_all"], syn["datacollected"], seed=8, **kw)
    for i in (0, 3):
        xa, ya = a[i]
        xb, yb = b[i]
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert a.batch_ids(0) == b.batch_ids(0)
    assert not np.array_equal(a[0][0], c[0][0])
    # augmentation differs between seeds even for the same traces
    c.indexes = a.indexes.copy()
    assert not np.array_equal(a[1][0][4:], c[1][0][4:])
    # epoch reshuffle is deterministic from seed + epoch
    order0 = a.indexes.copy()
    a.on_epoch_end()
    b.on_epoch_end()
    np.testing.assert_array_equal(a.indexes, b.indexes)
    assert not np.array_equal(a.indexes, order0)
    np.testing.assert_array_equal(a[2][0], b[2][0])


def test_augmented_batch_halves(syn):
    gen = DataGenerator(syn["train"], syn["datacollected"], batch_size=8, labeller="location", seed=0,
                        **FULL_AUG)
    n = len(gen.list_IDs)
    assert len(gen) == 2 * (n // 8)
    x, y = gen[0]
    ids = gen.batch_ids(0)
    assert x.shape == (8, 6000, 3) and ids[:4] == ids[4:]
    np.testing.assert_array_equal(y[:4], y[4:])  # location does not depend on augmentation
    assert not np.array_equal(x[:4], x[4:])
    np.testing.assert_allclose(x[:4].std(axis=1), 1.0, rtol=1e-3)


def test_all_tasks_shapes(syn):
    shapes = {"location": (3,), "magnitude": (1,), "polarity": (1,), "p_pick": (6000, 1),
              "s_pick": (6000, 1), "dpk": (6000, 3), "baz": (2,), "distance": (1,),
              "reconstruction": (6000, 3)}
    for task, shape in shapes.items():
        ids = syn["train_all"] if task in ("p_pick", "s_pick", "dpk", "reconstruction") else syn["train"]
        gen = DataGenerator(ids, syn["datacollected"], batch_size=4, labeller=task, seed=0)
        x, y = gen[0]
        assert x.shape == (4, 6000, 3) and y.shape == (4,) + shape, task
        assert np.isfinite(x).all() and np.isfinite(y).all(), task


def test_shards_are_disjoint(syn):
    parts = [DataGenerator(syn["train_all"], syn["datacollected"], batch_size=4, shard=(k, 3)).list_IDs
             for k in range(3)]
    assert not set(parts[0]) & set(parts[1]) and not set(parts[1]) & set(parts[2])
    full = DataGenerator(syn["train_all"], syn["datacollected"], batch_size=4).list_IDs
    assert sorted(sum(parts, [])) == sorted(full)
    with pytest.raises(ValueError, match="shard"):
        DataGenerator(syn["train_all"], syn["datacollected"], shard=(3, 3))


def test_reference_dict_output_and_remainder(syn):
    gen = DataGenerator(syn["test"], syn["datacollected"], batch_size=5, shuffle=False,
                        input_name="input", output_name="output_layer", drop_remainder=False)
    n = len(gen.list_IDs)
    assert len(gen) == -(-n // 5)
    xd, yd = gen[len(gen) - 1]
    assert set(xd) == {"input"} and set(yd) == {"output_layer"}
    assert xd["input"].shape[0] == n - 5 * (len(gen) - 1)


# --------------------------------------------------------------------------- bad inputs


def _bad_file(tmp_path, rows):
    waves = {
        rows[1]["name"]: mock_wave(None)[:3000],                    # (3000, 3)
        rows[2]["name"]: np.where(np.arange(6000)[:, None] == 5, np.nan, mock_wave(900)).astype(np.float32),
        rows[3]["name"]: np.zeros((6000, 3), np.float32),            # all zero
        rows[5]["name"]: mock_wave(1200) * np.array([1, 1, 0], np.float32),  # dead Z channel
    }
    rows[4]["depth"] = float("nan")                                  # missing attribute
    return make_datacollected(tmp_path, rows, waves=waves)


@pytest.mark.parametrize("which,pattern", [
    (1, r"Received: shape=\(3000, 3\)"),
    (2, "non-finite"),
    (3, "all samples are zero"),
    (4, "source_depth_km"),
    ("missing", "not found"),
])
def test_bad_inputs_raise_naming_file_and_trace(tmp_path, rows, which, pattern):
    path = _bad_file(tmp_path, rows)
    tid = "NOPE.XX_1_EV" if which == "missing" else rows[which]["name"]
    gen = DataGenerator([rows[0]["name"], tid], path, batch_size=2, shuffle=False)
    with pytest.raises(BadTraceError, match=pattern) as err:
        gen[0]
    assert tid in str(err.value) and str(path) in str(err.value)


def test_dead_channel_is_not_an_error(tmp_path, rows):
    path = _bad_file(tmp_path, rows)
    gen = DataGenerator([rows[5]["name"]], path, batch_size=1, shuffle=False)
    x, y = gen[0]
    assert np.isfinite(x).all() and (x[0, :, 2] == 0).all()
    assert x[0, :, 0].std() == pytest.approx(1.0, rel=1e-3)


def test_skip_bad_keeps_batches_full_and_logs(tmp_path, rows):
    path = _bad_file(tmp_path, rows)
    log = tmp_path / "bad.tsv"
    ids = [r["name"] for r in rows if r["eq"]] + ["NOPE.XX_1_EV"]
    gen = DataGenerator(ids, path, batch_size=2, shuffle=False, skip_bad=True, bad_log=log)
    seen = []
    for i in range(len(gen)):
        x, y = gen[i]
        assert x.shape == (2, 6000, 3) and np.isfinite(x).all() and np.isfinite(y).all()
        seen += gen.batch_ids(i)
    good = {rows[0]["name"], rows[5]["name"]}
    assert set(seen) <= good
    logged = {line.split("\t")[0] for line in log.read_text().splitlines()}
    assert logged == {rows[k]["name"] for k in (1, 2, 3, 4)} | {"NOPE.XX_1_EV"}


def test_missing_file_and_empty_split(tmp_path, rows):
    with pytest.raises(FileNotFoundError, match="absent.hdf5"):
        DataGenerator(["a"], tmp_path / "absent.hdf5")
    np.save(tmp_path / "empty.npy", np.array([], dtype=str))
    path = make_datacollected(tmp_path, rows)
    with pytest.raises(ValueError, match="empty.npy"):
        DataGenerator(tmp_path / "empty.npy", path)
    with pytest.raises(ValueError, match="no trace IDs"):
        DataGenerator([], path)


# --------------------------------------------------------------------------- keras integration


def test_lr_schedule_reference_values():
    assert lr_schedule(0) == pytest.approx(1e-4)
    assert lr_schedule(20) == pytest.approx(1e-4)  # strict '>' as in the reference
    assert lr_schedule(21) == pytest.approx(1e-5)
    assert lr_schedule(41) == pytest.approx(1e-6)
    assert lr_schedule(61) == pytest.approx(1e-7)
    assert lr_schedule(91) == pytest.approx(5e-8)
    assert lr_schedule(5, 0.3, base_lr=1.0, breakpoints=((2, 0.5),)) == pytest.approx(0.5)
    assert make_lr_schedule(1e-3, ((1, 0.1),))(2) == pytest.approx(1e-4)


def test_fit_with_keras(tmp_path, rows):
    path = make_datacollected(tmp_path, rows)
    ids = [r["name"] for r in rows if r["eq"]]
    gen = DataGenerator(ids, path, labeller=LocationLabeller(), batch_size=2, seed=0)
    model = keras.Sequential([keras.Input((6000, 3)), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    cb = keras.callbacks.LearningRateScheduler(lr_schedule, verbose=0)
    hist = model.fit(gen, epochs=2, verbose=0, callbacks=[cb])
    assert len(hist.history["loss"]) == 2 and np.isfinite(hist.history["loss"]).all()
    # Keras calls on_epoch_end after every epoch (and once more after peeking a batch)
    assert gen.epoch >= 2
    np.testing.assert_array_equal(gen.indexes, np.random.default_rng((0, gen.epoch)).permutation(6))
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-4)


def test_threads_give_the_serial_batches(syn):
    kw = dict(batch_size=8, labeller="dpk", seed=3, **FULL_AUG)
    serial = DataGenerator(syn["train_all"], syn["datacollected"], **kw)
    threaded = DataGenerator(syn["train_all"], syn["datacollected"], workers=2, **kw)
    expect = [serial[i] for i in range(len(serial))]
    with ThreadPoolExecutor(2) as ex:
        got = list(ex.map(threaded.__getitem__, range(len(threaded))))
    for (xa, ya), (xb, yb) in zip(expect, got):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


# --------------------------------------------------------------------------- calling convention


def test_unknown_keyword_is_refused(tmp_path, rows):
    path = make_datacollected(tmp_path, rows)
    ids = [r["name"] for r in rows if r["eq"]]
    with pytest.raises(TypeError, match="augmention"):
        DataGenerator(ids, path, augmention=True)
    # the reference generator's keywords are gone: augmentation is steps=, the task a labeller
    for gone in (dict(drop_channe_r=0.5), dict(add_event_r=0.5), dict(norm_mode="std"),
                 dict(task="location")):
        with pytest.raises(TypeError, match=next(iter(gone))):
            DataGenerator(ids, path, augmentation=True, batch_size=2, **gone)
    clean, augmented = reference_steps(drop_channel_r=0.5)
    gen = DataGenerator(ids, path, augmentation=True, steps=clean, augment_steps=augmented,
                        batch_size=2)
    assert [type(s).__name__ for s in gen.augment_steps] == ["DropChannel"]
    assert gen.augment_steps[0].rate == 0.5 and gen.steps == []


def test_positional_pipeline_and_labeller_keyword_only_rest(tmp_path, rows):
    path = make_datacollected(tmp_path, rows)
    ids = [r["name"] for r in rows if r["eq"]]
    gen = DataGenerator(ids, path, None, "magnitude", batch_size=3, shuffle=False)
    assert (gen.dim, gen.batch_size, gen.shuffle) == (6000, 3, False)
    assert type(gen.labeller).__name__ == "MagnitudeLabeller"
    # no pipeline: the data as stored, ENZ at its own rate, std-normalised
    conv = gen.pipeline.conventions
    assert (conv.component_order, conv.sampling_rate, conv.normalization) == ("ENZ", 100.0, "std")
    # the reference positional order (dim, batch_size, ...) is refused, not misread
    with pytest.raises(TypeError, match="labeller=3"):
        DataGenerator(ids, path, 6000, 3)
    with pytest.raises(TypeError, match="positional"):
        DataGenerator(ids, path, None, "location", 6000)
    with pytest.raises(TypeError, match="Received: labeller=<"):
        DataGenerator(ids, path, labeller=object())


# --------------------------------------------------------------------------- metadata ranges


@pytest.mark.parametrize("task,field,value,pattern", [
    ("location", "ev_lat", 999.0, r"source_latitude_deg must be in \[-90, 90\]. Received: "
                                  r"source_latitude_deg=999.0"),
    ("baz", "ev_lat", 999.0, "path_back_azimuth_deg cannot be computed: source_latitude_deg"),
    ("location", "depth", -999.0, r"source_depth_km must be in \[-10, 800\]. Received: source_depth_km=-999.0"),
    ("p_pick", "p", 7000.0, r"trace_p_arrival_sample must be in \[0, 6000\)"),
    ("magnitude", "p", 7000.0, r"trace_p_arrival_sample must be in \[0, 6000\)"),
    ("dpk", "s", 650.0, "S must come after P"),
    ("magnitude", "mag", 15.0, r"source_magnitude must be in \[-3, 10\]"),
])
@pytest.mark.parametrize("maker", [make_datacollected, make_stead])
def test_bad_metadata_names_file_trace_and_value(tmp_path, rows, maker, task, field, value, pattern):
    rows[2][field] = value
    path = maker(tmp_path, rows)
    ids = [r["name"] for r in rows[:4]]
    gen = DataGenerator(ids, path, batch_size=4, shuffle=False, labeller=task)
    with pytest.raises(BadTraceError, match=pattern) as err:
        gen[0]
    msg = str(err.value)
    assert msg.startswith(f"{path}: trace '{rows[2]['name']}': ") and "\n" not in msg
    # skipped, counted and replaced
    gen = DataGenerator(ids, path, batch_size=2, shuffle=False, labeller=task, skip_bad=True)
    seen = []
    for i in range(len(gen)):
        x, y = gen[i]
        assert x.shape[0] == 2 and np.isfinite(y).all()
        seen += gen.batch_ids(i)
    assert rows[2]["name"] not in seen
    assert gen.skipped_this_epoch == 1 and [t for t, _ in gen.skipped] == [rows[2]["name"]]


def test_small_negative_depth_is_clipped_not_refused(tmp_path, rows):
    rows[0]["depth"] = -1.2
    path = make_datacollected(tmp_path, rows)
    gen = DataGenerator([rows[0]["name"]], path, batch_size=1, labeller="location")
    _, y = gen[0]
    assert y[0, 2] == pytest.approx((0.0 - 1e-5) / (114.5 - 1e-5))


# --------------------------------------------------------------------------- skipping


def test_skip_counter_per_epoch(tmp_path, rows):
    path = _bad_file(tmp_path, rows)
    ids = [r["name"] for r in rows if r["eq"]]
    gen = DataGenerator(ids, path, batch_size=2, shuffle=True, seed=1, skip_bad=True)
    gen[0]  # as Keras does before the first epoch
    gen.on_epoch_begin()
    for i in range(len(gen)):
        gen[i]
    first = gen.skipped_this_epoch
    assert first == len(gen.skipped) >= 1
    gen.on_epoch_end()
    assert (gen.skipped_this_epoch, gen.skipped_last_epoch) == (first, first)
    gen.on_epoch_begin()
    assert gen.skipped_this_epoch == 0
    for i in range(len(gen)):
        x, _ = gen[i]
        assert x.shape[0] == 2
    # traces found bad earlier are not counted again
    assert gen.skipped_this_epoch == len(gen.skipped) - first
    assert {t for t, _ in gen.skipped} <= {rows[k]["name"] for k in (1, 2, 3, 4)}


def test_testing_drop_mode_gives_each_usable_trace_once(tmp_path, rows):
    path = _bad_file(tmp_path, rows)
    ids = [r["name"] for r in rows] + ["NOPE.XX_1_EV"]
    # the tester's settings: no shuffle, keep the remainder -> bad traces are dropped
    gen = DataGenerator(ids, path, batch_size=3, shuffle=False, drop_remainder=False,
                        skip_bad=True, labeller="magnitude")
    assert gen.fill_bad == "drop"
    out_ids, ys = [], []
    for i in range(len(gen)):
        x, y = gen.get_batch(i)
        got = gen.batch_ids(i)
        assert x.shape[0] == y.shape[0] == len(got) <= 3
        out_ids += got
        ys += list(y[:, 0])
    # magnitude needs no depth: the NaN-depth trace (4) is usable here; noise has no magnitude
    bad = {rows[k]["name"] for k in (1, 2, 3)} | {r["name"] for r in rows if not r["eq"]} | {"NOPE.XX_1_EV"}
    assert out_ids == [t for t in ids if t not in bad]
    assert {t for t, _ in gen.skipped} == bad
    reasons = dict(gen.skipped)
    assert "not found" in reasons["NOPE.XX_1_EV"] and "non-finite" in reasons[rows[2]["name"]]
    assert "missing required metadata for MagnitudeLabeller: source_magnitude" in reasons[rows[6]["name"]]
    np.testing.assert_allclose(ys, [next(r["mag"] for r in rows if r["name"] == t) for t in out_ids])
    # metadata-bad traces leave the order before batching: 5 usable-by-metadata traces -> 2 batches
    assert len(gen) == 2


def test_drop_mode_batch_of_only_bad_waveforms_is_empty(tmp_path, rows):
    path = _bad_file(tmp_path, rows)
    ids = [rows[k]["name"] for k in (1, 2, 3, 0)]
    gen = DataGenerator(ids, path, batch_size=3, shuffle=False, drop_remainder=False,
                        skip_bad=True, fill_bad="drop")
    x, y = gen.get_batch(0)
    assert x.shape == (0, 6000, 3) and y.shape == (0, 3) and gen.batch_ids(0) == []
    x, y = gen.get_batch(1)
    assert gen.batch_ids(1) == [rows[0]["name"]] and x.shape == (1, 6000, 3)


def test_bad_trace_through_keras_fit_is_one_clean_error(tmp_path, rows):
    path = _bad_file(tmp_path, rows)
    ids = [rows[k]["name"] for k in (0, 5, 3)]
    gen = DataGenerator(ids, path, batch_size=1, shuffle=False, labeller="location")
    model = keras.Sequential([keras.Input((6000, 3)), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    expected = f"{path}: trace '{rows[3]['name']}': all samples are zero"
    # the bad trace is in the third batch: TensorFlow's input pipeline wraps the error
    with pytest.raises(Exception) as err:  # noqa: B017 - the type is what is being examined
        model.fit(gen, epochs=1, verbose=0)
    found = bad_trace_error(err.value, [gen])
    assert isinstance(found, BadTraceError) and str(found) == expected
    assert found is gen.failure
    # without the generator (worker processes): read back from the message
    again = bad_trace_error(err.value)
    assert str(again) == expected and again.trace_id == rows[3]["name"]
    assert bad_trace_error(ValueError("unrelated")) is None


# --------------------------------------------------------------------------- split check


def test_check_split_reports_before_training(tmp_path, rows):
    rows[2]["ev_lat"] = 999.0
    rows[3]["depth"] = -999.0
    path = make_datacollected(tmp_path, rows)
    ids = [r["name"] for r in rows if r["eq"]] + ["GONE.XX_1_EV", "GONE.XX_2_EV", rows[0]["name"]]
    np.save(tmp_path / "train.npy", np.array(ids))
    with pytest.raises(SplitCheckError) as err:
        check_split(tmp_path / "train.npy", path, labeller="location")
    msg = str(err.value)
    assert str(tmp_path / "train.npy") in msg and str(path) in msg and "\n" not in msg
    assert "2 trace IDs not in the dataset (first: GONE.XX_1_EV, GONE.XX_2_EV)" in msg
    assert "5 of 9 entries usable" in msg
    assert "2 traces with unusable metadata" in msg and "source_latitude_deg=999.0" in msg
    assert "1 repeated entries" in msg
    check = check_split(tmp_path / "train.npy", path, labeller="location", skip_bad=True)
    bad = {rows[k]["name"] for k in (2, 3)}
    assert check.ids == [t for t in ids if t not in bad and not t.startswith("GONE")]
    assert {t for t, _ in check.skipped} == bad | {"GONE.XX_1_EV", "GONE.XX_2_EV"}
    assert check.missing == ["GONE.XX_1_EV", "GONE.XX_2_EV"] and check.duplicates == 1
    assert check.total == len(ids)
    deduped = check_split(ids, path, labeller="location", skip_bad=True, drop_duplicates=True)
    assert deduped.ids == list(dict.fromkeys(check.ids))
    # magnitude does not need the coordinates: only the repeated entry and the missing IDs remain
    mag = check_split(ids, path, labeller="magnitude", skip_bad=True)
    assert {t for t, _ in mag.skipped} == {"GONE.XX_1_EV", "GONE.XX_2_EV"}


def test_check_split_reads_no_waveform(tmp_path, rows, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a waveform was read")

    monkeypatch.setattr(DataCollectedReader, "read_waveform", boom)
    monkeypatch.setattr(DataCollectedReader, "locate", boom)
    path = make_datacollected(tmp_path, rows)
    check = check_split([r["name"] for r in rows], path, labeller="p_pick")
    assert len(check.ids) == len(rows)


def test_check_split_with_nothing_usable(tmp_path, rows):
    path = make_stead(tmp_path, rows)
    with pytest.raises(SplitCheckError, match="No usable trace"):
        check_split(["A", "B"], path, labeller="location", skip_bad=True)


def test_skip_count_reaches_keras_callbacks(tmp_path, rows):
    rows[5]["depth"] = -999.0
    rows[1]["ev_lat"] = 999.0
    path = make_datacollected(tmp_path, rows, waves={rows[3]["name"]: np.zeros((6000, 3), np.float32)})
    gen = DataGenerator([r["name"] for r in rows if r["eq"]], path, batch_size=2, skip_bad=True, seed=0)
    counts = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: counts.append((gen.skipped_this_epoch, len(gen.skipped))))
    model = keras.Sequential([keras.Input((6000, 3)), keras.layers.GlobalAveragePooling1D(),
                              keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(gen, epochs=2, verbose=0, callbacks=[record])
    assert counts == [(3, 3), (0, 3)]
    assert {t for t, _ in gen.skipped} == {rows[k]["name"] for k in (1, 3, 5)}
