"""The catalogue figure of a network run shows P and S picks that lie seconds apart."""

import numpy as np
import obspy
import pandas as pd
from matplotlib.image import imread

from utrans.annotate.catalogue import plot_catalogue

BLUE = np.array([0.122, 0.467, 0.706])   # tab:blue, the P markers
RED = np.array([0.839, 0.153, 0.157])    # tab:red, the S markers


def _picks(phases):
    """Three events over two days on two stations; S 5 s after P (one pixel apart at most)."""
    start = obspy.UTCDateTime("2024-01-01")
    rows = []
    for hours in (3.0, 20.0, 41.0):
        for station in ("XX.A01.", "XX.B02."):
            for phase, delay in (("P", 0.0), ("S", 5.0)):
                if phase in phases:
                    rows.append(dict(trace_id=station, phase=phase, peak_value=0.9,
                                     peak_time=str(start + hours * 3600 + delay)))
    return pd.DataFrame(rows)


def _pixels(path, colour):
    image = imread(path)[..., :3]
    return int((np.abs(image - colour).max(axis=-1) < 0.06).sum())


def test_p_markers_stay_visible_beside_their_s_markers(tmp_path):
    alone = _pixels(plot_catalogue(_picks("P"), tmp_path / "p.png"), BLUE)
    both = plot_catalogue(_picks("PS"), tmp_path / "ps.png")
    # Every P marker is drawn as fully with its S beside it as without it.
    assert _pixels(both, BLUE) >= 0.9 * alone
    assert _pixels(both, RED) >= 0.9 * _pixels(plot_catalogue(_picks("S"), tmp_path / "s.png"), RED)
    assert alone > 200
