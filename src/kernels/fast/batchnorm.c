/* Fast batch normalization over x[rows][c] (NHWC with rows = n*h*w), alone
 * or fused with the ReLU or ReLU6 that follows it.
 *
 * The per-channel sums over rows are the only reductions. They are cut into
 * min(rows, ET_FAST_CHUNKS) chunks of consecutive rows, fixed by rows alone;
 * each chunk sums its rows in order in double, in parallel with the others,
 * and the chunk sums are then added in chunk order. The kernels have no
 * scratch argument, so the partials live in a fixed array on the stack and the
 * channels go through in blocks of ET_FAST_CBLOCK. Within a row the loops run
 * over contiguous channels and vectorise.
 *
 * Statistics take one pass over x: the sums of d = x - k and d^2 in double,
 * shifted by k = the channel's value in row 0, give the mean k + S1/m and the
 * squared deviations S2 - S1^2/m. Shifting by a value of the data keeps
 * S1^2/m of the size of S2 unless the mean is far from that value in units of
 * the spread, so the subtraction does not cancel as the unshifted
 * E[x^2] - E[x]^2 does when the mean is large against the spread, and double
 * accumulators leave it some 9 digits to spare for float results (ref/ takes
 * two passes instead).
 *
 * The element-wise passes, and each term of the gradient sums, compute in
 * float. The forward pass computes
 * v = (x - mean) * scale + beta with scale = gamma * invstd rounded to float,
 * from the saved mean and invstd, and the fused backward pass recomputes the
 * activation's mask from x with that same expression instead of reading the
 * activation's output: the mask is the one the forward pass applied, bit for
 * bit, and the pass reads two tensors (x, dy) rather than three. (Under
 * quantization-aware training the activation's input was rounded in between,
 * so the net hands that output in and the mask is read from it.) */
#include "kernels/fast/fast_internal.h"

#include <math.h>

/* Inlined into both compiled copies of the loops below. */
#define ET_BN_INLINE static inline __attribute__((always_inline))

static int chunks_of(size_t rows)
{
    return rows < ET_FAST_CHUNKS ? (int)rows : ET_FAST_CHUNKS;
}

/* The activation, written as et_relu_forward_fast and et_relu6_forward_fast
 * write it, so that the fused kernels give their bits. */
ET_BN_INLINE float activate(et_act act, float v)
{
    if (act == ET_ACT_RELU)
        return v > 0.0f ? v : 0.0f;
    if (act == ET_ACT_RELU6)
        return v <= 0.0f ? 0.0f : v >= 6.0f ? 6.0f : v;
    return v;
}

/* The activation's gradient given its input v, as the ReLU kernels' backward
 * passes form it from their output (0 < y, and y < 6 for ReLU6). */
ET_BN_INLINE float pass_grad(et_act act, float v, float g)
{
    if (act == ET_ACT_RELU)
        return v > 0.0f ? g : 0.0f;
    if (act == ET_ACT_RELU6)
        return (v > 0.0f) & (v < 6.0f) ? g : 0.0f;
    return g;
}

/* The parameters of one channel block of the backward pass: the forward
 * pass's mean, invstd and scale, and beta (to recompute the activation's
 * input); y: NULL, or the activation's output. */
typedef struct grad_block {
    size_t rows;
    int c, c0, nb;
    const float *x, *dy, *y;
    float fmean[ET_FAST_CBLOCK], finv[ET_FAST_CBLOCK], scale[ET_FAST_CBLOCK], beta[ET_FAST_CBLOCK];
} grad_block;

/* ------------------------------------------------------------------------
 * The loops, compiled twice (BN_VARIANT): for any target and, on x86-64, for
 * AVX2 + FMA, used when et_fast_avx2() says so. Their bodies are
 * always-inline functions of the activation and the mask source, so that
 * each copy is compiled for constants. The sums are in double, where AVX2's
 * four lanes against SSE2's two speed up the statistics and gradient
 * passes; the float expressions may use fused multiply-adds there, in the
 * forward pass and in the mask the backward pass recomputes alike (both
 * are the one expression (x - mean) * scale + beta).
 */
/* Shifted sums of rows [r0, r1) of one channel block [c0, c0 + nb):
 * s1[j] = sum of (x - shift[j]), s2[j] = sum of (x - shift[j])^2. */
