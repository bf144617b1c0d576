/*
 * Training kernels: the forward and backward math of every layer, over raw
 * float32 pointers. Internal to the library (src/), used by the nn layers.
 *
 * ref/ holds the canonical implementations (suffix _ref): plain loops and
 * double accumulators, written to be read and checked rather than to be fast.
 * fast/ holds variants with exactly these signatures (suffix _fast, declared at
 * the end of this file), tested against ref/. A dense layer, for example:
 *
 *     float y[32 * 10];
 *     et_dense_forward_ref(32, 128, 10, x, w, b, y);          y = x W^T + b
 *     ...  the loss gives dy = dL/dy, shape [32][10]  ...
 *     et_dense_backward_ref(32, 128, 10, x, w, dy, dx, dw, db);
 *
 * Conventions for every kernel in this file:
 *
 * - Activations are NHWC: x[n][h][w][c], channel fastest. Their shape travels
 *   in an et_dims. Weights use TensorFlow Lite's layouts, so that export needs
 *   no transposes:
 *       conv2d     [out_c][k_h][k_w][in_c]            ("OHWI")
 *       depthwise  [k_h][k_w][in_c * multiplier]      output channel ic*multiplier + m
 *       dense      [out][in]
 * - The caller owns every buffer. Kernels never allocate, cannot fail and do
 *   not check their arguments: a layer validates its shapes once when it is
 *   built (et_window_plan does this for windowed ops) and then calls kernels
 *   freely. Outputs must not overlap inputs unless a function says they may.
 * - Backward functions receive dy = dL/dy for some scalar loss L and OVERWRITE
 *   their gradient outputs (dx, dw, dbias, dgamma, dbeta); they never
 *   accumulate. Overwriting lets a fast variant write results without first
 *   reading them; a tensor used twice (the skip input of a residual block)
 *   gets its two gradients summed by the caller with et_add_forward_ref.
 *   Every gradient output may be NULL to skip its computation (dx of the first
 *   layer, dw of a frozen layer).
 * - A bias argument may be NULL, meaning no bias (a conv followed by batch norm).
 * - Element counts are size_t; spatial sizes and channel counts are int.
 */
#ifndef ET_KERNELS_KERNELS_H
#define ET_KERNELS_KERNELS_H

#include "edgetrain/core.h"

#include <stddef.h>
#include <stdint.h>

/* Shape of an NHWC activation tensor: n images of h rows, w columns and c
 * channels. A flat vector per image (dense, softmax) is {n, 1, 1, c}. */
typedef struct et_dims {
    int n, h, w, c;
} et_dims;

/* Number of floats in a tensor of shape d. */
static inline size_t et_dims_count(const et_dims *d)
{
    return (size_t)d->n * (size_t)d->h * (size_t)d->w * (size_t)d->c;
}

/* Offset of element (n, y, x, ch) in an NHWC tensor of shape d. */
static inline size_t et_dims_index(const et_dims *d, int n, int y, int x, int ch)
{
    return (((size_t)n * (size_t)d->h + (size_t)y) * (size_t)d->w + (size_t)x) * (size_t)d->c +
           (size_t)ch;
}

/* ------------------------------------------------------------------------
 * Window geometry shared by conv2d, depthwise conv2d and pooling.
 *
 * Output pixel (oy, ox) reads input rows oy*stride_h - pad_top + ky for
 * ky in [0, k_h), and likewise columns; positions outside the input are
 * padding (zero for convolutions, skipped for pooling). The bottom and right
 * padding follow from the output size and are never needed by the kernels.
 */
typedef enum et_padding {
    ET_PADDING_VALID = 0, /* no padding: out = ceil((in - k + 1) / stride) */
    ET_PADDING_SAME = 1,  /* out = ceil(in / stride), input zero-padded as needed */
} et_padding;

typedef struct et_window {
    int k_h, k_w;           /* window (kernel) size, pixels, >= 1 */
    int stride_h, stride_w; /* step between output pixels, input pixels, >= 1 */
    int pad_top, pad_left;  /* implicit rows/columns before the input, >= 0 */
} et_window;

/* Output size and padding along one axis, TensorFlow's convention:
 *   valid: out = (in - k) / stride + 1, no padding; needs k <= in.
 *   same:  out = ceil(in / stride), total = max((out - 1) * stride + k - in, 0),
 *          pad_before = total / 2, pad_after = total - pad_before (the odd
 *          pixel goes after: bottom or right).
 * in, k and stride must be >= 1. Writes *out, *pad_before and *pad_after (each
 * may be NULL) on success; ET_EINVAL with a message in err (may be NULL) when
 * the sizes do not make a window. */
