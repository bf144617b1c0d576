/* Fast pooling: max, average and global average, NHWC. Same semantics as
 * ref/pool.c (padding takes no part; an empty window gives 0 and no gradient;
 * a max's gradient goes to the first maximum in row-major window order).
 *
 * Forward passes are parallel over output rows. Backward passes scatter into
 * dx, and overlapping windows (3x3 stride 2) add into the same element, so
 * they are parallel over images: within an image the additions happen in the
 * same output-pixel order as in ref/, whatever the thread count. Max pooling
 * over windows that do not overlap (2x2 stride 2) writes each element of dx
 * once instead, with no zero fill, parallel over rows of windows. The inner
 * loops run over contiguous channels, or over blocks of ET_FAST_CBLOCK
 * channels kept in small arrays, and vectorise. */
#include "kernels/fast/fast_internal.h"

#include <string.h>

typedef et_window_clip clip;

static int clip_count(const clip *c)
{
    return c->y0 >= c->y1 || c->x0 >= c->x1 ? 0 : (c->y1 - c->y0) * (c->x1 - c->x0);
}

/* For channels [c0, c0 + nb) of one image xn, the window's maximum and the
 * pixel (iy * w + ix) of its first occurrence in row-major window order.
 * Strict > from the first pixel keeps the first maximum, as ref's argmax does,
 * NaN included. */
static inline void window_argmax(const clip *c, int w, int ch, const float *xn, int c0, int nb,
                                 float *best, int *at)
{
    const int first = c->y0 * w + c->x0;
    for (int k = 0; k < nb; k++) {
        best[k] = xn[(size_t)first * ch + c0 + k];
        at[k] = first;
    }
    for (int iy = c->y0; iy < c->y1; iy++)
        for (int ix = c->x0; ix < c->x1; ix++) {
            const int pix = iy * w + ix;
            const float *xp = xn + (size_t)pix * ch + c0;
#pragma omp simd
            for (int k = 0; k < nb; k++) {
                /* A mask rather than a select for the index: GCC cannot blend
                 * ints with SSE2 alone. */
                float v = xp[k], b = best[k];
                int a = at[k], more = -(v > b);
                best[k] = v > b ? v : b;
                at[k] = a ^ ((a ^ pix) & more);
            }
        }
}

/* Output row r % out->h of image r / out->h of a max pool. */
static void max_forward_row(const et_window *win, const et_dims *in, const float *x,
                            const et_dims *out, float *y, long r)
{
    const int ch = in->c;
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
        const float *restrict x0 = x + et_dims_index(in, n, c.y0, c.x0, 0);
        if (c.y1 - c.y0 == 2 && c.x1 - c.x0 == 2) {
            const float *restrict x1 = x0 + ch, *restrict x2 = x0 + (size_t)in->w * ch,
                                  *restrict x3 = x2 + ch;
#pragma omp simd
            for (int k = 0; k < ch; k++) {
                float b = x0[k];
                b = x1[k] > b ? x1[k] : b;
                b = x2[k] > b ? x2[k] : b;
                yp[k] = x3[k] > b ? x3[k] : b;
            }
            continue;
        }
        memcpy(yp, x0, (size_t)ch * sizeof *yp);
        for (int iy = c.y0; iy < c.y1; iy++)
            for (int ix = c.x0; ix < c.x1; ix++) {
                const float *restrict xp = x + et_dims_index(in, n, iy, ix, 0);
#pragma omp simd
                for (int k = 0; k < ch; k++)
                    yp[k] = xp[k] > yp[k] ? xp[k] : yp[k];
            }
    }
}

void et_maxpool_forward_fast(const et_window *win, const et_dims *in, const float *x,
                             const et_dims *out, float *y)
{
    const long rows = (long)out->n * out->h;
#pragma omp parallel for schedule(dynamic, 4) if (et_dims_count(out) > ET_FAST_PAR_MIN)
    for (long r = 0; r < rows; r++)
        max_forward_row(win, in, x, out, y, r);
}

void et_fast_maxpool_forward_serial(const et_window *win, const et_dims *in, const float *x,
                                    const et_dims *out, float *y)
{
    for (long r = 0; r < (long)out->n * out->h; r++)
        max_forward_row(win, in, x, out, y, r);
}

