"""Why one resampler: scipy's polyphase filter against ObsPy's two ways, measured in one run.

For the rate changes the package meets (100 -> 50 Hz for the DiTing models,
100 -> 40 Hz, 20 -> 100 Hz for SeisBench's 20 Hz datasets, 100 -> 75 Hz)
this prints, per method:

* passband error: the largest amplitude error of sines at 10-80 % of the
  lower Nyquist frequency (what a picker sees);
* alias leakage: the amplitude left of a sine 25 % above the new Nyquist
  frequency (it should vanish, not fold back into the band);
* cut error: a record cut in two pieces, resampled piece by piece and
  joined, against the whole record resampled at once: the largest error
  farther than 2 s from the cut, relative to the record's largest value (the
  filter's edge transients stay near the cut; FFT resampling wraps each
  piece around, so its error reaches everywhere);
* the time to resample one day of three-component data.

Methods: ``utrans`` (:func:`utrans.processing.resample.resample`,
``scipy.signal.resample_poly``); ``obspy_fft`` (``Trace.resample``, ObsPy's
Fourier resampling with its default Hann window); ``obspy_decimate``
(zero-phase Butterworth low-pass then ``Trace.decimate``, integer factors only,
what annotate used before).

    python benchmarks/resampling.py
"""

import time

import numpy as np
import obspy

from utrans.processing.resample import resample


def _obspy_fft(x, fs, new):
    tr = obspy.Trace(x.astype(np.float64), header={"sampling_rate": fs})
    tr.resample(new)
    return tr.data


def _obspy_decimate(x, fs, new):
    factor = fs / new
    if abs(factor - round(factor)) > 1e-9 or factor < 1:
        return None
    tr = obspy.Trace(x.astype(np.float64), header={"sampling_rate": fs})
    tr.filter("lowpass", freq=0.5 * new, corners=4, zerophase=True)
    tr.decimate(int(round(factor)), no_filter=True)
    return tr.data


METHODS = {"utrans": lambda x, fs, new: resample(x, fs, new),
           "obspy_fft": _obspy_fft, "obspy_decimate": _obspy_decimate}


def _sine(f, fs, seconds=120.0):
    t = np.arange(int(seconds * fs)) / fs
    return np.sin(2 * np.pi * f * t), t


def passband_error(method, fs, new):
    nyq = 0.5 * min(fs, new)
    worst = 0.0
    for frac in (0.1, 0.3, 0.5, 0.7, 0.8):
        x, _ = _sine(frac * nyq, fs)
        y = method(x, fs, new)
        if y is None:
            return None
        ref, _ = _sine(frac * nyq, new)
        n = min(len(y), len(ref))
        middle = slice(n // 4, 3 * n // 4)  # away from the record ends
        worst = max(worst, float(np.abs(y[:n][middle] - ref[:n][middle]).max()))
    return worst


def alias_leakage(method, fs, new):
    if new >= fs:
        return float("nan")
    x, _ = _sine(1.25 * 0.5 * new, fs)
    y = method(x, fs, new)
    if y is None:
        return None
    n = len(y)
    return float(np.abs(y[n // 4:3 * n // 4]).max())


def cut_error(method, fs, new, seed=0):
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.standard_normal(int(120 * fs)))
    whole = method(x, fs, new)
    if whole is None:
        return None
    half = len(x) // 2
    parts = np.concatenate([method(x[:half], fs, new), method(x[half:], fs, new)])
    n = min(len(whole), len(parts))
    cut = int(round(half * new / fs))
    away = np.abs(np.arange(n) - cut) > 2 * new
    away[:int(2 * new)] = away[-int(2 * new):] = False  # the record's own ends
    return float(np.abs(whole[:n][away] - parts[:n][away]).max() / np.abs(whole).max())


def day_seconds(method, fs, new):
    x = np.random.default_rng(1).standard_normal((3, int(86400 * fs))).astype(np.float32)
    start = time.perf_counter()
    for channel in x:
        if method(channel, fs, new) is None:
            return None
    return time.perf_counter() - start


def _fmt(v, spec):
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def main():
    print("| change | method | passband error | alias leakage | cut error | one day (s) |")
    print("|---|---|---:|---:|---:|---:|")
    for fs, new in ((100.0, 50.0), (100.0, 40.0), (100.0, 75.0), (20.0, 100.0)):
        for name, method in METHODS.items():
            row = (passband_error(method, fs, new), alias_leakage(method, fs, new),
                   cut_error(method, fs, new), day_seconds(method, fs, new))
            if all(v is None for v in row):
                continue
            print(f"| {fs:g} -> {new:g} Hz | {name} | {_fmt(row[0], '.1e')} | "
                  f"{_fmt(row[1], '.1e')} | {_fmt(row[2], '.1e')} | {_fmt(row[3], '.2f')} |")


if __name__ == "__main__":
    main()
