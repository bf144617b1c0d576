/* Exact k nearest neighbours for t-SNE, by blocks of matrix products.
 *
 * |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, and the a.b of a block of queries
 * against a block of candidates is one sgemm: the n^2 d multiply-adds run at
 * BLAS speed (about 20x the plain loop this replaces; 70,000 x 50 in seconds).
 * Each query then keeps its k best in a max-heap, looking only at the rare
 * candidates that beat its current k-th distance.
 *
 * Why exact rather than approximate (random-projection trees, NN-descent):
 * at n = 70,000 the products take a few seconds, a small part of a t-SNE run,
 * and exact results have no tuning knobs and no build-order effects.
 *
 * Reproducibility: blocks are fixed by n alone; every sgemm call sees the
 * same operands whatever the thread count, and OpenBLAS runs single-threaded
 * inside our OpenMP loop (et_fast_blas_single_thread), so a block's distances
 * are bit-identical on every run. Each query's heap is filled by one thread in
 * candidate order.
 */
#include "explore/tsne_internal.h"

#include "kernels/fast/fast_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define KNN_QB 128  /* queries per block */
#define KNN_CB 512  /* candidates per block: a 128 x 512 product is 256 KiB */
#define KNN_SCAN 32 /* distances tested together before any is looked at alone */

static int nb_less(et_neighbor a, et_neighbor b)
{
    return a.dist < b.dist || (a.dist == b.dist && a.j < b.j);
}

/* Puts the k smallest of v[0 .. len-1] (by (dist, j), a total order, so the
 * set is unique) in v[0 .. k-1], in no particular order: quickselect. */
static void select_k(et_neighbor *v, size_t len, size_t k)
{
    size_t lo = 0, hi = len; /* the k-th smallest lies in v[lo .. hi-1] */
    while (hi - lo > 1) {
        /* Median of three as the pivot, then a Lomuto-style split. */
        size_t mid = lo + (hi - lo) / 2;
        et_neighbor a = v[lo], b = v[mid], c = v[hi - 1], pivot;
        if (nb_less(a, b))
            pivot = nb_less(b, c) ? b : nb_less(a, c) ? c : a;
        else
            pivot = nb_less(a, c) ? a : nb_less(b, c) ? c : b;
        size_t store = lo;
        for (size_t i = lo; i < hi; i++)
            if (nb_less(v[i], pivot)) {
                et_neighbor t = v[i];
                v[i] = v[store];
                v[store++] = t;
            }
        /* v[lo .. store-1] < pivot <= v[store .. hi-1]; pivot itself is in the right part. */
        if (k <= store) {
            hi = store;
            continue;
        }
        for (size_t i = store; i < hi; i++) /* move the pivot to v[store] */
            if (v[i].j == pivot.j) {
                v[i] = v[store];
                v[store] = pivot;
                break;
            }
        if (k == store + 1)
            return;
        lo = store + 1;
    }
}

/* One query's candidates: every candidate better than the k-th best so far is
 * appended; when the buffer is full, quickselect keeps the k best and tightens
 * the bound. Cheaper than a heap: most candidates are appended once and never
 * moved. */
typedef struct knn_buf {
    et_neighbor *v; /* KNN_BUF_FACTOR * k entries */
    size_t len;
    float tau; /* the k-th best distance so far (+inf until k are seen) */
} knn_buf;

#define KNN_BUF_FACTOR 4

static int nb_cmp(const void *a, const void *b)
{
    et_neighbor x = *(const et_neighbor *)a, y = *(const et_neighbor *)b;
    return nb_less(x, y) ? -1 : nb_less(y, x) ? 1 : 0;
}

static void buf_shrink(knn_buf *b, size_t k)
{
    select_k(b->v, b->len, k);
    b->len = k;
    float worst = b->v[0].dist;
    for (size_t i = 1; i < k; i++)
        worst = b->v[i].dist > worst ? b->v[i].dist : worst;
    b->tau = worst;
}

/* Whether any of the KNN_SCAN distances d[] is <= tau. Eight running minima
 * in a fixed-size loop: GCC vectorises this at -O2 and keeps it in registers
 * (an OpenMP simd min-reduction spilled to the stack on every step). */
static int chunk_reaches(const float *d, float tau)
{
    float lo[8];
    for (int c = 0; c < 8; c++)
        lo[c] = d[c];
    for (int t = 8; t < KNN_SCAN; t += 8)
        for (int c = 0; c < 8; c++)
            lo[c] = d[t + c] < lo[c] ? d[t + c] : lo[c];
    int any = 0;
    for (int c = 0; c < 8; c++)
        any |= lo[c] <= tau;
    return any;
}

static void take(knn_buf *b, size_t k, float dist, size_t j, float *tau)
{
    b->v[b->len++] = (et_neighbor){dist, (int32_t)j};
    if (b->len == KNN_BUF_FACTOR * k) {
        buf_shrink(b, k);
        *tau = b->tau;
    }
}

