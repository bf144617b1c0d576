/* Fast batch normalization over x[rows][c] (NHWC with rows = n*h*w).
 *
 * The per-channel sums over rows are the only reductions. They are cut into
 * min(rows, ET_FAST_CHUNKS) chunks of consecutive rows, fixed by rows alone;
 * each chunk sums its rows in order in double, in parallel with the others,
 * and the chunk sums are then added in chunk order. The kernels have no
 * scratch argument, so the partials live in a fixed array on the stack and the
 * channels go through in blocks of ET_FAST_CBLOCK. Within a row the loops run
 * over contiguous channels and vectorise. As in ref/, the statistics take two
 * passes (mean, then squared deviations), which does not cancel when the mean
 * is large against the spread. The element-wise passes compute in float. */
#include "kernels/fast/fast_internal.h"

#include <math.h>

/* Per-chunk sums of one channel block [c0, c0 + nb): for every chunk k,
 * s1[k][j] = sum of a(r, j) and, when s2 is given, s2[k][j] = sum of a(r, j) * b(r, j),
 * with a = (x - sub) * mul and b = dy, or a = x when dy is NULL. sub and mul
 * may be NULL (0 and 1); with square, a is squared instead of multiplied by dy. */
typedef struct sums_job {
    size_t rows;
    int c, c0, nb, chunks;
    const float *x, *dy;
    const double *sub, *mul;
    int square;
} sums_job;

static void chunk_sums(const sums_job *jb, double (*s1)[ET_FAST_CBLOCK],
                       double (*s2)[ET_FAST_CBLOCK])
{
#pragma omp parallel for schedule(dynamic, 1) if (jb->rows * jb->nb > ET_FAST_PAR_MIN)
    for (int k = 0; k < jb->chunks; k++) {
        double a1[ET_FAST_CBLOCK] = {0}, a2[ET_FAST_CBLOCK] = {0}, sub[ET_FAST_CBLOCK],
               mul[ET_FAST_CBLOCK];
        for (int j = 0; j < jb->nb; j++) {
            sub[j] = jb->sub ? jb->sub[j] : 0.0;
            mul[j] = jb->mul ? jb->mul[j] : 1.0;
        }
        size_t r0 = et_fast_split(jb->rows, jb->chunks, k);
        size_t r1 = et_fast_split(jb->rows, jb->chunks, k + 1);
        for (size_t r = r0; r < r1; r++) {
            const float *xr = jb->x + r * jb->c + jb->c0;
            if (jb->square) {
#pragma omp simd
                for (int j = 0; j < jb->nb; j++) {
                    double d = (xr[j] - sub[j]) * mul[j];
                    a1[j] += d * d;
                }
            } else if (jb->dy) {
                const float *g = jb->dy + r * jb->c + jb->c0;
#pragma omp simd
                for (int j = 0; j < jb->nb; j++) {
                    a1[j] += g[j];
                    a2[j] += g[j] * ((xr[j] - sub[j]) * mul[j]);
                }
            } else {
#pragma omp simd
                for (int j = 0; j < jb->nb; j++)
                    a1[j] += xr[j];
            }
        }
        for (int j = 0; j < jb->nb; j++) {
            s1[k][j] = a1[j];
            if (s2)
                s2[k][j] = a2[j];
        }
    }
}

/* total[j] = sum over chunks k in order of s[k][j]. */
static void add_chunks(int chunks, int nb, double (*s)[ET_FAST_CBLOCK], double *total)
{
    for (int j = 0; j < nb; j++) {
        double t = 0.0;
        for (int k = 0; k < chunks; k++)
            t += s[k][j];
        total[j] = t;
    }
}

/* y[r][c0 + j] = (x[r][c0 + j] - mean[j]) * scale[j] + shift[j] over all rows. */
static void affine(size_t rows, int c, int c0, int nb, const float *x, const float *mean,
                   const float *scale, const float *shift, float *y)
{
#pragma omp parallel for schedule(dynamic, 256) if (rows * nb > ET_FAST_PAR_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * c + c0;
        float *yr = y + r * c + c0;
#pragma omp simd
        for (int j = 0; j < nb; j++)
            yr[j] = (xr[j] - mean[j]) * scale[j] + shift[j];
    }
}

