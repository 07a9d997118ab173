"""Train the U-Trans + EQCCT S-wave picker (task 5, s_pick).

    python 01_train/trainer5.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer5.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "s_pick")
