"""Prints the tables of bench/int8_vs_tflite.sh from the JSON files it left
in WORK_DIR: python3 bench/int8_report.py WORK_DIR NAME...

Fails when bench_int8_infer's accuracy is not `edgetrain test --int8`'s (the
benchmark would then not time the model edgetrain reports on)."""
import json
import os
import sys


def load(work, name, what):
    with open(os.path.join(work, f"{name}.{what}.json")) as f:
        return json.load(f)


def pts(x):
    return f"{100 * x:.2f}"


def main():
    work, names = sys.argv[1], sys.argv[2:]
    acc_rows, size_rows, speed_rows = [], [], []
    for name in names:
        train, test, keras = (load(work, name, w) for w in ("train", "test", "keras"))
        speed = {k: load(work, name, f"speed-{k}") for k in
                 ("edgetrain", "tflite-auto", "tflite-builtin", "tflite-ref")}
        et_f, et_q = test["float32"]["accuracy"], test["int8"]["accuracy"]
        k_f, tfl_q = keras["keras_float32_accuracy"], keras["tflite_int8_accuracy"]
        if abs(speed["edgetrain"]["accuracy"] - et_q) > 1e-6:
            sys.exit(f"int8_report: {name}: bench_int8_infer's accuracy "
                     f"{speed['edgetrain']['accuracy']} is not edgetrain test's {et_q}")
        d_et, d_tfl = et_f - et_q, k_f - tfl_q
        ratio = f"{d_et / d_tfl:.2f}" if abs(d_tfl) >= 0.0005 else "-"
        q = train.get("quantization") or {}
        calib = (q.get("method") or q.get("calibration") or "?") + \
            (" (fallback)" if q.get("fallback") else "")
        acc_rows.append((name, pts(et_f), pts(k_f), pts(et_q), pts(tfl_q), pts(d_et), pts(d_tfl),
                         f"{100 * (d_et - d_tfl):+.2f}", ratio, calib))
        size_rows.append((name, keras["etrt_bytes"], keras["tflite_bytes"],
                          f"{keras['tflite_bytes'] / keras['etrt_bytes']:.2f}"))
        e = speed["edgetrain"]["samples_per_s"]
        cells = [name, f"{e:.0f}"]
        for k in ("auto", "builtin", "ref"):
            s = speed[f"tflite-{k}"]
            cells += [f"{s['samples_per_s']:.0f}", f"{e / s['samples_per_s']:.2f}x"]
        speed_rows.append(tuple(cells) + (pts(speed["tflite-auto"]["accuracy"]),
                                          pts(speed["tflite-builtin"]["accuracy"]),
                                          speed["tflite-ref"]["samples"]))

    def table(head, rows):
        w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
        for r in [head] + rows:
            print("  ".join(str(c).rjust(w[i]) if i else str(c).ljust(w[i])
                            for i, c in enumerate(r)))
        print()

    tf_version = load(work, names[0], "keras")["tensorflow"]
    print(f"Test accuracy, % (10,000 Fashion-MNIST test images); TFLite {tf_version}; "
          "drop = float32 - int8, points")
    table(("model", "f32 edgetrain", "f32 Keras", "int8 edgetrain", "int8 TFLite",
           "drop edgetrain", "drop TFLite", "edgetrain-TFLite", "ratio", "edgetrain calib"),
          acc_rows)
    print("Model size, bytes (weights, biases, quantization parameters, graph)")
    table(("model", ".etrt", ".tflite", "tflite/etrt"), size_rows)
    print("Single-thread int8 inference, samples/s (invokes timed only); x = edgetrain / TFLite")
    table(("model", "edgetrain", "TFLite XNNPACK", "", "TFLite builtin", "", "TFLite ref", "",
           "acc XNNPACK", "acc builtin", "ref samples"), speed_rows)


if __name__ == "__main__":
    main()