static int chunks_of(size_t rows)
{
    return rows < ET_FAST_CHUNKS ? (int)rows : ET_FAST_CHUNKS;
}

void et_batchnorm_forward_train_fast(const et_batchnorm_params *p, size_t rows, int c,
                                     const float *x, const float *gamma, const float *beta,
                                     float *y, float *save_mean, float *save_invstd,
                                     float *running_mean, float *running_var)
{
    double s[ET_FAST_CHUNKS][ET_FAST_CBLOCK];
    for (int c0 = 0; c0 < c; c0 += ET_FAST_CBLOCK) {
        const int nb = c - c0 < ET_FAST_CBLOCK ? c - c0 : ET_FAST_CBLOCK;
        double mean[ET_FAST_CBLOCK], sq[ET_FAST_CBLOCK];
        sums_job jb = {rows, c, c0, nb, chunks_of(rows), x, NULL, NULL, NULL, 0};
        chunk_sums(&jb, s, NULL);
        add_chunks(jb.chunks, nb, s, mean);
        for (int j = 0; j < nb; j++)
            mean[j] /= (double)rows;
        jb.sub = mean;
        jb.square = 1;
        chunk_sums(&jb, s, NULL);
        add_chunks(jb.chunks, nb, s, sq);
        float fmean[ET_FAST_CBLOCK], scale[ET_FAST_CBLOCK], shift[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++) {
            const int ch = c0 + j;
            double var = sq[j] / (double)rows;
            double invstd = 1.0 / sqrt(var + p->epsilon);
            fmean[j] = (float)mean[j];
            scale[j] = (float)(gamma[ch] * invstd);
            shift[j] = beta[ch];
            save_mean[ch] = (float)mean[j];
            save_invstd[ch] = (float)invstd;
            if (running_mean && running_var) {
                double unbiased = rows > 1 ? sq[j] / (double)(rows - 1) : var;
                double m = p->momentum;
                running_mean[ch] = (float)(m * running_mean[ch] + (1.0 - m) * mean[j]);
                running_var[ch] = (float)(m * running_var[ch] + (1.0 - m) * unbiased);
            }
        }
        affine(rows, c, c0, nb, x, fmean, scale, shift, y);
    }
}

void et_batchnorm_forward_infer_fast(const et_batchnorm_params *p, size_t rows, int c,
                                     const float *x, const float *gamma, const float *beta,
                                     const float *running_mean, const float *running_var, float *y)
{
    for (int c0 = 0; c0 < c; c0 += ET_FAST_CBLOCK) {
        const int nb = c - c0 < ET_FAST_CBLOCK ? c - c0 : ET_FAST_CBLOCK;
        float scale[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++)
            scale[j] = (float)(gamma[c0 + j] / sqrt((double)running_var[c0 + j] + p->epsilon));
        affine(rows, c, c0, nb, x, running_mean + c0, scale, beta + c0, y);
    }
}

/* dbeta = sum dy and dgamma = sum dy * xhat for one channel block, with
 * xhat = (x - mean) * invstd; dbeta/dgamma written when not NULL and the
 * double sums returned in sum_dy and sum_dyx. */
static void grad_sums(size_t rows, int c, int c0, int nb, const float *x, const float *dy,
                      const double *mean, const double *invstd, double *sum_dy, double *sum_dyx,
                      float *dgamma, float *dbeta)
{
    double s1[ET_FAST_CHUNKS][ET_FAST_CBLOCK], s2[ET_FAST_CHUNKS][ET_FAST_CBLOCK];
    sums_job jb = {rows, c, c0, nb, chunks_of(rows), x, dy, mean, invstd, 0};
    chunk_sums(&jb, s1, s2);
    add_chunks(jb.chunks, nb, s1, sum_dy);
    add_chunks(jb.chunks, nb, s2, sum_dyx);
    for (int j = 0; j < nb; j++) {
        if (dbeta)
            dbeta[c0 + j] = (float)sum_dy[j];
        if (dgamma)
            dgamma[c0 + j] = (float)sum_dyx[j];
    }
}

