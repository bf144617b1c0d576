/*
 * etrt kernels: the inference math of a deployed model, int8 and float32.
 *
 * These are the kernels the device runs and the kernels the edgetrain library
 * calls when it reports an int8 accuracy, so the figure the tool prints is
 * what the microcontroller computes. C99, libc only (no libm at run time),
 * no malloc, no globals, no checks at run time: the model loader validates
 * every shape and parameter once (etrt.h), then kernels run freely.
 *
 * The int8 kernels follow the TensorFlow Lite quantization spec and compute
 * bit-exactly what TensorFlow Lite's reference kernels compute
 * (tensorflow/lite/kernels/internal/reference/integer_ops/), which is also
 * what TFLite Micro computes; tests/golden/ holds vectors recorded with
 * TensorFlow Lite that prove it:
 *   real = scale * (q - zero_point), q int8 in [-128, 127];
 *   activations: asymmetric, one (scale, zero_point) per tensor;
 *   conv2d and depthwise weights: symmetric (zero point 0), one scale per
 *     output channel; fully connected: per output channel or per tensor;
 *   bias: int32, scale input_scale * weight_scale, zero point 0;
 *   requantization: accumulator * (input_scale * weight_scale / output_scale)
 *     as a Q31 multiplier and a power-of-two shift (etrt_requant.h), with
 *     TensorFlow Lite's double rounding.
 * Fused activations (ReLU, ReLU6) are a clamp [act_min, act_max] in the
 * output's quantized domain.
 *
 * Shapes are NHWC, channel fastest; n is the batch (1 on a device). Weight
 * layouts are TensorFlow Lite's:
 *   conv2d           [out_c][k_h][k_w][in_c]
 *   depthwise        [k_h][k_w][in_c * depth_multiplier], output channel
 *                    ic * depth_multiplier + m reads input channel ic
 *   fully connected  [out][in]
 *
 * Outputs never overlap inputs, except where a function says so.
 *
 * Scratch: a kernel that wants working memory says how much with
 * etrt_<op>_scratch_size() (bytes, for the given shapes); the caller passes
 * at least that much, aligned to 4 bytes (or NULL when the size is 0).
 */
#ifndef ETRT_KERNELS_H
#define ETRT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Shape of an NHWC tensor: n images of h rows, w columns, c channels. A
 * vector per image is {n, 1, 1, c}. */
typedef struct etrt_dims {
    int32_t n, h, w, c;
} etrt_dims;

/* Window of a conv2d, depthwise conv2d or pooling op. Output pixel (oy, ox)
 * reads input rows oy * stride_h - pad_top + ky for ky in [0, k_h), and
 * likewise columns. Positions outside the input are padding: the zero point
 * (a real 0) for convolutions, left out for pooling. The output size is
 * given by the caller; bottom/right padding follows from it. */
typedef struct etrt_window {
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
} etrt_window;

/* ------------------------------------------------------------------------
 * int8
 */

/* Conv2d and depthwise conv2d, int8 activations and weights, int32 bias.
 *   acc[oc] = bias[oc] + sum (x + input_offset) * w
 *   y = clamp(multiply_by_quantized_multiplier(acc, multiplier[oc], shift[oc])
 *             + output_offset, act_min, act_max)
 * Padding reads as x = -input_offset, i.e. contributes 0. */
typedef struct etrt_conv_s8_params {
    etrt_window win;
    int32_t depth_multiplier;  /* depthwise only (>= 1); ignored by conv2d */
    int32_t input_offset;      /* -input zero point, [-127, 128] */
    int32_t output_offset;     /* output zero point, [-128, 127] */
    int32_t act_min, act_max;  /* clamp, -128 <= act_min <= act_max <= 127 */
    const int32_t *multiplier; /* [out_c] Q31 multipliers, >= 0 */
    const int32_t *shift;      /* [out_c] TFLite's convention: > 0 shifts left */
} etrt_conv_s8_params;

/* in, x: NHWC input; out_c = out.c; w: [out_c][k_h][k_w][in.c];
 * bias: [out_c] or NULL; out, y: NHWC output (out.n == in.n). */
size_t etrt_conv2d_s8_scratch_size(const etrt_conv_s8_params *p, etrt_dims in, etrt_dims out);
void etrt_conv2d_s8(const etrt_conv_s8_params *p, etrt_dims in, const int8_t *x, const int8_t *w,
                    const int32_t *bias, etrt_dims out, int8_t *y, void *scratch);

