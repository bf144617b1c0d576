/* GEMM through OpenBLAS, cut into tiles fixed by the shapes, and the ordered
 * partial sums that the fast kernels' reductions are made of. */
#include "kernels/fast/fast_internal.h"

#include <cblas.h>

/* A tile gets at least this many multiply-adds (about 0.1 ms of one core), so
 * small products run as one call without waking threads. */
#define GEMM_TILE_WORK (1L << 20)
/* Tiles are whole multiples of this many rows or columns, a multiple of every
 * OpenBLAS sgemm micro-kernel's size, so that splitting adds no edge cases. */
#define GEMM_TILE_UNIT 16

void et_fast_blas_single_thread(void)
{
    /* A cheap check, done on every call rather than once, so that a later
     * openblas_set_num_threads elsewhere cannot silently undo it. */
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
}

void et_fast_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                   int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    et_fast_blas_single_thread();
    const enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    const int by_rows = m >= n;
    const int len = by_rows ? m : n;
    const long units = (len + GEMM_TILE_UNIT - 1) / GEMM_TILE_UNIT;
    long tiles = (long)m * n * (k > 0 ? k : 1) / GEMM_TILE_WORK;
    if (tiles > ET_FAST_GROUPS)
        tiles = ET_FAST_GROUPS;
    if (tiles > units)
        tiles = units;
    if (tiles < 1)
        tiles = 1;
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1)
    for (long t = 0; t < tiles; t++) {
        int s0 = (int)et_fast_split((size_t)units, (size_t)tiles, (size_t)t) * GEMM_TILE_UNIT;
        int s1 = (int)et_fast_split((size_t)units, (size_t)tiles, (size_t)t + 1) * GEMM_TILE_UNIT;
        if (s1 > len)
            s1 = len;
        if (by_rows) {
            /* Rows s0..s1 of C need rows s0..s1 of op(A). */
            const float *at = trans_a ? a + s0 : a + (size_t)s0 * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, s1 - s0, n, k, alpha, at, lda, b, ldb, beta,
                        c + (size_t)s0 * ldc, ldc);
        } else {
            /* Columns s0..s1 of C need columns s0..s1 of op(B). */
            const float *bt = trans_b ? b + (size_t)s0 * ldb : b + s0;
            cblas_sgemm(CblasRowMajor, ta, tb, m, s1 - s0, k, alpha, a, lda, bt, ldb, beta, c + s0,
                        ldc);
        }
    }
}

void et_fast_sum_parts(size_t nparts, size_t count, size_t stride, const float *parts, float *out)
{
#pragma omp parallel for schedule(dynamic, 512) if (nparts * count > ET_FAST_PAR_MIN)
    for (size_t j = 0; j < count; j++) {
        double acc = 0.0;
        for (size_t p = 0; p < nparts; p++)
            acc += parts[p * stride + j];
        out[j] = (float)acc;
    }
}

void et_fast_colsum(size_t r0, size_t r1, int c, const float *a, float *part)
{
    /* Eight channels at a time: a fixed count keeps the sums in registers
     * (a block of up to 64 was kept in memory). Each channel is still one
     * sum over the rows in order. */
    int c0 = 0;
    for (; c0 + 8 <= c; c0 += 8) {
        double acc[8] = {0};
        for (size_t r = r0; r < r1; r++) {
            const float *row = a + r * (size_t)c + c0;
#pragma omp simd
            for (int j = 0; j < 8; j++)
                acc[j] += row[j];
        }
        for (int j = 0; j < 8; j++)
            part[c0 + j] = (float)acc[j];
    }
    for (; c0 < c; c0++) {
        double acc = 0;
        for (size_t r = r0; r < r1; r++)
            acc += a[r * (size_t)c + c0];
        part[c0] = (float)acc;
    }
}
