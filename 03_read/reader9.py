"""Back-azimuth metrics (errors wrapped to +-180 degrees) and figures from tester9's CSV (task 9, baz).

    python 03_read/reader9.py              # writes metrics.json, metrics.md and PNGs
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "baz")