et_status et_pad_size(int in, int k, int stride, et_padding padding, int *out, int *pad_before,
                      int *pad_after, et_error *err);

/* Plans a windowed op. Reads win->k_h, k_w, stride_h, stride_w and in->n, h, w;
 * writes win->pad_top, win->pad_left and out->n, out->h, out->w. out->c is the
 * caller's: filters for conv2d, in->c * multiplier for depthwise, in->c for
 * pooling. ET_EINVAL (message in err, may be NULL) when the geometry is invalid;
 * nothing is written then. */
et_status et_window_plan(et_window *win, et_padding padding, const et_dims *in, et_dims *out,
                         et_error *err);

/* The input rows [y0, y1) and columns [x0, x1) under the window of output
 * pixel (oy, ox), clipped to the input: padding takes no part. Empty when
 * y0 >= y1 or x0 >= x1. Shared by the pooling kernels. */
typedef struct et_window_clip {
    int y0, y1, x0, x1;
} et_window_clip;

static inline et_window_clip et_window_at(const et_window *win, const et_dims *in, int oy, int ox)
{
    et_window_clip c;
    int ys = oy * win->stride_h - win->pad_top, xs = ox * win->stride_w - win->pad_left;
    c.y0 = ys < 0 ? 0 : ys;
    c.x0 = xs < 0 ? 0 : xs;
    c.y1 = ys + win->k_h > in->h ? in->h : ys + win->k_h;
    c.x1 = xs + win->k_w > in->w ? in->w : xs + win->k_w;
    return c;
}

/* ------------------------------------------------------------------------
 * Conv2d: y[n][oy][ox][oc] = bias[oc] + sum over ky, kx, ic of
 *         x[n][oy*sh - pt + ky][ox*sw - pl + kx][ic] * w[oc][ky][kx][ic]
 * (cross-correlation, as in every DNN framework). out->n == in->n and
 * (out->h, out->w) come from et_window_plan.
 *
 * in, x:   input shape and data, NHWC [in->n][in->h][in->w][in->c]
 * w:       weights [out->c][k_h][k_w][in->c]
 * bias:    [out->c] or NULL
 * out, y:  output shape and data, NHWC [in->n][out->h][out->w][out->c]
 * scratch: at least et_conv2d_scratch_size_<variant>() bytes, aligned as
 *          malloc aligns, used by one call at a time and by both passes. The
 *          ref variant needs none and accepts NULL; the parameter is there so
 *          that a fast variant (im2col + GEMM) keeps this signature.
 */
size_t et_conv2d_scratch_size_ref(const et_window *win, const et_dims *in, const et_dims *out);

void et_conv2d_forward_ref(const et_window *win, const et_dims *in, const float *x, const float *w,
                           const float *bias, const et_dims *out, float *y, void *scratch);

/* Gradients of conv2d, given x and w as in the forward pass and dy (shape of y).
 * dx: shape of x; dw: shape of w; dbias: [out->c]. Overwritten; each may be NULL. */
void et_conv2d_backward_ref(const et_window *win, const et_dims *in, const float *x, const float *w,
                            const et_dims *out, const float *dy, float *dx, float *dw, float *dbias,
                            void *scratch);

/* ------------------------------------------------------------------------
 * Depthwise conv2d: each input channel ic is convolved with its own
 * multiplier = out->c / in->c filters (out->c must be a whole multiple of
 * in->c), producing output channels ic*multiplier + m, m in [0, multiplier):
 *   y[n][oy][ox][oc] = bias[oc] + sum over ky, kx of
 *                      x[n][oy*sh - pt + ky][ox*sw - pl + kx][oc / multiplier] * w[ky][kx][oc]
 *
 * in, x:   NHWC input
 * w:       [k_h][k_w][out->c]
 * bias:    [out->c] or NULL
 * out, y:  NHWC output, out->c = in->c * multiplier
 * scratch: as for conv2d; the ref variant needs none.
 */
size_t et_depthwise_conv2d_scratch_size_ref(const et_window *win, const et_dims *in,
                                            const et_dims *out);

