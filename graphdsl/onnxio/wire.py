"""The protobuf wire format, read and written by hand for the few messages where that pays.

Protobuf's Python API copies every `bytes` field it parses or serializes, so a 440 MB model costs 440 MB
more than its file. Walking the wire format ourselves finds each field's byte range in a buffer (an
mmap of the file) without copying anything; only the small remainder goes through the C parser.
Writing frames fields the same way: a tag, a varint length, and then the payload, which can be a
slice of the mmap or a numpy buffer that never becomes a Python `bytes`.

Spec: https://protobuf.dev/programming-guides/encoding/ (wire types 0, 1, 2 and 5; ONNX uses no groups).
"""

from __future__ import annotations

from typing import NamedTuple

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5

# Field numbers from onnx.proto3 (stable since IR version 3).
MODEL_GRAPH = 7
MODEL_FUNCTIONS = 25
GRAPH_NODE, GRAPH_INITIALIZER = 1, 5
GRAPH_INPUT, GRAPH_OUTPUT, GRAPH_VALUE_INFO = 11, 12, 13
GRAPH_SPARSE_INITIALIZER = 15
TENSOR_RAW_DATA = 9
NODE_ATTRIBUTE = 5
ATTRIBUTE_G, ATTRIBUTE_GRAPHS = 6, 11
FUNCTION_NODE = 7


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message (truncated, or corrupted)."""


class Field(NamedTuple):
    """One field of a message: its number, wire type, and where it lies in the buffer.

    `start` is the first byte of the tag, `data` the first byte of the payload, `end` one past the
    payload; for LEN fields the payload is the sub-message or string itself. `scan` returns plain
    tuples in this layout (building named tuples costs a third of the scan on 100k-node graphs).
    """

    number: int
    wire_type: int
    start: int
    data: int
    end: int


def read_varint(buf, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at `pos`; returns (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise WireError(f"varint runs past the end of the message at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def scan(buf, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """Every field of the message in buf[start:end], in order, as `Field`-shaped tuples; no payload copied."""
    fields = []
    append = fields.append
    pos = start
    while pos < end:
        tag = buf[pos]
        if tag & 7 == LEN and 8 <= tag < 0x80 and pos + 2 < end:
            # The common case in ONNX (a one-byte tag, a length below 16 KiB) decoded inline: this loop
            # runs once per node of the graph, and a call per varint would double its cost.
            length = buf[pos + 1]
            if length < 0x80:
                data = pos + 2
            else:
                high = buf[pos + 2]
                if high < 0x80:
                    length = (length & 0x7F) | high << 7
                    data = pos + 3
                else:
                    length, data = read_varint(buf, pos + 1, end)
            stop = data + length
            if stop > end:
                raise WireError(f"a field of {length} bytes runs past the end of the message at byte {end}")
        else:
            data = pos + 1
            if tag >= 0x80:
                tag, data = read_varint(buf, pos, end)
            if tag < 8:
                raise WireError(f"field number 0 at byte {pos}")
            data, stop = _payload(buf, tag & 7, data, end)
        append((tag >> 3, tag & 7, pos, data, stop))
        pos = stop
    return fields


def _payload(buf, wire_type: int, pos: int, end: int) -> tuple[int, int]:
    """(first byte of the payload, one past its end) for a field whose tag ends at `pos`."""
    if wire_type == LEN:
        length = buf[pos] if pos < end else 0x80
        if length < 0x80:
            pos += 1
        else:
            length, pos = read_varint(buf, pos, end)
        stop = pos + length
    elif wire_type == VARINT:
        stop = read_varint(buf, pos, end)[1]
    elif wire_type == FIXED64:
        stop = pos + 8
    elif wire_type == FIXED32:
        stop = pos + 4
    else:
        raise WireError(f"wire type {wire_type} (groups or garbage) at byte {pos}")
    if stop > end:
        raise WireError(f"a field of {stop - pos} bytes runs past the end of the message at byte {end}")
    return pos, stop


def text(value):
    """A string field's value, which protobuf hands over as bytes when they are not UTF-8 (proto2
    does not validate them): such a file is corrupt, and saying so beats failing later on bytes."""
    if type(value) is str:
        return value
    raise WireError(f"a string field is not valid UTF-8: {bytes(value)[:40]!r}")


def encode_varint(value: int) -> bytes:
    """The varint encoding of a non-negative integer."""
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [bytes([i]) for i in range(0x80)]


def len_header(number: int, length: int) -> bytes:
    """Tag and length of a LEN field: what precedes `length` bytes of payload."""
    return encode_varint(number << 3 | LEN) + encode_varint(length)


def string_field(number: int, value: str) -> bytes:
    """A complete string field (tag, length, UTF-8 bytes)."""
    data = value.encode()
    return len_header(number, len(data)) + data


def varint_field(number: int, value: int) -> bytes:
    """A complete varint field; negative values take ten bytes, as protobuf's int64 does."""
    return encode_varint(number << 3 | VARINT) + encode_varint(value & 0xFFFFFFFFFFFFFFFF)
