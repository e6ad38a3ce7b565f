"""One spelling per identifier, so aliases of a device or a session are one key everywhere.

``{ABC…}``, ``urn:uuid:abc…``, the 32-digit form, surrounding blanks and either letter case all
name the same UUID; without this, aliases of one id could run duplicate turns, dodge a device's
limits or split its memory. The desktop client sends its hardware_id as an upper-case hardware
UUID and its session_id as a lower-case uuid4 (SPEC §2), so those are the canonical cases:
stored data keeps the keys it already has. Ids that are not UUIDs are only trimmed.
"""

from __future__ import annotations

import uuid

_UUID_FORMS = range(32, 46)  # "0123…" (32) up to "urn:uuid:0123-…" (45)


def _as_uuid(value: str) -> str | None:
    if len(value) not in _UUID_FORMS:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def canonical_device_id(value: str) -> str:
    """A hardware_id as stored: trimmed; a UUID in any form as upper-case hyphenated."""
    value = value.strip()
    found = _as_uuid(value)
    return value if found is None else found.upper()


def canonical_session_id(value: str) -> str:
    """A session_id as used for single-flight: trimmed; a UUID as lower-case hyphenated."""
    value = value.strip()
    found = _as_uuid(value)
    return value if found is None else found