/* w: [k_h][k_w][out.c] with out.c = in.c * p->depth_multiplier. */
size_t etrt_depthwise_conv2d_s8_scratch_size(const etrt_conv_s8_params *p, etrt_dims in,
                                             etrt_dims out);
void etrt_depthwise_conv2d_s8(const etrt_conv_s8_params *p, etrt_dims in, const int8_t *x,
                              const int8_t *w, const int32_t *bias, etrt_dims out, int8_t *y,
                              void *scratch);

/* Fully connected: y[b][o] from x[b][0..in_n) and w[o][0..in_n), as conv2d.
 * per_channel != 0: multiplier/shift have out_n entries; else one. */
typedef struct etrt_fc_s8_params {
    int32_t input_offset, output_offset;
    int32_t act_min, act_max;
    int32_t per_channel;
    const int32_t *multiplier;
    const int32_t *shift;
} etrt_fc_s8_params;

void etrt_fully_connected_s8(const etrt_fc_s8_params *p, int32_t batches, int32_t in_n,
                             const int8_t *x, int32_t out_n, const int8_t *w, const int32_t *bias,
                             int8_t *y);

/* Pooling: input and output share scale and zero point (TFLite's rule), so no
 * requantization; the result is clamped to [act_min, act_max].
 * Max: the largest input under the window (padding left out).
 * Average: the sum of the n inputs under the window (padding left out),
 *   divided by n rounding half away from zero: (s + n/2) / n for s > 0,
 *   (s - n/2) / n otherwise (C division). A global average pool is an average
 *   pool whose window is the whole input (k = in size, stride 1, no padding). */
typedef struct etrt_pool_s8_params {
    etrt_window win;
    int32_t act_min, act_max;
} etrt_pool_s8_params;

void etrt_max_pool_s8(const etrt_pool_s8_params *p, etrt_dims in, const int8_t *x, etrt_dims out,
                      int8_t *y);
void etrt_avg_pool_s8(const etrt_pool_s8_params *p, etrt_dims in, const int8_t *x, etrt_dims out,
                      int8_t *y);

/* Conv2d then max pool, fused (the default conv net's conv -> ReLU -> pool):
 * exactly etrt_conv2d_s8 (with p's clamp) followed by etrt_max_pool_s8 with
 * window *pool, without the conv's whole output in memory. conv: the shape
 * the conv's output would have ({in.n, h, w, out.c}); out: the pool's.
 * Scratch holds min(pool->k_h, conv.h) conv rows and the conv's own scratch.
 * Pool windows that overlap vertically (stride_h < k_h) recompute the conv
 * rows they share. */
size_t etrt_conv2d_maxpool_s8_scratch_size(const etrt_conv_s8_params *p, const etrt_window *pool,
                                           etrt_dims in, etrt_dims conv);
void etrt_conv2d_maxpool_s8(const etrt_conv_s8_params *p, const etrt_window *pool, etrt_dims in,
                            const int8_t *x, const int8_t *w, const int32_t *bias, etrt_dims conv,
                            etrt_dims out, int8_t *y, void *scratch);

/* Add of two tensors of the same shape with different scales (TFLite's
 * reference add):
 *   a = (x1 + input1_offset) << left_shift, b likewise;
 *   a' = multiply_by_quantized_multiplier_smaller_than_one(a, input1_multiplier, input1_shift);
 *   b' likewise; s = a' + b';
 *   y = clamp(multiply_by_quantized_multiplier_smaller_than_one(s, output_multiplier,
 *             output_shift) + output_offset, act_min, act_max)
 * with left_shift = 20 and, for scales s1, s2, so:
 *   twice_max = 2 * max(s1, s2); input1 real multiplier s1 / twice_max,
 *   input2 s2 / twice_max, output twice_max / ((1 << left_shift) * so).
 * y may be x1 or x2 (in place). */
typedef struct etrt_add_s8_params {
    int32_t input1_offset, input2_offset; /* -zero points */
    int32_t output_offset;                /* output zero point */
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} etrt_add_s8_params;

void etrt_add_s8(const etrt_add_s8_params *p, size_t n, const int8_t *x1, const int8_t *x2,
                 int8_t *y);