void et_batchnorm_backward_fast(size_t rows, int c, const float *x, const float *gamma,
                                const float *save_mean, const float *save_invstd, const float *dy,
                                float *dx, float *dgamma, float *dbeta)
{
    for (int c0 = 0; c0 < c; c0 += ET_FAST_CBLOCK) {
        const int nb = c - c0 < ET_FAST_CBLOCK ? c - c0 : ET_FAST_CBLOCK;
        double mean[ET_FAST_CBLOCK], invstd[ET_FAST_CBLOCK], sum_dy[ET_FAST_CBLOCK],
            sum_dyx[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++) {
            mean[j] = save_mean[c0 + j];
            invstd[j] = save_invstd[c0 + j];
        }
        grad_sums(rows, c, c0, nb, x, dy, mean, invstd, sum_dy, sum_dyx, dgamma, dbeta);
        if (!dx)
            continue;
        /* dx = gamma * invstd * (dy - sum_dy / m - xhat * sum_dyx / m) */
        float fmean[ET_FAST_CBLOCK], finv[ET_FAST_CBLOCK], scale[ET_FAST_CBLOCK], a[ET_FAST_CBLOCK],
            b[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++) {
            fmean[j] = save_mean[c0 + j];
            finv[j] = save_invstd[c0 + j];
            scale[j] = (float)(gamma[c0 + j] * invstd[j]);
            a[j] = (float)(sum_dy[j] / (double)rows);
            b[j] = (float)(sum_dyx[j] / (double)rows);
        }
#pragma omp parallel for schedule(dynamic, 256) if (rows * nb > ET_FAST_PAR_MIN)
        for (size_t r = 0; r < rows; r++) {
            const float *xr = x + r * c + c0, *g = dy + r * c + c0;
            float *d = dx + r * c + c0;
#pragma omp simd
            for (int j = 0; j < nb; j++)
                d[j] = scale[j] * (g[j] - a[j] - (xr[j] - fmean[j]) * finv[j] * b[j]);
        }
    }
}

void et_batchnorm_backward_infer_fast(const et_batchnorm_params *p, size_t rows, int c,
                                      const float *x, const float *gamma, const float *running_mean,
                                      const float *running_var, const float *dy, float *dx,
                                      float *dgamma, float *dbeta)
{
    for (int c0 = 0; c0 < c; c0 += ET_FAST_CBLOCK) {
        const int nb = c - c0 < ET_FAST_CBLOCK ? c - c0 : ET_FAST_CBLOCK;
        double mean[ET_FAST_CBLOCK], invstd[ET_FAST_CBLOCK], sum_dy[ET_FAST_CBLOCK],
            sum_dyx[ET_FAST_CBLOCK];
        float scale[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++) {
            mean[j] = running_mean[c0 + j];
            invstd[j] = 1.0 / sqrt((double)running_var[c0 + j] + p->epsilon);
            scale[j] = (float)(gamma[c0 + j] * invstd[j]);
        }
        if (dgamma || dbeta)
            grad_sums(rows, c, c0, nb, x, dy, mean, invstd, sum_dy, sum_dyx, dgamma, dbeta);
        if (!dx)
            continue;
#pragma omp parallel for schedule(dynamic, 256) if (rows * nb > ET_FAST_PAR_MIN)
        for (size_t r = 0; r < rows; r++) {
            const float *g = dy + r * c + c0;
            float *d = dx + r * c + c0;
#pragma omp simd
            for (int j = 0; j < nb; j++)
                d[j] = g[j] * scale[j];
        }
    }
}
