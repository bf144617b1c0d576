/* Fast pooling: max, average and global average, NHWC. Same semantics as
 * ref/pool.c (padding takes no part; an empty window gives 0 and no gradient;
 * a max's gradient goes to the first maximum in row-major window order).
 *
 * Forward passes are parallel over output rows. Backward passes scatter into
 * dx, and overlapping windows (3x3 stride 2) add into the same element, so
 * they are parallel over images: within an image the additions happen in the
 * same output-pixel order as in ref/, whatever the thread count. The inner
 * loops run over contiguous channels, or over blocks of ET_FAST_CBLOCK
 * channels kept in small arrays, and vectorise. */
#include "kernels/fast/fast_internal.h"

#include <string.h>

typedef et_window_clip clip;

static int clip_count(const clip *c)
{
    return c->y0 >= c->y1 || c->x0 >= c->x1 ? 0 : (c->y1 - c->y0) * (c->x1 - c->x0);
}

void et_maxpool_forward_fast(const et_window *win, const et_dims *in, const float *x,
                             const et_dims *out, float *y)
{
    const int ch = in->c;
    const long rows = (long)out->n * out->h;
#pragma omp parallel for schedule(dynamic, 4) if (et_dims_count(out) > ET_FAST_PAR_MIN)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / out->h), oy = (int)(r % out->h);
        for (int ox = 0; ox < out->w; ox++) {
            clip c = et_window_at(win, in, oy, ox);
            float *restrict yp = y + et_dims_index(out, n, oy, ox, 0);
            if (!clip_count(&c)) {
                memset(yp, 0, (size_t)ch * sizeof *yp);
                continue;
            }
            /* Strict > from the first pixel keeps the first maximum, as ref's
             * argmax does, NaN included. */
            memcpy(yp, x + et_dims_index(in, n, c.y0, c.x0, 0), (size_t)ch * sizeof *yp);
            for (int iy = c.y0; iy < c.y1; iy++)
                for (int ix = c.x0; ix < c.x1; ix++) {
                    const float *restrict xp = x + et_dims_index(in, n, iy, ix, 0);
#pragma omp simd
                    for (int k = 0; k < ch; k++)
                        yp[k] = xp[k] > yp[k] ? xp[k] : yp[k];
                }
        }
    }
}

void et_maxpool_backward_fast(const et_window *win, const et_dims *in, const float *x,
                              const et_dims *out, const float *dy, float *dx)
{
    const int ch = in->c;
    const size_t in_img = (size_t)in->h * in->w * ch;
#pragma omp parallel for schedule(dynamic, 1) if (et_dims_count(in) > ET_FAST_PAR_MIN)
    for (int n = 0; n < in->n; n++) {
        float *dxn = dx + (size_t)n * in_img;
        const float *xn = x + (size_t)n * in_img;
        memset(dxn, 0, in_img * sizeof *dxn);
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++) {
                clip c = et_window_at(win, in, oy, ox);
                if (!clip_count(&c))
                    continue;
                const float *g = dy + et_dims_index(out, n, oy, ox, 0);
                for (int c0 = 0; c0 < ch; c0 += ET_FAST_CBLOCK) {
                    const int nb = ch - c0 < ET_FAST_CBLOCK ? ch - c0 : ET_FAST_CBLOCK;
                    float best[ET_FAST_CBLOCK];
                    int at[ET_FAST_CBLOCK]; /* pixel offset of the maximum in the image */
                    int first = c.y0 * in->w + c.x0;
                    for (int k = 0; k < nb; k++) {
                        best[k] = xn[(size_t)first * ch + c0 + k];
                        at[k] = first;
                    }
                    for (int iy = c.y0; iy < c.y1; iy++)
                        for (int ix = c.x0; ix < c.x1; ix++) {
                            const int pix = iy * in->w + ix;
                            const float *xp = xn + (size_t)pix * ch + c0;
#pragma omp simd
                            for (int k = 0; k < nb; k++) {
                                /* A mask rather than a select for the index:
                                 * GCC cannot blend ints with SSE2 alone. */
                                float v = xp[k], b = best[k];
                                int a = at[k], more = -(v > b);
                                best[k] = v > b ? v : b;
                                at[k] = a ^ ((a ^ pix) & more);
                            }
                        }
                    for (int k = 0; k < nb; k++)
                        dxn[(size_t)at[k] * ch + c0 + k] += g[c0 + k];
                }
            }
    }
}

