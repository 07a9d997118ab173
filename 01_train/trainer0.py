"""Pretrain the U-Trans foundation model: masked-waveform reconstruction (task 0).

Each clean trace is masked at random in the frequency domain (up to 300 of
its lowest 3000 frequency bins zeroed) and in the time domain (up to 600
samples zeroed); the backbone learns to reconstruct the clean trace (MAE on
its ``reconstruction`` output). The best model, ``models/best.keras``, is a
``UTransBackbone``: pass it to scripts 1-5 as ``--foundation_weights``.

    python 01_train/trainer0.py            # demo: synthetic data, random initialisation, CPU, minutes
    python 01_train/trainer0.py --foundation_weights preset    # continue from the published weights
    python 01_train/trainer0.py --help     # all options
"""

from utrans.cli import script

if __name__ == "__main__":
    script("train", "reconstruction")
