"""``utrans annotate FILES``: read the files, annotate them, write the outputs.

The run of :func:`utrans.cli.annotate.main` on files (an archive is
:mod:`utrans.cli.network`), imported once the arguments are parsed; what is
written is listed in :mod:`utrans.cli.annotate`.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import struct
import sys

import numpy as np
import obspy
import pandas as pd
from obspy.io.mseed import ObsPyMSEEDError
from obspy.io.mseed.util import get_record_information

from utrans.annotate import output
from utrans.annotate.characterization import Characterizer
from utrans.annotate.core import Annotator
from utrans.annotate.picks import ClassifyOutput
from utrans.annotate.plot import plot_station
from utrans.cli import InputError, overlap_option
from utrans.cli.annotate import output_folder, set_threads
from utrans.core.errors import UtransError

__all__ = ["expand_inputs", "load_characterizer", "read_inputs", "run"]


def expand_inputs(patterns):
    """The files named by arguments (globs expanded, order kept, duplicates dropped).

    Raises:
        InputError: a pattern matches nothing or a file is missing.
    """
    files = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise InputError(f"no file matches {pattern!r}")
        else:
            if not os.path.exists(pattern):
                raise InputError(f"file not found: {pattern}")
            if os.path.isdir(pattern):
                raise InputError(f"{pattern} is a folder; give files or a glob such as "
                                 f"'{pattern}/*.mseed'")
            matches = [pattern]
        files += [m for m in matches if m not in files]
    return files


def read_inputs(files):
    """One ObsPy Stream of every file.

    Raises:
        InputError: a file cannot be read (its name and ObsPy's reason).
    """
    stream = obspy.Stream()
    for name in files:
        try:
            stream += _read_file(name)
        except Exception as err:  # noqa: BLE001 - each ObsPy reader fails its own way
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(f"cannot read {name}: {reason}") from err
    return stream


#: Bytes of a miniSEED file read at a time: ObsPy's reader holds a whole file and its
#: samples twice while it reads (three times the record at its peak).
_PIECE_BYTES = 1 << 26


def _read_file(name):
    """One file as an ObsPy Stream; a large miniSEED file a piece of whole records at a time.

    The traces of consecutive pieces abut; annotate joins them without copying.
    """
    pieces = _mseed_pieces(name) if os.path.getsize(name) > _PIECE_BYTES else None
    if pieces is None:
        return obspy.read(name)
    stream = obspy.Stream()
    with open(name, "rb") as fh:
        for offset, size in pieces:
            fh.seek(offset)
            stream += obspy.read(io.BytesIO(fh.read(size)), format="MSEED")
    return stream


def _mseed_pieces(name):
    """``(offset, size)`` byte ranges of a miniSEED file that start on records, or ``None``.

    ``None`` (read the file whole) unless the file is miniSEED and every
    range starts on a record header, as in a file of one record length.
    """
    try:
        length = get_record_information(name).get("record_length")
    except (ValueError, OSError, struct.error, ObsPyMSEEDError):  # not miniSEED: read whole
        return None
    size = os.path.getsize(name)
    if not length:
        return None
    step = max(1, _PIECE_BYTES // length) * length
    offsets = list(range(0, size, step))
    with open(name, "rb") as fh:
        for offset in offsets[1:]:
            fh.seek(offset)
            if not _record_header(fh.read(8)):
                return None
    return [(offset, min(step, size - offset)) for offset in offsets]


def _record_header(head):
    """Whether 8 bytes look like a miniSEED record's start (sequence number, quality code)."""
    return (len(head) == 8 and all(c in b"0123456789 " for c in head[:6])
            and head[6:7] in (b"D", b"R", b"Q", b"M") and head[7:8] in (b" ", b"\x00"))


def run(args):
    """Run one command: read, annotate, write.

    Returns:
        0, or 1 when some instruments failed (each was named in a warning and
        skipped; the others were annotated and written).
    """
    if not args.inputs:
        raise InputError("give input files (or an archive with --sds)")
    files = expand_inputs(args.inputs)
    out_dir = output_folder(args.output)
    stream = read_inputs(files)
    print(f"Read {len(stream)} trace(s) from {len(files)} file(s)")
    if args.threads:
        set_threads(args.threads)
    thresholds = {k: getattr(args, f"{k}_threshold") for k in ("P", "S", "det")
                  if getattr(args, f"{k}_threshold") is not None}
    try:
        ann = Annotator(args.model, batch_size=args.batch_size, overlap=overlap_option(args.overlap),
                        blinding=args.blinding, stacking=args.stacking,
                        window_grid=args.window_grid,
                        missing_components=args.missing_components,
                        allow_random=args.random_weights)
        merged = ann.thresholds({k: v for k, v in thresholds.items() if k in ann.labels})
        ann.pipeline.min_distance(args.min_peak_distance_s)
    except (UtransError, KeyError, OSError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise InputError(f"model {args.model!r}: {message}") from err
    ignored = sorted(k for k in thresholds if k not in ann.labels)
    if ignored:
        print(f"warning: {args.model} has no output {', '.join(ignored)}; "
              f"--{ignored[0]}_threshold ignored", file=sys.stderr)
    print(f"Model {ann.name}: {ann.conventions.describe()}" + (
        f" (thresholds used: {', '.join(f'{k} {v:g}' for k, v in sorted(merged.items()))})"
        if thresholds else ""))
    characterizer = load_characterizer(args.characterize) if args.characterize else None
    try:
        groups, skipped = ann.groups(stream)
    except ValueError as err:
        raise InputError(str(err)) from err

    names = ann.channel_names(groups)
    by_id = {g.group_id: g for g in groups}
    pick_rows, det_rows = [], []
    mseed_path = out_dir / f"{ann.name}_probabilities.mseed"
    plots = []
    current, pending = None, []
    decoder = ann.decoder(merged, args.min_peak_distance_s)
    rate = ann.conventions.sampling_rate

    def finish_group():
        if current is None or args.no_plots:
            return
        group = by_id[current]
        key = (group.station, group.instrument)
        waveforms = obspy.Stream([tr for trs in group.traces.values() for tr in trs])
        probs = obspy.Stream(pending)
        mine = pd.DataFrame([r for r in pick_rows if (r["trace_id"], r["instrument"]) == key],
                            columns=["phase", "peak_time", "peak_value"])
        dets = None
        if "det" in merged:
            dets = pd.DataFrame([r for r in det_rows
                                 if (r["trace_id"], r["instrument"]) == key],
                                columns=["start_time", "end_time"])
        plots.append(plot_station(out_dir / "plots" / f"{current}.png", waveforms, probs, mine,
                                  dets, title=f"{current}  {ann.name}"))

    mseed = None  # opened at the first result: nothing to write leaves no empty file
    with contextlib.ExitStack() as files:
        # Long records come in parts (chunks): decoded, written and thinned for the
        # figure part by part, so memory stays that of a chunk.
        for part in ann.pieces(groups, progress=not args.no_progress, skipped=skipped):
            gid = part.segment.group_id
            if gid != current:
                finish_group()
                current, pending = gid, []
                thin = max(1, by_id[gid].duration_samples(rate) // _PLOT_SAMPLES)
            p, d = decoder.add(part)
            pick_rows += p
            det_rows += d
            if args.mseed:
                if mseed is None:
                    mseed = files.enter_context(open(mseed_path, "wb"))
                obspy.Stream(output.mseed_traces(part, ann.labels)).write(
                    mseed, format="MSEED", encoding="FLOAT32")
            if not args.no_plots:
                pending += [_thinned(tr, thin) for tr in ann.traces(part, names[current])]
        finish_group()
    found = ClassifyOutput.from_rows(ann.name, pick_rows, det_rows if "det" in merged else None,
                                     skipped)
    if characterizer is not None:
        found.picks = characterizer.characterize(stream, found.picks)
    output.write_csv(found.picks, out_dir / "picks.csv")
    counts = found.picks.phase.value_counts().to_dict() if len(found.picks) else {}
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no picks"
    print(f"Wrote {out_dir / 'picks.csv'} ({summary} on {len(groups)} instrument(s))")
    if found.detections is not None:
        output.write_csv(found.detections, out_dir / "detections.csv")
        print(f"Wrote {out_dir / 'detections.csv'} ({len(found.detections)} detections)")
    if args.quakeml:
        output.write_quakeml(found.picks, out_dir / "picks.xml", ann.name)
        print(f"Wrote {out_dir / 'picks.xml'}")
    if mseed is not None:
        print(f"Wrote {mseed_path}")
    elif args.mseed:
        print(f"No probabilities to write: no record was annotated, {mseed_path} not written")
    if plots:
        print(f"Wrote {len(plots)} figure(s) in {out_dir / 'plots'}")
    if skipped:
        print(f"{len(skipped)} instrument(s) failed: {', '.join(g for g, _ in skipped)} "
              "(reasons above); the others were annotated.")
        return 1
    return 0


#: Samples per probability trace kept for an instrument's figure (it draws fewer).
_PLOT_SAMPLES = 20_000


def _thinned(trace, factor):
    """A probability trace reduced to the maximum of every ``factor`` samples (for a figure)."""
    if factor <= 1 or trace.stats.npts == 0:
        return trace
    header = {k: trace.stats[k] for k in ("network", "station", "location", "channel",
                                          "starttime")}
    header["sampling_rate"] = trace.stats.sampling_rate / factor
    data = np.maximum.reduceat(trace.data, np.arange(0, trace.stats.npts, factor))
    return obspy.Trace(data.astype(np.float32), header=header)


def load_characterizer(names, batch_size=64):
    """The :class:`~utrans.annotate.characterization.Characterizer` of ``--characterize``."""
    models = [m.strip() for m in names.split(",") if m.strip()]
    try:
        characterizer = Characterizer(models, batch_size=batch_size)
    except (UtransError, KeyError, OSError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise InputError(f"--characterize: {message}") from err
    for wm in characterizer.window_models:
        print(f"Characterize with {wm.name} ({wm.quantity}): {wm.conventions.describe()}, "
              f"P at {wm.p_position_ratio:g} of the window")
    return characterizer
