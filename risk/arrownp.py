"""NumPy arrays to and from Arrow arrays through their buffers, and Arrow's compute functions by name, for the
ingestion path.

pyarrow (26) imports pandas the first time it converts between NumPy or Python objects and Arrow (`pa.array`,
`Array.to_numpy`, a Python scalar given to a compute function): 0.3 s of an ingestion.py process, as long as a
plain pyarrow read of a month of rows. Importing `pyarrow.compute` (which an Array's `cast`, `filter`, `take`,
`is_valid` and `fill_null` do too) builds a Python function and its docstring for each of Arrow's few hundred
compute functions: 40-50 ms a process, a sixth of that read. Ingestion and the read state's update convert here,
and call the compute functions they need through `call_function` (what each of those wrappers calls), so a run on
good files imports neither (tests/test_bounded.py holds it to that). Plain fixed-width types and booleans.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyarrow._compute import CastOptions, call_function  # pyarrow.compute's own, without its wrappers
from pyarrow._compute import MatchSubstringOptions as MatchSubstringOptions  # for `call`'s callers
from pyarrow._compute import PadOptions as PadOptions
from pyarrow._compute import ReplaceSubstringOptions as ReplaceSubstringOptions

_NUMPY = {pa.float64(): np.dtype("<f8"), pa.int64(): np.dtype("<i8"), pa.int32(): np.dtype("<i4"),
          pa.uint64(): np.dtype("<u8"), pa.int8(): np.dtype("i1")}
_ARROW = {dtype: arrow for arrow, dtype in _NUMPY.items()}


def to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of a fixed-width or boolean Arrow array (floats: NaN where null) as NumPy: a read-only view of a
    numeric array without nulls, a new array otherwise."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    count, offset = len(array), array.offset
    if pa.types.is_boolean(array.type):
        bits = array.buffers()[1]
        values = np.unpackbits(np.frombuffer(bits, np.uint8), bitorder="little")[offset:offset + count].view(bool) \
            if bits is not None else np.zeros(0, dtype=bool)
    else:
        data = array.buffers()[1]
        values = np.frombuffer(data, _NUMPY[array.type])[offset:offset + count] if data is not None \
            else np.zeros(0, _NUMPY[array.type])
    if array.null_count:
        if not pa.types.is_floating(array.type):
            raise ValueError(f"{array.type} values with nulls: no NumPy form without a sentinel")
        valid = np.unpackbits(np.frombuffer(array.buffers()[0], np.uint8), bitorder="little")[offset:offset + count]
        values = np.where(valid.view(bool), values, np.nan)
    return values


def from_numpy(values: np.ndarray) -> pa.Array:
    """A 1-d NumPy array of a fixed-width type or booleans as an Arrow array without nulls (sharing its memory,
    booleans packed into bits)."""
    values = np.ascontiguousarray(values)
    if values.dtype == bool:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(_ARROW[values.dtype.newbyteorder("<")], len(values), [None, pa.py_buffer(values)])


def text(value: str) -> pa.StringScalar:
    """An Arrow string scalar, for a compute function's text argument (a Python str there is converted by
    pa.scalar, which imports pandas)."""
    data = value.encode()
    return pa.StringArray.from_buffers(1, pa.py_buffer(np.array([0, len(data)], np.int32)), pa.py_buffer(data))[0]


def call(name: str, *args: object, options: object = None) -> pa.Array:
    """Arrow's compute function `name` on Arrow `args` (a text argument as `text`, not a Python str), as
    pyarrow.compute's wrapper of it would call it."""
    return call_function(name, list(args), options)


def cast(values: pa.Array, to: pa.DataType) -> pa.Array:
    """`values.cast(to)`, a safe cast (an error, not a wrong value, where one does not fit)."""
    return call_function("cast", [values], CastOptions.safe(to))


def filter(values: pa.Array, keep: np.ndarray) -> pa.Array:
    """The values where the NumPy booleans `keep` are True."""
    return call_function("filter", [values, from_numpy(keep)])


def take(values: pa.Array, indices: np.ndarray) -> pa.Array:
    """The values at the NumPy integer `indices`, in their order."""
    return call_function("take", [values, from_numpy(indices)])


def blanks(count: int) -> pa.Array:
    """`count` empty strings (an id column a file does not have)."""
    return pa.StringArray.from_buffers(count, pa.py_buffer(np.zeros(count + 1, np.int32)), pa.py_buffer(b""))
