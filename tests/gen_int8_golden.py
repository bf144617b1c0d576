#!/usr/bin/env python3
"""Record int8 golden vectors from TensorFlow Lite for the runtime's kernels.

Each case is a one-layer Keras model, converted to a fully int8 .tflite model
(per-channel weights, int8 input and output) and run by TensorFlow Lite's
reference kernels (OpResolverType.BUILTIN_REF: the reference_ops /
reference_integer_ops code that TFLite Micro also runs). The script checks
that the converted model holds exactly the one op it expects, then writes the
op's tensors (data, float32 scales, zero points), its options and the output
the interpreter computed to tests/golden/int8/<case>.json.

Before writing, every case is recomputed here with plain integer arithmetic
from the recorded data alone, deriving the kernel parameters the way
TensorFlow Lite's Prepare does (softmax excepted: its fixed-point exp is left
to the C test). A mismatch means the files would not hold what a C test needs,
and the script stops.

Cases named *_wide_range have their output tensor's quantization rewritten in
the .tflite before the interpreter runs it (see rewrite_output_range): the
converter always calibrates a fused ReLU/ReLU6 output so that its clamp is
-128/127, and these cases make the clamp land inside the int8 range.

Run from the repository root with a Python that has TensorFlow:
    python3 tests/gen_int8_golden.py [--out tests/golden/int8]
"""

import argparse
import datetime
import json
import math
import os
import sys
import warnings
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402
from tensorflow.lite.tools import flatbuffer_utils  # noqa: E402

SEED = 20240917
CALIB_SAMPLES = 32
ACT_NAMES = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
PAD_NAMES = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}


# ---------------------------------------------------------------------------
# Cases. inputs: per model input, (shape without batch, calibration range).
# batch: the batch the interpreter is resized to for the recorded run.


def conv(filters, k, strides=1, padding="same", activation=None, use_bias=True):
    return lambda: [keras.layers.Conv2D(filters, k, strides=strides, padding=padding,
                                        activation=activation, use_bias=use_bias)]


def dwconv(k, depth_multiplier=1, strides=1, padding="same", activation=None):
    return lambda: [keras.layers.DepthwiseConv2D(k, strides=strides, padding=padding,
                                                 depth_multiplier=depth_multiplier,
                                                 activation=activation)]


