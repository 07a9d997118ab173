"""P-picking metrics (U-Trans rule: threshold 0.1, highest peak, 0.5 s and 0.1 s) and residual histogram from tester4's CSV (task 4, p_pick).

    python 03_read/reader4.py              # writes metrics.json, metrics.md and PNGs
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "p_pick")
