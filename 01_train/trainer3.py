"""Train the U-Trans + CCT first-motion polarity model (task 3, polarity).

    python 01_train/trainer3.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer3.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "polarity")
