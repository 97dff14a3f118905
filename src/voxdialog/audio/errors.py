"""Typed failures of the audio helpers: undecodable input and input over a size limit."""

from __future__ import annotations

from typing import ClassVar, Literal

#: The quantity an ``AudioTooLarge`` went over.
Limit = Literal["bytes", "seconds"]


class AudioError(Exception):
    """Base class for every audio failure.

    Attributes:
        retryable: Whether sending the same input again can succeed. It never can: the fault
            is in the audio, so callers answer the client instead of retrying.
    """

    retryable: ClassVar[bool] = False


class AudioDecodeError(AudioError):
    """The input is malformed, truncated or in a format we do not read.

    The message is a stable string that may be shown to the user as it is.
    """


class UnsupportedAudioFormat(AudioDecodeError):
    """The input is a file we recognise, in an encoding we do not decode.

    WAV files in anything but PCM, float or G.711, and containers whose audio codec is not on
    the upload allowlist (ADPCM, ALAC, AC-3, ...), are refused with it before any decoding;
    the API answers 415.
    """


class AudioTooLarge(AudioError):
    """The input is longer than a limit allows.

    Attributes:
        limit: The limit that was passed, in the unit named by ``exceeded``.
        exceeded: ``"bytes"`` for the encoded size, ``"seconds"`` for the decoded duration.
    """

    def __init__(self, *, limit: float, exceeded: Limit) -> None:
        """Build the error from the limit that was passed.

        Args:
            limit: The limit, in bytes or seconds.
            exceeded: Which quantity went over it.
        """
        if exceeded == "bytes":
            message = f"audio file is larger than the limit of {limit:g} bytes"
        else:
            message = f"audio is longer than the limit of {limit:g} seconds"
        super().__init__(message)
        self.limit = limit
        self.exceeded: Limit = exceeded
