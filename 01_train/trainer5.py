"""Train the U-Trans + EQCCT S-wave picker (task 5, s_pick).

    python 01_train/trainer5.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer5.py --help     # all options
"""

from utrans.train import trainer_main

if __name__ == "__main__":
    trainer_main("s_pick")