void et_depthwise_conv2d_forward_ref(const et_window *win, const et_dims *in, const float *x,
                                     const float *w, const float *bias, const et_dims *out,
                                     float *y, void *scratch);

/* dx: shape of x; dw: [k_h][k_w][out->c]; dbias: [out->c]. Overwritten; each may be NULL. */
void et_depthwise_conv2d_backward_ref(const et_window *win, const et_dims *in, const float *x,
                                      const float *w, const et_dims *out, const float *dy,
                                      float *dx, float *dw, float *dbias, void *scratch);

/* ------------------------------------------------------------------------
 * Dense (fully connected): y[n][o] = bias[o] + sum over i of x[n][i] * w[o][i].
 * An NHWC activation feeds it flattened: in_features = h * w * c.
 *
 * x: [batch][in_features]; w: [out_features][in_features]; bias: [out_features]
 * or NULL; y: [batch][out_features].
 */
void et_dense_forward_ref(int batch, int in_features, int out_features, const float *x,
                          const float *w, const float *bias, float *y);

/* dx: [batch][in_features]; dw: [out_features][in_features]; dbias: [out_features].
 * Overwritten; each may be NULL. */
void et_dense_backward_ref(int batch, int in_features, int out_features, const float *x,
                           const float *w, const float *dy, float *dx, float *dw, float *dbias);

/* ------------------------------------------------------------------------
 * Batch normalization, per channel over all n*h*w positions. Because NHWC
 * puts the channel last, a tensor is seen as a matrix x[rows][c] with
 * rows = n*h*w, which is also how a dense layer's output [batch][c] is seen.
 *
 *   y = gamma * (x - mean) / sqrt(var + epsilon) + beta
 *
 * Training mode normalizes with the batch's own mean and (biased) variance,
 * saves mean and 1/sqrt(var + epsilon) for the backward pass, and moves the
 * running statistics towards the batch's, Keras-style:
 *   running = momentum * running + (1 - momentum) * batch_value
 * with the unbiased variance (times rows / (rows - 1), as TensorFlow's fused
 * kernel and PyTorch do) so that inference sees an estimate of the population's.
 * Inference mode normalizes with the running statistics.
 */
typedef struct et_batchnorm_params {
    float epsilon;  /* added to the variance, > 0; Keras' default is 1e-3 */
    float momentum; /* running-statistics decay in [0, 1]; Keras' default is 0.99 */
} et_batchnorm_params;

/* The activation a fused kernel applies after its main op (fast kernels). */
typedef enum et_act {
    ET_ACT_NONE = 0,
    ET_ACT_RELU = 1,  /* max(v, 0) */
    ET_ACT_RELU6 = 2, /* min(max(v, 0), 6) */
} et_act;

/* x, y: [rows][c] (y may be x, but the backward pass needs x); gamma, beta: [c].
 * save_mean, save_invstd: [c], written: the batch mean and 1/sqrt(var + eps),
 * to be handed to et_batchnorm_backward_ref.
 * running_mean, running_var: [c], read and updated; both NULL to leave them be
 * (gradient checks, or a batch that must not count). rows >= 1. */
void et_batchnorm_forward_train_ref(const et_batchnorm_params *p, size_t rows, int c,
                                    const float *x, const float *gamma, const float *beta, float *y,
                                    float *save_mean, float *save_invstd, float *running_mean,
                                    float *running_var);

/* Inference mode. x, y: [rows][c] (y may be x); gamma, beta, running_mean,
 * running_var: [c], only read. Only p->epsilon is used. */
void et_batchnorm_forward_infer_ref(const et_batchnorm_params *p, size_t rows, int c,
                                    const float *x, const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var, float *y);

/* Gradients of training mode, where mean and variance depend on x. x, dy: [rows][c];
 * gamma, save_mean, save_invstd: [c] as from the forward pass.
 * dx: [rows][c]; dgamma, dbeta: [c]. Overwritten; each may be NULL. */
void et_batchnorm_backward_ref(size_t rows, int c, const float *x, const float *gamma,
                               const float *save_mean, const float *save_invstd, const float *dy,
                               float *dx, float *dgamma, float *dbeta);

/* Gradients of inference mode (a frozen batch norm, as in transfer learning):
 * the statistics are constants. Arguments as for et_batchnorm_forward_infer_ref
 * plus dy, dx: [rows][c] and dgamma, dbeta: [c]. Overwritten; each may be NULL. */