CASES = [
    # conv2d, per-channel weights
    dict(name="conv2d_3x3_same_s1", op="CONV_2D", layers=conv(4, 3), batch=2,
         inputs=[((6, 6, 3), (-1.0, 2.0))],
         about="3x3 SAME stride 1, 3 input channels, batch 2"),
    dict(name="conv2d_3x3_same_s2_odd", op="CONV_2D", layers=conv(5, 3, strides=2), batch=1,
         inputs=[((7, 9, 3), (-1.5, 1.0))],
         about="3x3 SAME stride 2 on 7x9 (odd sizes: padding 1 on every side)"),
    dict(name="conv2d_5x5_valid", op="CONV_2D", layers=conv(3, 5, padding="valid"), batch=1,
         inputs=[((8, 7, 2), (-0.5, 1.5))],
         about="5x5 VALID stride 1"),
    dict(name="conv2d_3x3_valid_s2_c1", op="CONV_2D", layers=conv(4, 3, strides=2, padding="valid"),
         batch=1, inputs=[((9, 8, 1), (0.0, 1.0))],
         about="3x3 VALID stride 2, one input channel, input range [0, 1] (zero point -128)"),
    dict(name="conv2d_1x1", op="CONV_2D", layers=conv(6, 1), batch=1,
         inputs=[((4, 5, 8), (-2.0, 2.0))],
         about="1x1 pointwise, 8 input channels"),
    dict(name="conv2d_1x1_rounding", op="CONV_2D", layers=conv(8, 1), batch=1,
         inputs=[((12, 12, 2), (-1.0, 1.0))],
         about="1x1, 2 input channels, 1152 outputs: more chances to hit the rare values "
               "where TFLite's double rounding differs from a single rounding"),
    dict(name="conv2d_relu", op="CONV_2D", layers=conv(3, 3, activation="relu"), batch=1,
         inputs=[((5, 5, 4), (-1.0, 1.0))],
         about="3x3 SAME stride 1, fused ReLU"),
    dict(name="conv2d_relu6_s2", op="CONV_2D",
         layers=conv(4, 3, strides=2, activation="relu6"), batch=1,
         inputs=[((6, 7, 3), (-3.0, 3.0))], weight_gain=3.0,
         about="3x3 SAME stride 2 on 6x7 (padding 0 top, 1 bottom), fused ReLU6 "
               "(pre-activations well past 6)"),
    dict(name="conv2d_relu6_wide_range", op="CONV_2D",
         layers=conv(4, 3, activation="relu6"), batch=1,
         inputs=[((5, 5, 3), (-3.0, 3.0))], weight_gain=3.0, output_range=(-2.0, 8.0),
         about="3x3 SAME stride 1, fused ReLU6, output range rewritten to [-2, 8] so that "
               "the clamp is [quantize(0), quantize(6)] inside the int8 range"),
    dict(name="conv2d_nobias", op="CONV_2D", layers=conv(4, 3, use_bias=False), batch=1,
         inputs=[((5, 6, 2), (-1.0, 3.0))],
         about="3x3 SAME stride 1, Keras use_bias=False (the converter still adds an "
               "all-zero bias)"),
    # depthwise
    dict(name="dwconv_3x3_same_m1", op="DEPTHWISE_CONV_2D", layers=dwconv(3), batch=2,
         inputs=[((6, 6, 4), (-1.0, 2.0))],
         about="3x3 SAME stride 1, depth_multiplier 1, batch 2"),
    dict(name="dwconv_3x3_same_m2", op="DEPTHWISE_CONV_2D", layers=dwconv(3, depth_multiplier=2),
         batch=1, inputs=[((5, 5, 3), (-2.0, 1.0))],
         about="3x3 SAME stride 1, depth_multiplier 2"),
    dict(name="dwconv_3x3_same_s2_odd", op="DEPTHWISE_CONV_2D", layers=dwconv(3, strides=2),
         batch=1, inputs=[((7, 9, 4), (-1.0, 1.0))],
         about="3x3 SAME stride 2 on 7x9 (padding 1 on every side)"),
    dict(name="dwconv_3x3_s2_relu6_m2", op="DEPTHWISE_CONV_2D",
         layers=dwconv(3, depth_multiplier=2, strides=2, activation="relu6"), batch=1,
         inputs=[((6, 7, 3), (-3.0, 3.0))], weight_gain=3.0,
         about="3x3 SAME stride 2 on 6x7 (padding 0 top, 1 bottom), depth_multiplier 2, "
               "fused ReLU6"),
    dict(name="dwconv_relu_wide_range", op="DEPTHWISE_CONV_2D",
         layers=dwconv(3, activation="relu"), batch=1,
         inputs=[((5, 4, 3), (-2.0, 2.0))], weight_gain=2.0, output_range=(-1.5, 2.5),
         about="3x3 SAME stride 1, fused ReLU, output range rewritten to [-1.5, 2.5] "
               "(clamp at quantize(0))"),
    dict(name="dwconv_5x5_valid", op="DEPTHWISE_CONV_2D", layers=dwconv(5, padding="valid"),
         batch=1, inputs=[((7, 6, 2), (-0.5, 2.5))],
         about="5x5 VALID stride 1"),
    # fully connected
    dict(name="fc", op="FULLY_CONNECTED", layers=lambda: [keras.layers.Dense(10)], batch=3,
         inputs=[((20,), (-1.0, 2.0))], extremes=0.7,
         about="Dense 20 -> 10, 3 rows, no activation (converter default: per-channel weights)"),
    dict(name="fc_relu", op="FULLY_CONNECTED",
         layers=lambda: [keras.layers.Dense(8, activation="relu")], batch=2,
         inputs=[((16,), (-2.0, 1.0))], extremes=0.7,
         about="Dense 16 -> 8, 2 rows, fused ReLU"),
    dict(name="fc_relu6_wide_range", op="FULLY_CONNECTED",
         layers=lambda: [keras.layers.Dense(9, activation="relu6")], batch=3,
         inputs=[((10,), (-2.0, 2.0))], extremes=0.7, weight_gain=3.0, output_range=(-3.0, 9.0),
         about="Dense 10 -> 9, fused ReLU6, output range rewritten to [-3, 9]"),
    dict(name="fc_per_tensor", op="FULLY_CONNECTED", layers=lambda: [keras.layers.Dense(7)],
         batch=2, inputs=[((12,), (-1.0, 1.5))], dense_per_tensor=True, extremes=0.7,
         about="Dense 12 -> 7, converter asked for per-tensor Dense weights"),
    # pooling
    dict(name="maxpool_2x2_s2_valid", op="MAX_POOL_2D",
         layers=lambda: [keras.layers.MaxPooling2D(2, 2, padding="valid")], batch=1,
         inputs=[((6, 7, 3), (-1.0, 2.0))],
         about="2x2 stride 2 VALID on 6x7 (last column dropped)"),
    dict(name="maxpool_3x3_s2_same", op="MAX_POOL_2D",
         layers=lambda: [keras.layers.MaxPooling2D(3, 2, padding="same")], batch=1,
         inputs=[((7, 8, 2), (-2.0, 1.0))],
         about="3x3 stride 2 SAME on 7x8 (padding 0 left, 1 right)"),
    dict(name="avgpool_2x2_s2_valid", op="AVERAGE_POOL_2D",
         layers=lambda: [keras.layers.AveragePooling2D(2, 2, padding="valid")], batch=1,
         inputs=[((6, 7, 3), (-1.0, 2.0))],
         about="2x2 stride 2 VALID on 6x7"),
    dict(name="avgpool_3x3_s2_same_odd", op="AVERAGE_POOL_2D",
         layers=lambda: [keras.layers.AveragePooling2D(3, 2, padding="same")], batch=1,
         inputs=[((7, 9, 2), (-2.0, 1.0))],
         about="3x3 stride 2 SAME on 7x9: edge windows count only the pixels inside "
               "(6 on edges, 4 in corners)"),
    dict(name="avgpool_3x3_s2_same_even", op="AVERAGE_POOL_2D",
         layers=lambda: [keras.layers.AveragePooling2D(3, 2, padding="same")], batch=1,
         inputs=[((8, 6, 3), (-1.0, 1.0))],
         about="3x3 stride 2 SAME on 8x6: padding only at the bottom/right"),
    dict(name="avgpool_global", op="AVERAGE_POOL_2D",
         layers=lambda: [keras.layers.AveragePooling2D((5, 6))], batch=2,
         inputs=[((5, 6, 4), (-1.0, 3.0))],
         about="global average pool as a 5x6 window on 5x6 (GlobalAveragePooling2D "
               "converts to MEAN)"),
    # add
    dict(name="add_scales", op="ADD", layers="add", batch=1,
         inputs=[((4, 5, 3), (-1.0, 1.0)), ((4, 5, 3), (-20.0, 30.0))],
         about="two inputs whose scales differ ~25x"),
    dict(name="add_relu", op="ADD", layers="add_relu", batch=1,
         inputs=[((3, 4, 2), (-2.0, 2.0)), ((3, 4, 2), (-0.5, 3.0))],
         about="Add followed by ReLU, fused by the converter"),
    dict(name="add_relu_wide_range", op="ADD", layers="add_relu", batch=1,
         inputs=[((4, 4, 2), (-2.0, 2.0)), ((4, 4, 2), (-1.0, 3.0))], output_range=(-2.0, 5.0),
         about="Add + ReLU, output range rewritten to [-2, 5] (clamp at quantize(0))"),
    # softmax
    dict(name="softmax_rows", op="SOFTMAX", layers=lambda: [keras.layers.Softmax()], batch=5,
         inputs=[((10,), (-4.0, 4.0))], extremes=0.05,
         about="5 rows of 10, moderate input range"),
    dict(name="softmax_large", op="SOFTMAX", layers=lambda: [keras.layers.Softmax()], batch=4,
         inputs=[((12,), (-60.0, 60.0))], extremes=0.05,
         about="differences far beyond diff_min: many outputs exactly -128, winners 127"),
    dict(name="softmax_small", op="SOFTMAX", layers=lambda: [keras.layers.Softmax()], batch=3,
         inputs=[((7,), (-0.5, 0.5))], extremes=0.05,
         about="small input scale (large input multiplier), near-uniform rows"),
    # pad
    dict(name="pad_asym", op="PAD",
         layers=lambda: [keras.layers.ZeroPadding2D(((1, 2), (0, 3)))], batch=1,
         inputs=[((4, 5, 3), (-1.0, 2.0))],
         about="ZeroPadding2D top 1, bottom 2, left 0, right 3"),
    dict(name="pad_positive", op="PAD",
         layers=lambda: [keras.layers.ZeroPadding2D(((2, 0), (1, 1)))], batch=2,
         inputs=[((3, 3, 2), (0.5, 3.0))],
         about="all-positive input (zero point -128), top 2, left/right 1, batch 2"),
]

