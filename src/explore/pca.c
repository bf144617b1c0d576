/* PCA by randomized subspace iteration (Halko, Martinsson & Tropp 2011, alg. 4.4).
 *
 * With Xc the centred n x d data and l = k + 10 columns:
 *   Q = orth(Xc G)                  G: d x l Gaussian, seeded
 *   repeat q times: Q = orth(Xc orth(Xc' Q))
 *   Z = Xc' Q                       (= B', B = Q' Xc is l x d)
 *   B B' = Z'Z = U S^2 U'           l x l, Jacobi
 *   V = Z U S^-1                    d x k principal directions
 *   out = Xc V                      exact projection on the directions found
 * Nothing d x d or n x n is formed, so d in the tens of thousands is fine; each
 * pass over the data costs n * d * l multiply-adds. The centring is done on the
 * fly (x - mean), never by copying the data.
 *
 * orth() is SVQB (see orthonormalize): two parallel passes over the matrix
 * instead of one synchronisation per column as in Gram-Schmidt.
 *
 * Reproducibility: every output element of the big products is summed by one
 * thread in a fixed order, and the Gram matrices are summed over fixed chunks
 * of rows, chunks in order, so the result does not depend on the thread count.
 */
#include "edgetrain/explore.h"

#include "core/rng.h"
#include "explore/explore_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OVERSAMPLE 10
#define POWER_ITERS 3
#define LMAX (ET_PCA_MAX_COMPONENTS + OVERSAMPLE)
#define ROW_BLOCK 32  /* rows of x sharing one pass over a block of W */
#define COL_BLOCK 256 /* columns of x per block (a 256 x l block of W is <= 60 KiB) */
#define TCOL_BLOCK 64 /* columns of Z one task accumulates in X'Q */
#define CHUNK 1024    /* rows per partial sum in reductions over n or d */

et_pca_options et_pca_defaults(void)
{
    et_pca_options o = {.components = 2, .seed = 1};
    return o;
}

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Column means of x, in double, stored as float for the on-the-fly centring. */
static void column_means(const float *x, size_t n, size_t d, float *mu)
{
    ptrdiff_t blocks = (ptrdiff_t)((d + COL_BLOCK - 1) / COL_BLOCK);
#pragma omp parallel for schedule(dynamic, 1)
    for (ptrdiff_t b = 0; b < blocks; b++) {
        size_t j0 = (size_t)b * COL_BLOCK, j1 = min_sz(d, j0 + COL_BLOCK);
        double acc[COL_BLOCK] = {0};
        for (size_t i = 0; i < n; i++) {
            const float *xr = x + i * d;
            for (size_t j = j0; j < j1; j++)
                acc[j - j0] += xr[j];
        }
        for (size_t j = j0; j < j1; j++)
            mu[j] = (float)(acc[j - j0] / (double)n);
    }
}

/* y (n x l) = (x - 1 mu') w, with w d x l. */
static void mul_xw(const float *x, const float *mu, size_t n, size_t d, const float *w, size_t l,
                   float *y)
{
    ptrdiff_t blocks = (ptrdiff_t)((n + ROW_BLOCK - 1) / ROW_BLOCK);
#pragma omp parallel for schedule(dynamic, 1)
    for (ptrdiff_t b = 0; b < blocks; b++) {
        size_t r0 = (size_t)b * ROW_BLOCK, r1 = min_sz(n, r0 + ROW_BLOCK);
        float acc[ROW_BLOCK][LMAX];
        memset(acc, 0, sizeof acc);
        for (size_t j0 = 0; j0 < d; j0 += COL_BLOCK) {
            size_t j1 = min_sz(d, j0 + COL_BLOCK);
            for (size_t r = r0; r < r1; r++) {
                const float *xr = x + r * d;
                float *a = acc[r - r0];
                for (size_t j = j0; j < j1; j++) {
                    float v = xr[j] - mu[j];
                    const float *wj = w + j * l;
#pragma omp simd
                    for (size_t c = 0; c < l; c++)
                        a[c] += v * wj[c];
                }
            }
        }
        for (size_t r = r0; r < r1; r++)
            memcpy(y + r * l, acc[r - r0], l * sizeof(float));
    }
}