void et_batchnorm_backward_infer_ref(const et_batchnorm_params *p, size_t rows, int c,
                                     const float *x, const float *gamma, const float *running_mean,
                                     const float *running_var, const float *dy, float *dx,
                                     float *dgamma, float *dbeta);

/* ------------------------------------------------------------------------
 * Activations, element-wise over count floats. y may be x (in place) and dx
 * may be dy. The backward passes take the forward OUTPUT y, so that an
 * in-place forward is enough: the derivative is 1 where 0 < y (< 6 for relu6)
 * and 0 elsewhere, which matches TensorFlow at the kinks.
 */
void et_relu_forward_ref(size_t count, const float *x, float *y);
void et_relu_backward_ref(size_t count, const float *y, const float *dy, float *dx);
void et_relu6_forward_ref(size_t count, const float *x, float *y);
void et_relu6_backward_ref(size_t count, const float *y, const float *dy, float *dx);

/* ------------------------------------------------------------------------
 * Pooling over windows planned by et_window_plan, per channel (out->c == in->c).
 * Padded positions take no part, as in TensorFlow: a max never picks padding,
 * and an average divides by the number of input pixels inside the window.
 * A window with no input pixel at all (only possible with hand-made padding)
 * outputs 0 and passes no gradient.
 *
 * in, x: NHWC input; out, y: NHWC output [in->n][out->h][out->w][in->c].
 */
void et_maxpool_forward_ref(const et_window *win, const et_dims *in, const float *x,
                            const et_dims *out, float *y);

/* The gradient goes to the window's maximum; on a tie, to the first one in
 * row-major window order. Recomputed from x, so no indices are saved.
 * dx: shape of x, overwritten. */
void et_maxpool_backward_ref(const et_window *win, const et_dims *in, const float *x,
                             const et_dims *out, const float *dy, float *dx);

void et_avgpool_forward_ref(const et_window *win, const et_dims *in, const float *x,
                            const et_dims *out, float *y);

/* dx: shape of in, overwritten. Only shapes are needed, not x. */
void et_avgpool_backward_ref(const et_window *win, const et_dims *in, const et_dims *out,
                             const float *dy, float *dx);

/* Global average pooling: y[n][c] = mean over h, w of x[n][h][w][c].
 * x: NHWC of shape in; y: [in->n][in->c]. */
void et_global_avgpool_forward_ref(const et_dims *in, const float *x, float *y);

/* dy: [in->n][in->c]; dx: shape of in, overwritten. */
void et_global_avgpool_backward_ref(const et_dims *in, const float *dy, float *dx);

/* ------------------------------------------------------------------------
 * Element-wise add (residual connections): y = a + b over count floats.
 * y may be a or b. Backward: da = dy and db = dy (copies; either may be NULL,
 * either may be dy itself).
 */
void et_add_forward_ref(size_t count, const float *a, const float *b, float *y);
void et_add_backward_ref(size_t count, const float *dy, float *da, float *db);

/* Dropout with a caller-drawn mask (so that runs are reproducible and the
 * mask can be kept for the backward pass): y = mask[i] ? x[i] * scale : 0.
 * mask: count bytes, nonzero = keep. scale is normally 1 / (1 - rate)
 * (inverted dropout), so inference needs no rescaling. y may be x; dx may be dy.
 * Backward: dx = mask[i] ? dy[i] * scale : 0.
 */
void et_dropout_forward_ref(size_t count, const float *x, const uint8_t *mask, float scale,
                            float *y);
void et_dropout_backward_ref(size_t count, const float *dy, const uint8_t *mask, float scale,
                             float *dx);

/* ------------------------------------------------------------------------
 * Softmax cross-entropy over `classes` logits per sample, Keras' conventions:
 *
 *   p = softmax(z)
 *   t = (1 - s) * onehot(label) + s / classes         (label smoothing s)
 *   loss_i = -sum over k of t_k * log p_k
 *   loss = (1 / batch) * sum over i of weight[label_i] * loss_i
 *
 * Class weights act as per-sample weights (Keras' class_weight), and the mean
 * divides by the batch size, not by the sum of the weights: a class weight of
 * 2 counts each of that class' samples twice.
 */
typedef struct et_softmax_xent_params {
    float label_smoothing;      /* s in [0, 1); 0 = plain one-hot targets */
    const float *class_weights; /* [classes], borrowed; NULL = all 1 */
} et_softmax_xent_params;

