"""A minimal protobuf wire-format reader, to check what the server put on the wire.

The generated parser forgives too much for a contract test: a oneof with two members set keeps
only the last, an unknown field vanishes into the unknown-field set, a wrong wire type is
rejected only sometimes. Reading the raw bytes sees exactly which field numbers, with which
wire types, each message carried.
"""

from __future__ import annotations

from dataclasses import dataclass

# protobuf ships no type information; descriptors are used dynamically here anyway.
from google.protobuf.descriptor import Descriptor, FieldDescriptor  # type: ignore[import-untyped]

from nexy.toolkit.lang import say

VARINT, I64, LEN, I32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass(frozen=True, slots=True)
class WireField:
    number: int
    wire_type: int
    payload: bytes  # LEN: the content; others: the raw encoded value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def read_fields(data: bytes) -> list[WireField]:
    """Every top-level field of a serialized message, in wire order."""
    fields: list[WireField] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        start = pos
        if wire_type == VARINT:
            _, pos = _varint(data, pos)
        elif wire_type == I64:
            pos += 8
        elif wire_type == I32:
            pos += 4
        elif wire_type == LEN:
            size, start = _varint(data, pos)
            pos = start + size
        else:
            raise WireError(f"field {number}: unsupported wire type {wire_type} (groups?)")
        if pos > len(data):
            raise WireError(f"field {number}: truncated")
        fields.append(WireField(number, wire_type, data[start:pos]))
    return fields


_SCALAR_WIRE = {
    FieldDescriptor.TYPE_STRING: LEN,
    FieldDescriptor.TYPE_BYTES: LEN,
    FieldDescriptor.TYPE_MESSAGE: LEN,
    FieldDescriptor.TYPE_INT32: VARINT,
    FieldDescriptor.TYPE_INT64: VARINT,
    FieldDescriptor.TYPE_BOOL: VARINT,
    FieldDescriptor.TYPE_ENUM: VARINT,
    FieldDescriptor.TYPE_DOUBLE: I64,
    FieldDescriptor.TYPE_FLOAT: I32,
}


def _allowed_wire(field: FieldDescriptor) -> set[int]:
    wire = _SCALAR_WIRE.get(field.type, LEN)
    # Repeated scalars may arrive packed (one LEN) or one by one; parsers accept both.
    if field.is_repeated and wire != LEN:
        return {wire, LEN}
    return {wire}


def wire_problems(data: bytes, descriptor: Descriptor, path: str = "") -> list[str]:
    """Contract violations in one serialized message, recursing into sub-messages.

    Reports unknown field numbers, wrong wire types, invalid UTF-8 in strings, a singular field
    sent twice and more than one member of a oneof.
    """
    where = path or descriptor.name
    try:
        fields = read_fields(data)
    except WireError as exc:
        return [f"{where}: {exc}"]
    problems: list[str] = []
    seen: dict[int, int] = {}
    oneofs: dict[str, list[str]] = {}
    for item in fields:
        field = descriptor.fields_by_number.get(item.number)
        if field is None:
            problems.append(
                say(
                    f"{where}: unknown field #{item.number}",
                    f"{where}: неизвестное поле #{item.number}",
                )
            )
            continue
        name = f"{where}.{field.name}"
        if item.wire_type not in _allowed_wire(field):
            problems.append(
                say(
                    f"{name}: wire type {item.wire_type} does not match the field type",
                    f"{name}: wire type {item.wire_type} не соответствует типу поля",
                )
            )
            continue
        seen[item.number] = seen.get(item.number, 0) + 1
        if not field.is_repeated and seen[item.number] == 2:
            problems.append(
                say(
                    f"{name}: singular field sent more than once",
                    f"{name}: одиночное поле передано несколько раз",
                )
            )
        if field.containing_oneof is not None:
            members = oneofs.setdefault(field.containing_oneof.name, [])
            if field.name not in members:
                members.append(field.name)
        if field.type == FieldDescriptor.TYPE_STRING:
            try:
                item.payload.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(say(f"{name}: string is not UTF-8", f"{name}: строка не в UTF-8"))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            problems += wire_problems(item.payload, field.message_type, name)
    for oneof, members in oneofs.items():
        if len(members) > 1:
            listed = ", ".join(members)
            problems.append(
                say(
                    f"{where}: several fields of oneof {oneof}: {listed}",
                    f"{where}: в oneof {oneof} несколько полей: {listed}",
                )
            )
    return problems


def oneof_members(data: bytes, descriptor: Descriptor, oneof: str) -> list[str]:
    """Which members of a oneof the bytes carry (the contract wants exactly one)."""
    group = descriptor.oneofs_by_name[oneof]
    numbers = {field.number: field.name for field in group.fields}
    found = [numbers[f.number] for f in read_fields(data) if f.number in numbers]
    return list(dict.fromkeys(found))
