"""The bottom layer: what a model is (conventions, registry, presets), errors, files and options.

* :mod:`~utrans.core.conventions`: a model's conventions (sampling rate, components,
  window, normalisation, outputs, thresholds, pick rule);
* :mod:`~utrans.core.registry`: registered model names, their quantity and conventions;
* :mod:`~utrans.core.presets`: published weights, cached and checked;
* :mod:`~utrans.core.errors`: every error bad input causes;
* :mod:`~utrans.core.io`: atomic writes and output folders checked before work;
* :mod:`~utrans.core.options`: every command-line option, defined once;
* :mod:`~utrans.core.tasks`: the quantities and the numbered scripts' tasks.

Nothing here imports a deep-learning framework or any other layer of the package.
"""
