"""Just enough of the Prometheus text format to compare counters before and after a probe."""

from __future__ import annotations

import re
from collections.abc import Mapping

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Labels = dict[str, str]


def samples(text: str, name: str) -> list[tuple[Labels, float]]:
    """Every sample of the metric ``name`` with its labels."""
    found: list[tuple[Labels, float]] = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match.group(1) != name:
            continue
        labels = dict(_LABEL.findall(match.group(2) or ""))
        try:
            found.append((labels, float(match.group(3))))
        except ValueError:
            continue
    return found


def total(text: str, name: str, where: Mapping[str, str] | None = None) -> float | None:
    """Sum of the samples whose labels contain ``where`` (substring match); None if absent.

    Substring matching lets ``{"method": "StreamAudio"}`` match however the server spells the
    method label (``/streaming.StreamingService/StreamAudio`` or a short form).
    """
    values = samples(text, name)
    if not values:
        return None
    return sum(
        value
        for labels, value in values
        if all(want in labels.get(key, "") for key, want in (where or {}).items())
    )


def by_label(
    text: str, name: str, label: str, where: Mapping[str, str] | None = None
) -> dict[str, float]:
    """``{label value: sample value}`` for the matching samples (for readable deltas)."""
    out: dict[str, float] = {}
    for labels, value in samples(text, name):
        if all(want in labels.get(key, "") for key, want in (where or {}).items()):
            key = labels.get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out
