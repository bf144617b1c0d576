/* explore: PCA, t-SNE and the map writers (SVG, PNG, CSV). */
#include "testutil.h"

#include "edgetrain/explore.h"
#include "explore/tsne_internal.h"

#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double normal(uint64_t *s)
{
    double u1 = ((double)(rng_next(s) >> 11) + 0.5) * 0x1p-53;
    double u2 = ((double)(rng_next(s) >> 11) + 0.5) * 0x1p-53;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

/* A random unit vector of length d, orthogonal to the m unit vectors in prev. */
static void random_direction(double *u, size_t d, const double *prev, size_t m, uint64_t *s)
{
    for (size_t j = 0; j < d; j++)
        u[j] = normal(s);
    for (size_t p = 0; p < m; p++) {
        double dot = 0;
        for (size_t j = 0; j < d; j++)
            dot += u[j] * prev[p * d + j];
        for (size_t j = 0; j < d; j++)
            u[j] -= dot * prev[p * d + j];
    }
    double norm = 0;
    for (size_t j = 0; j < d; j++)
        norm += u[j] * u[j];
    for (size_t j = 0; j < d; j++)
        u[j] /= sqrt(norm);
}

/* n samples: offset + sum_c sd[c] * z * dirs[c] + noise * z' (dirs: m x d unit vectors). */
static float *gaussian_data(size_t n, size_t d, const double *dirs, const double *sd, size_t m,
                            double noise, uint64_t seed)
{
    float *x = malloc(n * d * sizeof *x);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)(3.0 + 0.5 * (double)j + noise * normal(&s));
        for (size_t c = 0; c < m; c++) {
            double z = sd[c] * normal(&s);
            for (size_t j = 0; j < d; j++)
                x[i * d + j] += (float)(z * dirs[c * d + j]);
        }
    }
    return x;
}

static double abs_dot(const float *a, const double *b, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += a[j] * b[j];
    return fabs(s);
}

/* The sign rule: each component's entry of largest magnitude is positive. */
static void assert_sign_rule(const float *comp, size_t k, size_t d)
{
    for (size_t c = 0; c < k; c++) {
        size_t jmax = 0;
        for (size_t j = 1; j < d; j++)
            if (fabsf(comp[c * d + j]) > fabsf(comp[c * d + jmax]))
                jmax = j;
        cr_assert_gt(comp[c * d + jmax], 0, "component %zu breaks the sign rule", c);
    }
}

Test(explore, pca_recovers_principal_directions_in_variance_order)
{
    enum { N = 2000, D = 8, M = 3, K = 3 };
    double dirs[M * D] = {0};
    const double sd[M] = {6, 3, 1.8};
    uint64_t s = 42;
    for (size_t c = 0; c < M; c++)
        random_direction(dirs + c * D, D, dirs, c, &s);
    float *x = gaussian_data(N, D, dirs, sd, M, 0.3, 7);
    float out[N * K], comp[K * D];
    double var[K];
    et_pca_options opt = et_pca_defaults();
    opt.components = K;
    et_error err = {0};
    cr_assert_eq(et_pca(x, N, D, &opt, out, var, comp, &err), ET_OK, "%s", err.msg);
    for (size_t c = 0; c < K; c++) {
        cr_assert_gt(abs_dot(comp + c * D, dirs + c * D, D), 0.99, "component %zu: |cos| %f", c,
                     abs_dot(comp + c * D, dirs + c * D, D));
        double expect = sd[c] * sd[c] + 0.09;
        cr_assert_lt(fabs(var[c] - expect) / expect, 0.1, "variance %zu: %f vs %f", c, var[c],
                     expect);
    }
    cr_assert_gt(var[0], var[1]);
    cr_assert_gt(var[1], var[2]);
    assert_sign_rule(comp, K, D);
    /* The scores are the centred data projected on the components. */
    double mean[D] = {0};
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < D; j++)
            mean[j] += x[i * D + j] / (double)N;
    for (size_t i = 0; i < N; i += 97) {
        double p = 0;
        for (size_t j = 0; j < D; j++)
            p += (x[i * D + j] - mean[j]) * comp[j];
        cr_assert_lt(fabs(p - out[i * K]), 1e-3 * (1 + fabs(p)));
    }
    free(x);
}

