"""miniSEED records as bytes: their fixed header, cutting a file into records, decoding.

A live source hands over data one record at a time, and a file that a
writer is still appending to may end in half a record. This module reads
just enough of the SEED fixed header (codes, start time, sample count and
rate, record length from blockette 1000) to place a record in time and to
know where it ends, without decoding its samples; samples are decoded by
ObsPy (:func:`decode`).

::

    from utrans.stream.mseed import RecordHeader, complete_records, trace_records

    header = RecordHeader.parse(record)            # codes, times, length
    records, used = complete_records(buffer)       # whole records at the head of a buffer
    for record in trace_records(trace, reclen=512):  # a Trace cut into records
        ...
"""

from __future__ import annotations

import dataclasses
import io
import struct

import numpy as np
import obspy

__all__ = ["HEADER_SIZE", "IncompleteRecord", "RecordHeader", "complete_records", "decode",
           "trace_records"]

#: Bytes of the SEED fixed data header.
HEADER_SIZE = 48
_MIN_RECLEN, _MAX_RECLEN = 128, 1 << 20  # 2**7 .. 2**20, as SEED allows


class IncompleteRecord(Exception):
    """The bytes end before the record's header (or its blockette 1000) does."""


def _sampling_rate(factor, multiplier):
    """Nominal rate in Hz from the SEED rate factor and multiplier."""
    if factor == 0 or multiplier == 0:
        return 0.0
    if factor > 0 and multiplier > 0:
        return float(factor * multiplier)
    if factor > 0 > multiplier:
        return -factor / multiplier
    if factor < 0 < multiplier:
        return -multiplier / factor
    return 1.0 / (factor * multiplier)


@dataclasses.dataclass(frozen=True)
class RecordHeader:
    """What a miniSEED record's fixed header and blockettes 1000/100 say.

    Attributes:
        network: the network code (stripped).
        station: the station code (stripped).
        location: the location code (stripped).
        channel: the channel code (stripped).
        starttime: time of the first sample, the header's time correction
            applied unless the header says it already is.
        sampling_rate: Hz (blockette 100's actual rate when present).
        npts: number of samples.
        record_length: bytes, from blockette 1000.
        quality: the data quality indicator (``D``, ``R``, ``Q`` or ``M``).
    """

    network: str
    station: str
    location: str
    channel: str
    starttime: obspy.UTCDateTime
    sampling_rate: float
    npts: int
    record_length: int
    quality: str = "D"

    @property
    def id(self):
        """``NET.STA.LOC.CHA``."""
        return f"{self.network}.{self.station}.{self.location}.{self.channel}"

    @property
    def station_id(self):
        """``NET.STA``."""
        return f"{self.network}.{self.station}"

    @property
    def endtime(self):
        """Time of the last sample (the start time for a record without samples)."""
        if self.npts <= 1 or self.sampling_rate <= 0:
            return self.starttime
        return self.starttime + (self.npts - 1) / self.sampling_rate

    @property
    def end_of_data(self):
        """Time one sample after the last one: where the next record should start."""
        if self.sampling_rate <= 0:
            return self.starttime
        return self.starttime + self.npts / self.sampling_rate

    @classmethod
    def parse(cls, data, offset=0):
        """Read the header of the record that starts at ``data[offset]``.

        Args:
            data: bytes (or a bytearray / memoryview) holding the record.
            offset: where the record starts.

        Returns:
            The :class:`RecordHeader`.

        Raises:
            IncompleteRecord: ``data`` ends before the fixed header or the
                blockettes do (wait for more bytes).
            ValueError: the bytes are not a miniSEED data record.
        """
        available = len(data) - offset
        if available < HEADER_SIZE:
            raise IncompleteRecord(f"{available} of the {HEADER_SIZE} header bytes")
        head = bytes(data[offset:offset + HEADER_SIZE])
        if head[6:7] not in (b"D", b"R", b"Q", b"M"):
            raise ValueError(f"not a miniSEED data record at byte {offset}: header starts with "
                             f"{head[:8]!r}")
        order = ">"
        year, doy = struct.unpack(">HH", head[20:24])
        if not (1900 <= year <= 2500 and 1 <= doy <= 366):
            order = "<"
            year, doy = struct.unpack("<HH", head[20:24])
            if not (1900 <= year <= 2500 and 1 <= doy <= 366):
                raise ValueError(f"miniSEED record at byte {offset} has no readable start time "
                                 f"(year/day {year}/{doy} in either byte order)")
        (_, _, hour, minute, second, _, fract, npts, factor, multiplier, activity, _, _,
         nblockettes, correction, _, blockette) = struct.unpack(order + "HHBBBBHHhhBBBBiHH",
                                                                head[20:48])
        rate = _sampling_rate(factor, multiplier)
        reclen = None
        position = blockette
        for _ in range(nblockettes):
            if position < HEADER_SIZE:
                break
            if len(data) - offset < position + 8:
                raise IncompleteRecord(f"blockette at byte {position} not yet complete")
            kind, following = struct.unpack(order + "HH",
                                            bytes(data[offset + position:offset + position + 4]))
            if kind == 1000:
                reclen = 1 << data[offset + position + 6]
            elif kind == 100:
                (actual,) = struct.unpack(order + "f", bytes(data[offset + position + 4:
                                                                  offset + position + 8]))
                rate = float(actual)
            position = following
            if position == 0:
                break
        if reclen is None:
            raise ValueError(f"miniSEED record at byte {offset} has no blockette 1000 "
                             "(its record length is unknown)")
        if not _MIN_RECLEN <= reclen <= _MAX_RECLEN:
            raise ValueError(f"miniSEED record at byte {offset} claims a record length of "
                             f"{reclen} bytes")
        start = obspy.UTCDateTime(year=year, julday=doy, hour=hour, minute=minute,
                                  second=second) + fract * 1e-4
        if correction and not activity & 0x02:
            start += correction * 1e-4
        return cls(
            network=head[18:20].decode("ascii", "replace").strip(),
            station=head[8:13].decode("ascii", "replace").strip(),
            location=head[13:15].decode("ascii", "replace").strip(),
            channel=head[15:18].decode("ascii", "replace").strip(),
            starttime=start,
            sampling_rate=rate,
            npts=npts,
            record_length=reclen,
            quality=head[6:7].decode("ascii"),
        )