/* Overlapping windows: dx = 0, then each window's gradient is added onto its
 * first maximum, in output-pixel order as in ref/. Parallel over images. */
/* Image n of an overlapping max pool's backward pass: dx = 0, then each
 * window's gradient is added onto its first maximum, in output-pixel order
 * as in ref/. */
static void scatter_image(const et_window *win, const et_dims *in, const float *x,
                          const et_dims *out, const float *dy, float *dx, int n)
{
    const int ch = in->c;
    const size_t in_img = (size_t)in->h * in->w * ch;
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
                int at[ET_FAST_CBLOCK];
                window_argmax(&c, in->w, ch, xn, c0, nb, best, at);
                for (int k = 0; k < nb; k++)
                    dxn[(size_t)at[k] * ch + c0 + k] += g[c0 + k];
            }
        }
}

/* One 2x2 window of a non-overlapping max pool's backward pass (see below),
 * all channels: x0 is its top-left pixel, row the floats of an input row.
 * The first maximum in row-major order (a later pixel wins only when strictly
 * greater, as in ref/) is found and routed with float selects only, both arms
 * computed, so that the loop vectorises. */
static inline void backward_2x2(int ch, size_t row, const float *restrict x0,
                                const float *restrict g, const int relu, float *restrict d0)
{
    const float *restrict x1 = x0 + ch, *restrict x2 = x0 + row, *restrict x3 = x2 + ch;
    float *restrict d1 = d0 + ch, *restrict d2 = d0 + row, *restrict d3 = d2 + ch;
#pragma omp simd
    for (int k = 0; k < ch; k++) {
        const float v0 = x0[k], v1 = x1[k], v2 = x2[k], v3 = x3[k];
        const float b1 = v1 > v0 ? v1 : v0, b2 = v2 > b1 ? v2 : b1;
        float pass = 0.0f + g[k];
        /* The ReLU passes it when the maximum is > 0. Written per arm rather
         * than on the maximum itself: GCC 12 vectorises only this form. */
        if (relu)
            pass = v3 > b2 ? (v3 > 0.0f ? pass : 0.0f) : (b2 > 0.0f ? pass : 0.0f);
        /* Pixel q is the first maximum when it beats the running maximum
         * before it and no later pixel beats the running maximum before it. */
        const float p1 = v1 > v0 ? pass : 0.0f, p0 = v1 > v0 ? 0.0f : pass;
        const float q2 = v2 > b1 ? pass : 0.0f, q1 = v2 > b1 ? 0.0f : p1, q0 = v2 > b1 ? 0.0f : p0;
        d3[k] = v3 > b2 ? pass : 0.0f;
        d2[k] = v3 > b2 ? 0.0f : q2;
        d1[k] = v3 > b2 ? 0.0f : q1;
        d0[k] = v3 > b2 ? 0.0f : q0;
    }
}

/* Windows that do not overlap (stride >= window, both ways): every element of
 * dx belongs to at most one window, so each is written once, with no zero
 * fill first: the window's gradient at its first maximum (as 0 + g, the sum
 * the scatter would form) and 0 elsewhere. With relu, a maximum that is not
 * > 0 passes 0 instead (ReLU's backward pass over x, its output). Band r is
 * output row r % out->h of image r / out->h and the input rows it owns; the
 * input rows between or below windows, and the columns right of or between
 * them, are zeroed. */