/* z (d x l) = (x - 1 mu')' q, with q n x l. */
static void mul_xtq(const float *x, const float *mu, size_t n, size_t d, const float *q, size_t l,
                    float *z)
{
    ptrdiff_t blocks = (ptrdiff_t)((d + TCOL_BLOCK - 1) / TCOL_BLOCK);
#pragma omp parallel for schedule(dynamic, 1)
    for (ptrdiff_t b = 0; b < blocks; b++) {
        size_t j0 = (size_t)b * TCOL_BLOCK, j1 = min_sz(d, j0 + TCOL_BLOCK);
        float acc[TCOL_BLOCK][LMAX];
        memset(acc, 0, sizeof acc);
        for (size_t i = 0; i < n; i++) {
            const float *xr = x + i * d;
            const float *qi = q + i * l;
            for (size_t j = j0; j < j1; j++) {
                float v = xr[j] - mu[j];
                float *a = acc[j - j0];
#pragma omp simd
                for (size_t c = 0; c < l; c++)
                    a[c] += v * qi[c];
            }
        }
        for (size_t j = j0; j < j1; j++)
            memcpy(z + j * l, acc[j - j0], l * sizeof(float));
    }
}

/* g (l x l) = a' a for a rows x l, in double. Rows are summed in fixed chunks
 * (partial: chunks x l x l doubles), the chunks in order. */
