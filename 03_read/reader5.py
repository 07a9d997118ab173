"""S-picking metrics (U-Trans rule: threshold 0.1, highest peak, 0.5 s and 0.1 s) and residual histogram from tester5's CSV (task 5, s_pick).

    python 03_read/reader5.py              # writes metrics.json, metrics.md and PNGs
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "s_pick")
