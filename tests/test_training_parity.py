"""Training parity with the SeisT reference: targets, loss, gradients and pick decoding.

``training/<model>_train_golden.npz`` in the reference folder holds one
training step of the original PyTorch code per model (``training/README.md``):
the input batch ``x`` with its metadata ``meta/*``, the loss targets, the
loss, the gradients of named parameters (forward in inference mode) and, for
the pickers, the reference's decoding of the outputs into picks.

Every check rebuilds the step with utrans alone: the targets come from the
metadata (``meta/*``: picks, magnitude, back-azimuth, distance, P travel time,
polarity, clarity) through the task's labeller and the model's objective
(:mod:`utrans.objectives`; conventions of the reference's DiTing data: 50 Hz,
8192 samples), in the windows the model's pipeline cuts, never from the
stored targets; the loss is the objective's, compiled as ``fit`` compiles it; gradients come from a ``tf.GradientTape`` with the layers in inference
mode; picks from :func:`utrans.processing.decode.decode_outputs` with the model's
conventions. Only ``x`` (the waveforms) is taken from the file. No golden
number is written here, so the same tests pass on any batch built by the
reference recipe.

Tolerances (``training/README.md``): targets 1e-6 absolute; loss 1e-4
relative; each gradient array ``max|d| <= 1e-3 * max|golden|`` after mapping
it to the Keras variable (``torch_weight_map``); picks and detections exact.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import utrans.models as models
from utrans.augment import Batch
from utrans.convert import load_torch_checkpoint
from utrans.core.tasks import get_task
from utrans.formats import CHANNEL_ORDER
from utrans.loading import get_conventions
from utrans.objectives import get_objective, task_labeller
from utrans.pipeline import Pipeline
from utrans.processing.decode import decode_outputs

#: Sampling rate of the reference's data (DiTing) and the data layer's rate.
REFERENCE_RATE = 50.0
DATA_RATE = 100.0

TARGET_TOL = 1e-6
LOSS_RTOL = 1e-4
GRAD_RTOL = 1e-3


@dataclasses.dataclass(frozen=True)
class Case:
    """One training-step golden: the utrans model, its weights and task."""

    golden: str
    model: str
    weights: str
    task: str
    options: tuple = ()

    @property
    def seist(self):
        return self.model.startswith("seist_")


CASES = [
    Case("seist_s_dpk_diting", "seist_s_dpk", "seist/seist_s_dpk_diting.pth", "dpk"),
    Case("seist_s_pmp_diting", "seist_s_pmp", "seist/seist_s_pmp_diting.pth", "pmp"),
    Case("seist_s_emg_diting", "seist_s_emg", "seist/seist_s_emg_diting.pth", "emg"),
    Case("seist_s_baz_diting", "seist_s_baz", "seist/seist_s_baz_diting.pth", "baz"),
    Case("seist_s_dis_diting", "seist_s_dis", "seist/seist_s_dis_diting.pth", "dis"),
    Case("phasenet", "phasenet", "baselines/phasenet.pth", "dpk"),
    Case("eqtransformer", "eqtransformer", "baselines/eqtransformer.pth", "dpk"),
    Case("magnet", "magnet", "baselines/magnet.pth", "emg"),
    Case("distpt_network", "distpt_network", "baselines/distpt_network.pth", "dis"),
    Case("ditingmotion", "ditingmotion", "baselines/ditingmotion.pth", "pmp",
         options=(("clarity_key", "trace_p_clarity"),)),
]
PICKERS = [c for c in CASES if c.task == "dpk"]


def _golden(reference, case):
    return np.load(reference(f"training/{case.golden}_train_golden.npz"))


def _channels_last(a):
    return np.asarray(a).transpose(0, 2, 1) if np.ndim(a) == 3 else np.asarray(a)


def objective_for(case):
    """The model's objective with the conventions of the reference's training data."""
    conv = get_conventions(case.golden if case.seist else case.model)
    conv = conv.replace(sampling_rate=REFERENCE_RATE)  # the DiTing presets say so already
    return get_objective(get_task(case.task), conv, **dict(case.options))


def data_batch(golden, window, ratio=DATA_RATE / REFERENCE_RATE):
    """A data-layer batch (100 Hz, E/N/Z) carrying the golden rows' metadata.

    The model sees ``window`` samples at 50 Hz, i.e. ``ratio * window`` data
    samples; picks are the ``meta/ppk``/``meta/spk`` samples at 50 Hz times
    ``ratio``. Waveforms are zeros: targets depend on the metadata only.
    """
    p = golden["meta/ppk"].astype(np.float64) * ratio
    s = golden["meta/spk"].astype(np.float64) * ratio
    n = p.shape[0]
    samples = int(max(window * ratio, s.max() + 1))
    meta = {
        "source_magnitude": golden["meta/emg"],
        "path_back_azimuth_deg": golden["meta/baz"],
        "path_ep_distance_km": golden["meta/dis"],
        "path_p_travel_sec": golden["meta/ptt"],
        # reference classes: pmp 0 = up (U), 1 = down (D); clr 0 = impulsive, 1 = emergent
        "trace_p_polarity": np.where(golden["meta/pmp"] == 0, "positive", "negative").astype(object),
        "trace_p_clarity": golden["meta/clr"].astype(np.float64),
        "trace_category": np.full(n, "earthquake"),
    }
    return Batch(np.zeros((n, 3, samples), np.float32), p=p, s=s, meta=meta)


def build_targets(case, golden):
    """Loss targets from the metadata, through the task's labeller and the objective.

    As the data generator does: the model's pipeline cuts the windows of the
    batch (its :class:`~utrans.pipeline.Frame`), and the objective's labeller
    makes the targets in those windows.
    """
    objective = objective_for(case)
    labeller = objective.labeller(task_labeller(get_task(case.task)))
    batch = data_batch(golden, objective.conventions.in_samples)
    inputs, frame = objective.pipeline.record_inputs(np.moveaxis(batch.x, 1, 2), DATA_RATE,
                                                     CHANNEL_ORDER, picks=batch.p)
    return objective, labeller.label_batch(batch, frame=frame, inputs=inputs)


_MODELS = {}


def build_model(case, reference, golden):
    """The utrans model with the reference weights (built once per test process)."""
    if case.golden in _MODELS:
        return _MODELS[case.golden]
    x = golden["x"]
    if case.seist:
        model = models.get_model(case.model, in_samples=x.shape[2])
    else:
        model = models.get_model(case.model, in_channels=x.shape[1], in_samples=x.shape[2])
    load_torch_checkpoint(model, reference(case.weights))
    _MODELS[case.golden] = model
    return model


def training_step(case, reference, golden):
    """Loss and named gradients of one step, as ``fit`` computes the loss, layers in inference mode.

    Returns:
        dict with ``targets``, ``outputs`` (list, channels last), ``loss``,
        ``grads`` (torch name -> (ours, golden) in the Keras layout) and ``model``.
    """
    objective, targets = build_targets(case, golden)
    model = build_model(case, reference, golden)
    loss, loss_weights = objective.loss()
    model.compile(loss=loss, loss_weights=loss_weights)
    names = [k[len("grad/"):] for k in golden.files if k.startswith("grad/")]
    by_key = {}
    for m in model.torch_weight_map():
        for key in m.torch_keys:
            by_key[key] = m
    for name in names:
        assert name in by_key and len(by_key[name].torch_keys) == 1, name
    variables = [by_key[n].keras_weight for n in names]
    x = _channels_last(golden["x"])
    with tf.GradientTape() as tape:
        y_pred = model(x, training=False)
        value = model.compute_loss(x=x, y=targets, y_pred=y_pred)
    grads = tape.gradient(value, variables)
    outputs = y_pred if isinstance(y_pred, (list, tuple)) else [y_pred]
    return dict(
        targets=targets if isinstance(targets, tuple) else (targets,),
        outputs=[keras.ops.convert_to_numpy(o) for o in outputs],
        loss=float(value),
        grads={n: (np.asarray(g), np.asarray(by_key[n].transform(golden[f"grad/{n}"])))
               for n, g in zip(names, grads)},
        model=model,
    )


def target_errors(case, golden):
    _, targets = build_targets(case, golden)
    targets = targets if isinstance(targets, tuple) else (targets,)
    keys = sorted(k for k in golden.files if k.startswith("target"))
    assert len(targets) == len(keys)
    errors = []
    for ours, key in zip(targets, keys):
        ref = golden[key]
        ours = _channels_last(ours) if ref.ndim == 3 else np.asarray(ours)
        assert ours.shape == ref.shape, (key, ours.shape, ref.shape)
        errors.append(float(np.abs(ours.astype(np.float64) - ref).max()))
    return errors


# --------------------------------------------------------------------------- targets
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.golden)
def test_targets_from_metadata(reference, case):
    golden = _golden(reference, case)
    errors = target_errors(case, golden)
    assert max(errors) <= TARGET_TOL, errors


def test_targets_depend_on_the_label_settings(reference):
    """A label 1 sample narrower, or the old coda ratio, is caught by the 1e-6 tolerance."""
    case = CASES[0]
    golden = _golden(reference, case)
    narrow = dataclasses.replace(case, options=(("label_width_s", 0.48),))
    short = dataclasses.replace(case, options=(("coda_ratio", 0.4),))
    assert max(target_errors(narrow, golden)) > 0.4
    assert max(target_errors(short, golden)) > 0.4


# --------------------------------------------------------------------------- loss and gradients
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.golden)
def test_loss_and_gradients(reference, case):
    golden = _golden(reference, case)
    step = training_step(case, reference, golden)
    for i, out in enumerate(step["outputs"]):
        ref = golden[f"out{i}"]
        out = _channels_last(out)
        assert np.abs(out - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())
    ref_loss = float(golden["loss"])
    assert abs(step["loss"] - ref_loss) <= LOSS_RTOL * abs(ref_loss), (step["loss"], ref_loss)
    for name, (ours, ref) in step["grads"].items():
        assert ours.shape == ref.shape, name
        assert np.abs(ours - ref).max() <= GRAD_RTOL * np.abs(ref).max(), name


def test_mean_reduction_would_fail_the_gradient_check(reference):
    """The reference sums the aleatoric loss over the batch: the mean is off by the batch size."""
    case = dataclasses.replace(CASES[8], options=(("loss_reduction", "sum_over_batch_size"),))
    golden = _golden(reference, case)
    step = training_step(case, reference, golden)
    n = golden["x"].shape[0]
    assert step["loss"] * n == pytest.approx(float(golden["loss"]), rel=LOSS_RTOL)
    name = "lin_dist.weight"
    ours, ref = step["grads"][name]
    np.testing.assert_allclose(ours * n, ref, atol=GRAD_RTOL * np.abs(ref).max())


# --------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("case", PICKERS, ids=lambda c: c.golden)
def test_pick_decoding(reference, case):
    golden = _golden(reference, case)
    model = build_model(case, reference, golden)
    out = keras.ops.convert_to_numpy(model(_channels_last(golden["x"]), training=False))
    conv = model.conventions
    picks = decode_outputs(out, conv.labels, REFERENCE_RATE, thresholds=conv.threshold,
                           min_peak_distance_s=conv.min_peak_distance_s, max_events=1)
    expected = sorted(k[len("picks/"):] for k in golden.files if k.startswith("picks/"))
    assert sorted(picks) == expected
    for key in expected:
        np.testing.assert_array_equal(picks[key], golden[f"picks/{key}"].astype(np.int64), key)


# --------------------------------------------------------------------------- inputs
def _trailing_constant_start(row):
    """Start of the run of identical samples that ends a ``(C, L)`` row (the zero padding)."""
    same = np.all(row == row[:, -1:], axis=0)
    start = row.shape[1]
    while start > 0 and same[start - 1]:
        start -= 1
    return start if row.shape[1] - start > 1 else row.shape[1]


def _standardised(samples):
    """``std`` normalisation of ``(C, n)`` samples over their own samples, in float64."""
    d = np.asarray(samples, dtype=np.float64)
    return (d - d.mean(axis=-1, keepdims=True)) / d.std(axis=-1, keepdims=True)


def test_window_normalised_over_its_data_padding_left_zero(reference):
    """The window is normalised over its record samples; the zero padding stays 0.

    A deliberate deviation from SeisT, which normalises the 8192-sample
    window after zero padding a shorter trace (golden row 0: 1500 data
    samples). The trace behind each golden row is its samples before the
    padding, offset so that the padding level is 0 (an affine image of the
    raw counts, which the normalisation cancels); the pipeline pads it and
    normalises. Full rows (no padding) are the golden ``x``; the padded row
    is its data samples standardised over themselves, then zeros.
    """
    golden = _golden(reference, CASES[0])
    x = golden["x"]
    pipeline = Pipeline(get_conventions("seist_s_dpk").replace(
        sampling_rate=DATA_RATE, in_samples=x.shape[2]))  # same rate: no resampling
    padded = []
    for row in x:
        n = _trailing_constant_start(row)
        trace = (row[:, :n] - row[:, -1:]) * 37.0
        inputs, frame = pipeline.record_inputs(trace.T[None, :, [2, 1, 0]], DATA_RATE,
                                               CHANNEL_ORDER)  # data order E, N, Z
        ours = inputs[0].T
        np.testing.assert_array_equal(frame.valid, [[0, n]])
        if n == x.shape[2]:
            np.testing.assert_allclose(ours, row, atol=1e-4 * max(1.0, np.abs(row).max()))
            continue
        padded.append(n)
        expected = _standardised(row[:, :n])  # the golden's data samples, over themselves
        np.testing.assert_allclose(ours[:, :n], expected,
                                   atol=1e-4 * max(1.0, np.abs(expected).max()))
        assert not ours[:, n:].any()  # padding exactly 0
        # SeisT's values (normalised over the padding too) are far from these
        assert np.abs(ours - row).max() > 5.0
    assert padded == [1500]  # row 0 of batch A; rows 1-3 fill the window


def test_ditingmotion_window_normalised_in_float32(reference):
    """DiTingMotion: Z cut around P, 'std' over the window's data samples, and its first difference.

    Rows whose window reaches past the record (batch A row 2: 61 leading
    zeros, row 3: 3 trailing zeros) are normalised over their data samples
    and the padding stays 0 (a deliberate deviation from SeisT, which
    normalises over the zeros too); full rows are the golden ``x``.
    """
    case = CASES[-1]
    golden = _golden(reference, case)
    x = golden["x"]  # (N, 2, 128): z, dz
    length = x.shape[2]
    pipeline = Pipeline(get_conventions("ditingmotion").replace(
        sampling_rate=DATA_RATE, in_samples=length))  # 100 Hz: data samples are model samples
    half = int(length * pipeline.p_position_ratio)
    p = golden["meta/ppk"].astype(np.int64)
    raw = 8192  # the reference's raw rows
    traces = np.zeros((x.shape[0], raw, 3), np.float32)
    inside = np.zeros((x.shape[0], length), bool)
    for i, (z, pick) in enumerate(zip(x[:, 0], p)):
        pos = np.arange(pick - half, pick - half + length)
        inside[i] = (pos >= 0) & (pos < raw)
        # positions outside the raw row are its zero padding: make them 0 again
        level = z[~inside[i]][0] if (~inside[i]).any() else 0.0
        traces[i, pos[inside[i]], 2] = (z[inside[i]] - level) * 37.0
    ours, frame = pipeline.record_inputs(traces, DATA_RATE, CHANNEL_ORDER, picks=p)
    assert ours.shape == (x.shape[0], length, 2)
    np.testing.assert_array_equal(frame.start, p - half)
    np.testing.assert_array_equal(frame.valid, [[0, 128], [0, 128], [61, 128], [0, 125]])
    full = inside.all(axis=1)
    np.testing.assert_array_equal(full, [True, True, False, False])
    np.testing.assert_allclose(ours[full], x[full].transpose(0, 2, 1), atol=1e-5)
    for i in np.flatnonzero(~full):
        z = np.zeros(length)
        z[inside[i]] = _standardised(x[i, 0, inside[i]])
        dz = np.zeros(length)
        dz[1:] = np.diff(z)
        np.testing.assert_allclose(ours[i], np.stack([z, dz], axis=1), atol=1e-5)
        assert not ours[i, ~inside[i], 0].any()  # padding exactly 0
        assert np.abs(ours[i] - x[i].T).max() > 0.5  # SeisT's values differ
