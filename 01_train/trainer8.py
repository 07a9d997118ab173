"""Train a magnitude model (SeisT emg by default; --model magnet) (task 8, emg).

    python 01_train/trainer8.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer8.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "emg")