ET_BN_INLINE void stat_rows(size_t r0, size_t r1, int c, int c0, int nb, const float *x,
                            const double *shift, double *s1, double *s2)
{
    double a1[ET_FAST_CBLOCK] = {0}, a2[ET_FAST_CBLOCK] = {0}, sh[ET_FAST_CBLOCK];
    for (int j = 0; j < nb; j++)
        sh[j] = shift[j];
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * c + c0;
#pragma omp simd
        for (int j = 0; j < nb; j++) {
            double d = xr[j] - sh[j];
            a1[j] += d;
            a2[j] += d * d;
        }
    }
    for (int j = 0; j < nb; j++) {
        s1[j] = a1[j];
        s2[j] = a2[j];
    }
}

/* y[r][c0 + j] = act((x[r][c0 + j] - mean[j]) * scale[j] + shift[j]), rows [r0, r1). */
ET_BN_INLINE void affine_rows(et_act act, size_t r0, size_t r1, int c, int c0, int nb,
                              const float *x, const float *mean, const float *scale,
                              const float *shift, float *y)
{
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * c + c0;
        float *yr = y + r * c + c0;
#pragma omp simd
        for (int j = 0; j < nb; j++)
            yr[j] = activate(act, (xr[j] - mean[j]) * scale[j] + shift[j]);
    }
}

/* Sums over rows [r0, r1) of one block: s1[j] = sum of g and s2[j] = sum of
 * g * xhat, with xhat = (x - mean) * invstd and g = dy passed through the
 * activation, whose input is recomputed from x, or whose output is read
 * from gb->y when from_y. Each term is formed in float, as the forward pass
 * forms y, and summed in double. */
ET_BN_INLINE void grad_rows(et_act act, int from_y, const grad_block *gb, size_t r0, size_t r1,
                            double *s1, double *s2)
{
    const int nb = gb->nb;
    double a1[ET_FAST_CBLOCK] = {0}, a2[ET_FAST_CBLOCK] = {0};
    for (size_t r = r0; r < r1; r++) {
        const size_t at = r * gb->c + gb->c0;
        const float *xr = gb->x + at, *dr = gb->dy + at, *yr = from_y ? gb->y + at : NULL;
#pragma omp simd
        for (int j = 0; j < nb; j++) {
            float d = xr[j] - gb->fmean[j];
            float v = from_y ? yr[j] : d * gb->scale[j] + gb->beta[j];
            float g = pass_grad(act, v, dr[j]);
            a1[j] += g;
            a2[j] += g * (d * gb->finv[j]);
        }
    }
    for (int j = 0; j < nb; j++) {
        s1[j] = a1[j];
        s2[j] = a2[j];
    }
}

/* dx = scale * (g - a - (x - mean) * invstd * b), g as above, rows [r0, r1). */
ET_BN_INLINE void dx_rows(et_act act, int from_y, const grad_block *gb, size_t r0, size_t r1,
                          const float *a, const float *b, float *dx)
{
    const int nb = gb->nb;
    const float *scale = gb->scale;
    for (size_t r = r0; r < r1; r++) {
        const size_t at = r * gb->c + gb->c0;
        const float *xr = gb->x + at, *dr = gb->dy + at, *yr = from_y ? gb->y + at : NULL;
        float *d = dx + at;
#pragma omp simd
        for (int j = 0; j < nb; j++) {
            float v = from_y ? yr[j] : (xr[j] - gb->fmean[j]) * scale[j] + gb->beta[j];
            float g = pass_grad(act, v, dr[j]);
            d[j] = scale[j] * (g - a[j] - (xr[j] - gb->fmean[j]) * gb->finv[j] * b[j]);
        }
    }
}

