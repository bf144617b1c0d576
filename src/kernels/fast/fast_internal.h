/* Helpers shared by the fast kernels (src/kernels/fast). Not part of any API.
 *
 * Reproducibility rule of every fast kernel: a result may depend on the shapes,
 * never on the number of threads. So work is cut into pieces whose boundaries
 * are a function of the shapes alone; a reduction (a sum over the batch, over
 * rows) gets one partial per piece, and the partials are added in piece order
 * by one thread. Which thread computes which piece does not matter. No OpenMP
 * `reduction` clause is used: its combination order follows the thread count.
 *
 * Loops are scheduled dynamically, in small chunks. On a machine whose cores
 * do not run at the same speed (a virtual machine whose vCPUs share physical
 * cores, other busy processes), a static split makes every call wait for the
 * slowest core: measured on a 16-vCPU VM, depthwise forward on 2 threads went
 * from 1.1x to 1.9x of one thread's speed with dynamic chunks.
 */
#ifndef ET_KERNELS_FAST_INTERNAL_H
#define ET_KERNELS_FAST_INTERNAL_H

#include "kernels/kernels.h"

#include <stddef.h>

/* Windowed ops over a batch (conv2d, depthwise) split it into at most this many
 * groups of consecutive images. Each group owns one slice of the scratch memory
 * (an im2col buffer, partial weight gradients), so this also caps the number of
 * threads such a kernel can use. */
#define ET_FAST_GROUPS 16

/* Row reductions without scratch (batch norm) cut the rows into at most this
 * many chunks and process channels in blocks of ET_FAST_CBLOCK, so that the
 * partial sums fit in a fixed array on the stack (32 x 64 doubles = 16 KiB). */
#define ET_FAST_CHUNKS 32
#define ET_FAST_CBLOCK 64

/* Element-wise loops go parallel only above this many elements; below it the
 * cost of waking threads exceeds the work. */
#define ET_FAST_PAR_MIN 32768

/* Number of groups for a batch of n images: min(n, ET_FAST_GROUPS). */
static inline int et_fast_groups(int n)
{
    return n < ET_FAST_GROUPS ? n : ET_FAST_GROUPS;
}

/* First item of piece g when `count` items are cut into `pieces` near-equal
 * consecutive pieces; piece g is [et_fast_split(count, pieces, g),
 * et_fast_split(count, pieces, g + 1)). */
static inline size_t et_fast_split(size_t count, size_t pieces, size_t g)
{
    return count / pieces * g + (count % pieces < g ? count % pieces : g);
}

/* The output position whose window puts tap k on input position i, or -1 when
 * none does (the tap falls between strides or past the output). */
static inline int et_fast_tap_output(int i, int k, int pad, int stride, int out_len)
{
    int t = i + pad - k;
    if (t < 0 || t % stride != 0)
        return -1;
    t /= stride;
    return t < out_len ? t : -1;
}

/* Makes OpenBLAS single-threaded (if it is not already). The GEMM kernels call
 * it before any sgemm: they run many single-threaded sgemm calls in parallel
 * under OpenMP over pieces fixed by the shapes, which is what makes their
 * results independent of the thread count. OpenBLAS's own threads would
 * otherwise compete with OpenMP's (Debian's libopenblas is the pthread build,
 * which does not see that it is called inside an OpenMP region). Process-wide:
 * any other OpenBLAS user in the process also runs single-threaded. */
void et_fast_blas_single_thread(void);

/* C[M][N] = alpha * op(A) op(B) + beta * C, row-major, through cblas_sgemm.
 * trans_a/trans_b: 0 = as stored, 1 = transposed. The product is cut along M
 * or N (never K, so no sum is split) into tiles fixed by M, N and K, computed
 * in parallel. */
void et_fast_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* out[j] = sum over p of parts[p * stride + j], p = 0 .. nparts - 1 in order,
 * accumulated in double; j in [0, count). Parallel over j. */
void et_fast_sum_parts(size_t nparts, size_t count, size_t stride, const float *parts, float *out);

/* part[j] = sum over rows r in [r0, r1) of a[r * c + j], in row order, for j in
 * [0, c). Vectorised over j. */
void et_fast_colsum(size_t r0, size_t r1, int c, const float *a, float *part);

/* conv2d's direct loops over one image (conv2d_direct.c), for inputs of few
 * channels and at most ET_FAST_DIRECT_MAX_TAPS taps (K = k_h * k_w * ic).
 * The image is zero-padded so that every window lies inside it: xp is
 * [hp][wp][ic], output pixel (oy, ox) reads rows oy * stride_h + ky and
 * columns ox * stride_w + kx of it. */
#define ET_FAST_DIRECT_MAX_TAPS 1024
typedef struct et_fast_direct {
    int k_h, k_w, stride_h, stride_w;
    int ic, wp;       /* input channels; columns of the padded image */
    int out_h, out_w; /* output pixels */
    int oc;           /* output channels */
} et_fast_direct;

/* y[p][oc] of one image, [out_h * out_w][oc]: bias (NULL: none) plus the sum
 * over the taps in [ky][kx][ic] order, then max(., 0) when relu. wt: the
 * weights transposed to [K][oc]. */
void et_fast_direct_forward(const et_fast_direct *d, const float *xp, const float *wt,
                            const float *bias, int relu, float *y);

/* dwp[oc][K] = the sum over the image's output pixels, in order, of
 * xp[tap] * dy[p][oc]; added onto dwp's values when add. */
void et_fast_direct_weight_grad(const et_fast_direct *d, const float *xp, const float *dy, int add,
                                float *dwp);

/* et_maxpool_forward_fast and et_maxpool_relu_backward_fast on the calling
 * thread alone, with the same bits: for a kernel that runs them inside its
 * own parallel region, on its own share of the batch (in->n, out->n: that
 * share). */
void et_fast_maxpool_forward_serial(const et_window *win, const et_dims *in, const float *x,
                                    const et_dims *out, float *y);
void et_fast_maxpool_relu_backward_serial(const et_window *win, const et_dims *in, const float *x,
                                          const et_dims *out, const float *dy, float *dx);

/* Max pooling of a ReLU's output with the argmax kept (maxpool_relu_arg.c),
 * for the fused conv2d -> ReLU -> max pool kernels, on the calling thread.
 * arg: one byte per pooled element, the first maximum's position in its
 * window (clipped to the input, row-major), or ET_FAST_ARG_NONE when that
 * maximum is not > 0. Only for windows of fewer than ET_FAST_ARG_NONE pixels
 * (et_fast_arg_fits). Forward: y as et_maxpool_forward_fast writes it, and
 * arg. Backward: dx as et_maxpool_relu_backward_fast writes it, from arg
 * instead of the pool's input. */
#define ET_FAST_ARG_NONE 255
int et_fast_arg_fits(const et_window *win);
void et_fast_maxpool_relu_arg_forward_serial(const et_window *win, const et_dims *in,
                                             const float *x, const et_dims *out, float *y,
                                             uint8_t *arg);
void et_fast_maxpool_relu_arg_backward_serial(const et_window *win, const et_dims *in,
                                              const et_dims *out, const uint8_t *arg,
                                              const float *dy, float *dx);

/* Whether the kernels use their AVX2 + FMA builds: on x86-64 CPUs that have
 * both, unless et_fast_set_avx2(0) turned them off. They agree with the
 * portable builds to rounding (fused multiply-adds round once per term);
 * tests turn them off to check the portable builds too. Process-wide. */
int et_fast_avx2(void);
void et_fast_set_avx2(int allowed);

#endif
