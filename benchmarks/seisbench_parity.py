"""SeisBench weight files: how close utrans comes to SeisBench's own outputs.

For each weight file of ``$UTRANS_REFERENCE/seisbench`` (PhaseNet and
EQTransformer with random weights, PhaseNetLight trained on ETHZ; see the
folder's MANIFEST), loaded without torch by :func:`utrans.loading.load_model`:

* forward: the largest absolute difference between the Keras model and
  SeisBench's forward pass on SeisBench's fixed input batch;
* annotate: the largest absolute difference between
  :meth:`utrans.annotate.Annotator.annotate` with ``window_grid="record"``
  (SeisBench's window placement) and SeisBench's ``annotate`` curves of a
  120 s record, over every label and sample;
* classify: SeisBench's ``classify`` picks of that record found by
  :meth:`utrans.annotate.Annotator.classify` (same phase, peak within one
  sample), extra picks, and the largest peak-time and peak-value
  differences.

Usage::

    python benchmarks/seisbench_parity.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import obspy  # noqa: E402

from throughput_common import reference_root  # noqa: E402
from utrans.annotate import Annotator  # noqa: E402
from utrans.loading import load_model  # noqa: E402

# reference name -> weight file
FILES = {"phasenet": "phasenet.json.v1", "eqtransformer": "eqtransformer.json.v1",
         "phasenetlight_ethz": "phasenetlight_ethz.json.v2"}


def record(golden):
    """SeisBench's 120 s record of the golden file as an ObsPy stream."""
    start = obspy.UTCDateTime(float(golden["rec_t0"]))
    return obspy.Stream([obspy.Trace(golden["rec"][k].astype(np.float64), header=dict(
        network="BW", station="RJOB", channel=f"EH{c}", sampling_rate=float(golden["ann_fs"]),
        starttime=start)) for k, c in enumerate("ZNE")])


def forward_error(model, golden):
    """Largest |Keras - SeisBench| of the forward pass on SeisBench's input batch."""
    out = keras.ops.convert_to_numpy(model(golden["x"].transpose(0, 2, 1), training=False))
    if "y" in golden.files:
        return float(np.abs(out - golden["y"].transpose(0, 2, 1)).max())
    return max(float(np.abs(out[..., i] - golden[f"y_{i}"]).max()) for i in range(3))


def main():
    root = reference_root() / "seisbench"
    print("| weights | class | forward max abs diff | annotate max abs diff | picks found | "
          "extra picks | max peak time diff (s) | max peak value diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, file in FILES.items():
        golden = np.load(root / f"{name}_golden.npz")
        expected = json.loads((root / f"{name}_picks.json").read_text())["classify_picks"]
        model = load_model(str(root / file))
        ann = Annotator(model, window_grid="record", batch_size=8)
        stream = record(golden)
        curves = ann.annotate(stream)
        annotate_error = 0.0
        for tr in curves:
            label = tr.stats.channel.rsplit("_", 1)[1]
            ref = golden[f"ann_{'Detection' if label == 'det' else label}"]
            annotate_error = max(annotate_error, float(np.abs(tr.data - ref).max()))
        picks = ann.classify(stream).picks
        rate = float(golden["ann_fs"])
        found, dt, dv = 0, 0.0, 0.0
        for r in expected:
            same = picks[picks.phase == r["phase"]]
            if not len(same):
                continue
            gaps = [abs(obspy.UTCDateTime(t) - obspy.UTCDateTime(r["peak_time"]))
                    for t in same.peak_time]
            best = int(np.argmin(gaps))
            if gaps[best] <= 1 / rate:
                found += 1
                dt = max(dt, gaps[best])
                dv = max(dv, abs(float(same.peak_value.iloc[best]) - r["peak_value"]))
        print(f"| {file} | {model.seisbench_metadata['class']} | {forward_error(model, golden):.1e} "
              f"| {annotate_error:.1e} | {found}/{len(expected)} | {len(picks) - found} | "
              f"{dt:.3f} | {dv:.1e} |", flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
