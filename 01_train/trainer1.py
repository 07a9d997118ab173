"""Train the U-Trans + ConvMixer location model (task 1).

    python 01_train/trainer1.py            # demo: synthetic California data, CPU, minutes
    python 01_train/trainer1.py --help     # all options
"""

from utrans.train import trainer_main

if __name__ == "__main__":
    trainer_main("location")
