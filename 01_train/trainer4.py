"""Train the U-Trans + EQCCT P-wave picker (task 4, p_pick).

    python 01_train/trainer4.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer4.py --help     # all options
"""

from utrans.train import trainer_main

if __name__ == "__main__":
    trainer_main("p_pick")
