"""utrans: seismic deep learning in Keras 3.

U-Trans foundation model and its downstream models, the Seismogram
Transformer (SeisT) and published baselines, behind one data path
(format reader -> augmentations -> labeller -> ``keras.utils.PyDataset``).
"""

__version__ = "0.2.0"
