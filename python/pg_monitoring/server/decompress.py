"""Request bodies as serve's routes read them: decompressed as they arrive (Content-Encoding
gzip, deflate, br or zstd, or none) and bounded. The OTLP routes and the Sentry ingest read
their bodies here.

Two bounds: the bytes the client sends, and the body's bytes once decompressed. Each
decompression step is asked for no more than the room left under the second (and a MiB at
most), so a zip bomb costs that bound and the time to inflate it, never what it would
inflate to: in memory, the bound and a step.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable
from typing import Any

import brotli
import zstandard

ENCODINGS = ("gzip", "deflate", "br", "zstd")
# What a refusal keeps of the body decompressed before it: a Sentry envelope's header line,
# which names the key the refusal is counted for
HEAD = 4096
# RFC 9659: HTTP's zstd decoders need not accept frames whose window is over 8 MiB, and a
# larger window is memory the decoder allocates whatever the body inflates to
ZSTD_MAX_WINDOW = 8 * 1024 * 1024
# The most one step returns: bytes held twice for a moment (returned, then copied into the
# body), and brotli's output overshoots what it is asked for by up to as much again
STEP = 1024 * 1024


class BodyError(Exception):
    """A request the server refuses: `status` is the HTTP status to answer; `head` the
    first bytes of the body decompressed before the refusal (at most HEAD)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.head = b""


def encoding_of(content_encoding: str | None) -> str:
    """The coding a Content-Encoding header names, "identity" when none; 415 for another
    coding, or for more than one."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    if len(codings) > 1:
        raise BodyError(415, "one Content-Encoding at most")
    coding = codings[0] if codings else "identity"
    if coding != "identity" and coding not in ENCODINGS:
        raise BodyError(
            415, f"Content-Encoding {coding!r} is not supported: use gzip, deflate, br or zstd"
        )
    return coding


async def read_body(
    chunks: AsyncIterable[bytes],
    content_encoding: str | None,
    limit: int,
    max_sent: int | None = None,
) -> bytes:
    """The body decompressed. BodyError: 413 past `max_sent` bytes as sent (default:
    `limit`) or `limit` bytes decompressed, 400 when it is not valid in its encoding, 415 for
    an encoding not supported (see `encoding_of`)."""
    encoding = encoding_of(content_encoding)
    sent_limit = limit if max_sent is None else max_sent
    if encoding == "identity":
        sent_limit = min(sent_limit, limit)
    decompressor = Decompressor(encoding, limit)
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > sent_limit:
                what = "body" if encoding == "identity" else f"{encoding} body"
                raise BodyError(413, f"the {what} is larger than {sent_limit} bytes")
            decompressor.feed(chunk)
        return decompressor.finish()
    except BodyError as error:
        error.head = bytes(decompressor.out[:HEAD])
        raise


class Decompressor:
    """A body in one encoding (or "identity"), fed in chunks, decompressed into `out`;
    refused (413) past `limit` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.out = bytearray()
        self._fed = False
        # gzip and deflate: the stream being inflated, None before one and between two
        self._zlib: Any = None
        self._zlib_ended = False
        self._brotli = brotli.Decompressor() if encoding == "br" else None
        self._zstd: Any = None
        self._zstd_frames = _ZstdFrames()
        if encoding == "zstd":
            # the writer hands its output to `_Output.write` as it goes: the output bound
            # zstandard's streaming API has no parameter for
            zstd = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
            self._zstd = zstd.stream_writer(_Output(self))

    def step(self) -> int:
        """What a step may return: up to one byte past the limit, which tells a body over
        it, and STEP at most."""
        return min(self.limit - len(self.out) + 1, STEP)

    def check(self) -> None:
        if len(self.out) > self.limit:
            raise BodyError(413, f"the body inflates to more than {self.limit} bytes")

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self._fed = True
        try:
            if self.encoding == "identity":
                self.out += data
                self.check()
            elif self._brotli is not None:
                self._feed_brotli(data)
            elif self._zstd is not None:
                self._zstd.write(data)
                self._zstd_frames.feed(data)
            else:
                self._feed_zlib(data)
        except (zlib.error, brotli.error, zstandard.ZstdError) as error:
            raise BodyError(400, f"the body is not valid {self.encoding}: {error}") from None

    def _feed_zlib(self, data: bytes) -> None:
        while True:
            if self._zlib is None:
                if not data:
                    return
                if self._zlib_ended:
                    # after a stream: zero padding, which gzip(1) also ignores, or (gzip)
                    # the next member
                    data = data.lstrip(b"\0")
                    if not data:
                        return
                    if self.encoding != "gzip":
                        raise BodyError(400, "the deflate body goes on after its end")
                self._zlib = zlib.decompressobj(self._wbits(data))
            step = self.step()
            piece = self._zlib.decompress(data, step)
            self.out += piece
            self.check()
            data = self._zlib.unconsumed_tail
            if self._zlib.eof:
                data = self._zlib.unused_data + data
                self._zlib, self._zlib_ended = None, True
            elif not data and len(piece) < step:
                return
            # else: input left, or output held back by the step (even with no input left)

    def _wbits(self, data: bytes) -> int:
        if self.encoding == "gzip":
            return 16 + zlib.MAX_WBITS
        # RFC 9110's deflate is zlib's format (its first byte's low bits 8: deflate); some
        # clients send raw deflate
        return zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS

    def _feed_brotli(self, data: bytes) -> None:
        assert self._brotli is not None
        step = self.step()
        piece = self._brotli.process(data, output_buffer_limit=step)
        while True:
            self.out += piece
            self.check()
            # a full step may have held output back, even when brotli takes more input
            # (can_accept_more_data says only that it holds no input): taken now
            if len(piece) < step and self._brotli.can_accept_more_data():
                return
            step = self.step()
            piece = self._brotli.process(b"", output_buffer_limit=step)

    def finish(self) -> bytes:
        """The body; 400 when it ends inside a compressed stream (no bytes at all are an
        empty body, in any encoding)."""
        if self._fed and not self._complete():
            raise BodyError(400, f"the {self.encoding} body ends early")
        return bytes(self.out)

    def _complete(self) -> bool:
        if self.encoding in ("gzip", "deflate"):
            return self._zlib is None
        if self._brotli is not None:
            return bool(self._brotli.is_finished())
        if self._zstd is not None:
            return self._zstd_frames.between_frames()
        return True