/* logits: [batch][classes]; labels: [batch], each in [0, classes);
 * probs: [batch][classes], written with the softmax (for accuracy and for the
 * backward pass). Returns the mean weighted loss (computed in double, with a
 * log-sum-exp that cannot overflow). batch >= 1, classes >= 1. */
double et_softmax_xent_forward_ref(const et_softmax_xent_params *p, int batch, int classes,
                                   const float *logits, const int32_t *labels, float *probs);

/* dlogits = d loss / d logits = weight[label_i] * (p - t) / batch, [batch][classes],
 * overwritten. probs as written by the forward pass; dlogits may be probs. */
void et_softmax_xent_backward_ref(const et_softmax_xent_params *p, int batch, int classes,
                                  const float *probs, const int32_t *labels, float *dlogits);

/* ------------------------------------------------------------------------
 * Fast variants (src/kernels/fast): the same signatures and contracts as the
 * _ref functions above, with these differences.
 *
 * - Speed: conv2d and dense run on OpenBLAS's cblas_sgemm (conv2d through
 *   im2col, or directly when 1x1 stride 1), except a conv2d on at most 4 input
 *   channels or with at most 8,192 weights, which runs hand-blocked direct
 *   loops (built for AVX2 + FMA too, used where the CPU has them); the others
 *   are OpenMP-parallel loops over contiguous channels that the compiler
 *   vectorises. They use the OpenMP threads of the calling thread
 *   (omp_set_num_threads, OMP_NUM_THREADS).
 * - Rounding: most sums are accumulated in float and in another order (GEMM
 *   blocks its sums; batch norm's sums stay in double), so results agree with
 *   ref/ to about 1e-5 relative to the size of the values summed, not bit for
 *   bit. Element-wise ops, max pooling (both passes) and global average
 *   pooling's forward pass give ref/'s bits exactly.
 * - Reproducibility: for given shapes and inputs, the results are bit-identical
 *   whatever the number of OpenMP threads. Work is cut into pieces fixed by the
 *   shapes alone and partial sums are added in a fixed order. The GEMM kernels
 *   set OpenBLAS to one thread (openblas_set_num_threads(1), process-wide, on
 *   every call) and parallelise over their own fixed pieces instead. Across
 *   machines the bits may differ: OpenBLAS picks its kernels by CPU, and so
 *   do the direct conv loops and batch norm's loops (fused multiply-adds
 *   with AVX2 + FMA).
 * - Scratch: conv2d and depthwise need scratch memory; ask
 *   *_scratch_size_fast (it differs from ref's 0) and pass at least that many
 *   bytes, aligned as malloc aligns, used by one call at a time and by both
 *   passes. It grows with the batch only up to 16 images (the batch is cut
 *   into at most 16 groups of consecutive images, one slice of scratch each):
 *       conv2d     out->c*K + groups * (C + out->c*K + out->c) floats, where
 *                  P is out->h*out->w, K is k_h*k_w*in->c and C is the
 *                  larger of what x needs, P*K (im2col) or for the direct
 *                  loops Hp*Wp*in->c (the padded image, Hp = (out->h-1)*
 *                  stride_h + k_h, likewise Wp), and what dx needs: for
 *                  stride 1, (in->h+k_h-1)*(in->w+k_w-1)*out->c (padded dy)
 *                  when the conv has at most 8,192 weights and at least 8
 *                  input channels, else in->h*in->w*k_h*k_w*out->c (im2col
 *                  of dy); for other strides P*K; out->c*K and C drop out
 *                  for a 1x1 stride-1 conv
 *       depthwise  groups * (k_h*k_w*out->c + out->c) floats
 *   with groups = min(in->n, 16), and for conv2d also at most
 *   max(1, 2^24 / C), so that the im2col buffers stay within 64 MiB
 *   unless one image alone needs more. The forward passes use only part of
 *   it (depthwise forward none, so NULL is fine there).
 */
size_t et_conv2d_scratch_size_fast(const et_window *win, const et_dims *in, const et_dims *out);
void et_conv2d_forward_fast(const et_window *win, const et_dims *in, const float *x, const float *w,
                            const float *bias, const et_dims *out, float *y, void *scratch);
void et_conv2d_backward_fast(const et_window *win, const et_dims *in, const float *x,
                             const float *w, const et_dims *out, const float *dy, float *dx,
                             float *dw, float *dbias, void *scratch);

