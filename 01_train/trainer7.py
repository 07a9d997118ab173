"""Train a first-motion polarity model (SeisT pmp by default; --model ditingmotion) (task 7, pmp).

    python 01_train/trainer7.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer7.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "pmp")