static void gram(const float *a, size_t rows, size_t l, double *partial, double *g)
{
    ptrdiff_t chunks = (ptrdiff_t)((rows + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(dynamic, 1)
    for (ptrdiff_t k = 0; k < chunks; k++) {
        double *acc = partial + (size_t)k * l * l;
        memset(acc, 0, l * l * sizeof *acc);
        size_t r1 = min_sz(rows, ((size_t)k + 1) * CHUNK);
        for (size_t r = (size_t)k * CHUNK; r < r1; r++) {
            const float *ar = a + r * l;
            for (size_t i = 0; i < l; i++) {
                double v = ar[i];
                double *gi = acc + i * l;
#pragma omp simd
                for (size_t j = 0; j <= i; j++)
                    gi[j] += v * ar[j];
            }
        }
    }
    for (size_t i = 0; i < l; i++)
        for (size_t j = 0; j <= i; j++) {
            double s = 0;
            for (ptrdiff_t k = 0; k < chunks; k++)
                s += partial[(size_t)k * l * l + i * l + j];
            g[i * l + j] = g[j * l + i] = s;
        }
}

/* Eigen-decomposition of the symmetric m x m matrix a (destroyed) by cyclic
 * Jacobi rotations: eigenvalues on a's diagonal, eigenvectors in v's columns. */
static void jacobi_eigen(double *a, double *v, size_t m)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++)
            v[i * m + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (size_t i = 0; i < m; i++) {
            diag += a[i * m + i] * a[i * m + i];
            for (size_t j = i + 1; j < m; j++)
                off += a[i * m + j] * a[i * m + j];
        }
        if (off <= 1e-30 * diag || off == 0)
            break;
        for (size_t p = 0; p + 1 < m; p++) {
            for (size_t q = p + 1; q < m; q++) {
                double apq = a[p * m + q];
                if (apq == 0)
                    continue;
                double tau = (a[q * m + q] - a[p * m + p]) / (2 * apq);
                double t = (tau >= 0 ? 1.0 : -1.0) / (fabs(tau) + sqrt(1 + tau * tau));
                double c = 1 / sqrt(1 + t * t), s = t * c;
                for (size_t k = 0; k < m; k++) { /* columns p, q of A J */
                    double akp = a[k * m + p], akq = a[k * m + q];
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < m; k++) { /* rows p, q of J' (A J) */
                    double apk = a[p * m + k], aqk = a[q * m + k];
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
                a[p * m + q] = a[q * m + p] = 0;
                for (size_t k = 0; k < m; k++) {
                    double vkp = v[k * m + p], vkq = v[k * m + q];
                    v[k * m + p] = c * vkp - s * vkq;
                    v[k * m + q] = s * vkp + c * vkq;
                }
            }
        }
    }
}

/* Orthonormalises the l columns of a (rows x l, row-major) in place: with
 * a'a = U L U', a <- a U L^-1/2 (SVQB, Stathopoulos & Wu 2002), done twice so
 * that the second pass cleans up what the first lost to rounding. Only two
 * parallel loops per pass, and directions that are not there (rank deficiency:
 * eigenvalues under float resolution) become zero columns. */
static void orthonormalize(float *a, size_t rows, size_t l, double *partial, double *g, double *u)
{
    double t[LMAX * LMAX];
    for (int pass = 0; pass < 2; pass++) {
        gram(a, rows, l, partial, g);
        jacobi_eigen(g, u, l);
        double top = 0;
        for (size_t c = 0; c < l; c++)
            top = fmax(top, g[c * l + c]);
        for (size_t c = 0; c < l; c++) {
            double lambda = g[c * l + c];
            double scale = lambda > 1e-12 * top && lambda > 0 ? 1 / sqrt(lambda) : 0;
            for (size_t i = 0; i < l; i++)
                t[i * l + c] = u[i * l + c] * scale;
        }
#pragma omp parallel for schedule(static)
        for (ptrdiff_t r = 0; r < (ptrdiff_t)rows; r++) {
            float *ar = a + (size_t)r * l;
            double row[LMAX] = {0};
            for (size_t i = 0; i < l; i++) {
                double v = ar[i];
#pragma omp simd
                for (size_t c = 0; c < l; c++)
                    row[c] += v * t[i * l + c];
            }
            for (size_t c = 0; c < l; c++)
                ar[c] = (float)row[c];
        }
    }
}

/* The first row (with its column) holding a NaN or infinity, or n when none. */
size_t et_explore_first_nonfinite(const float *x, size_t n, size_t d, size_t *col)
{
    size_t bad = n;
#pragma omp parallel for schedule(static) reduction(min : bad)
    for (ptrdiff_t i = 0; i < (ptrdiff_t)n; i++) {
        const float *xr = x + (size_t)i * d;
        for (size_t j = 0; j < d; j++)
            if (!isfinite(xr[j])) {
                if ((size_t)i < bad)
                    bad = (size_t)i;
                break;
            }
    }
    *col = 0;
    if (bad < n)
        while (isfinite(x[bad * d + *col]))
            (*col)++;
    return bad;
}

et_status et_pca(const float *x, size_t n, size_t d, const et_pca_options *opt, float *out,
                 double *variance, float *components, et_error *err)
{
    et_pca_options o = opt ? *opt : et_pca_defaults();
    size_t k = o.components;
    if (!x || !out)
        return et_error_set(err, ET_EINVAL, "PCA: no input or output array given");
    if (n < 2)
        return et_error_set(err, ET_EINVAL, "PCA needs at least 2 samples, got %zu", n);
    if (d < 1)
        return et_error_set(err, ET_EINVAL, "PCA needs at least 1 feature per sample");
    if (n > SIZE_MAX / sizeof(float) / d)
        return et_error_set(err, ET_EINVAL, "PCA: %zu x %zu values do not fit in memory", n, d);
    size_t kmax = min_sz(ET_PCA_MAX_COMPONENTS, d);
    if (k < 1 || k > kmax)
        return et_error_set(err, ET_EINVAL,
                            "PCA: %zu components requested; choose 1 to %zu (at most %d, and "
                            "no more than the %zu features)",
                            k, kmax, ET_PCA_MAX_COMPONENTS, d);
    size_t col;
    size_t bad = et_explore_first_nonfinite(x, n, d, &col);
    if (bad < n)
        return et_error_set(err, ET_EINVAL,
                            "PCA: sample %zu (row %zu of the features) holds %s in column %zu; "
                            "recompute or remove that sample",
                            bad, bad, isnan(x[bad * d + col]) ? "NaN" : "an infinite value", col);

    /* l columns span the search space; with l = min(n, d) it is the whole range of Xc
     * and the result is exact without power iterations. */
    size_t l = min_sz(k + OVERSAMPLE, min_sz(n, d));
    int power = l == min_sz(n, d) ? 0 : POWER_ITERS;
    size_t kk = min_sz(k, l); /* components that can be non-zero */
    size_t chunks = (n > d ? n : d) / CHUNK + 1;

    float *mu = malloc(d * sizeof *mu);
    float *w = malloc(d * l * sizeof *w); /* d x l: G, then Z */
    float *q = malloc(n * l * sizeof *q); /* n x l: Y, Q */
    double *partial = malloc(chunks * l * l * sizeof *partial);
    double *g = malloc(l * l * sizeof *g), *u = malloc(l * l * sizeof *u);
    float *v = malloc(d * k * sizeof *v);
    et_status rc = ET_OK;
    if (!mu || !w || !q || !partial || !g || !u || !v) {
        rc = et_error_set(err, ET_ENOMEM, "PCA: out of memory for %zu x %zu features", n, d);
        goto done;
    }

    column_means(x, n, d, mu);
    uint64_t s = o.seed;
    for (size_t i = 0; i < d * l; i++)
        w[i] = (float)et_rng_gauss(&s);

    mul_xw(x, mu, n, d, w, l, q);
    orthonormalize(q, n, l, partial, g, u);
    for (int it = 0; it < power; it++) {
        if (et_interrupted()) {
            rc = et_error_set(err, ET_EINTR, "PCA interrupted");
            goto done;
        }
        mul_xtq(x, mu, n, d, q, l, w);
        orthonormalize(w, d, l, partial, g, u);
        mul_xw(x, mu, n, d, w, l, q);
        orthonormalize(q, n, l, partial, g, u);
    }
    if (et_interrupted()) {
        rc = et_error_set(err, ET_EINTR, "PCA interrupted");
        goto done;
    }
    mul_xtq(x, mu, n, d, q, l, w); /* Z = B' */

    gram(w, d, l, partial, g); /* B B' = Z'Z */
    jacobi_eigen(g, u, l);

    /* Eigenvalues descending (ties keep index order). */
    size_t order[LMAX];
    for (size_t a = 0; a < l; a++) {
        size_t b = a;
        while (b > 0 && g[order[b - 1] * l + order[b - 1]] < g[a * l + a]) {
            order[b] = order[b - 1];
            b--;
        }
        order[b] = a;
    }
    double top = g[order[0] * l + order[0]];
    memset(v, 0, d * k * sizeof *v);
    for (size_t c = 0; c < kk; c++) {
        size_t e = order[c];
        double lambda = g[e * l + e];
        /* Singular values under 1e-6 of the largest are float noise of a rank-deficient Xc. */
        if (!(lambda > 1e-12 * top) || lambda <= 0)
            continue;
        double inv = 1.0 / sqrt(lambda);
        size_t jmax = 0;
        float vmax = -1;
        for (size_t j = 0; j < d; j++) {
            double acc = 0;
            for (size_t a = 0; a < l; a++)
                acc += (double)w[j * l + a] * u[a * l + e];
            v[j * k + c] = (float)(acc * inv);
            if (fabsf(v[j * k + c]) > vmax) {
                vmax = fabsf(v[j * k + c]);
                jmax = j;
            }
        }
        if (v[jmax * k + c] < 0)
            for (size_t j = 0; j < d; j++)
                v[j * k + c] = -v[j * k + c];
    }

    mul_xw(x, mu, n, d, v, k, out);
    if (variance) {
        for (size_t c = 0; c < k; c++) {
            double ss = 0;
            for (size_t i = 0; i < n; i++)
                ss += (double)out[i * k + c] * out[i * k + c];
            variance[c] = ss / (double)(n - 1);
        }
    }
    if (components)
        for (size_t c = 0; c < k; c++)
            for (size_t j = 0; j < d; j++)
                components[c * d + j] = v[j * k + c];

done:
    free(mu);
    free(w);
    free(q);
    free(partial);
    free(g);
    free(u);
    free(v);
    return rc;
}
