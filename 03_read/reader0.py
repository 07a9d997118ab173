"""Reconstruction metrics and figures (input / masked / reconstruction) from tester0's CSV (task 0).

    python 03_read/reader0.py
"""

from utrans.cli import script

if __name__ == "__main__":
    script("read", "reconstruction")
