"""Train a detection + P/S picking model (SeisT dpk by default; --model phasenet, eqtransformer) (task 6, dpk).

    python 01_train/trainer6.py            # demo: synthetic data, small model, CPU, minutes
    python 01_train/trainer6.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "dpk")
