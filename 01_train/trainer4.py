"""Train the U-Trans + EQCCT P-wave picker (task 4, p_pick).

    python 01_train/trainer4.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer4.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "p_pick")