/* Conv2d then ReLU in one pass, for a conv whose output only feeds a ReLU:
 * y = max(conv2d(x), 0), the bits of et_conv2d_forward_fast followed by
 * et_relu_forward_fast, without a second pass over y. Same arguments and
 * scratch as et_conv2d_forward_fast; the backward pass is
 * et_relu_backward_fast then et_conv2d_backward_fast. */
void et_conv2d_relu_forward_fast(const et_window *win, const et_dims *in, const float *x,
                                 const float *w, const float *bias, const et_dims *out, float *y,
                                 void *scratch);

/* Conv2d, ReLU and a max pool of the result in one pass, for a conv whose
 * output only feeds a ReLU whose output only feeds the pool: y as
 * et_conv2d_relu_forward_fast writes it and pool_y = the pool of y over
 * pool_win, shape pool_out, computed a few images at a time while they are in
 * cache; the bits of et_conv2d_relu_forward_fast then
 * et_maxpool_forward_fast. pool_arg: NULL, or (for windows of at most 254
 * pixels) one byte per element of pool_y, written for the backward pass
 * below: which pixel of its window held the maximum, or 255 when that
 * maximum is not > 0. Scratch as for et_conv2d_forward_fast. */
void et_conv2d_relu_maxpool_forward_fast(const et_window *win, const et_dims *in, const float *x,
                                         const float *w, const float *bias, const et_dims *out,
                                         float *y, const et_window *pool_win,
                                         const et_dims *pool_out, float *pool_y, uint8_t *pool_arg,
                                         void *scratch);

/* The backward passes of a max pool, the ReLU before it and the conv2d before
 * that, in one, for a conv whose output only feeds the ReLU and a ReLU whose
 * output only feeds the pool: the gradient of the conv's output is formed a
 * few images at a time in scratch, from pool_dy, and used at once, rather
 * than written to memory and read back. The bits of
 * et_maxpool_relu_backward_fast then et_conv2d_backward_fast.
 *   y:                  the ReLU's output (the pool's input), shape out;
 *                       not read (may be NULL) when pool_arg is given
 *   pool_arg:           NULL, or the argmax bytes of the forward pass above
 *                       for these very y, which spare reading y
 *   pool_win, pool_out: the pool's window and output shape (pool_out->c ==
 *                       out->c, pool_out->n == in->n)
 *   pool_dy:            the gradient of the pool's output, shape pool_out
 * The other arguments are et_conv2d_backward_fast's; scratch: at least
 * et_conv2d_relu_maxpool_scratch_size_fast() bytes, which is
 * et_conv2d_scratch_size_fast() plus up to one batch of the conv's output. */
size_t et_conv2d_relu_maxpool_scratch_size_fast(const et_window *win, const et_dims *in,
                                                const et_dims *out);
void et_conv2d_relu_maxpool_backward_fast(const et_window *win, const et_dims *in, const float *x,
                                          const float *w, const et_dims *out, const float *y,
                                          const uint8_t *pool_arg, const et_window *pool_win,
                                          const et_dims *pool_out, const float *pool_dy, float *dx,
                                          float *dw, float *dbias, void *scratch);

size_t et_depthwise_conv2d_scratch_size_fast(const et_window *win, const et_dims *in,
                                             const et_dims *out);
void et_depthwise_conv2d_forward_fast(const et_window *win, const et_dims *in, const float *x,
                                      const float *w, const float *bias, const et_dims *out,
                                      float *y, void *scratch);
void et_depthwise_conv2d_backward_fast(const et_window *win, const et_dims *in, const float *x,
                                       const float *w, const et_dims *out, const float *dy,
                                       float *dx, float *dw, float *dbias, void *scratch);

void et_dense_forward_fast(int batch, int in_features, int out_features, const float *x,
                           const float *w, const float *bias, float *y);
void et_dense_backward_fast(int batch, int in_features, int out_features, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *dbias);

void et_batchnorm_forward_train_fast(const et_batchnorm_params *p, size_t rows, int c,
                                     const float *x, const float *gamma, const float *beta,
                                     float *y, float *save_mean, float *save_invstd,
                                     float *running_mean, float *running_var);
void et_batchnorm_forward_infer_fast(const et_batchnorm_params *p, size_t rows, int c,
                                     const float *x, const float *gamma, const float *beta,
                                     const float *running_mean, const float *running_var, float *y);
