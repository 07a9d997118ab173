"""Evaluation: the tester (predictions per trace) and one reader per evaluation kind.

* :func:`test` runs a model over test traces and returns (and writes) the
  predictions, one CSV row per trace (:mod:`utrans.evaluate.tester`);
* :func:`read` turns the CSV into metrics and figures
  (:mod:`utrans.evaluate.reader`), with the code of the task's evaluation
  kind: :mod:`~utrans.evaluate.location`, :mod:`~utrans.evaluate.regression`,
  :mod:`~utrans.evaluate.backazimuth`, :mod:`~utrans.evaluate.classification`,
  :mod:`~utrans.evaluate.picking`, :mod:`~utrans.evaluate.reconstruction`;
* :mod:`~utrans.metrics`: the metric functions (framework-free).

Every model of a quantity is scored by the same kind module, so their
numbers mean the same thing. ``02_test/testerN.py`` and ``03_read/readerN.py``
are thin command lines over these functions (:mod:`utrans.cli.scripts`).
"""

from utrans.evaluate.common import read_training_config
from utrans.evaluate.reader import read
from utrans.evaluate.tester import TEST_OPTIONS, test

__all__ = ["TEST_OPTIONS", "read", "read_training_config", "test"]
