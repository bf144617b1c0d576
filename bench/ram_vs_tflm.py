"""RAM of an int8 model: the arena edgetrain's runtime is planned to need
(the arena_size field of model_int8.etrt, header bytes 16..19) against the
arena TensorFlow Lite Micro needs for the equivalent int8 .tflite (from
bench/export_keras.py), measured with the tflite-micro Python package
(python3 -m pip install tflite-micro):

    python3 bench/ram_vs_tflm.py NAME=MODEL_INT8.etrt,MODEL.tflite ...

For each model, TFLM's RecordingMicroAllocator reports the arena it used,
split into the head (non-persistent: activations and kernel scratch, placed
by TFLM's greedy memory planner) and the tail (persistent: TFLM's tensor and
node structs, quantization parameters, the kernels' per-channel multipliers
and shifts). The script also finds the smallest arena_size the interpreter
accepts (bisection; it must then run an inference), which is what a firmware
would have to reserve. The Python package runs TFLM built for this 64-bit
host: its tail holds 64-bit pointers and is larger than on a 32-bit
microcontroller; the head is the same on both. Prints one JSON line per model.
"""
import json
import os
import re
import struct
import sys
import tempfile

import numpy as np
from tflite_micro import runtime as tflm


def etrt_arena(path):
    with open(path, "rb") as f:
        header = f.read(64)
    if header[:4] != b"ETRT":
        sys.exit(f"ram_vs_tflm: {path} is not an .etrt model")
    return struct.unpack_from("<I", header, 16)[0]


def make(model, arena):
    """A TFLM interpreter that has run one inference, or None when the arena is too small."""
    try:
        it = tflm.Interpreter.from_bytes(model, arena_size=arena)
        d = it.get_input_details(0)
        it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
        it.invoke()
        return it
    except RuntimeError:
        return None


def quiet_stderr(fn):
    """Runs fn with file descriptor 2 sent to a temp file; returns (result, text)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            result = fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return result, tmp.read()


def tflm_arena(model):
    def allocations():
        it = make(model, 16 * 1024 * 1024)
        if it is None:
            raise RuntimeError("TFLM does not run the model even with a 16 MiB arena")
        it.print_allocations()

    _, text = quiet_stderr(allocations)
    fig = {k: int(v) for k, v in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text)}
    parts = {k: int(v) for k, v in re.findall(r"'([^']+)' used (\d+) bytes", text)}
    if set(fig) != {"total", "head", "tail"}:
        sys.exit("ram_vs_tflm: no arena figures in TFLM's print_allocations:\n" + text)

    def minimum():
        lo, hi = 0, fig["total"] + 64  # make(lo) fails, make(hi) works
        while make(model, hi) is None:
            hi *= 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if make(model, mid) is None:
                lo = mid
            else:
                hi = mid
        return hi

    fig["minimum"], _ = quiet_stderr(minimum)
    fig["tail_parts"] = parts
    return fig


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        name, paths = arg.split("=", 1)
        etrt, tflite = paths.split(",")
        with open(tflite, "rb") as f:
            model = f.read()
        t = tflm_arena(model)
        e = etrt_arena(etrt)
        print(json.dumps({"model": name, "edgetrain_arena": e, "tflm_total": t["total"],
                          "tflm_head": t["head"], "tflm_tail": t["tail"],
                          "tflm_minimum": t["minimum"], "tflm_tail_parts": t["tail_parts"],
                          "ratio_minimum": round(t["minimum"] / e, 3),
                          "ratio_head": round(t["head"] / e, 3),
                          "etrt_bytes": os.path.getsize(etrt), "tflite_bytes": len(model),
                          "tflite_micro": getattr(tflm, "__version__", None) or
                          __import__("tflite_micro").__version__}), flush=True)


if __name__ == "__main__":
    main()
