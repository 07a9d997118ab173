"""Distance metrics (MAE/std/RMSE/R2) and figures from tester10's CSV (task 10, dis).

    python 03_read/reader10.py              # writes metrics.json, metrics.md and PNGs
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "dis")
