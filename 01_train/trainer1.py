"""Train the U-Trans + ConvMixer location model (task 1).

    python 01_train/trainer1.py            # demo: synthetic California data, CPU, minutes
    python 01_train/trainer1.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "location")
