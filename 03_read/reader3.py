"""Polarity metrics (accuracy, precision/recall/F1) and confusion matrix from tester3's CSV (task 3, polarity).

    python 03_read/reader3.py              # writes metrics.json, metrics.md and PNGs
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "polarity")