/* Offers candidates c0 .. c0 + len - 1 with squared distances dist[] to query q.
 * A candidate that ties the bound is kept too: (dist, j) selection settles it.
 * In a chunk that holds a candidate, a bit mask (no branches) picks the ones
 * to look at: which ones pass is random, so a branch per distance would be
 * mispredicted at every pass. */
static void offer(knn_buf *b, size_t k, size_t q, size_t c0, const float *dist, size_t len)
{
    float tau = b->tau;
    size_t j = 0;
    for (; j + KNN_SCAN <= len; j += KNN_SCAN) {
        if (!chunk_reaches(dist + j, tau))
            continue;
        uint32_t mask = 0;
        for (uint32_t t = 0; t < KNN_SCAN; t++)
            mask |= (uint32_t)(dist[j + t] <= tau) << t;
        while (mask) {
            size_t t = j + (size_t)__builtin_ctz(mask);
            mask &= mask - 1;
            if (dist[t] <= tau && c0 + t != q) /* tau may have dropped since */
                take(b, k, dist[t], c0 + t, &tau);
        }
    }
    for (; j < len; j++)
        if (dist[j] <= tau && c0 + j != q)
            take(b, k, dist[j], c0 + j, &tau);
}

et_status et_tsne_knn(const float *x, size_t n, size_t d, size_t k, et_neighbor *nb, et_error *err)
{
    /* Each query row is [-2 x_i, 1, |x_i|^2] and each candidate row
     * [x_j, |x_j|^2, 1], so one product gives |x_i|^2 + |x_j|^2 - 2 x_i.x_j, the
     * squared distance, with no pass over the block afterwards. The data are
     * centred first: smaller norms, less cancellation. */
    size_t da = d + 2;
    float *xq = malloc(n * da * sizeof *xq), *xc = malloc(n * da * sizeof *xc);
    double *mean = calloc(d, sizeof *mean);
    if (!xq || !xc || !mean) {
        free(xq), free(xc), free(mean);
        return et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for the neighbour search");
    }
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < d; t++)
            mean[t] += x[i * d + t];
    for (size_t t = 0; t < d; t++)
        mean[t] /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t t = 0; t < d; t++) {
            float v = (float)(x[i * d + t] - mean[t]);
            xq[i * da + t] = -2 * v;
            xc[i * da + t] = v;
            s += (double)v * v;
        }
        xq[i * da + d] = 1, xq[i * da + d + 1] = (float)s;
        xc[i * da + d] = (float)s, xc[i * da + d + 1] = 1;
    }
    free(mean);

    et_fast_blas_single_thread();
    /* One parallel region for the whole search: a block is tens of
     * milliseconds, and on a busy machine every extra barrier costs a thread's
     * time slice. Threads stop taking blocks once interrupted; thread 0 draws
     * the progress bar. */
    ptrdiff_t nblk = (ptrdiff_t)((n + KNN_QB - 1) / KNN_QB);
    size_t done = 0;
    int failed = 0, stop = 0;
    et_progress pg;
    et_progress_begin(&pg, "t-SNE neighbours", n);
#pragma omp parallel
    {
        float *g = malloc((size_t)KNN_QB * KNN_CB * sizeof *g);
        et_neighbor *store = malloc((size_t)KNN_QB * KNN_BUF_FACTOR * k * sizeof *store);
        if (!g || !store) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (ptrdiff_t b = 0; b < nblk; b++) {
            int halt;
#pragma omp atomic read
            halt = stop;
            if (halt || !g || !store)
                continue;
            if (et_interrupted()) {
#pragma omp atomic write
                stop = 1;
                continue;
            }
            size_t q0 = (size_t)b * KNN_QB, qn = q0 + KNN_QB < n ? KNN_QB : n - q0;
            knn_buf buf[KNN_QB];
            for (size_t q = 0; q < qn; q++)
                buf[q] = (knn_buf){store + q * KNN_BUF_FACTOR * k, 0, INFINITY};
            for (size_t c0 = 0; c0 < n; c0 += KNN_CB) {
                size_t cn = c0 + KNN_CB < n ? KNN_CB : n - c0;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qn, (int)cn, (int)da,
                            1.0f, xq + q0 * da, (int)da, xc + c0 * da, (int)da, 0.0f, g, (int)cn);
                for (size_t q = 0; q < qn; q++)
                    offer(&buf[q], k, q0 + q, c0, g + q * cn, cn);
            }
            for (size_t q = 0; q < qn; q++) {
                buf_shrink(&buf[q], k);
                qsort(buf[q].v, k, sizeof *buf[q].v, nb_cmp);
                memcpy(nb + (q0 + q) * k, buf[q].v, k * sizeof *nb);
            }
            size_t now;
#pragma omp atomic capture
            now = done += qn;
            if (omp_get_thread_num() == 0)
                et_progress_update(&pg, now);
        }
        free(g), free(store);
    }
    et_status rc = ET_OK;
    if (stop)
        rc = et_error_set(err, ET_EINTR, "t-SNE interrupted");
    else if (failed)
        rc = et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for the neighbour search");
    et_progress_end(&pg);
    free(xq), free(xc);
    return rc;
}
