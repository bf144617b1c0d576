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

#endif
