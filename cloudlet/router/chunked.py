"""Find where a chunked request body ends in the raw bytes, without decoding it.

The router forwards a chunked body byte for byte (extensions and trailers included) and
needs the exact offset of its end to tell it from a pipelined next request. httptools
validates the same bytes but reports no offsets, so this scanner computes them; the
client protocol checks that both agree and refuses the request when they do not, so a
disagreement can never desynchronise a pooled upstream connection.

Work is per chunk, not per byte: the data of a chunk is skipped by length.
"""

from __future__ import annotations

from typing import Final

_SIZE: Final = 0  # reading a chunk-size line
_DATA: Final = 1  # skipping chunk data
_DATA_END: Final = 2  # expecting the CRLF after chunk data
_TRAILER: Final = 3  # reading trailer lines until an empty one
_DONE: Final = 4

_HEX: Final = b"0123456789abcdefABCDEF"
# A size line is a few hex digits plus rare extensions; trailers are a small header block.
MAX_LINE: Final = 4096
MAX_TRAILERS: Final = 64 * 1024


class ChunkedError(ValueError):
    """The body is not valid chunked framing."""


class ChunkedScanner:
    __slots__ = ("_left", "_line", "_state", "_trailers")

    def __init__(self) -> None:
        self._state = _SIZE
        self._left = 0
        self._line = b""  # a size or trailer line split across reads
        self._trailers = 0

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def scan(self, data: bytes) -> int:
        """Consume ``data``; return the offset just past the body's end, or -1 if the body
        continues after ``data``. Raise :class:`ChunkedError` on bad framing."""
        pos = 0
        n = len(data)
        while pos < n:
            state = self._state
            if state == _DATA:
                take = min(self._left, n - pos)
                pos += take
                self._left -= take
                if self._left == 0:
                    self._state = _DATA_END
                    self._left = 2
                continue
            if state == _DATA_END:
                # The CRLF may itself be split across two reads.
                while self._left and pos < n:
                    if data[pos] != (13 if self._left == 2 else 10):
                        raise ChunkedError("missing CRLF after chunk data")
                    pos += 1
                    self._left -= 1
                if self._left == 0:
                    self._state = _SIZE
                continue
            if state == _DONE:
                return pos
            end = data.find(b"\n", pos)
            if end < 0:
                self._line += data[pos:]
                if len(self._line) > MAX_LINE:
                    raise ChunkedError("chunk line too long")
                return -1
            line = self._line + data[pos : end + 1] if self._line else data[pos : end + 1]
            self._line = b""
            pos = end + 1
            # Strict CRLF, as llhttp (here and in the instance) expects it.
            if len(line) < 2 or line[-2] != 13 or b"\r" in line[:-2]:
                raise ChunkedError("bad line ending in chunked body")
            if len(line) > MAX_LINE:
                raise ChunkedError("chunk line too long")
            if state == _SIZE:
                size = _chunk_size(line[:-2])
                if size:
                    self._state = _DATA
                    self._left = size
                else:
                    self._state = _TRAILER
            else:
                if len(line) == 2:
                    self._state = _DONE
                    return pos
                self._trailers += len(line)
                if self._trailers > MAX_TRAILERS:
                    raise ChunkedError("trailers too large")
        return -1


def _chunk_size(line: bytes) -> int:
    digits, _, _ext = line.partition(b";")
    # Only hex digits: no sign, no spaces, no "0x" (int() would accept some of those).
    if not digits or len(digits) > 16 or digits.translate(None, _HEX):
        raise ChunkedError("bad chunk size")
    return int(digits, 16)