static void tiled_band(const et_window *win, const et_dims *in, const float *x, const et_dims *out,
                       const float *dy, float *dx, int relu, long r)
{
    const int ch = in->c;
    const size_t row_len = (size_t)in->w * ch;
    /* Whether the windows of a row cover every input column. */
    const int full_cols =
        win->stride_w == win->k_w && out->w * win->stride_w - win->pad_left >= in->w;
    const int n = (int)(r / out->h), oy = (int)(r % out->h);
    const float *xn = x + (size_t)n * in->h * row_len;
    float *dxn = dx + (size_t)n * in->h * row_len;
    /* The input rows this band owns: from its window's top (row 0 for the
     * first band) to the next window's top (the last row for the last). */
    int top = oy * win->stride_h - win->pad_top, next = top + win->stride_h;
    top = oy == 0 || top < 0 ? 0 : top;
    next = oy == out->h - 1 || next > in->h ? in->h : next;
    clip rows = et_window_at(win, in, oy, 0);
    for (int iy = top; iy < next; iy++)
        if (iy < rows.y0 || iy >= rows.y1 || !full_cols)
            memset(dxn + (size_t)iy * row_len, 0, row_len * sizeof *dxn);
    for (int ox = 0; ox < out->w; ox++) {
        clip c = et_window_at(win, in, oy, ox);
        if (!clip_count(&c))
            continue;
        const float *g = dy + et_dims_index(out, n, oy, ox, 0);
        if (c.y1 - c.y0 == 2 && c.x1 - c.x0 == 2) {
            const size_t at = ((size_t)c.y0 * in->w + c.x0) * ch;
            if (relu)
                backward_2x2(ch, row_len, xn + at, g, 1, dxn + at);
            else
                backward_2x2(ch, row_len, xn + at, g, 0, dxn + at);
            continue;
        }
        for (int c0 = 0; c0 < ch; c0 += ET_FAST_CBLOCK) {
            const int nb = ch - c0 < ET_FAST_CBLOCK ? ch - c0 : ET_FAST_CBLOCK;
            float best[ET_FAST_CBLOCK], pass[ET_FAST_CBLOCK];
            int at[ET_FAST_CBLOCK];
            window_argmax(&c, in->w, ch, xn, c0, nb, best, at);
#pragma omp simd
            for (int k = 0; k < nb; k++) {
                float v = 0.0f + g[c0 + k];
                pass[k] = relu && !(best[k] > 0.0f) ? 0.0f : v;
            }
            for (int iy = c.y0; iy < c.y1; iy++)
                for (int ix = c.x0; ix < c.x1; ix++) {
                    const int pix = iy * in->w + ix;
                    float *restrict d = dxn + (size_t)pix * ch + c0;
#pragma omp simd
                    for (int k = 0; k < nb; k++)
                        d[k] = at[k] == pix ? pass[k] : 0.0f;
                }
        }
    }
}

static int windows_overlap(const et_window *win)
{
    return win->stride_h < win->k_h || win->stride_w < win->k_w;
}

void et_maxpool_backward_fast(const et_window *win, const et_dims *in, const float *x,
                              const et_dims *out, const float *dy, float *dx)
{
    if (windows_overlap(win)) {
#pragma omp parallel for schedule(dynamic, 1) if (et_dims_count(in) > ET_FAST_PAR_MIN)
        for (int n = 0; n < in->n; n++)
            scatter_image(win, in, x, out, dy, dx, n);
    } else {
        const long bands = (long)out->n * out->h;
#pragma omp parallel for schedule(dynamic, 4) if (et_dims_count(in) > ET_FAST_PAR_MIN)
        for (long r = 0; r < bands; r++)
            tiled_band(win, in, x, out, dy, dx, 0, r);
    }
}

void et_maxpool_relu_backward_fast(const et_window *win, const et_dims *in, const float *x,
                                   const et_dims *out, const float *dy, float *dx)
{
    if (windows_overlap(win)) {
        et_maxpool_backward_fast(win, in, x, out, dy, dx);
        et_relu_backward_fast(et_dims_count(in), x, dx, dx);
        return;
    }
    const long bands = (long)out->n * out->h;
#pragma omp parallel for schedule(dynamic, 4) if (et_dims_count(in) > ET_FAST_PAR_MIN)
    for (long r = 0; r < bands; r++)
        tiled_band(win, in, x, out, dy, dx, 1, r);
}

void et_fast_maxpool_relu_backward_serial(const et_window *win, const et_dims *in, const float *x,
                                          const et_dims *out, const float *dy, float *dx)
{
    if (windows_overlap(win)) {
        const size_t count = et_dims_count(in);
        for (int n = 0; n < in->n; n++)
            scatter_image(win, in, x, out, dy, dx, n);
        /* et_relu_backward_fast's select. */
        for (size_t i = 0; i < count; i++) {
            float g = dx[i];
            dx[i] = x[i] > 0.0f ? g : 0.0f;
        }
        return;
    }
    for (long r = 0; r < (long)out->n * out->h; r++)
        tiled_band(win, in, x, out, dy, dx, 1, r);
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
