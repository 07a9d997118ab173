"""Reconstruct the masked test traces (task 0): one CSV row per trace (MAE, per-channel correlation).

    python 02_test/tester0.py              # uses trainer0's demo output by default
    python 02_test/tester0.py --checkpoint utrans_foundation --input_hdf5 X.hdf5 --input_testset T.npy
"""

from utrans.cli import script

if __name__ == "__main__":
    script("test", "reconstruction")