Test(explore, pca_handles_more_features_than_samples_and_any_thread_count)
{
    enum { N = 40, D = 300, M = 2, K = 4 };
    double dirs[M * D] = {0};
    const double sd[M] = {5, 2};
    uint64_t s = 3;
    for (size_t c = 0; c < M; c++)
        random_direction(dirs + c * D, D, dirs, c, &s);
    float *x = gaussian_data(N, D, dirs, sd, M, 0.01, 11);
    float out1[N * K], out2[N * K], comp[K * D];
    double var[K];
    et_pca_options opt = {.components = K, .seed = 5};
    et_error err = {0};
    omp_set_num_threads(2);
    cr_assert_eq(et_pca(x, N, D, &opt, out2, var, comp, &err), ET_OK, "%s", err.msg);
    omp_set_num_threads(1);
    cr_assert_eq(et_pca(x, N, D, &opt, out1, NULL, NULL, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(memcmp(out1, out2, sizeof out1), 0, "thread count changed the result");
    for (size_t c = 0; c < M; c++)
        cr_assert_gt(abs_dot(comp + c * D, dirs + c * D, D), 0.99);
    for (size_t c = 0; c + 1 < K; c++)
        cr_assert_geq(var[c], var[c + 1]);
    for (size_t a = 0; a < K; a++)
        for (size_t b = 0; b <= a; b++) {
            double dot = 0;
            for (size_t j = 0; j < D; j++)
                dot += (double)comp[a * D + j] * comp[b * D + j];
            cr_assert_lt(fabs(dot - (a == b)), 1e-3, "components %zu, %zu: dot %f", a, b, dot);
        }
    assert_sign_rule(comp, K, D);
    /* k larger than the rank: 3 samples in 300-D have rank 2; the rest is 0. */
    float small[3 * 3];
    opt.components = 3;
    cr_assert_eq(et_pca(x, 3, D, &opt, small, var, NULL, &err), ET_OK, "%s", err.msg);
    cr_assert_gt(var[1], 0);
    for (size_t i = 0; i < 3; i++)
        cr_assert_lt(fabsf(small[i * 3 + 2]), 1e-3);
    free(x);
}

Test(explore, pca_rejects_bad_input)
{
    float x[4 * 3] = {0};
    float out[4 * 3];
    et_error err = {0};
    et_pca_options opt = {.components = 4, .seed = 1};
    cr_assert_eq(et_pca(x, 4, 3, &opt, out, NULL, NULL, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "4 components"), "%s", err.msg);
    opt.components = 2;
    cr_assert_eq(et_pca(x, 1, 3, &opt, out, NULL, NULL, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "at least 2 samples"), "%s", err.msg);
    x[2 * 3 + 1] = INFINITY;
    cr_assert_eq(et_pca(x, 4, 3, &opt, out, NULL, NULL, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "sample 2") && strstr(err.msg, "infinite"), "%s", err.msg);
    x[2 * 3 + 1] = 0;
    et_interrupt_raise();
    cr_assert_eq(et_pca(x, 4, 3, &opt, out, NULL, NULL, &err), ET_EINTR);
    et_interrupt_clear();
}

/* n points in three clusters in d dimensions: labels i % 3, centres 10 apart. */
static float *clusters(size_t n, size_t d, uint64_t seed)
{
    float *x = malloc(n * d * sizeof *x);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (float)((j == i % 3 ? 10.0 : 0.0) + normal(&s));
    return x;
}

Test(explore, tsne_separates_gaussian_clusters)
{
    enum { N = 150, D = 20 };
    float *x = clusters(N, D, 1);
    float y[N * 2];
    et_tsne_options opt = et_tsne_defaults();
    opt.perplexity = 20;
    opt.iterations = 500; /* plenty for 150 points; keeps the test quick under ASan */
    et_error err = {0};
    cr_assert_eq(et_tsne(x, N, D, &opt, y, &err), ET_OK, "%s", err.msg);
    size_t agree = 0;
    for (size_t i = 0; i < N; i++) {
        size_t best = i;
        double bd = INFINITY;
        for (size_t j = 0; j < N; j++) {
            double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
            if (j != i && dx * dx + dy * dy < bd)
                bd = dx * dx + dy * dy, best = j;
        }
        cr_assert(isfinite(y[2 * i]) && isfinite(y[2 * i + 1]));
        agree += best % 3 == i % 3;
    }
    cr_assert_gt(agree, N * 95 / 100, "nearest-neighbour label agreement %zu / %d", agree, N);
    free(x);
}

Test(explore, tsne_is_bit_identical_for_a_seed_and_any_thread_count)
{
    enum { N = 300, D = 10 }; /* enough points for the steps to run in parallel */
    float *x = clusters(N, D, 2);
    static float a[N * 2], b[N * 2], c[N * 2], e[N * 2];
    et_tsne_options opt = et_tsne_defaults();
    opt.perplexity = 10;
    opt.iterations = 60;
    opt.seed = 9;
    et_error err = {0};
    omp_set_num_threads(2);
    cr_assert_eq(et_tsne(x, N, D, &opt, a, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(et_tsne(x, N, D, &opt, b, &err), ET_OK, "%s", err.msg);
    omp_set_num_threads(1);
    cr_assert_eq(et_tsne(x, N, D, &opt, c, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "same seed, different map");
    cr_assert_eq(memcmp(a, c, sizeof a), 0, "1 thread and 2 threads differ");
    opt.seed = 10;
    cr_assert_eq(et_tsne(x, N, D, &opt, e, &err), ET_OK, "%s", err.msg);
    cr_assert_neq(memcmp(a, e, sizeof a), 0, "the seed has no effect");
    free(x);
}

Test(explore, tsne_rejects_bad_input_and_stops_when_interrupted)
{
    enum { N = 50, D = 4 };
    float *x = clusters(N, D, 3);
    float y[N * 2];
    et_tsne_options opt = et_tsne_defaults();
    et_error err = {0};
    cr_assert_eq(et_tsne(x, 1, D, &opt, y, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "at least 2 samples"), "%s", err.msg);
    cr_assert_eq(et_tsne(x, N, D, &opt, y, &err), ET_EINVAL); /* perplexity 30, 50 samples */
    cr_assert(strstr(err.msg, "perplexity 30 is too large for 50 samples") &&
                  strstr(err.msg, "below 16.33"),
              "%s", err.msg);
    opt.perplexity = 5;
    x[7 * D + 2] = NAN;
    cr_assert_eq(et_tsne(x, N, D, &opt, y, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "sample 7") && strstr(err.msg, "NaN"), "%s", err.msg);
    x[7 * D + 2] = 0;
    opt.theta = 1.5;
    cr_assert_eq(et_tsne(x, N, D, &opt, y, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "theta"), "%s", err.msg);
    opt.theta = 0.5;
    et_interrupt_raise();
    cr_assert_eq(et_tsne(x, N, D, &opt, y, &err), ET_EINTR);
    et_interrupt_clear();
    /* Two points, exact repulsion (theta 0), coincident inputs: still finite. */
    float two[2 * D] = {0};
    opt.perplexity = 1;
    opt.theta = 0;
    memset(x, 0, 10 * D * sizeof *x);
    cr_assert_eq(et_tsne(two, 2, D, &opt, y, &err), ET_EINVAL, "n - 1 = 1 < 3 * perplexity");
    cr_assert_eq(et_tsne(x, 10, D, &opt, y, &err), ET_OK, "%s", err.msg);
    for (size_t i = 0; i < 20; i++)
        cr_assert(isfinite(y[i]));
    free(x);
}

/* ------------------------------------------------------------------------
 * The parts of t-SNE (explore/tsne_internal.h) against plain references.
 */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Squared distance in double. */
static double dist2(const float *x, size_t d, size_t i, size_t j)
{
    double s = 0;
    for (size_t t = 0; t < d; t++)
        s += ((double)x[i * d + t] - x[j * d + t]) * ((double)x[i * d + t] - x[j * d + t]);
    return s;
}

/* Each query's k neighbours are the k nearest by brute force: their distances
 * (in double) are the k smallest, up to float rounding; they are distinct,
 * exclude the query, come nearest first; any thread count gives the same. */
static void check_knn(const float *x, size_t n, size_t d, size_t k)
{
    et_neighbor *nb = malloc(n * k * sizeof *nb), *nb1 = malloc(n * k * sizeof *nb1);
    double *all = malloc(n * sizeof *all), *got = malloc(k * sizeof *got);
    et_error err = {0};
    omp_set_num_threads(2);
    cr_assert_eq(et_tsne_knn(x, n, d, k, nb, &err), ET_OK, "%s", err.msg);
    omp_set_num_threads(1);
    cr_assert_eq(et_tsne_knn(x, n, d, k, nb1, &err), ET_OK, "%s", err.msg);
    omp_set_num_threads(2);
    cr_assert_eq(memcmp(nb, nb1, n * k * sizeof *nb), 0, "1 and 2 threads differ");
    for (size_t q = 0; q < n; q++) {
        size_t m = 0;
        for (size_t j = 0; j < n; j++)
            if (j != q)
                all[m++] = dist2(x, d, q, j);
        qsort(all, m, sizeof *all, cmp_double);
        for (size_t r = 0; r < k; r++) {
            const et_neighbor *v = &nb[q * k + r];
            cr_assert(v->j >= 0 && (size_t)v->j < n && (size_t)v->j != q, "query %zu: bad j %d", q,
                      v->j);
            for (size_t s = 0; s < r; s++)
                cr_assert_neq(nb[q * k + s].j, v->j, "query %zu: neighbour twice", q);
            if (r > 0)
                cr_assert_geq(v->dist, nb[q * k + r - 1].dist, "query %zu: not nearest first", q);
            got[r] = dist2(x, d, q, (size_t)v->j);
        }
        qsort(got, k, sizeof *got, cmp_double);
        for (size_t r = 0; r < k; r++)
            cr_assert_leq(fabs(got[r] - all[r]), 1e-4 * (1 + all[r]),
                          "query %zu, rank %zu: %g, brute force %g", q, r, got[r], all[r]);
    }
    free(nb), free(nb1), free(all), free(got);
}

Test(explore, knn_matches_brute_force)
{
    /* 700 points: not a multiple of any block size; clusters and an offset so
     * that the norms are large next to the distances. */
    enum { N = 700, D = 13 };
    float *x = clusters(N, D, 5);
    for (size_t i = 0; i < N * D; i++)
        x[i] += 40.0f;
    check_knn(x, N, D, 20);
    check_knn(x, 40, D, 39); /* every other point */
    /* Duplicates: many equal distances, ties broken by index. */
    for (size_t i = 0; i < 30; i++)
        memcpy(x + (i + 30) * D, x + i * D, D * sizeof *x);
    check_knn(x, 60, D, 5);
    et_neighbor nb[60 * 5];
    et_error err = {0};
    cr_assert_eq(et_tsne_knn(x, 60, D, 5, nb, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(nb[0].j, 30, "point 0's twin is point 30");
    cr_assert_eq(nb[30 * 5].j, 0);
    free(x);
}

/* The DFT of a length-m sequence, straight from the definition. */
static void naive_dft(const double *re, const double *im, size_t m, int sign, double *ore,
                      double *oim)
{
    for (size_t f = 0; f < m; f++) {
        double sr = 0, si = 0;
        for (size_t t = 0; t < m; t++) {
            double a = sign * 2 * M_PI * (double)((f * t) % m) / (double)m;
            sr += re[t] * cos(a) - im[t] * sin(a);
            si += re[t] * sin(a) + im[t] * cos(a);
        }
        ore[f] = sr, oim[f] = si;
    }
}

Test(explore, fft_matches_the_naive_dft)
{
    static const size_t sizes[] = {2, 4, 8, 64, 512};
    uint64_t s = 17;
    for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++) {
        size_t m = sizes[c], w = 8; /* rows for et_fft_rows; columns for et_fft_strip */
        et_fft_plan p = {0};
        cr_assert_eq(et_fft_plan_init(&p, m), ET_OK);
        float *re = malloc(m * w * sizeof *re), *im = malloc(m * w * sizeof *im);
        float *sre = malloc(m * w * sizeof *sre), *sim = malloc(m * w * sizeof *sim);
        double *xr = malloc(m * sizeof *xr), *xi = malloc(m * sizeof *xi);
        double *fr = malloc(m * sizeof *fr), *fi = malloc(m * sizeof *fi);
        for (size_t i = 0; i < m * w; i++)
            re[i] = (float)normal(&s), im[i] = (float)normal(&s);
        /* The strip holds the same sequences down its columns. */
        for (size_t r = 0; r < w; r++)
            for (size_t t = 0; t < m; t++)
                sre[t * w + r] = re[r * m + t], sim[t * w + r] = im[r * m + t];
        float *r0 = malloc(m * w * sizeof *r0), *i0 = malloc(m * w * sizeof *i0);
        memcpy(r0, re, m * w * sizeof *r0), memcpy(i0, im, m * w * sizeof *i0);
        et_fft_rows(&p, re, im, w, m, false);
        et_fft_strip(&p, sre, sim, w, false);
        double tol = 1e-5 * sqrt((double)m) * log2((double)m + 1);
        for (size_t r = 0; r < w; r++) {
            for (size_t t = 0; t < m; t++)
                xr[t] = r0[r * m + t], xi[t] = i0[r * m + t];
            naive_dft(xr, xi, m, -1, fr, fi);
            for (size_t f = 0; f < m; f++) {
                size_t b = et_fft_bitrev(f, m);
                cr_assert_lt(fabs(re[r * m + b] - fr[f]) + fabs(im[r * m + b] - fi[f]), tol,
                             "m %zu, row %zu, frequency %zu", m, r, f);
                cr_assert_lt(fabs(sre[b * w + r] - fr[f]) + fabs(sim[b * w + r] - fi[f]), tol,
                             "m %zu, strip column %zu, frequency %zu", m, r, f);
            }
        }
        /* Inverse of the forward: m times the input, from either direction. */
        et_fft_rows(&p, re, im, w, m, true);
        et_fft_strip(&p, sre, sim, w, true);
        for (size_t r = 0; r < w; r++)
            for (size_t t = 0; t < m; t++) {
                cr_assert_lt(fabs(re[r * m + t] / (double)m - r0[r * m + t]),
                             1e-5 * log2((double)m + 1));
                cr_assert_lt(fabs(im[r * m + t] / (double)m - i0[r * m + t]),
                             1e-5 * log2((double)m + 1));
                cr_assert_lt(fabs(sre[t * w + r] / (double)m - r0[r * m + t]),
                             1e-5 * log2((double)m + 1));
            }
        et_fft_plan_free(&p);
        et_fft_plan_free(&p);
        free(re), free(im), free(sre), free(sim), free(xr), free(xi), free(fr), free(fi);
        free(r0), free(i0);
    }
}

/* n points in five 2-D blobs of different sizes, spread over about +-span. */
static double *blobs(size_t n, double span, uint64_t seed)
{
    double *y = malloc(2 * n * sizeof *y);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        size_t c = i % 5;
        double cx = span * cos(1.3 * (double)c), cy = span * sin(2.1 * (double)c);
        double sd = 0.5 + (double)c;
        y[2 * i] = cx + sd * normal(&s), y[2 * i + 1] = cy + sd * normal(&s);
    }
    return y;
}

Test(explore, interpolated_repulsion_matches_the_exact_sums)
{
    enum { N = 3000 };
    double *y = blobs(N, 20, 3);
    double *exact = malloc(2 * N * sizeof *exact), *zpart = malloc(N * sizeof *zpart);
    double *got = malloc(2 * N * sizeof *got), *got1 = malloc(2 * N * sizeof *got1);
    double z = et_repulsion_exact(y, N, exact, zpart);
    /* Finer nodes, smaller errors; about what the defaults give on real maps. */
    static const double h[] = {0.5, 0.2}, force_tol[] = {0.08, 0.015}, z_tol[] = {5e-3, 1e-3};
    for (size_t c = 0; c < 2; c++) {
        et_repulsion *r = NULL;
        cr_assert_eq(et_repulsion_create(N, h[c], &r), ET_OK);
        et_status rc = ET_OK;
        omp_set_num_threads(2);
        double zi = et_repulsion_compute(r, y, got, &rc);
        cr_assert_eq(rc, ET_OK);
        double num = 0, den = 0;
        for (size_t i = 0; i < 2 * N; i++)
            num += (got[i] - exact[i]) * (got[i] - exact[i]), den += exact[i] * exact[i];
        cr_assert_lt(sqrt(num / den), force_tol[c], "h %g: rms force error %g", h[c],
                     sqrt(num / den));
        cr_assert_lt(fabs(zi - z) / z, z_tol[c], "h %g: Z %g, exact %g", h[c], zi, z);
        omp_set_num_threads(1);
        double z1 = et_repulsion_compute(r, y, got1, &rc);
        omp_set_num_threads(2);
        cr_assert(z1 == zi && !memcmp(got, got1, 2 * N * sizeof *got), "1 and 2 threads differ");
        et_repulsion_destroy(r);
    }
    et_repulsion_destroy(NULL);
    free(y), free(exact), free(zpart), free(got), free(got1);
}

Test(explore, tsne_on_the_grid_is_bit_identical_for_any_thread_count_and_separates)
{
    /* Enough points for the interpolated repulsion and parallel loops. */
    enum { N = 2400, D = 10 };
    float *x = clusters(N, D, 4);
    float *a = malloc(N * 2 * sizeof *a), *b = malloc(N * 2 * sizeof *b);
    et_tsne_options opt = et_tsne_defaults();
    opt.perplexity = 10;
    opt.iterations = 300;
    et_error err = {0};
    omp_set_num_threads(2);
    cr_assert_eq(et_tsne(x, N, D, &opt, a, &err), ET_OK, "%s", err.msg);
    omp_set_num_threads(1);
    cr_assert_eq(et_tsne(x, N, D, &opt, b, &err), ET_OK, "%s", err.msg);
    omp_set_num_threads(2);
    cr_assert_eq(memcmp(a, b, N * 2 * sizeof *a), 0, "1 thread and 2 threads differ");
    /* Each point's nearest map neighbour shares its cluster. */
    size_t agree = 0;
    for (size_t i = 0; i < N; i++) {
        size_t best = i;
        double bd = INFINITY;
        for (size_t j = 0; j < N; j++) {
            double dx = a[2 * i] - a[2 * j], dy = a[2 * i + 1] - a[2 * j + 1];
            if (j != i && dx * dx + dy * dy < bd)
                bd = dx * dx + dy * dy, best = j;
        }
        agree += best % 3 == i % 3;
    }
    cr_assert_gt(agree, N * 95 / 100, "nearest-neighbour label agreement %zu / %d", agree, N);
    free(x), free(a), free(b);
}

/* Five points, two labels (one with XML and CSV specials) and one unlabelled point. */
static const char *const map_labels[] = {"a<b&\"c\"", "plain"};
static const et_map_point map_pts[] = {
    {0.0f, 0.0f, 0, 10, "x/one.png"},        {1.0f, 0.5f, 0, 11, "dir,with comma/two.png"},
    {-2.0f, 3.0f, 1, 12, "three \"q\".png"}, {5.0f, -1.0f, 1, 13, NULL},
    {2.5f, 2.5f, -1, 14, "it's <5>.png"},
};
#define MAP_N (sizeof map_pts / sizeof map_pts[0])

static size_t count_of(const char *hay, const char *needle)
{
    size_t c = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        c++;
    return c;
}

Test(explore, svg_has_a_dot_per_point_and_escaped_hover_text)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "map.svg");
    et_error err = {0};
    cr_assert_eq(et_map_write_svg(path, map_pts, MAP_N, map_labels, 2, "t-SNE & <more>", &err),
                 ET_OK, "%s", err.msg);
    size_t n = 0;
    char *svg = (char *)tu_read(path, &n);
    cr_assert_eq(strncmp(svg, "<?xml", 5), 0);
    cr_assert(strstr(svg, "</svg>\n"));
    cr_assert_eq(count_of(svg, "<circle"), MAP_N);
    cr_assert_eq(count_of(svg, "</circle>"), MAP_N);
    cr_assert(
        strstr(svg, "<title>id 10 \xc2\xb7 a&lt;b&amp;&quot;c&quot; \xc2\xb7 x/one.png</title>"),
        "%s", svg);
    cr_assert(strstr(svg, "<title>id 13 \xc2\xb7 plain</title>"));
    cr_assert(strstr(svg, "<title>id 14 \xc2\xb7 (unlabelled) \xc2\xb7 it&apos;s &lt;5&gt;.png"));
    cr_assert(strstr(svg, "t-SNE &amp; &lt;more&gt;"));
    cr_assert(strstr(svg, "a&lt;b&amp;&quot;c&quot; (2)</text>"), "legend with count");
    cr_assert(strstr(svg, "plain (2)</text>"));
    cr_assert(strstr(svg, "(unlabelled) (1)</text>"));
    cr_assert_null(strstr(svg, "a<b"), "unescaped label");
    /* Balanced tags: every opened element of these kinds is closed. */
    cr_assert_eq(count_of(svg, "<title>"), count_of(svg, "</title>"));
    cr_assert_eq(count_of(svg, "<text "), count_of(svg, "</text>"));
    free(svg);
}

Test(explore, png_decodes_to_the_requested_size_with_coloured_dots)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "map.png");
    et_error err = {0};
    cr_assert_eq(
        et_map_write_png(path, map_pts, MAP_N, map_labels, 2, "map \xc3\xa9", 320, 240, &err),
        ET_OK, "%s", err.msg);
    int w = 0, h = 0, ch = 0;
    unsigned char *px = stbi_load(path, &w, &h, &ch, 3);
    cr_assert_not_null(px, "%s", stbi_failure_reason());
    cr_assert_eq(w, 320);
    cr_assert_eq(h, 240);
    size_t blue = 0, dark = 0;
    for (int i = 0; i < w * h; i++) {
        const unsigned char *p = px + 3 * i;
        blue += abs(p[0] - 0x1f) < 8 && abs(p[1] - 0x77) < 8 && abs(p[2] - 0xb4) < 8;
        dark += p[0] < 0x40 && p[1] < 0x40 && p[2] < 0x40;
    }
    cr_assert_gt(blue, 5, "label 0's colour is missing");
    cr_assert_gt(dark, 20, "no text drawn");
    stbi_image_free(px);
    cr_assert_eq(et_map_write_png(path, map_pts, MAP_N, map_labels, 2, NULL, 20, 240, &err),
                 ET_EINVAL);
}

Test(explore, csv_quotes_fields_and_has_a_line_per_point)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "map.csv");
    et_error err = {0};
    cr_assert_eq(et_map_write_csv(path, map_pts, MAP_N, map_labels, 2, &err), ET_OK, "%s", err.msg);
    size_t n = 0;
    char *csv = (char *)tu_read(path, &n);
    cr_assert_eq(count_of(csv, "\n"), MAP_N + 1);
    cr_assert_eq(strncmp(csv, "id,label,source,x,y\n", 20), 0);
    cr_assert(strstr(csv, "\n10,\"a<b&\"\"c\"\"\",x/one.png,0,0\n"), "%s", csv);
    cr_assert(strstr(csv, "\n11,\"a<b&\"\"c\"\"\",\"dir,with comma/two.png\",1,0.5\n"), "%s", csv);
    cr_assert(strstr(csv, "\n12,plain,\"three \"\"q\"\".png\",-2,3\n"), "%s", csv);
    cr_assert(strstr(csv, "\n13,plain,,5,-1\n"), "%s", csv);
    cr_assert(strstr(csv, "\n14,,it's <5>.png,2.5,2.5\n"), "%s", csv);
    free(csv);
}

Test(explore, map_writers_reject_bad_points_and_keep_the_old_file)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "map.csv");
    et_error err = {0};
    cr_assert_eq(et_map_write_csv(path, map_pts, MAP_N, map_labels, 2, &err), ET_OK, "%s", err.msg);
    size_t before = tu_file_size(path);
    et_map_point bad[2] = {map_pts[0], map_pts[1]};
    bad[1].label = 5;
    cr_assert_eq(et_map_write_csv(path, bad, 2, map_labels, 2, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "point 1") && strstr(err.msg, "label 5"), "%s", err.msg);
    bad[1].label = 0;
    bad[0].y = NAN;
    cr_assert_eq(et_map_write_svg(path, bad, 2, map_labels, 2, NULL, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "point 0"), "%s", err.msg);
    cr_assert_eq(tu_file_size(path), before, "a refused write changed the file");
    /* No points and no names: an empty but valid map. */
    cr_assert_eq(et_map_write_svg(path, NULL, 0, NULL, 0, NULL, &err), ET_OK, "%s", err.msg);
}
