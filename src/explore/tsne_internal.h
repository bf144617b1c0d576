/* The parts of et_tsne (tsne.c) that live in their own files: the neighbour
 * search (tsne_knn.c), the FFT (fft.c) and the interpolated repulsion
 * (tsne_repulsion.c). Internal; tests/test_explore.c checks each against a
 * plain reference. */
#ifndef ET_TSNE_INTERNAL_H
#define ET_TSNE_INTERNAL_H

#include "edgetrain/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hot loops get an AVX2 copy next to the baseline (SSE2) one, picked when the
 * program loads. Both give the same results: C11 mode keeps GCC from
 * contracting a * b + c into FMAs, so both do the same IEEE operations, 8 or 4
 * at a time. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define ET_TSNE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ET_TSNE_CLONES
#endif

/* ------------------------------------------------------------------------
 * Exact k nearest neighbours (tsne_knn.c).
 */
typedef struct et_neighbor {
    float dist; /* squared Euclidean distance, as the search computed it */
    int32_t j;  /* the neighbour's row */
} et_neighbor;

/* nb (n x k, caller-allocated): row i's k nearest other rows of x (n x d,
 * finite), nearest first, ties broken by the lower row index. Distances come
 * from |a|^2 + |b|^2 - 2 a.b over blocks of single-threaded sgemm calls whose
 * shapes depend on n and d only, so the result is the same for any thread
 * count; it can differ from an exact double-precision ranking where two
 * distances differ by float rounding (about 1e-6 of the squared norms).
 * Needs k < n. Polls et_interrupted() between blocks of queries: ET_EINTR.
 * ET_ENOMEM. */
et_status et_tsne_knn(const float *x, size_t n, size_t d, size_t k, et_neighbor *nb, et_error *err);

/* ------------------------------------------------------------------------
 * Complex float FFT of a power-of-two length m (fft.c), split format: real
 * parts in re, imaginary parts in im. Radix 2.
 *
 * Forward transforms leave the result in bit-reversed order and inverse
 * transforms expect that order, so a forward transform, a product in the
 * frequency domain and an inverse need no reordering. The inverse is not
 * scaled: inverse(forward(v)) = m * v.
 */
typedef struct et_fft_plan {
    size_t m;       /* transform length, a power of two >= 2 */
    float *wr, *wi; /* twiddles of each stage (see fft.c) */
} et_fft_plan;

/* ET_OK or ET_ENOMEM. et_fft_plan_free(NULL) and freeing twice are fine. */
et_status et_fft_plan_init(et_fft_plan *p, size_t m);
void et_fft_plan_free(et_fft_plan *p);

/* Transforms each of `rows` rows (length m, row starts ld values apart) in
 * place. Rows are shared out over threads; each gets the same operations
 * whatever thread runs it. */
void et_fft_rows(const et_fft_plan *p, float *re, float *im, size_t rows, size_t ld, bool inverse);

/* Transforms the w columns of a contiguous m x w row-major strip in place,
 * on the calling thread (the caller runs strips in parallel). w: a multiple
 * of 8 is fastest. */
void et_fft_strip(const et_fft_plan *p, float *re, float *im, size_t w, bool inverse);

/* The bit reversal of i among log2(m) bits: where a forward transform puts
 * frequency i. */
size_t et_fft_bitrev(size_t i, size_t m);

/* ------------------------------------------------------------------------
 * Repulsion by interpolation on a grid and FFT convolution (tsne_repulsion.c;
 * Linderman et al. 2019, "Fast interpolation-based t-SNE for improved
 * visualization of single-cell RNA-seq data", Nature Methods 16).
 */
typedef struct et_repulsion et_repulsion;

/* Workspace for n points whose interpolation nodes are at most h_max map units
 * apart (a smaller spacing is more accurate; FIt-SNE uses 1/3). ET_OK or
 * ET_ENOMEM. Release with et_repulsion_destroy (NULL is fine). */
et_status et_repulsion_create(size_t n, double h_max, et_repulsion **out);
void et_repulsion_destroy(et_repulsion *r);

/* For the n points y (n x 2, interleaved): rep[2i], rep[2i+1] receive
 * sum_{j != i} q_ij^2 (y_i - y_j), and the return value is
 * Z = sum_{i != j} q_ij, with q_ij = 1 / (1 + |y_i - y_j|^2), both
 * approximated by interpolation (see tsne_repulsion.c). The same input gives
 * the same output whatever the thread count. *rc: ET_OK, or ET_ENOMEM when a
 * larger grid could not be allocated (the return value is then 0). */
double et_repulsion_compute(et_repulsion *r, const double *y, double *rep, et_status *rc);

/* The same sums computed exactly, O(n^2); zpart (n) receives each point's
 * sum_j q_ij. */
double et_repulsion_exact(const double *y, size_t n, double *rep, double *zpart);

#endif