/* One compiled copy of each loop, NAME<sfx>, with the function attribute attr. */
#define BN_VARIANT(sfx, attr)                                                                      \
    attr static void stat_rows##sfx(size_t r0, size_t r1, int c, int c0, int nb, const float *x,   \
                                    const double *shift, double *s1, double *s2)                   \
    {                                                                                              \
        stat_rows(r0, r1, c, c0, nb, x, shift, s1, s2);                                            \
    }                                                                                              \
    attr static void affine_rows##sfx(et_act act, size_t r0, size_t r1, int c, int c0, int nb,     \
                                      const float *x, const float *mean, const float *scale,       \
                                      const float *shift, float *y)                                \
    {                                                                                              \
        if (act == ET_ACT_RELU)                                                                    \
            affine_rows(ET_ACT_RELU, r0, r1, c, c0, nb, x, mean, scale, shift, y);                 \
        else if (act == ET_ACT_RELU6)                                                              \
            affine_rows(ET_ACT_RELU6, r0, r1, c, c0, nb, x, mean, scale, shift, y);                \
        else                                                                                       \
            affine_rows(ET_ACT_NONE, r0, r1, c, c0, nb, x, mean, scale, shift, y);                 \
    }                                                                                              \
    attr static void grad_rows##sfx(et_act act, const grad_block *gb, size_t r0, size_t r1,        \
                                    double *s1, double *s2)                                        \
    {                                                                                              \
        if (act == ET_ACT_RELU && gb->y)                                                           \
            grad_rows(ET_ACT_RELU, 1, gb, r0, r1, s1, s2);                                         \
        else if (act == ET_ACT_RELU)                                                               \
            grad_rows(ET_ACT_RELU, 0, gb, r0, r1, s1, s2);                                         \
        else if (act == ET_ACT_RELU6 && gb->y)                                                     \
            grad_rows(ET_ACT_RELU6, 1, gb, r0, r1, s1, s2);                                        \
        else if (act == ET_ACT_RELU6)                                                              \
            grad_rows(ET_ACT_RELU6, 0, gb, r0, r1, s1, s2);                                        \
        else                                                                                       \
            grad_rows(ET_ACT_NONE, 0, gb, r0, r1, s1, s2);                                         \
    }                                                                                              \
    attr static void dx_rows##sfx(et_act act, const grad_block *gb, size_t r0, size_t r1,          \
                                  const float *a, const float *b, float *dx)                       \
    {                                                                                              \
        if (act == ET_ACT_RELU && gb->y)                                                           \
            dx_rows(ET_ACT_RELU, 1, gb, r0, r1, a, b, dx);                                         \
        else if (act == ET_ACT_RELU)                                                               \
            dx_rows(ET_ACT_RELU, 0, gb, r0, r1, a, b, dx);                                         \
        else if (act == ET_ACT_RELU6 && gb->y)                                                     \
            dx_rows(ET_ACT_RELU6, 1, gb, r0, r1, a, b, dx);                                        \
        else if (act == ET_ACT_RELU6)                                                              \
            dx_rows(ET_ACT_RELU6, 0, gb, r0, r1, a, b, dx);                                        \
        else                                                                                       \
            dx_rows(ET_ACT_NONE, 0, gb, r0, r1, a, b, dx);                                         \
    }

BN_VARIANT(_port, )
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BN_AVX2 1
BN_VARIANT(_avx2, __attribute__((target("avx2,fma"))))
#define BN_CALL(avx2, fn, ...) ((avx2) ? fn##_avx2(__VA_ARGS__) : fn##_port(__VA_ARGS__))
#else
#define BN_AVX2 0
#define BN_CALL(avx2, fn, ...) fn##_port(__VA_ARGS__)
#endif

/* Rows go to threads in blocks of this many in the element-wise passes. */
#define BN_ROW_BLOCK 256

/* The parallel passes over one channel block. The chunks of the sums are
 * fixed by rows alone (chunks_of). */
static void stat_sums(size_t rows, int c, int c0, int nb, const float *x, const double *shift,
                      double (*s1)[ET_FAST_CBLOCK], double (*s2)[ET_FAST_CBLOCK])
{
    const int chunks = chunks_of(rows), avx2 = BN_AVX2 && et_fast_avx2();
#pragma omp parallel for schedule(dynamic, 1) if (rows * nb > ET_FAST_PAR_MIN)
    for (int k = 0; k < chunks; k++)
        BN_CALL(avx2, stat_rows, et_fast_split(rows, chunks, k), et_fast_split(rows, chunks, k + 1),
                c, c0, nb, x, shift, s1[k], s2[k]);
}

static void affine(et_act act, size_t rows, int c, int c0, int nb, const float *x,
                   const float *mean, const float *scale, const float *shift, float *y)
{
    const long blocks = (long)((rows + BN_ROW_BLOCK - 1) / BN_ROW_BLOCK);
    const int avx2 = BN_AVX2 && et_fast_avx2();
#pragma omp parallel for schedule(dynamic, 1) if (rows * nb > ET_FAST_PAR_MIN)
    for (long k = 0; k < blocks; k++) {
        size_t r0 = (size_t)k * BN_ROW_BLOCK, r1 = r0 + BN_ROW_BLOCK;
        BN_CALL(avx2, affine_rows, act, r0, r1 < rows ? r1 : rows, c, c0, nb, x, mean, scale, shift,
                y);
    }
}

