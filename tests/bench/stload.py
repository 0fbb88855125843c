#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A safetensors load, timed: what `safe_open(path, "np")` followed by
`get_tensor(name)` for every tensor does, written out with numpy because
Debian 12 has no safetensors package (python3-safetensors does not exist
there, and the tests install Python packages only from Debian).  This is
NOT the safetensors library: it follows the format's own reading steps,
as the library does them:

  1. read the 8-byte little-endian header length and the JSON header;
  2. mmap the file read-only (the library maps it too);
  3. for every tensor, in header order: check dtype, shape and offsets,
     view its bytes in the map (numpy.frombuffer) and copy them into a new
     array of its dtype and shape (get_tensor returns an owned array).

Usage: stload.py FILE.  Prints {"seconds", "tensors", "bytes", "sum"} as
JSON (sum: a checksum of the first element of each tensor, so the copies
cannot be skipped).  Python's start is not timed.  Exit 1 on a malformed
file.
"""
import json
import mmap
import struct
import sys
import time

import numpy as np

DTYPES = {"F16": np.float16, "BF16": None, "F32": np.float32,
          "F64": np.float64, "I8": np.int8, "U8": np.uint8,
          "I16": np.int16, "I32": np.int32, "I64": np.int64,
          "BOOL": np.bool_}


def load(path):
    tensors = {}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dt = DTYPES.get(info["dtype"])
            if dt is None:
                raise ValueError(f"{name}: dtype {info['dtype']} unsupported")
            start, end = info["data_offsets"]
            count = (end - start) // np.dtype(dt).itemsize
            if base + end > len(mm) or count != int(np.prod(info["shape"])):
                raise ValueError(f"{name}: offsets do not match its shape")
            view = np.frombuffer(mm, dtype=dt, count=count,
                                 offset=base + start)
            tensors[name] = view.reshape(info["shape"]).copy()
            del view
    finally:
        mm.close()
    return tensors


def main():
    t0 = time.monotonic()
    try:
        tensors = load(sys.argv[1])
    except (ValueError, KeyError, struct.error) as e:
        print(f"stload: {sys.argv[1]}: {e}", file=sys.stderr)
        return 1
    secs = time.monotonic() - t0
    total = sum(t.nbytes for t in tensors.values())
    chk = float(sum(float(t.flat[0]) for t in tensors.values() if t.size))
    print(json.dumps(dict(seconds=secs, tensors=len(tensors), bytes=total,
                          sum=chk)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
