"""Train a back-azimuth model (SeisT baz by default; --model baz_network) (task 9, baz).

    python 01_train/trainer9.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer9.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "baz")
