"""Magnitude metrics (MAE/std/RMSE/R2) and figures from tester2's CSV (task 2, magnitude).

    python 03_read/reader2.py              # writes metrics.json, metrics.md and PNGs
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "magnitude")
