"""Magnitude metrics (MAE/std/RMSE/R2) and figures from tester8's CSV (task 8, emg).

    python 03_read/reader8.py              # writes metrics.json, metrics.md and PNGs
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "emg")
