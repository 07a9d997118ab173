"""U-Trans foundation weights: masked reconstruction, the foundation notebook, inference benchmark."""

import re
import runpy
import shutil

import keras
import numpy as np
import pytest

from conftest import REPO_ROOT
from utrans import synthetic
from utrans.data import DataGenerator
from utrans.labels import ReconstructionLabeller
from utrans.models import UTransBackbone

FOUNDATION = "utrans/UTrans_Foundation.h5"


@pytest.fixture
def published_home(reference, utrans_home):
    """``UTRANS_HOME`` holding a copy of the published foundation weights."""
    shutil.copy(reference(FOUNDATION), utrans_home / "UTrans_Foundation.h5")
    return utrans_home


def reconstruction_mae(model, generator, batches):
    """Mean over ``batches`` batches of the MAE between reconstruction and clean trace."""
    mae = keras.losses.MeanAbsoluteError()
    values = []
    for i in range(batches):
        x, y = generator[i]
        values.append(float(mae(y, model(x, training=False)["reconstruction"])))
    return float(np.mean(values))


def test_published_weights_reconstruct_masked_traces_better_than_random(published_home, tmp_path):
    files = synthetic.write_synthetic_dataset(tmp_path / "data", n_events=20, n_noise=4, seed=11,
                                              layouts=("datacollected",))
    ids = [str(i) for key in ("train_all", "valid_all", "test_all")
           for i in np.load(files[key], allow_pickle=True)]
    published = UTransBackbone.from_preset("utrans_foundation")
    assert published.conventions.normalization == "std"
    generator = DataGenerator(ids, files["datacollected"], pipeline=published,
                              labeller="reconstruction", batch_size=8, shuffle=False, seed=0)
    assert isinstance(generator.labeller, ReconstructionLabeller)
    x, y = generator[0]
    assert x.shape == y.shape == (8, 6000, 3)
    masked = np.all(x == 0, axis=-1) & np.any(y != 0, axis=-1)
    assert masked.sum(axis=1).min() >= 1  # every input has time-masked samples
    identity = float(np.mean(np.abs(x - y)))
    assert identity > 0.01  # the input is corrupted, the target is not

    keras.utils.set_random_seed(0)
    random_init = UTransBackbone()
    loss_published = reconstruction_mae(published, generator, batches=3)
    loss_random = reconstruction_mae(random_init, generator, batches=3)
    loss_identity = reconstruction_mae(lambda x, training: {"reconstruction": x}, generator, 3)
    print(f"\nreconstruction MAE on masked synthetic traces (3 batches of 8): "
          f"published weights {loss_published:.4f}, random initialisation {loss_random:.4f} "
          f"(the masked input itself: {loss_identity:.4f})")
    assert loss_published < loss_random
    # Measured 0.18 vs 0.61: the pretrained autoencoder is far better, not marginally.
    assert loss_published < 0.5 * loss_random


def test_foundation_notebook_runs(published_home, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("obspy")
    nb = nbformat.read(REPO_ROOT / "notebooks" / "foundation.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))

    def correlations(label):
        match = re.search(label + r"[^:]*:\s*E=([-\d.]+) N=([-\d.]+) Z=([-\d.]+)", text)
        assert match, f"{label!r} not printed; notebook output:\n{text}"
        return np.array([float(v) for v in match.groups()])

    clean = correlations("clean window correlation")
    # The window is normalised by the pipeline over its 3000 record samples, the padding left
    # at 0 (measured 0.973 / 0.998 / 0.997). The golden reference, which normalised over the
    # padding too, reports 0.968 / 0.999 / 0.999 for this window.
    np.testing.assert_allclose(clean, [0.973, 0.998, 0.997], atol=2e-3)
    assert clean.min() > 0.9
    recon = correlations("masked window correlation")
    assert recon.min() > 0.8
    assert "latent (75, 80)" in text
    match = re.search(r"recording tokens ([-\d.]+), padding tokens ([-\d.]+)", text)
    recording, padding = map(float, match.groups())
    assert recording > 0.2 and padding < 0.05  # tokens see the waveform, padding tokens agree
    rms_corr = float(re.search(r"with waveform RMS per token: ([-\d.]+)", text).group(1))
    assert rms_corr > 0.5  # the latent tokens are aligned in time with the waveform
    assert "the time mask zeroed" in text
    for name in ("reconstruction.png", "reconstruction_zoom.png", "latent_tokens.png",
                 "latent_similarity.png"):
        assert (tmp_path / "foundation_figures" / name).stat().st_size > 5000, name
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {}))
    assert images >= 4


def test_inference_benchmark_table(capsys):
    module = runpy.run_path(str(REPO_ROOT / "benchmarks" / "inference_throughput.py"))
    results = module["main"](["--models", "ditingmotion,utrans_foundation", "--reference",
                              "utrans_foundation", "--batch_size", "2", "--repeats", "1",
                              "--warmup", "1"])
    out = capsys.readouterr().out
    assert [r["name"] for r in results] == ["ditingmotion", "utrans_foundation"]
    params = {r["name"]: r["params"] for r in results}
    assert params == {"ditingmotion": 43948, "utrans_foundation": 662098}
    rows = [line for line in out.splitlines() if line.startswith("| ditingmotion")
            or line.startswith("| utrans_foundation")]
    assert len(rows) == 2
    assert rows[1].endswith("| 1.00 |") and "| (6000, 3) |" in rows[1]
    assert "| (128, 2) |" in rows[0]
    ratio = float(rows[0].rsplit("|", 2)[-2])
    expected = results[1]["median_s"] / results[0]["median_s"]  # one round: t_ref / t_model
    assert ratio == pytest.approx(expected, abs=0.006)
    assert results[0]["ratio"] == pytest.approx(expected) and results[1]["ratio"] == 1.0
    assert results[0]["traces_per_s"] == pytest.approx(2 / results[0]["median_s"])
    with pytest.raises(SystemExit, match="Unknown model"):
        module["main"](["--models", "not_a_model"])