# Keras layers that must not become the op the runtime implements; the script
# records what they turn into for the README.
PROBES = [
    dict(name="global_average_pooling", layers=lambda: [keras.layers.GlobalAveragePooling2D()],
         inputs=[((5, 6, 4), (-1.0, 3.0))]),
]


# ---------------------------------------------------------------------------
# Model building and conversion


def build_model(case, rng):
    ins = [keras.Input(shape=s) for s, _ in case["inputs"]]
    if case["layers"] in ("add", "add_relu"):
        y = keras.layers.Add()(ins)
        if case["layers"] == "add_relu":
            y = keras.layers.ReLU()(y)
    else:
        y = ins[0]
        for layer in case["layers"]():
            y = layer(y)
    model = keras.Model(ins, y)
    gain = case.get("weight_gain", 1.0)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        new = []
        for w in ws:
            if w.ndim == 1:
                new.append(rng.uniform(-0.5, 0.5, w.shape).astype(np.float32))
                continue
            # Conv2D [kh][kw][in][out], DepthwiseConv2D [kh][kw][in][mult],
            # Dense [in][out]. Each output channel gets its own gain (~10x
            # apart) so that the per-channel scales really differ.
            out_axes = 2 if depthwise else w.ndim - 1
            fan_in = int(np.prod(w.shape[:out_axes]))
            base = rng.uniform(-1.0, 1.0, w.shape) * gain * 2.0 / math.sqrt(fan_in)
            new.append((base * rng.uniform(0.2, 2.0, w.shape[out_axes:])).astype(np.float32))
        layer.set_weights(new)
    return model