void et_batchnorm_backward_fast(size_t rows, int c, const float *x, const float *gamma,
                                const float *save_mean, const float *save_invstd, const float *dy,
                                float *dx, float *dgamma, float *dbeta);
void et_batchnorm_backward_infer_fast(const et_batchnorm_params *p, size_t rows, int c,
                                      const float *x, const float *gamma, const float *running_mean,
                                      const float *running_var, const float *dy, float *dx,
                                      float *dgamma, float *dbeta);

/* Batch norm and the activation after it in one kernel, for a batch norm
 * whose output only feeds that ReLU or ReLU6 (MobileNet's conv -> batch norm
 * -> ReLU6): the bits of the batch-norm kernel above, then
 * et_relu_forward_fast or et_relu6_forward_fast over y (act ET_ACT_NONE: the
 * batch norm alone), without a second pass over y. Arguments as for
 * et_batchnorm_forward_train_fast / et_batchnorm_forward_infer_fast. */
void et_batchnorm_act_forward_train_fast(const et_batchnorm_params *p, et_act act, size_t rows,
                                         int c, const float *x, const float *gamma,
                                         const float *beta, float *y, float *save_mean,
                                         float *save_invstd, float *running_mean,
                                         float *running_var);
void et_batchnorm_act_forward_infer_fast(const et_batchnorm_params *p, et_act act, size_t rows,
                                         int c, const float *x, const float *gamma,
                                         const float *beta, const float *running_mean,
                                         const float *running_var, float *y);

/* The backward passes of the activation and of the training-mode batch norm
 * before it, in one: dy is the gradient of the activation's output, and the
 * results are the bits of et_relu(6)_backward_fast then
 * et_batchnorm_backward_fast. y: NULL, or the activation's output, from which
 * the activation's mask is then taken; when NULL, the mask is recomputed from
 * x with the forward pass's arithmetic, which spares reading y, and x, gamma,
 * beta, save_mean and save_invstd must be those of the forward pass
 * (et_batchnorm_act_forward_train_fast). beta is read only then, y and beta
 * not for ET_ACT_NONE. dx, dgamma, dbeta as for et_batchnorm_backward_fast. */
void et_batchnorm_act_backward_fast(et_act act, size_t rows, int c, const float *x, const float *y,
                                    const float *gamma, const float *beta, const float *save_mean,
                                    const float *save_invstd, const float *dy, float *dx,
                                    float *dgamma, float *dbeta);

void et_relu_forward_fast(size_t count, const float *x, float *y);
void et_relu_backward_fast(size_t count, const float *y, const float *dy, float *dx);
void et_relu6_forward_fast(size_t count, const float *x, float *y);
void et_relu6_backward_fast(size_t count, const float *y, const float *dy, float *dx);

void et_maxpool_forward_fast(const et_window *win, const et_dims *in, const float *x,
                             const et_dims *out, float *y);
void et_maxpool_backward_fast(const et_window *win, const et_dims *in, const float *x,
                              const et_dims *out, const float *dy, float *dx);
/* Max pooling's backward pass, then the backward pass of the ReLU whose output
 * x is (the pool's only input): dx = relu_backward(x, maxpool_backward(x, dy)),
 * the bits of et_maxpool_backward_fast then et_relu_backward_fast, in one pass
 * over dx when the windows do not overlap. */
void et_maxpool_relu_backward_fast(const et_window *win, const et_dims *in, const float *x,
                                   const et_dims *out, const float *dy, float *dx);
void et_avgpool_forward_fast(const et_window *win, const et_dims *in, const float *x,
                             const et_dims *out, float *y);
void et_avgpool_backward_fast(const et_window *win, const et_dims *in, const et_dims *out,
                              const float *dy, float *dx);
void et_global_avgpool_forward_fast(const et_dims *in, const float *x, float *y);
void et_global_avgpool_backward_fast(const et_dims *in, const float *dy, float *dx);

void et_add_forward_fast(size_t count, const float *a, const float *b, float *y);
void et_add_backward_fast(size_t count, const float *dy, float *da, float *db);
void et_dropout_forward_fast(size_t count, const float *x, const uint8_t *mask, float scale,
                             float *y);
void et_dropout_backward_fast(size_t count, const float *dy, const uint8_t *mask, float scale,
                              float *dx);

#endif
