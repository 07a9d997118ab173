"""Train an epicentral-distance model (SeisT dis by default; --model distpt_network) (task 10, dis).

    python 01_train/trainer10.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer10.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "dis")
