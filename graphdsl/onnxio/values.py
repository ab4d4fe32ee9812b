"""Lazy tensor values: what a gs.Constant holds until a pass asks for `.values`.

gs's own LazyValues keeps a whole onnx.TensorProto, whose raw_data protobuf has already copied out
of the file. These keep only the tensor's header (name, dims, type) and where its bytes are: in the
mapped model file, in an external data file, or (for small tensors inside nodes) in a parsed proto.
`load()` then returns a numpy array that *views* the mapping, so reading a 440 MB model does not
allocate 440 MB. The mappings are copy-on-write: a pass may change an array in place, and the model
file never sees it.

Every class subclasses gs.LazyValues, so graphsurgeon's own code (Constant.values, fold_constants,
export_onnx through `.tensor`) treats them as its own.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import onnx
import onnx.numpy_helper
from onnx import TensorProto
from onnx_graphsurgeon.importers.onnx_importer import get_numpy_type
from onnx_graphsurgeon.ir.tensor import LazyValues

from graphdsl.diagnostics import model_error
from graphdsl.onnxio.codes import EXTERNAL_SHORT, MODEL_CORRUPT
from graphdsl.onnxio.external import ExternalRef
from graphdsl.onnxio.ranges import pread_into

# ONNX types whose raw_data is exactly numpy's little-endian buffer, so a view needs no conversion.
_PLAIN = {t: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t)).newbyteorder("<") for t in (
    TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.UINT16, TensorProto.INT16,
    TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.DOUBLE,
    TensorProto.UINT32, TensorProto.UINT64, TensorProto.COMPLEX64, TensorProto.COMPLEX128)}
# Sub-byte types pack several elements per byte (ONNX IR spec, "Packed types").
_ELEMENTS_PER_BYTE = {TensorProto.UINT4: 2, TensorProto.INT4: 2, TensorProto.FLOAT4E2M1: 2}
for _name in ("UINT2", "INT2"):
    if hasattr(TensorProto, _name):
        _ELEMENTS_PER_BYTE[getattr(TensorProto, _name)] = 4
_ONE_BYTE = {TensorProto.BFLOAT16: 2}
for _name in ("FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT8E8M0"):
    if hasattr(TensorProto, _name):
        _ONE_BYTE[getattr(TensorProto, _name)] = 1


_keys = itertools.count(1)


@functools.cache
def gs_dtype(data_type: int):
    """The dtype graphsurgeon gives a tensor of this ONNX type: numpy's, or the ONNX enum if none."""
    dtype = get_numpy_type(data_type)
    return dtype if dtype is not None else data_type


