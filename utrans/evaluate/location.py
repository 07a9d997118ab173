"""Location: one CSV row per trace (event coordinates back from the target) and its metrics.

Baseline: predicting the mean training offset (station minus event) and the
mean training depth for every trace.
"""

import numpy as np
import pandas as pd

from utrans import plots
from utrans.evaluate.common import mean_or_nan, training_metadata
from utrans.metrics import location_metrics
from utrans.processing.geodesy import epicentral_distance_km

#: Shape of one prediction in the task layout.
LAYOUT = (3,)


def headline(task):
    """``(metric, baseline metric, "lower" or "higher" is better)`` of the kind."""
    return "epicentral_mae_km", "baseline_epicentral_mae_km", "lower"


def rows(ids, metas, y, pred, pred_std, extras, ctx):
    """Predicted and true event coordinates of a batch as a DataFrame."""
    labeller = ctx["labeller"]

    def column(key):
        return np.array([m[key] for m in metas], dtype=np.float64)

    st_lat, st_lon = column("station_latitude_deg"), column("station_longitude_deg")
    ev_lat, ev_lon = column("source_latitude_deg"), column("source_longitude_deg")
    depth = np.maximum(column("source_depth_km"), 0.0)
    p_lat, p_lon, p_depth = labeller.inverse(pred, st_lat, st_lon)
    frame = pd.DataFrame({
        "trace_name": ids,
        "station_lat": st_lat, "station_lon": st_lon,
        "true_lat": ev_lat, "true_lon": ev_lon, "true_depth_km": depth,
        "pred_lat": p_lat, "pred_lon": p_lon, "pred_depth_km": p_depth,
        "lat_error_deg": p_lat - ev_lat, "lon_error_deg": p_lon - ev_lon,
        "depth_error_km": p_depth - depth,
        "epicentral_error_km": epicentral_distance_km(ev_lat, ev_lon, p_lat, p_lon),
    })
    if pred_std is not None:
        frame["pred_lat_std"] = pred_std[:, 0]
        frame["pred_lon_std"] = pred_std[:, 1]
        frame["pred_depth_km_std"] = pred_std[:, 2] * (labeller.max_d - labeller.min_d)
    return frame


def baseline(config, frame):
    """Epicentral and depth MAE of predicting the training means for every trace (or ``{}``)."""
    metas = training_metadata(config)
    if not metas:
        return {}
    dlat = mean_or_nan([m["station_latitude_deg"] - m["source_latitude_deg"] for m in metas])
    dlon = mean_or_nan([m["station_longitude_deg"] - m["source_longitude_deg"] for m in metas])
    depth = mean_or_nan([max(m["source_depth_km"], 0.0) for m in metas])
    b_lat = frame["station_lat"].to_numpy() - dlat
    b_lon = frame["station_lon"].to_numpy() - dlon
    epi = epicentral_distance_km(frame["true_lat"], frame["true_lon"], b_lat, b_lon)
    return dict(epicentral_mae_km=mean_or_nan(epi),
                depth_mae_km=mean_or_nan(np.abs(depth - frame["true_depth_km"])))


def read(frame, results, config, task=None):
    """Location metrics and figures from a tester CSV; returns the metrics dict."""
    m = location_metrics(frame["true_lat"], frame["true_lon"], frame["pred_lat"],
                         frame["pred_lon"], frame["true_depth_km"], frame["pred_depth_km"])
    base = baseline(config, frame)
    metrics = dict(
        n_traces=int(m["n_traces"]),
        lat_mae_deg=m["lat_mae_deg"], lat_sigma_deg=m["lat_std_deg"],
        lon_mae_deg=m["lon_mae_deg"], lon_sigma_deg=m["lon_std_deg"],
        epicentral_mae_km=m["epicentral_mae_km"], epicentral_median_km=m["epicentral_median_km"],
        epicentral_rmse_km=m["epicentral_rmse_km"],
        depth_mae_km=m["depth_mae_km"], depth_rmse_km=m["depth_rmse_km"],
        baseline_epicentral_mae_km=base.get("epicentral_mae_km", float("nan")),
        baseline_depth_mae_km=base.get("depth_mae_km", float("nan")),
    )
    plots.plot_residual_histogram(frame["epicentral_error_km"], results / "epicentral_error_hist.png",
                                  label="epicentral error", unit="km")
    plots.plot_residual_histogram(frame["depth_error_km"], results / "depth_error_hist.png",
                                  label="depth error", unit="km")
    for col, unit in (("lat", "deg"), ("lon", "deg"), ("depth_km", "km")):
        plots.plot_pred_vs_true(frame[f"true_{col}"], frame[f"pred_{col}"],
                                results / f"pred_vs_true_{col.split('_')[0]}.png",
                                label=col.split("_")[0], unit=unit)
    plots.plot_location_map(frame[["station_lat", "station_lon"]].to_numpy(),
                            frame[["true_lat", "true_lon"]].to_numpy(),
                            frame[["pred_lat", "pred_lon"]].to_numpy(), results / "location_map.png")
    return metrics


def score(frame, task):
    """The headline metric (epicentral MAE, km) recomputed from a predictions frame."""
    return mean_or_nan(frame["epicentral_error_km"])
