"""Polarity metrics (accuracy, precision/recall/F1) and confusion matrix from tester7's CSV (task 7, pmp).

    python 03_read/reader7.py              # writes metrics.json, metrics.md and PNGs
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "pmp")
