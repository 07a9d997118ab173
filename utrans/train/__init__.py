"""Training: :func:`fit` and what it is made of.

* :mod:`~utrans.train.engine`: :func:`fit`, :class:`FitResult`, :class:`DataFiles`;
* :mod:`~utrans.train.callbacks`: backup, history and best-model callbacks;
* :mod:`~utrans.train.distribute`: strategies and sharded input across workers;
* :mod:`~utrans.train.centering`: output biases centred on the training targets;
* :mod:`~utrans.train.recipes`: the published training recipes of the U-Trans models.

``01_train/trainerN.py`` is the command line over :func:`fit` (:mod:`utrans.cli.scripts`).
"""

from utrans.train.engine import (
    DATA_OPTIONS,
    TRAIN_OPTIONS,
    DataFiles,
    FitResult,
    fit,
    make_strategy,
    setup_runtime,
    write_demo_data,
)

__all__ = ["DATA_OPTIONS", "TRAIN_OPTIONS", "DataFiles", "FitResult", "fit", "make_strategy",
           "setup_runtime", "write_demo_data"]