def convert(model, case, rng):
    def sample(shape, lo, hi):
        # Most values in the middle half of the range, one at each end: the
        # input scale spans [lo, hi] while the output range calibrates
        # narrower than what full-range test inputs produce, so outputs
        # saturate at -128 / 127.
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        x = mid + 0.5 * rng.uniform(-half, half, (1,) + shape)
        i, j = rng.choice(x.size, 2, replace=False)
        x.flat[i], x.flat[j] = lo, hi
        return x.astype(np.float32)

    def representative():
        for _ in range(CALIB_SAMPLES):
            yield [sample(s, lo, hi) for s, (lo, hi) in case["inputs"]]

    conv_ = tf.lite.TFLiteConverter.from_keras_model(model)
    conv_.optimizations = [tf.lite.Optimize.DEFAULT]
    conv_.representative_dataset = representative
    conv_.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv_.inference_input_type = tf.int8
    conv_.inference_output_type = tf.int8
    if case.get("dense_per_tensor"):
        conv_._experimental_disable_per_channel_quantization_for_dense_layers = True
    return conv_.convert()


def rewrite_output_range(blob, lo, hi):
    """Give the model's output tensor the int8 quantization of [lo, hi].

    The converter calibrates a fused ReLU/ReLU6 output to [0, max] with
    max <= 6, so its clamp always coincides with -128/127. A model trained
    with quantization-aware ranges can have a wider output range; TFLite then
    clamps inside the int8 range (act_min = quantize(0), act_max =
    quantize(6)). Rewriting the range in the flatbuffer gives such a model;
    the interpreter's Prepare and kernels compute with it as with any other."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(blob))
    sg = model.subgraphs[0]
    q = sg.tensors[sg.outputs[0]].quantization
    scale = np.float32((hi - lo) / 255.0)
    q.scale = [float(scale)]
    q.zeroPoint = [int(-128 - round(lo / float(scale)))]
    q.min, q.max = None, None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def interpreter_for(blob):
    return tf.lite.Interpreter(
        model_content=blob,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)


def single_op(interp, expected):
    ops = interp._get_ops_details()
    names = [o["op_name"] for o in ops]
    if names != [expected]:
        sys.exit(f"expected exactly one {expected} op, the converter produced {names}")
    return ops[0]


def test_inputs(rng, shape, extremes):
    """Seeded int8 covering the whole range; a fraction `extremes` of the
    values sit at -128 or 127, so sums exceed what calibration saw and outputs
    saturate."""
    x = rng.integers(-128, 128, shape)
    ext = rng.random(shape) < extremes
    x[ext] = np.where(rng.random(int(ext.sum())) < 0.5, -128, 127)
    return x.astype(np.int8)


# ---------------------------------------------------------------------------
# Recording


def f32(v):
    """A float32 as the JSON number whose double is exactly that float32."""
    return float(np.float32(v))


def tensor_record(interp, details, index, role):
    d = details[index]
    q = d["quantization_parameters"]
    data = interp.get_tensor(index)
    return {
        "role": role,
        "dtype": np.dtype(d["dtype"]).name,
        "shape": [int(v) for v in data.shape],
        "scale": [f32(s) for s in q["scales"]],
        "zero_point": [int(z) for z in q["zero_points"]],
        "quantized_dimension": int(q["quantized_dimension"]),
        "data": [int(v) for v in data.reshape(-1)],
    }


def options_record(blob, op_name):
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(blob))
    opt = model.subgraphs[0].operators[0].builtinOptions
    if op_name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        r = {"padding": PAD_NAMES[opt.padding], "stride_h": opt.strideH, "stride_w": opt.strideW,
             "dilation_h": opt.dilationHFactor, "dilation_w": opt.dilationWFactor,
             "fused_activation": ACT_NAMES[opt.fusedActivationFunction]}
        if op_name == "DEPTHWISE_CONV_2D":
            r["depth_multiplier"] = opt.depthMultiplier
        return r
    if op_name == "FULLY_CONNECTED":
        return {"fused_activation": ACT_NAMES[opt.fusedActivationFunction],
                "keep_num_dims": bool(opt.keepNumDims), "weights_format": opt.weightsFormat}
    if op_name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return {"padding": PAD_NAMES[opt.padding], "stride_h": opt.strideH, "stride_w": opt.strideW,
                "filter_h": opt.filterHeight, "filter_w": opt.filterWidth,
                "fused_activation": ACT_NAMES[opt.fusedActivationFunction]}
    if op_name == "ADD":
        return {"fused_activation": ACT_NAMES[opt.fusedActivationFunction]}
    if op_name == "SOFTMAX":
        return {"beta": f32(opt.beta)}
    if op_name == "PAD":
        return {}
    raise ValueError(op_name)


ROLES = {
    "CONV_2D": ["input", "filter", "bias"],
    "DEPTHWISE_CONV_2D": ["input", "filter", "bias"],
    "FULLY_CONNECTED": ["input", "filter", "bias"],
    "MAX_POOL_2D": ["input"],
    "AVERAGE_POOL_2D": ["input"],
    "ADD": ["input1", "input2"],
    "SOFTMAX": ["input"],
    "PAD": ["input", "paddings"],
}


def run_case(case, provenance):
    seed = (SEED ^ zlib.crc32(case["name"].encode())) & 0x7FFFFFFF
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    model = build_model(case, rng)
    blob = convert(model, case, rng)
    if "output_range" in case:
        blob = rewrite_output_range(blob, *case["output_range"])

    interp = interpreter_for(blob)
    op = single_op(interp, case["op"])
    for d in interp.get_input_details():
        interp.resize_tensor_input(d["index"], [case["batch"]] + list(d["shape"][1:]))
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], test_inputs(rng, tuple(d["shape"]), case.get("extremes", 0.4)))
    interp.invoke()

    details = {d["index"]: d for d in interp.get_tensor_details()}
    roles = ROLES[case["op"]]
    inputs = []
    for role, idx in zip(roles, list(op["inputs"]) + [-1] * len(roles)):
        inputs.append(None if idx < 0 else tensor_record(interp, details, int(idx), role))
    output = tensor_record(interp, details, int(op["outputs"][0]), "output")
    options = options_record(blob, case["op"])
    if case["op"] == "FULLY_CONNECTED":
        options["weights"] = "per-channel" if len(inputs[1]["scale"]) > 1 else "per-tensor"
    prov = dict(provenance, seed=seed)
    if "output_range" in case:
        prov["output_quantization_rewritten_to"] = list(case["output_range"])
    return {
        "name": case["name"],
        "op": case["op"],
        "about": case["about"],
        "provenance": prov,
        "options": options,
        "inputs": inputs,
        "output": output,
    }


def probe(p):
    rng = np.random.default_rng(SEED)
    model = build_model(p, rng)
    blob = convert(model, p, rng)
    return [o["op_name"] for o in interpreter_for(blob)._get_ops_details()]


# ---------------------------------------------------------------------------
# Independent recomputation from the recorded data (TensorFlow Lite's Prepare
# and reference kernels in plain integers).

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


def round_away(x):
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def quantize_multiplier(d):
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = round_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def tdiv(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def srdhm(a, b):
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return tdiv(ab + nudge, 1 << 31)


def rdbpot(x, e):
    mask = (1 << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > threshold else 0)


def mbqm(x, m, shift):
    return rdbpot(srdhm(x * (1 << max(shift, 0)), m), max(-shift, 0))


def act_range(act, scale, zp):
    s = np.float32(scale)

    def quant(f):
        return zp + int(round_away(float(np.float32(f) / s)))

    lo, hi = -128, 127
    if act in ("RELU", "RELU6"):
        lo = max(lo, quant(0.0))
    if act == "RELU6":
        hi = min(hi, quant(6.0))
    if act not in ("NONE", "RELU", "RELU6"):
        raise ValueError(act)
    return lo, hi


def same_pad(in_size, k, stride, out_size):
    total = max((out_size - 1) * stride + k - in_size, 0)
    return total // 2


def window_pads(rec):
    o = rec["options"]
    x, y = rec["inputs"][0], rec["output"]
    if "filter_h" in o:
        kh, kw = o["filter_h"], o["filter_w"]
    else:  # conv [out][kh][kw][in], depthwise [1][kh][kw][out]
        kh, kw = rec["inputs"][1]["shape"][1:3]
    if o["padding"] == "VALID":
        return kh, kw, 0, 0
    return (kh, kw, same_pad(x["shape"][1], kh, o["stride_h"], y["shape"][1]),
            same_pad(x["shape"][2], kw, o["stride_w"], y["shape"][2]))


def recompute(rec):
    op, o = rec["op"], rec["options"]
    x = rec["inputs"][0]
    y = rec["output"]
    X = np.array(x["data"], dtype=np.int64).reshape(x["shape"])
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w, b = rec["inputs"][1], rec["inputs"][2]
        W = np.array(w["data"], dtype=np.int64).reshape(w["shape"])
        B = np.array(b["data"] if b else [0] * y["shape"][3], dtype=np.int64)
        kh, kw, pt, pl = window_pads(rec)
        n, ih, iw, ic = x["shape"]
        _, oh, ow, oc = y["shape"]
        xp = np.full((n, ih + 2 * kh, iw + 2 * kw, ic), x["zero_point"][0], dtype=np.int64)
        xp[:, kh:kh + ih, kw:kw + iw, :] = X
        xp -= x["zero_point"][0]
        acc = np.zeros((n, oh, ow, oc), dtype=np.int64)
        dm = o.get("depth_multiplier", 1)
        for oy in range(oh):
            for ox in range(ow):
                y0 = oy * o["stride_h"] - pt + kh
                x0 = ox * o["stride_w"] - pl + kw
                patch = xp[:, y0:y0 + kh, x0:x0 + kw, :]
                if op == "CONV_2D":
                    acc[:, oy, ox, :] = np.einsum("nhwc,ohwc->no", patch, W)
                else:
                    acc[:, oy, ox, :] = np.einsum("nhwc,hwc->nc", np.repeat(patch, dm, axis=3), W[0])
        acc += B
        scales = [(x["scale"][0] * ws) / y["scale"][0] for ws in w["scale"]]
        return requant(acc, scales, o["fused_activation"], y)
    if op == "FULLY_CONNECTED":
        w, b = rec["inputs"][1], rec["inputs"][2]
        W = np.array(w["data"], dtype=np.int64).reshape(w["shape"])
        B = np.array(b["data"] if b else [0] * W.shape[0], dtype=np.int64)
        acc = (X.reshape(-1, W.shape[1]) - x["zero_point"][0]) @ W.T + B
        if len(w["scale"]) == 1:
            # Per tensor: TFLite multiplies the two float32 scales in float32.
            scales = [float(np.float32(x["scale"][0]) * np.float32(w["scale"][0])) / y["scale"][0]]
        else:
            scales = [(x["scale"][0] * ws) / y["scale"][0] for ws in w["scale"]]
        return requant(acc, scales, o["fused_activation"], y)
    if op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        kh, kw, pt, pl = window_pads(rec)
        n, ih, iw, c = x["shape"]
        _, oh, ow, _ = y["shape"]
        lo, hi = act_range(o["fused_activation"], y["scale"][0], y["zero_point"][0])
        out = np.zeros(y["shape"], dtype=np.int64)
        for oy in range(oh):
            for ox in range(ow):
                ys, xs = oy * o["stride_h"] - pt, ox * o["stride_w"] - pl
                patch = X[:, max(ys, 0):min(ys + kh, ih), max(xs, 0):min(xs + kw, iw), :]
                if op == "MAX_POOL_2D":
                    v = patch.max(axis=(1, 2))
                else:
                    cnt = patch.shape[1] * patch.shape[2]
                    s = patch.sum(axis=(1, 2))
                    v = np.array([tdiv(t + cnt // 2, cnt) if t > 0 else tdiv(t - cnt // 2, cnt)
                                  for t in s.reshape(-1)]).reshape(s.shape)
                out[:, oy, ox, :] = np.clip(v, lo, hi)
        return out.reshape(-1)
    if op == "ADD":
        x2 = rec["inputs"][1]
        s1, s2, so = x["scale"][0], x2["scale"][0], y["scale"][0]
        twice_max = 2.0 * max(s1, s2)
        m1, e1 = quantize_multiplier(s1 / twice_max)
        m2, e2 = quantize_multiplier(s2 / twice_max)
        mo, eo = quantize_multiplier(twice_max / ((1 << 20) * so))
        lo, hi = act_range(o["fused_activation"], so, y["zero_point"][0])
        out = []
        for a, b in zip(x["data"], x2["data"]):
            a = mbqm((a - x["zero_point"][0]) << 20, m1, e1)
            b = mbqm((b - x2["zero_point"][0]) << 20, m2, e2)
            out.append(min(max(mbqm(a + b, mo, eo) + y["zero_point"][0], lo), hi))
        return np.array(out)
    if op == "PAD":
        p = np.array(rec["inputs"][1]["data"]).reshape(4, 2)
        return np.pad(X, p, constant_values=y["zero_point"][0]).reshape(-1)
    return None


def requant(acc, scales, act, y):
    lo, hi = act_range(act, y["scale"][0], y["zero_point"][0])
    qm = [quantize_multiplier(s) for s in scales]
    flat = acc.reshape(-1, acc.shape[-1])
    out = np.zeros(flat.shape, dtype=np.int64)
    for r in range(flat.shape[0]):
        for c in range(flat.shape[1]):
            m, e = qm[c if len(qm) > 1 else 0]
            v = mbqm(int(flat[r, c]), m, e) + y["zero_point"][0]
            out[r, c] = min(max(v, lo), hi)
    return out.reshape(-1)


# ---------------------------------------------------------------------------
# Output


def dumps(rec):
    """JSON with one line per field and per tensor: readable and small."""
    lines = []
    for k, v in rec.items():
        if k == "inputs":
            body = ",\n".join("    " + json.dumps(t) for t in v)
            lines.append(f'  "inputs": [\n{body}\n  ]')
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "golden", "int8"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    provenance = {
        "generator": "tests/gen_int8_golden.py",
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "kernels": "tf.lite.Interpreter, OpResolverType.BUILTIN_REF",
        "date": datetime.date.today().isoformat(),
    }
    for p in PROBES:
        print(f"probe {p['name']}: converts to {probe(p)}")
    total = 0
    for case in CASES:
        rec = run_case(case, provenance)
        out = rec["output"]["data"]
        want = recompute(rec)
        if want is not None and list(map(int, want)) != out:
            bad = sum(int(a) != b for a, b in zip(want, out))
            sys.exit(f"{case['name']}: recomputation disagrees with TFLite in {bad} of {len(out)}")
        text = dumps(rec)
        path = os.path.join(args.out, case["name"] + ".json")
        with open(path, "w") as f:
            f.write(text)
        total += len(text)
        notes = []
        for t in rec["inputs"][1:]:
            if t is not None and t["role"] == "filter":
                notes.append(f"{len(t['scale'])} weight scale(s)")
        if len(rec["inputs"]) == 3 and rec["inputs"][2] is None:
            notes.append("no bias")
        notes.append("recomputed" if want is not None else "not recomputed")
        print(f"{case['name']:26s} {rec['op']:17s} out {rec['output']['shape']} "
              f"at -128: {out.count(-128)}, at 127: {out.count(127)}; {', '.join(notes)}; "
              f"{len(text)} B")
    print(f"{len(CASES)} cases, {total} bytes in {args.out}")


if __name__ == "__main__":
    main()