def raw_nbytes(data_type: int, count: int) -> int | None:
    """Bytes of raw_data for `count` elements, or None where the layout is not fixed (strings, ...)."""
    if data_type in _PLAIN:
        return count * _PLAIN[data_type].itemsize
    if data_type in _ELEMENTS_PER_BYTE:
        return -(-count // _ELEMENTS_PER_BYTE[data_type])
    if data_type in _ONE_BYTE:
        return count * _ONE_BYTE[data_type]
    return None


class TensorValues(LazyValues):
    """Base of the lazy values: shape, dtype and nbytes from the header, without touching the data.

    Attributes:
        header: The TensorProto without its data (name, dims, data_type, and any other field).
        name: The tensor's name in the source.
        span: (source, start, end) of the whole TensorProto field in the source, or None.
        key: A number unique to this object within the process.
        shape: Tuple of dims, as numpy reports shapes.
        dtype: What graphsurgeon would report: a numpy dtype, or the ONNX type enum.
        nbytes: Bytes of the stored data.
    """

    def __init__(self, header: TensorProto, nbytes: int | None = None, span: tuple | None = None):
        # LazyValues.__init__ would parse dims and dtype from a full TensorProto again: not called.
        self.header = header
        self.name = header.name  # gs's exporter renames `.tensor` in place; this stays the original
        self.span = span  # (source, start, end) of the unchanged TensorProto field, for the writer
        self.key = next(_keys)  # lets a node's attribute snapshot name these values without referencing them
        self.shape = tuple(header.dims)
        self.data_type = header.data_type
        self.dtype = gs_dtype(header.data_type)
        count = math.prod(self.shape)
        expected = raw_nbytes(header.data_type, count)
        self.nbytes = nbytes if nbytes is not None else (expected or 0)

    def __deepcopy__(self, memo):
        # The data is immutable from here (mappings are copy-on-write), so copies may share it; a real
        # deepcopy would try to pickle an mmap.
        return self

    def __reduce__(self):
        return (np.asarray, (self.load(),))

    def __str__(self):
        return f"{type(self).__name__} (shape={self.shape}, dtype={self.dtype})"

    def _array(self, raw) -> np.ndarray:
        """A numpy array over raw little-endian bytes (a writable buffer): a view where numpy can hold
        the type as stored, else onnx's conversion."""
        plain = _PLAIN.get(self.data_type)
        if plain is not None:
            return np.frombuffer(raw, dtype=plain).reshape(self.shape)
        # bfloat16, float8, packed int4...: onnx converts them (and copies), as gs's LazyValues does.
        full = TensorProto()
        full.CopyFrom(self.header)
        full.raw_data = bytes(raw)
        return np.array(onnx.numpy_helper.to_array(full))


class MappedValues(TensorValues):
    """A tensor whose raw_data lies in a buffer the model was read from (normally the mapped file).

    The first load views the mapping. gs.Graph.copy shares lazy values between the copies, and gs
    gives each copy an array of its own; so a second load reads the stored bytes afresh (from the
    file, which an in-place edit of the first array never reaches), and `loaded` tells the writer that
    the mapping may no longer hold the original bytes.
    """

    def __init__(self, header: TensorProto, source, raw_start: int, raw_end: int, field: tuple[int, int]):
        super().__init__(header, raw_end - raw_start, (source, *field))
        self.source = source
        self.raw_start, self.raw_end = raw_start, raw_end
        self.loaded = False

    def load(self) -> np.ndarray:
        """The values: a copy-on-write view of the mapped file the first time, a fresh copy after."""
        if self.loaded or not self.source.writable:
            return self._array(self.original())
        self.loaded = True
        return self._array(self.source.buffer[self.raw_start:self.raw_end])

    def original(self) -> bytearray:
        """The stored bytes as read (a fresh, writable copy)."""
        if self.source.is_file:
            return pread_into(self.source.fileno(), self.raw_start, self.nbytes)
        return bytearray(self.source.buffer[self.raw_start:self.raw_end])

    @property
    def tensor(self) -> TensorProto:
        """A complete TensorProto (copies the data): for graphsurgeon's exporter, which wants one."""
        full = TensorProto()
        full.CopyFrom(self.header)
        full.raw_data = bytes(self.original())
        return full


class ExternalValues(TensorValues):
    """A tensor stored in an external data file, read only when its values are asked for.

    Loads as MappedValues does: a view of the mapped data file first, fresh copies after.

    Attributes:
        ref: The file, offset and declared length.
        expected: Bytes the shape and type call for (None where that is not fixed).
    """

    def __init__(self, header: TensorProto, ref: ExternalRef, expected: int | None):
        super().__init__(header, ref.length if ref.length is not None else (expected or 0))
        self.ref = ref
        self.expected = expected
        self.loaded = False

    def _check(self, size: int) -> None:
        if self.ref.offset + self.nbytes > size:
            path = self.ref.file.path
            raise model_error(EXTERNAL_SHORT, f"external data file `{path.name}` is shorter than tensor "
                              f"`{self.header.name}` needs", location=str(path))

    def load(self) -> np.ndarray:
        """The values: a copy-on-write view of the mapped data file the first time, a fresh copy after."""
        if self.loaded:
            return self._array(self.original())
        buffer = self.ref.file.buffer()
        self._check(len(buffer))
        self.loaded = True
        return self._array(buffer[self.ref.offset:self.ref.offset + self.nbytes])

    def original(self) -> bytearray:
        """The stored bytes, read from the data file (GDS308 if it shrank meanwhile)."""
        self._check(self.ref.file.size())
        return pread_into(self.ref.file.fileno(), self.ref.offset, self.nbytes)

    @property
    def tensor(self) -> TensorProto:
        """A complete TensorProto with the data inline (copies it)."""
        full = inline_header(self.header)
        full.raw_data = bytes(self.original())
        return full


class ProtoValues(TensorValues):
    """A tensor held whole by a parsed proto: Constant-node values and subgraph initializers."""

    def __init__(self, proto: TensorProto, span: tuple | None = None):
        nbytes = len(proto.raw_data) if proto.HasField("raw_data") else None
        super().__init__(proto, nbytes, span)

    @property
    def tensor(self) -> TensorProto:
        """A copy: gs's exporter renames the proto it gets, and this one belongs to the parsed model."""
        out = TensorProto()
        out.CopyFrom(self.header)
        return out

    def load(self) -> np.ndarray:
        """A writable copy, exactly as gs.LazyValues.load returns it."""
        try:
            return np.array(onnx.numpy_helper.to_array(self.header))
        except (ValueError, TypeError) as e:
            raise model_error(MODEL_CORRUPT, f"tensor `{self.header.name}` cannot be read: {e}") from None


def inline_header(header: TensorProto) -> TensorProto:
    """A copy of a header with the external-data fields removed: the data is about to be inlined."""
    out = TensorProto()
    out.CopyFrom(header)
    out.ClearField("external_data")
    out.ClearField("data_location")
    return out