class _Output:
    """Where zstandard's stream writer writes: `out`, checked at each write. The check's
    413 propagates through the writer, which stops there."""

    def __init__(self, decompressor: Decompressor) -> None:
        self.decompressor = decompressor

    def write(self, data: bytes) -> int:
        self.decompressor.out += data
        self.decompressor.check()
        return len(data)


class _ZstdFrames:
    """Whether the zstd read so far ends between frames, which zstandard's stream writer
    does not tell: a body cut short would pass for a shorter one. Follows the frame and block
    headers (RFC 8878, 3.1) and skips what they enclose. The decompressor sees each chunk
    first, and refuses what is not zstd."""

    def __init__(self) -> None:
        self.state = "magic"
        self.header = bytearray()  # the header being read
        self.need = 4  # its length
        self.skip = 0  # bytes to pass over before it
        self.checksum = False  # the current frame ends with one

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.skip:
                step = min(self.skip, len(view))
                self.skip -= step
                view = view[step:]
                continue
            take = self.need - len(self.header)
            self.header += view[:take]
            view = view[take:]
            if len(self.header) == self.need:
                self._read(int.from_bytes(self.header, "little"))
                self.header.clear()

    def _read(self, value: int) -> None:
        if self.state == "magic":
            if value & 0xFFFFFFF0 == 0x184D2A50:  # a skippable frame: its length follows
                self.state, self.need = "skippable", 4
            else:  # 0xFD2FB528; the frame header descriptor follows
                self.state, self.need = "descriptor", 1
        elif self.state == "skippable":
            self.skip = value
            self.state, self.need = "magic", 4
        elif self.state == "descriptor":
            single_segment = value & 0x20
            self.checksum = bool(value & 0x04)
            window = 0 if single_segment else 1
            dictionary = (0, 1, 2, 4)[value & 0x03]
            content_size = (1 if single_segment else 0, 2, 4, 8)[value >> 6]
            self.skip = window + dictionary + content_size
            self.state, self.need = "block", 3
        else:  # a block header: last block, type, size
            kind, size = (value >> 1) & 0x03, value >> 3
            self.skip = 1 if kind == 1 else size  # an RLE block holds one byte
            if value & 1:
                self.skip += 4 if self.checksum else 0
                self.state, self.need = "magic", 4

    def between_frames(self) -> bool:
        return self.state == "magic" and not self.header and not self.skip


__all__ = ["ENCODINGS", "BodyError", "Decompressor", "encoding_of", "read_body"]
