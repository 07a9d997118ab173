"""Train the U-Trans + ViT magnitude model (task 2, magnitude).

    python 01_train/trainer2.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer2.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "magnitude")
