"""Characterisation of many picks: one traced forward pass per model, windows cut once per batch.

Calling :func:`utrans.annotate.characterize` again and again (one event at a
time, as one characterises a catalogue) with any number of picks must not
rebuild a model's graph: TensorFlow's "retracing" is what made it slow.
"""

import logging
import shutil

import numpy as np
import obspy
import pandas as pd
import pytest

from utrans.annotate import Characterizer, characterize
from utrans.runtime.keras import trace_count

MODELS = ["seist_s_pmp_diting", "seist_s_emg_diting"]


@pytest.fixture
def seist_home(reference, utrans_home):
    for name in MODELS:
        shutil.copy(reference(f"seist/{name}.pth"), utrans_home / f"{name}.pth")
    return utrans_home


def p_picks(n, t0):
    return pd.DataFrame({"trace_id": "BW.RJOB.", "phase": "P", "instrument": "EH",
                         "peak_time": [str(t0 + 4.7 + 0.13 * k) for k in range(n)]})


def test_repeated_calls_with_any_number_of_picks_trace_each_model_once(seist_home, caplog):
    st = obspy.read()
    t0 = st[0].stats.starttime
    before = trace_count()
    tables = []
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for n in (1, 3, 2, 6, 5, 4, 7):
            tables.append(characterize(st, p_picks(n, t0), MODELS, batch_size=4,
                                       min_span_s=(0, 0)))
    assert trace_count() - before == len(MODELS)  # was one per model and call: 14
    assert "retracing" not in caplog.text
    # The same pick gives the same estimates whatever else is in its batch.
    first = [t.iloc[0] for t in tables]
    for row in first[1:]:
        assert row["polarity__seist_s_pmp_diting"] == first[0]["polarity__seist_s_pmp_diting"]
        assert row["magnitude__seist_s_emg_diting"] == pytest.approx(
            first[0]["magnitude__seist_s_emg_diting"], abs=1e-5)
    assert len(tables[-1]) == 7 and tables[-1]["magnitude__seist_s_emg_diting"].nunique() == 7
