"""First-motion polarity: CSV rows (up probability) and classification metrics.

Baseline: predicting the majority class of the training split for every trace.
"""

import numpy as np
import pandas as pd

from utrans.evaluate.common import training_metadata
from utrans import plots
from utrans.metrics import classification_metrics

#: Shape of one prediction in the task layout: the probability of an upward first motion.
LAYOUT = (1,)


def headline(task):
    """``(metric, baseline metric, "lower" or "higher" is better)`` of the kind."""
    return "accuracy", "baseline_accuracy", "higher"


def rows(ids, metas, y, pred, pred_std, extras, ctx):
    """True and predicted polarities (U/D) of a batch as a DataFrame."""
    prob = np.asarray(pred, dtype=np.float64)[:, 0]
    true = np.where(np.asarray(y)[:, 0] >= 0.5, "U", "D")
    frame = pd.DataFrame({"trace_name": ids, "true_polarity": true,
                          "pred_polarity": np.where(prob >= 0.5, "U", "D"), "prob_up": prob})
    if pred_std is not None:
        frame["prob_up_std"] = np.asarray(pred_std, dtype=np.float64)[:, 0]
    return frame


def read(frame, results, config, task):
    """Polarity accuracy, precision/recall/F1 (positive class U) and the confusion matrix."""
    true = frame["true_polarity"].astype(str).to_numpy()
    m = classification_metrics(true, frame["pred_polarity"].astype(str).to_numpy(),
                               labels=["D", "U"], pos_label="U")
    metrics = dict(n_traces=int(len(frame)), accuracy=m["accuracy"], precision=m["precision"],
                   recall=m["recall"], f1=m["f1"], precision_macro=m["precision_macro"],
                   recall_macro=m["recall_macro"], f1_macro=m["f1_macro"],
                   f1_U=m["f1_U"], f1_D=m["f1_D"], labels=m["labels"],
                   confusion_matrix=m["confusion_matrix"])
    train = [meta.get("trace_p_polarity") for meta in training_metadata(config)]
    up, down = train.count("positive"), train.count("negative")
    if up + down:
        majority = "U" if up >= down else "D"
        metrics["baseline_majority_class"] = majority
        metrics["baseline_accuracy"] = float(np.mean(true == majority)) if len(true) else \
            float("nan")
    else:
        metrics["baseline_accuracy"] = float("nan")
    plots.plot_confusion_matrix(m["confusion_matrix"], ["D (down)", "U (up)"],
                                results / "confusion_matrix.png", title=f"{task.name} polarity")
    return metrics


def score(frame, task):
    """The headline metric (accuracy) recomputed from a predictions frame."""
    if not len(frame):
        return float("nan")
    return float(np.mean(frame["true_polarity"].astype(str) == frame["pred_polarity"].astype(str)))
