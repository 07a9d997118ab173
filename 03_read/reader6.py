"""Detection and P/S picking metrics (SeisT rule: 0.3/0.5 thresholds, one-to-one matching, 0.1 s and 0.5 s) and figures from tester6's CSV (task 6, dpk).

    python 03_read/reader6.py              # writes metrics.json, metrics.md and PNGs
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "dpk")