void et_avgpool_forward_fast(const et_window *win, const et_dims *in, const float *x,
                             const et_dims *out, float *y)
{
    const int ch = in->c;
    const long rows = (long)out->n * out->h;
#pragma omp parallel for schedule(dynamic, 4) if (et_dims_count(out) > ET_FAST_PAR_MIN)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / out->h), oy = (int)(r % out->h);
        for (int ox = 0; ox < out->w; ox++) {
            clip c = et_window_at(win, in, oy, ox);
            const int count = clip_count(&c);
            float *restrict yp = y + et_dims_index(out, n, oy, ox, 0);
            memset(yp, 0, (size_t)ch * sizeof *yp);
            if (!count)
                continue;
            for (int iy = c.y0; iy < c.y1; iy++)
                for (int ix = c.x0; ix < c.x1; ix++) {
                    const float *restrict xp = x + et_dims_index(in, n, iy, ix, 0);
#pragma omp simd
                    for (int k = 0; k < ch; k++)
                        yp[k] += xp[k];
                }
            const float fc = (float)count;
#pragma omp simd
            for (int k = 0; k < ch; k++)
                yp[k] /= fc;
        }
    }
}

void et_avgpool_backward_fast(const et_window *win, const et_dims *in, const et_dims *out,
                              const float *dy, float *dx)
{
    const int ch = in->c;
    const size_t in_img = (size_t)in->h * in->w * ch;
#pragma omp parallel for schedule(dynamic, 1) if (et_dims_count(in) > ET_FAST_PAR_MIN)
    for (int n = 0; n < in->n; n++) {
        float *dxn = dx + (size_t)n * in_img;
        memset(dxn, 0, in_img * sizeof *dxn);
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++) {
                clip c = et_window_at(win, in, oy, ox);
                const int count = clip_count(&c);
                if (!count)
                    continue;
                const float *g = dy + et_dims_index(out, n, oy, ox, 0);
                const float fc = (float)count;
                for (int c0 = 0; c0 < ch; c0 += ET_FAST_CBLOCK) {
                    const int nb = ch - c0 < ET_FAST_CBLOCK ? ch - c0 : ET_FAST_CBLOCK;
                    float share[ET_FAST_CBLOCK];
#pragma omp simd
                    for (int k = 0; k < nb; k++)
                        share[k] = g[c0 + k] / fc;
                    for (int iy = c.y0; iy < c.y1; iy++)
                        for (int ix = c.x0; ix < c.x1; ix++) {
                            float *restrict d = dxn + ((size_t)iy * in->w + ix) * ch + c0;
#pragma omp simd
                            for (int k = 0; k < nb; k++)
                                d[k] += share[k];
                        }
                }
            }
    }
}

void et_global_avgpool_forward_fast(const et_dims *in, const float *x, float *y)
{
    const size_t pixels = (size_t)in->h * in->w;
    const int ch = in->c;
#pragma omp parallel for schedule(dynamic, 1) if (et_dims_count(in) > ET_FAST_PAR_MIN)
    for (int n = 0; n < in->n; n++)
        for (int c0 = 0; c0 < ch; c0 += ET_FAST_CBLOCK) {
            const int nb = ch - c0 < ET_FAST_CBLOCK ? ch - c0 : ET_FAST_CBLOCK;
            double acc[ET_FAST_CBLOCK] = {0};
            for (size_t p = 0; p < pixels; p++) {
                const float *xp = x + ((size_t)n * pixels + p) * ch + c0;
#pragma omp simd
                for (int k = 0; k < nb; k++)
                    acc[k] += xp[k];
            }
            for (int k = 0; k < nb; k++)
                y[(size_t)n * ch + c0 + k] = (float)(acc[k] / (double)pixels);
        }
}

void et_global_avgpool_backward_fast(const et_dims *in, const float *dy, float *dx)
{
    const size_t pixels = (size_t)in->h * in->w, rows = (size_t)in->n * pixels;
    const int ch = in->c;
    const float fp = (float)pixels;
#pragma omp parallel for schedule(dynamic, 256) if (et_dims_count(in) > ET_FAST_PAR_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *restrict g = dy + r / pixels * ch;
        float *restrict d = dx + r * ch;
#pragma omp simd
        for (int k = 0; k < ch; k++)
            d[k] = g[k] / fp;
    }
}
