"""In-process MP3 to PCM decoding for streamed speech: no ffmpeg, no subprocess.

miniaudio (dr_mp3) only decodes complete in-memory files, so streaming is built on top of it.
The bytes are cut into MP3 frames here, and each push decodes just the frames completed since
the previous push, preceded by some already-decoded frames as *context*. Layer III frames are
not independent: a frame's data may begin up to 511 bytes back, inside earlier frames (the bit
reservoir), and every frame's output overlaps the one before it. With that context, the new
frames decode to exactly the samples a whole-file decode gives them. The context is decoded
once more on its own to count the samples to drop, which is robust even when the context's
first frame cannot be decoded (its reservoir is missing) or a new frame is damaged.

Cost: each push decodes about ``2 * _CONTEXT_BYTES`` of old frames besides the new ones,
a constant well under a millisecond, so total work stays linear in the length of the stream.
Audio comes out as soon as the frame after it has started arriving (the first frame must be
confirmed by a second one); a final frame cut short by the end of the stream is dropped.
Only MPEG Layer III with a fixed bitrate index per frame is supported (no free format), which
covers Edge's ``audio-24khz-48kbitrate-mono-mp3``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import miniaudio  # type: ignore[import-untyped]
import numpy as np

from nexy.providers.tts.audio import Int16Array, PcmFormatter, chunk_bytes_for
from nexy.providers.tts.base import TTSError

_HEADER_BYTES = 4
_ID3_HEADER_BYTES = 10
# The largest bit reservoir is 511 bytes; the rest covers the filter-bank overlap of the frame
# before the first new one. A whole-file decode and this one then agree sample for sample.
_CONTEXT_BYTES = 1024
_MAX_JUNK_BYTES = 8192  # non-MP3 bytes tolerated in a row before the stream is called corrupt
_MAX_UNDECODABLE_FRAMES = 16  # frames in a row that decode to nothing before giving up
_CHUNK_MS = 10  # PcmFormatter holds back under a fifth of a chunk: at most 2 ms waits a push

# Layer III bitrates in kbit/s by bitrate index, for MPEG-1 and for MPEG-2/2.5.
_BITRATES_MPEG1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_MPEG2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
# Sample rates by the header's version bits (3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5).
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_VBR_TAGS = (b"Xing", b"Info", b"VBRI")


@dataclass(frozen=True, slots=True)
class _Header:
    """What a Layer III frame header says: its length in bytes and the stream format."""

    size: int
    sample_rate: int
    channels: int

    @property
    def format(self) -> tuple[int, int]:
        """Sample rate and channel count: what every frame of one stream shares."""
        return self.sample_rate, self.channels


def _parse_header(buf: bytearray, pos: int) -> _Header | None:
    """The Layer III frame header at ``pos``, or None when there is none."""
    if len(buf) - pos < _HEADER_BYTES:
        return None
    b0, b1, b2, b3 = buf[pos : pos + _HEADER_BYTES]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    if b0 != 0xFF or b1 & 0xE0 != 0xE0 or version == 1 or layer != 1:
        return None
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if bitrate_index in (0, 15) or rate_index == 3:  # free format, invalid, reserved
        return None
    mpeg1 = version == 3
    bitrate = (_BITRATES_MPEG1 if mpeg1 else _BITRATES_MPEG2)[bitrate_index] * 1000
    sample_rate = _SAMPLE_RATES[version][rate_index]
    samples = 1152 if mpeg1 else 576
    size = samples // 8 * bitrate // sample_rate + ((b2 >> 1) & 1)
    return _Header(size, sample_rate, 1 if b3 >> 6 == 3 else 2)


def _decode(data: bytes) -> tuple[Int16Array, int]:
    """Interleaved int16 samples and the channel count; nothing when dr_mp3 finds no audio."""
    try:
        decoded = miniaudio.mp3_read_s16(data)
    except miniaudio.DecodeError:
        return np.zeros(0, dtype=np.int16), 1
    return np.frombuffer(decoded.samples, dtype=np.int16), int(decoded.nchannels)


class Mp3StreamDecoder:
    """Decodes an MP3 stream pushed in pieces of any size into int16 LE mono PCM at ``out_rate``."""

    def __init__(self, out_rate: int) -> None:
        if out_rate <= 0:
            raise ValueError(f"out_rate must be positive, got {out_rate}")
        self.out_rate = out_rate
        self._reset()

    def push(self, mp3: bytes) -> bytes:
        """Add MP3 bytes; return the PCM of every frame completed so far (may be empty)."""
        if mp3:
            self._received = True
            self._pending += mp3
        return self._convert(self._decode_new(self._take_frames(final=False)))

    def flush(self) -> bytes:
        """End the stream: return the remaining PCM and reset for a new stream."""
        pcm = self._convert(self._decode_new(self._take_frames(final=True)))
        if self._received and not self._decoded_any:
            self._reset()
            raise TTSError("the audio stream holds no decodable MP3")
        tail = b"".join(self._formatter.flush()) if self._formatter is not None else b""
        self._reset()
        return pcm + tail

    def _reset(self) -> None:
        self._pending = bytearray()
        self._context: deque[bytes] = deque()  # the newest decoded frames, for the next push
        self._context_bytes = 0
        self._format: tuple[int, int] | None = None  # (rate, channels), fixed by the first frame
        self._synced = False  # whether the next frame is expected right where the last ended
        self._skip = 0  # bytes of an ID3v2 tag still to discard
        self._junk = 0
        self._undecodable = 0
        self._received = False
        self._decoded_any = False
        self._formatter: PcmFormatter | None = None

    def _take_frames(self, *, final: bool) -> list[bytes]:
        """Cut complete frames off the pending bytes, skipping tags and junk between them."""
        frames: list[bytes] = []
        buf, pos = self._pending, 0
        while True:
            if self._skip:
                step = min(self._skip, len(buf) - pos)
                pos, self._skip = pos + step, self._skip - step
                if self._skip:
                    break
            left = len(buf) - pos
            if left < _HEADER_BYTES or (self._at_id3(buf, pos) and left < _ID3_HEADER_BYTES):
                if final:
                    pos = len(buf)  # too short for a frame: trailing junk
                break
            if self._at_id3(buf, pos):
                self._skip = _id3_size(buf, pos)
                continue
            header = _parse_header(buf, pos)
            if header is None or self._format not in (None, header.format):
                pos = self._skip_junk(buf, pos)
                continue
            end, first = pos + header.size, self._format is None
            if end > len(buf):
                if final:
                    pos = len(buf)  # a frame cut short by the end of the stream
                break
            if not self._synced:
                # A lone 0xFF byte in junk can look like a header: a real frame is followed by
                # another with the same format (or, at the very end, by nothing at all).
                after = _parse_header(buf, end)
                if after is None or after.format != header.format:
                    if len(buf) - end < _HEADER_BYTES and not final:
                        break  # wait for the next frame's header
                    if not (final and end == len(buf)):
                        pos = self._skip_junk(buf, pos)
                        continue
                self._lock(header)
            frame = bytes(buf[pos:end])
            pos, self._junk = end, 0
            # A leading VBR info frame holds no audio, and dr_mp3 would apply its gapless data
            # to each partial decode as if that were the whole file, trimming audio mid-stream.
            if not (first and any(tag in frame[:48] for tag in _VBR_TAGS)):
                frames.append(frame)
        del buf[:pos]
        return frames

    def _at_id3(self, buf: bytearray, pos: int) -> bool:
        # ID3v2 tags are only expected before the first frame.
        return self._format is None and buf.startswith(b"ID3", pos)

    def _skip_junk(self, buf: bytearray, pos: int) -> int:
        """Drop bytes up to the next possible frame start; too many in a row is corruption."""
        self._synced = False
        self._context.clear()  # the decoder's state does not carry across a gap
        self._context_bytes = 0
        found = buf.find(b"\xff", pos + 1)
        end = len(buf) if found < 0 else found
        self._junk += end - pos
        if self._junk > _MAX_JUNK_BYTES:
            raise TTSError("the audio stream is not valid MP3")
        return end

    def _lock(self, header: _Header) -> None:
        self._synced = True
        if self._format is None:
            self._format = header.format
            # Threshold 0 only drops exact digital zeros before the first and after the last
            # sound; zero runs between sounds are held and released unchanged once sound
            # follows. Consumers' own formatters (also at 0) would drop the same samples, so this
            # changes nothing downstream — as long as flush() is called once per stream, not
            # per push (each flush starts a new utterance and re-trims its start).
            self._formatter = PcmFormatter(
                header.sample_rate,
                self.out_rate,
                chunk_bytes_for(self.out_rate, _CHUNK_MS),
                silence_threshold=0,
            )

    def _decode_new(self, frames: list[bytes]) -> Int16Array:
        """Mono samples of ``frames`` at the MP3's own rate, decoded after the context."""
        if not frames:
            return np.zeros(0, dtype=np.int16)
        context = b"".join(self._context)
        known, known_channels = _decode(context) if context else (np.zeros(0, np.int16), 1)
        samples, channels = _decode(context + b"".join(frames))
        # Whole sample frames of the context, in the joint decode's channel layout.
        samples = samples[len(known) // known_channels * channels :]
        self._remember(frames)
        if samples.size == 0:
            self._undecodable += len(frames)
            if self._undecodable > _MAX_UNDECODABLE_FRAMES:
                raise TTSError("the MP3 audio cannot be decoded")
            return samples
        self._undecodable, self._decoded_any = 0, True
        if channels > 1:
            wide = samples[: samples.size - samples.size % channels].astype(np.int32)
            samples = (wide.reshape(-1, channels).sum(axis=1) // channels).astype(np.int16)
        return samples

    def _remember(self, frames: list[bytes]) -> None:
        """Keep the newest frames covering ``_CONTEXT_BYTES`` as context for the next push."""
        for frame in frames:
            self._context.append(frame)
            self._context_bytes += len(frame)
        while self._context_bytes - len(self._context[0]) >= _CONTEXT_BYTES:
            self._context_bytes -= len(self._context.popleft())

    def _convert(self, samples: Int16Array) -> bytes:
        if self._formatter is None or samples.size == 0:
            return b""
        return b"".join(self._formatter.push(samples.astype("<i2", copy=False).tobytes()))


def _id3_size(buf: bytearray, pos: int) -> int:
    """Total length of the ID3v2 tag at ``pos``: header, syncsafe-coded body, optional footer."""
    body = 0
    for byte in buf[pos + 6 : pos + 10]:
        body = body << 7 | (byte & 0x7F)
    footer = _ID3_HEADER_BYTES if buf[pos + 5] & 0x10 else 0
    return _ID3_HEADER_BYTES + body + footer