/* Softmax over the last axis (rows of depth values), TFLite's int8 reference
 * (fixed-point exp, gemmlowp-style). Output scale 1/256, zero point -128.
 * input_multiplier / input_left_shift encode beta * input_scale * 2^(31-5)
 * (etrt_softmax_s8_prepare computes them with diff_min). */
typedef struct etrt_softmax_s8_params {
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} etrt_softmax_s8_params;

void etrt_softmax_s8(const etrt_softmax_s8_params *p, int32_t rows, int32_t depth, const int8_t *x,
                     int8_t *y);

/* Pad with a constant value (the zero point for a real 0), NHWC: out.h =
 * in.h + top + bottom, out.w = in.w + left + right, channels unchanged. */
typedef struct etrt_pad_params {
    int32_t top, bottom, left, right;
} etrt_pad_params;

void etrt_pad_s8(const etrt_pad_params *p, etrt_dims in, const int8_t *x, int8_t value,
                 etrt_dims out, int8_t *y);

/* Quantize / dequantize between float and int8 (the model's input and output):
 *   q = clamp(round_half_away(x / scale) + zero_point, -128, 127)  (TFLite's Quantize)
 *   x = scale * (q - zero_point).
 * The only float math in the int8 path; no libm needed. */
void etrt_quantize_s8(size_t n, const float *x, float scale, int32_t zero_point, int8_t *q);
void etrt_dequantize_s8(size_t n, const int8_t *q, float scale, int32_t zero_point, float *x);

/* ------------------------------------------------------------------------
 * float32: the same ops. act_min/act_max clamp the result (use -FLT_MAX /
 * FLT_MAX for none, 0 / FLT_MAX for ReLU, 0 / 6 for ReLU6).
 */
typedef struct etrt_conv_f32_params {
    etrt_window win;
    int32_t depth_multiplier; /* depthwise only */
    float act_min, act_max;
} etrt_conv_f32_params;

size_t etrt_conv2d_f32_scratch_size(const etrt_conv_f32_params *p, etrt_dims in, etrt_dims out);
void etrt_conv2d_f32(const etrt_conv_f32_params *p, etrt_dims in, const float *x, const float *w,
                     const float *bias, etrt_dims out, float *y, void *scratch);
void etrt_depthwise_conv2d_f32(const etrt_conv_f32_params *p, etrt_dims in, const float *x,
                               const float *w, const float *bias, etrt_dims out, float *y);

/* The float32 conv2d + max pool, as etrt_conv2d_maxpool_s8. */
size_t etrt_conv2d_maxpool_f32_scratch_size(const etrt_conv_f32_params *p, const etrt_window *pool,
                                            etrt_dims in, etrt_dims conv);
void etrt_conv2d_maxpool_f32(const etrt_conv_f32_params *p, const etrt_window *pool, etrt_dims in,
                             const float *x, const float *w, const float *bias, etrt_dims conv,
                             etrt_dims out, float *y, void *scratch);

typedef struct etrt_act_f32 {
    float act_min, act_max;
} etrt_act_f32;

void etrt_fully_connected_f32(const etrt_act_f32 *p, int32_t batches, int32_t in_n, const float *x,
                              int32_t out_n, const float *w, const float *bias, float *y);

typedef struct etrt_pool_f32_params {
    etrt_window win;
    float act_min, act_max;
} etrt_pool_f32_params;

void etrt_max_pool_f32(const etrt_pool_f32_params *p, etrt_dims in, const float *x, etrt_dims out,
                       float *y);
void etrt_avg_pool_f32(const etrt_pool_f32_params *p, etrt_dims in, const float *x, etrt_dims out,
                       float *y);

/* y = clamp(x1 + x2); y may be x1 or x2. */
void etrt_add_f32(const etrt_act_f32 *p, size_t n, const float *x1, const float *x2, float *y);

/* Softmax over rows of depth values (max subtracted first). Uses expf: the
 * one float kernel that needs libm. */
void etrt_softmax_f32(int32_t rows, int32_t depth, const float *x, float *y);

void etrt_pad_f32(const etrt_pad_params *p, etrt_dims in, const float *x, float value,
                  etrt_dims out, float *y);

#ifdef __cplusplus
}
#endif
#endif