static void grad_sums(et_act act, const grad_block *gb, double (*s1)[ET_FAST_CBLOCK],
                      double (*s2)[ET_FAST_CBLOCK])
{
    const int chunks = chunks_of(gb->rows), avx2 = BN_AVX2 && et_fast_avx2();
#pragma omp parallel for schedule(dynamic, 1) if (gb->rows * gb->nb > ET_FAST_PAR_MIN)
    for (int k = 0; k < chunks; k++)
        BN_CALL(avx2, grad_rows, act, gb, et_fast_split(gb->rows, chunks, k),
                et_fast_split(gb->rows, chunks, k + 1), s1[k], s2[k]);
}

static void grad_dx(et_act act, const grad_block *gb, const float *a, const float *b, float *dx)
{
    const long blocks = (long)((gb->rows + BN_ROW_BLOCK - 1) / BN_ROW_BLOCK);
    const int avx2 = BN_AVX2 && et_fast_avx2();
#pragma omp parallel for schedule(dynamic, 1) if (gb->rows * gb->nb > ET_FAST_PAR_MIN)
    for (long k = 0; k < blocks; k++) {
        size_t r0 = (size_t)k * BN_ROW_BLOCK, r1 = r0 + BN_ROW_BLOCK;
        BN_CALL(avx2, dx_rows, act, gb, r0, r1 < gb->rows ? r1 : gb->rows, a, b, dx);
    }
}

/* ------------------------------------------------------------------------
 * Forward
 */

void et_batchnorm_act_forward_train_fast(const et_batchnorm_params *p, et_act act, size_t rows,
                                         int c, const float *x, const float *gamma,
                                         const float *beta, float *y, float *save_mean,
                                         float *save_invstd, float *running_mean,
                                         float *running_var)
{
    double s1[ET_FAST_CHUNKS][ET_FAST_CBLOCK], s2[ET_FAST_CHUNKS][ET_FAST_CBLOCK];
    const int chunks = chunks_of(rows);
    for (int c0 = 0; c0 < c; c0 += ET_FAST_CBLOCK) {
        const int nb = c - c0 < ET_FAST_CBLOCK ? c - c0 : ET_FAST_CBLOCK;
        double shift[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++)
            shift[j] = x[c0 + j];
        stat_sums(rows, c, c0, nb, x, shift, s1, s2);
        float fmean[ET_FAST_CBLOCK], scale[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++) {
            const int ch = c0 + j;
            double t1 = 0.0, t2 = 0.0;
            for (int k = 0; k < chunks; k++) {
                t1 += s1[k][j];
                t2 += s2[k][j];
            }
            double mean = shift[j] + t1 / (double)rows;
            double sq = t2 - t1 * (t1 / (double)rows);
            sq = sq > 0.0 ? sq : 0.0;
            double var = sq / (double)rows;
            double invstd = 1.0 / sqrt(var + p->epsilon);
            save_mean[ch] = fmean[j] = (float)mean;
            save_invstd[ch] = (float)invstd;
            scale[j] = gamma[ch] * save_invstd[ch];
            if (running_mean && running_var) {
                double unbiased = rows > 1 ? sq / (double)(rows - 1) : var;
                double m = p->momentum;
                running_mean[ch] = (float)(m * running_mean[ch] + (1.0 - m) * mean);
                running_var[ch] = (float)(m * running_var[ch] + (1.0 - m) * unbiased);
            }
        }
        affine(act, rows, c, c0, nb, x, fmean, scale, beta + c0, y);
    }
}

void et_batchnorm_forward_train_fast(const et_batchnorm_params *p, size_t rows, int c,
                                     const float *x, const float *gamma, const float *beta,
                                     float *y, float *save_mean, float *save_invstd,
                                     float *running_mean, float *running_var)
{
    et_batchnorm_act_forward_train_fast(p, ET_ACT_NONE, rows, c, x, gamma, beta, y, save_mean,
                                        save_invstd, running_mean, running_var);
}

void et_batchnorm_act_forward_infer_fast(const et_batchnorm_params *p, et_act act, size_t rows,
                                         int c, const float *x, const float *gamma,
                                         const float *beta, const float *running_mean,
                                         const float *running_var, float *y)
{
    for (int c0 = 0; c0 < c; c0 += ET_FAST_CBLOCK) {
        const int nb = c - c0 < ET_FAST_CBLOCK ? c - c0 : ET_FAST_CBLOCK;
        float scale[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++)
            scale[j] = (float)(gamma[c0 + j] / sqrt((double)running_var[c0 + j] + p->epsilon));
        affine(act, rows, c, c0, nb, x, running_mean + c0, scale, beta + c0, y);
    }
}

