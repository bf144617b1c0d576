/* Radix-2 complex float FFT for the t-SNE repulsion (tsne_repulsion.c): along
 * the rows of a matrix, and down the columns of a narrow contiguous strip.
 *
 * A 2-D transform is row transforms, then column transforms. Rows are
 * contiguous: each stays in cache through all its stages and every stage's
 * inner loop is contiguous. Columns are done a strip of w columns at a time,
 * copied into a contiguous m x w buffer: a butterfly then combines two buffer
 * rows, w values at once (vectorised), and the buffer stays in the L2 cache
 * through all stages. Butterflies on the columns of the full matrix in place
 * would touch a new page at nearly every access (measured 3-4x slower at
 * m = 1,024).
 *
 * Forward: decimation in frequency (natural order in, bit-reversed out).
 * Inverse: decimation in time (bit-reversed in, natural out), conjugate
 * twiddles, no 1/m scaling. Together they need no reordering pass.
 */
#include "explore/tsne_internal.h"

#include <math.h>
#include <stdlib.h>

#define PAR_MIN_WORK 16384 /* fewer values than this: one thread */

et_status et_fft_plan_init(et_fft_plan *p, size_t m)
{
    p->m = m;
    /* Stage with half-span s (a power of two) uses exp(-pi i t / s), t < s,
     * stored at offset s - 1: m - 1 values in all. */
    p->wr = malloc(m * sizeof *p->wr);
    p->wi = malloc(m * sizeof *p->wi);
    if (!p->wr || !p->wi) {
        et_fft_plan_free(p);
        return ET_ENOMEM;
    }
    const double pi = 3.14159265358979323846264338327950288;
    for (size_t s = 1; s < m; s *= 2)
        for (size_t t = 0; t < s; t++) {
            /* Straight from cos/sin in double, no recurrence: each is the float
             * nearest to the exact twiddle. */
            double a = pi * (double)t / (double)s;
            p->wr[s - 1 + t] = (float)cos(a);
            p->wi[s - 1 + t] = (float)-sin(a);
        }
    return ET_OK;
}

void et_fft_plan_free(et_fft_plan *p)
{
    if (!p)
        return;
    free(p->wr), free(p->wi);
    p->wr = p->wi = NULL;
}

size_t et_fft_bitrev(size_t i, size_t m)
{
    size_t r = 0;
    for (size_t b = 1; b < m; b <<= 1) {
        r = (r << 1) | (i & 1);
        i >>= 1;
    }
    return r;
}

/* ------------------------------------------------------------------------
 * Along a row: the pairs of a stage are t and t + span within each block of
 * 2 span values.
 */
ET_TSNE_CLONES static void forward_row(const et_fft_plan *p, float *restrict re, float *restrict im)
{
    size_t m = p->m;
    for (size_t span = m / 2; span >= 2; span /= 2) {
        const float *wr = p->wr + span - 1, *wi = p->wi + span - 1;
        for (size_t s = 0; s < m; s += 2 * span) {
            float *ar = re + s, *ai = im + s, *br = re + s + span, *bi = im + s + span;
#pragma omp simd
            for (size_t t = 0; t < span; t++) {
                float ur = ar[t] - br[t], ui = ai[t] - bi[t];
                ar[t] += br[t], ai[t] += bi[t];
                br[t] = ur * wr[t] - ui * wi[t];
                bi[t] = ur * wi[t] + ui * wr[t];
            }
        }
    }
    for (size_t s = 0; s < m; s += 2) { /* half-span 1: the twiddle is 1 */
        float ur = re[s] - re[s + 1], ui = im[s] - im[s + 1];
        re[s] += re[s + 1], im[s] += im[s + 1];
        re[s + 1] = ur, im[s + 1] = ui;
    }
}

ET_TSNE_CLONES static void inverse_row(const et_fft_plan *p, float *restrict re, float *restrict im)
{
    size_t m = p->m;
    for (size_t s = 0; s < m; s += 2) {
        float tr = re[s + 1], ti = im[s + 1];
        re[s + 1] = re[s] - tr, im[s + 1] = im[s] - ti;
        re[s] += tr, im[s] += ti;
    }
    for (size_t span = 2; span < m; span *= 2) {
        const float *wr = p->wr + span - 1, *wi = p->wi + span - 1;
        for (size_t s = 0; s < m; s += 2 * span) {
            float *ar = re + s, *ai = im + s, *br = re + s + span, *bi = im + s + span;
#pragma omp simd
            for (size_t t = 0; t < span; t++) {
                float tr = br[t] * wr[t] + bi[t] * wi[t], ti = bi[t] * wr[t] - br[t] * wi[t];
                br[t] = ar[t] - tr, bi[t] = ai[t] - ti;
                ar[t] += tr, ai[t] += ti;
            }
        }
    }
}

void et_fft_rows(const et_fft_plan *p, float *re, float *im, size_t rows, size_t ld, bool inverse)
{
    /* Rows are independent; each gets the same operations whatever thread runs it. */
#pragma omp parallel for schedule(dynamic, 8) if (rows * p->m >= PAR_MIN_WORK)
    for (ptrdiff_t r = 0; r < (ptrdiff_t)rows; r++) {
        if (inverse)
            inverse_row(p, re + (size_t)r * ld, im + (size_t)r * ld);
        else
            forward_row(p, re + (size_t)r * ld, im + (size_t)r * ld);
    }
}

/* ------------------------------------------------------------------------
 * Down the columns of an m x w strip: the pairs of a stage are whole rows.
 */

/* Rows a and b: (a, b) <- (a + b, (a - b) w). */
ET_TSNE_CLONES static void dif_rows(float *restrict ar, float *restrict ai, float *restrict br,
                                    float *restrict bi, size_t w, float wr, float wi)
{
#pragma omp simd
    for (size_t c = 0; c < w; c++) {
        float ur = ar[c] - br[c], ui = ai[c] - bi[c];
        ar[c] += br[c], ai[c] += bi[c];
        br[c] = ur * wr - ui * wi;
        bi[c] = ur * wi + ui * wr;
    }
}

/* Rows a and b: t = b conj(w); (a, b) <- (a + t, a - t). */
ET_TSNE_CLONES static void dit_rows(float *restrict ar, float *restrict ai, float *restrict br,
                                    float *restrict bi, size_t w, float wr, float wi)
{
#pragma omp simd
    for (size_t c = 0; c < w; c++) {
        float tr = br[c] * wr + bi[c] * wi, ti = bi[c] * wr - br[c] * wi;
        br[c] = ar[c] - tr, bi[c] = ai[c] - ti;
        ar[c] += tr, ai[c] += ti;
    }
}

void et_fft_strip(const et_fft_plan *p, float *re, float *im, size_t w, bool inverse)
{
    size_t m = p->m;
    if (!inverse) {
        for (size_t span = m / 2; span >= 1; span /= 2)
            for (size_t s = 0; s < m; s += 2 * span)
                for (size_t t = 0; t < span; t++) {
                    size_t a = (s + t) * w, b = a + span * w;
                    dif_rows(re + a, im + a, re + b, im + b, w, p->wr[span - 1 + t],
                             p->wi[span - 1 + t]);
                }
    } else {
        for (size_t span = 1; span < m; span *= 2)
            for (size_t s = 0; s < m; s += 2 * span)
                for (size_t t = 0; t < span; t++) {
                    size_t a = (s + t) * w, b = a + span * w;
                    dit_rows(re + a, im + a, re + b, im + b, w, p->wr[span - 1 + t],
                             p->wi[span - 1 + t]);
                }
    }
}