def complete_records(data):
    """The whole records at the head of a buffer, and how many bytes they fill.

    A buffer read from a file that is still being written may end inside a
    record: that record is left for a later call, never returned in part.

    Args:
        data: bytes starting at a record boundary.

    Returns:
        ``(records, used)``: a list of ``(RecordHeader, bytes)`` and the
        number of bytes they occupy (``data[used:]`` is an incomplete record
        or nothing).

    Raises:
        ValueError: bytes at a record boundary are not a miniSEED record
            (the message gives the byte offset).
    """
    records = []
    used = 0
    while used < len(data):
        try:
            header = RecordHeader.parse(data, used)
        except IncompleteRecord:
            break
        end = used + header.record_length
        if end > len(data):
            break
        records.append((header, bytes(data[used:end])))
        used = end
    return records, used


def decode(data):
    """Decode miniSEED bytes (one or more whole records) into an ObsPy Stream.

    Args:
        data: bytes of whole records.

    Returns:
        ``obspy.Stream`` (contiguous records of a channel joined into one trace).

    Raises:
        ValueError: the bytes do not decode (the message says why).
    """
    try:
        return obspy.read(io.BytesIO(bytes(data)), format="MSEED")
    except Exception as err:  # ObsPy raises several types for a bad record
        raise ValueError(f"cannot decode {len(data)} bytes of miniSEED: {err}") from err


def trace_records(trace, reclen=512, encoding=None):
    """Cut a trace into miniSEED records of ``reclen`` bytes, in time order.

    Args:
        trace: ``obspy.Trace``; integer samples are written with Steim-2,
            floating point ones as FLOAT32/FLOAT64.
        reclen: record length in bytes (a power of two, 256..8192 typical;
            SeedLink carries 512).
        encoding: ObsPy encoding name, or None for the default above.

    Returns:
        A list of ``bytes``, one per record.

    Raises:
        ValueError: ``reclen`` is not a power of two from 128 to 2**20.
    """
    if reclen < _MIN_RECLEN or reclen > _MAX_RECLEN or reclen & (reclen - 1):
        raise ValueError(f"reclen must be a power of two from {_MIN_RECLEN} to {_MAX_RECLEN}. "
                         f"Received: reclen={reclen}")
    if encoding is None and np.issubdtype(trace.data.dtype, np.integer):
        encoding = "STEIM2"
        if trace.data.dtype != np.int32:
            info = np.iinfo(np.int32)
            if trace.stats.npts and (trace.data.min() < info.min or trace.data.max() > info.max):
                raise ValueError(f"{trace.id}: integer samples beyond the 32-bit range cannot be "
                                 "written as Steim-2; give float samples or an encoding")
            trace = trace.copy()
            trace.data = trace.data.astype(np.int32)
    buffer = io.BytesIO()
    kwargs = {"encoding": encoding} if encoding else {}
    trace.write(buffer, format="MSEED", reclen=reclen, **kwargs)
    blob = buffer.getvalue()
    return [blob[i:i + reclen] for i in range(0, len(blob), reclen)]