void et_batchnorm_forward_infer_fast(const et_batchnorm_params *p, size_t rows, int c,
                                     const float *x, const float *gamma, const float *beta,
                                     const float *running_mean, const float *running_var, float *y)
{
    et_batchnorm_act_forward_infer_fast(p, ET_ACT_NONE, rows, c, x, gamma, beta, running_mean,
                                        running_var, y);
}

/* ------------------------------------------------------------------------
 * Backward
 */

void et_batchnorm_act_backward_fast(et_act act, size_t rows, int c, const float *x, const float *y,
                                    const float *gamma, const float *beta, const float *save_mean,
                                    const float *save_invstd, const float *dy, float *dx,
                                    float *dgamma, float *dbeta)
{
    double s1[ET_FAST_CHUNKS][ET_FAST_CBLOCK], s2[ET_FAST_CHUNKS][ET_FAST_CBLOCK];
    const int chunks = chunks_of(rows);
    grad_block gb = {.rows = rows, .c = c, .x = x, .dy = dy, .y = act == ET_ACT_NONE ? NULL : y};
    for (int c0 = 0; c0 < c; c0 += ET_FAST_CBLOCK) {
        const int nb = c - c0 < ET_FAST_CBLOCK ? c - c0 : ET_FAST_CBLOCK;
        gb.c0 = c0;
        gb.nb = nb;
        for (int j = 0; j < nb; j++) {
            const int ch = c0 + j;
            gb.fmean[j] = save_mean[ch];
            gb.finv[j] = save_invstd[ch];
            /* The forward pass's scale: the same float product. */
            gb.scale[j] = gamma[ch] * save_invstd[ch];
            gb.beta[j] = act == ET_ACT_NONE || y ? 0.0f : beta[ch];
        }
        grad_sums(act, &gb, s1, s2);
        float a[ET_FAST_CBLOCK], b[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++) {
            double sum_dy = 0.0, sum_dyx = 0.0;
            for (int k = 0; k < chunks; k++) {
                sum_dy += s1[k][j];
                sum_dyx += s2[k][j];
            }
            if (dbeta)
                dbeta[c0 + j] = (float)sum_dy;
            if (dgamma)
                dgamma[c0 + j] = (float)sum_dyx;
            a[j] = (float)(sum_dy / (double)rows);
            b[j] = (float)(sum_dyx / (double)rows);
        }
        if (dx)
            grad_dx(act, &gb, a, b, dx);
    }
}

void et_batchnorm_backward_fast(size_t rows, int c, const float *x, const float *gamma,
                                const float *save_mean, const float *save_invstd, const float *dy,
                                float *dx, float *dgamma, float *dbeta)
{
    et_batchnorm_act_backward_fast(ET_ACT_NONE, rows, c, x, NULL, gamma, NULL, save_mean,
                                   save_invstd, dy, dx, dgamma, dbeta);
}

void et_batchnorm_backward_infer_fast(const et_batchnorm_params *p, size_t rows, int c,
                                      const float *x, const float *gamma, const float *running_mean,
                                      const float *running_var, const float *dy, float *dx,
                                      float *dgamma, float *dbeta)
{
    for (int c0 = 0; c0 < c; c0 += ET_FAST_CBLOCK) {
        const int nb = c - c0 < ET_FAST_CBLOCK ? c - c0 : ET_FAST_CBLOCK;
        double s1[ET_FAST_CHUNKS][ET_FAST_CBLOCK], s2[ET_FAST_CHUNKS][ET_FAST_CBLOCK];
        grad_block gb = {.rows = rows, .c = c, .c0 = c0, .nb = nb, .x = x, .dy = dy};
        float scale[ET_FAST_CBLOCK];
        for (int j = 0; j < nb; j++) {
            double invstd = 1.0 / sqrt((double)running_var[c0 + j] + p->epsilon);
            gb.fmean[j] = running_mean[c0 + j];
            gb.finv[j] = (float)invstd;
            scale[j] = (float)(gamma[c0 + j] * invstd);
        }
        if (dgamma || dbeta) {
            grad_sums(ET_ACT_NONE, &gb, s1, s2);
            for (int j = 0; j < nb; j++) {
                double t1 = 0.0, t2 = 0.0;
                for (int k = 0; k < chunks_of(rows); k++) {
                    t1 += s1[k][j];
                    t2 += s2[k][j];
                }
                if (dbeta)
                    dbeta[c0 + j] = (float)t1;
                if (dgamma)
                    dgamma[c0 + j] = (float)t2;
            }
        }
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
