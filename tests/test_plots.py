"""Plots: every function writes a real PNG and rejects mismatched shapes."""

import numpy as np
import pytest

from utrans import plots as P

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, min_bytes=5000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes
    # width and height from the IHDR chunk
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert w > 200 and h > 200


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_loss_curves_from_csv_and_dict(tmp_path):
    csv = tmp_path / "log.csv"
    csv.write_text("epoch,loss,val_loss,learning_rate\n0,1.0,1.2,0.001\n1,0.5,0.7,0.001\n2,0.3,0.6,0.0005\n")
    out = P.plot_loss_curves(csv, tmp_path / "a" / "loss.png")
    assert out == tmp_path / "a" / "loss.png"
    _assert_png(out)
    _assert_png(P.plot_loss_curves({"loss": [3.0, 2.0, 1.0]}, tmp_path / "loss2.png", log_y=True))
    with pytest.raises(KeyError, match="mae"):
        P.plot_loss_curves(csv, tmp_path / "x.png", keys=["mae"])
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        P.plot_loss_curves(tmp_path / "missing.csv", tmp_path / "x.png")


def test_loss_curve_epochs_count_from_one():
    """Keras's CSVLogger numbers epochs from 0, the trainers' history.csv from 1."""
    np.testing.assert_array_equal(P._epochs({"epoch": np.array([0.0, 1.0, 2.0])}, 3), [1, 2, 3])
    np.testing.assert_array_equal(P._epochs({"epoch": np.array([1.0, 2.0, 3.0])}, 3), [1, 2, 3])
    np.testing.assert_array_equal(P._epochs({}, 2), [1, 2])


def test_pred_vs_true(tmp_path, rng):
    t = rng.normal(3.0, 1.0, 100)
    _assert_png(P.plot_pred_vs_true(t, t + rng.normal(0, 0.2, 100), tmp_path / "pvt.png", label="magnitude"))
    with pytest.raises(ValueError, match=r"y_true.shape=\(100,\), y_pred.shape=\(99,\)"):
        P.plot_pred_vs_true(t, t[:99], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_confusion_matrix_plot(tmp_path):
    _assert_png(P.plot_confusion_matrix(np.array([[10, 2], [3, 20]]), ["Down", "Up"], tmp_path / "cm.png"))
    with pytest.raises(ValueError, match="len\\(labels\\)=3"):
        P.plot_confusion_matrix(np.array([[10, 2], [3, 20]]), ["a", "b", "c"], tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"cm.shape=\(2, 3\)"):
        P.plot_confusion_matrix(np.zeros((2, 3)), ["a", "b"], tmp_path / "bad.png")


def test_residual_histogram(tmp_path, rng):
    r = np.concatenate([rng.normal(0, 0.05, 300), [np.nan]])
    _assert_png(P.plot_residual_histogram(r, tmp_path / "res.png", xlim=(-0.5, 0.5)))
    with pytest.raises(ValueError, match=r"residuals_s.shape=\(3, 3\)"):
        P.plot_residual_histogram(np.zeros((3, 3)), tmp_path / "bad.png")


def test_location_map(tmp_path, rng):
    sta = np.array([36.0, -120.0])
    ev = sta + rng.normal(0, 0.3, (20, 2))
    _assert_png(P.plot_location_map(sta, ev, ev + rng.normal(0, 0.05, (20, 2)), tmp_path / "map.png"))
    with pytest.raises(ValueError, match=r"\(20, 2\) and \(19, 2\)"):
        P.plot_location_map(sta, ev, ev[:19], tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"true_event.shape=\(20, 3\)"):
        P.plot_location_map(sta, np.zeros((20, 3)), ev, tmp_path / "bad.png")


def test_waveform_with_probs(tmp_path, rng):
    w = rng.normal(size=(1000, 3))
    p = np.exp(-0.5 * ((np.arange(1000) - 300) / 20.0) ** 2)
    out = P.plot_waveform_with_probs(w, {"P": p, "S": np.roll(p, 400)}, tmp_path / "wf.png",
                                     picks={"P true": 300, "P pred": [304]}, sampling_rate=100)
    _assert_png(out)
    with pytest.raises(ValueError, match=r"waveform.shape=\(3, 1000\)"):
        P.plot_waveform_with_probs(w.T, {"P": p}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"'P'.*\(1000,\).*\(999,\)"):
        P.plot_waveform_with_probs(w, {"P": p[:999]}, tmp_path / "bad.png")


def test_reconstruction(tmp_path, rng):
    w = rng.normal(size=(600, 3))
    masked = w * (np.arange(600)[:, None] % 200 > 50)
    _assert_png(P.plot_reconstruction(w, masked, 0.9 * w, tmp_path / "rec.png", sampling_rate=100))
    with pytest.raises(ValueError, match=r"'recon': \(599, 3\)"):
        P.plot_reconstruction(w, masked, w[:599], tmp_path / "bad.png")


def test_plots_do_not_touch_pyplot_state(tmp_path):
    import sys

    P.plot_residual_histogram(np.arange(10.0), tmp_path / "r.png")
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


def test_backazimuth_figure_title_shows_the_wrapped_mae_of_metrics_json(tmp_path, monkeypatch):
    """359 vs 1 degree is a 2-degree error: the figure's MAE is metrics.json's, not 358."""
    import matplotlib.axes

    from utrans.metrics import backazimuth_metrics

    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, text, *a, **k: (titles.append(text), real(self, text, *a, **k))[1])
    true, pred = np.array([359.0, 10.0, 180.0]), np.array([1.0, 14.0, 180.0])
    m = backazimuth_metrics(true, pred)
    _assert_png(P.plot_pred_vs_true(true, pred, tmp_path / "baz.png", label="back-azimuth",
                                    unit="deg", metrics=m))
    assert m["mae"] == pytest.approx(2.0) and "MAE=2 " in titles[-1], titles
