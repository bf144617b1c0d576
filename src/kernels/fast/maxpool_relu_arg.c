/* Max pooling over a ReLU's output with the argmax kept, for the fused
 * conv2d -> ReLU -> max pool kernels (conv2d.c): the forward pass records, per
 * pooled element, which pixel of its window held the first maximum, so that
 * the backward pass routes the gradient without reading the ReLU's output
 * again (for a first layer at 28x28x32, 100 KB per image against 6 KB).
 *
 * arg[n][py][px][c], one byte: the first maximum's position in row-major
 * order within the window clipped to the input, or ET_FAST_ARG_NONE when that
 * maximum is not > 0, so that the ReLU before the pool passes no gradient
 * there. The results are the bits of et_maxpool_forward_fast and of
 * et_maxpool_relu_backward_fast: the same first maximum, the same sums. */
#include "kernels/fast/fast_internal.h"

#include <string.h>

typedef et_window_clip clip;

static int clip_count(const clip *c)
{
    return c->y0 >= c->y1 || c->x0 >= c->x1 ? 0 : (c->y1 - c->y0) * (c->x1 - c->x0);
}

int et_fast_arg_fits(const et_window *win)
{
    return win->k_h * win->k_w < ET_FAST_ARG_NONE;
}

/* One full 2x2 window, all channels: the maximum as et_maxpool_forward_fast
 * finds it (a later pixel wins only when strictly greater), its position by
 * float selects so that the loop vectorises, then the byte. */
static void forward_2x2(int ch, size_t row, const float *restrict x0, float *restrict y,
                        uint8_t *restrict arg)
{
    const float *restrict x1 = x0 + ch, *restrict x2 = x0 + row, *restrict x3 = x2 + ch;
#pragma omp simd
    for (int k = 0; k < ch; k++) {
        const float v0 = x0[k], v1 = x1[k], v2 = x2[k], v3 = x3[k];
        const float b1 = v1 > v0 ? v1 : v0, b2 = v2 > b1 ? v2 : b1, b3 = v3 > b2 ? v3 : b2;
        const float i1 = v1 > v0 ? 1.0f : 0.0f, i2 = v2 > b1 ? 2.0f : i1, i3 = v3 > b2 ? 3.0f : i2;
        y[k] = b3;
        arg[k] = (uint8_t)(int)(b3 > 0.0f ? i3 : (float)ET_FAST_ARG_NONE);
    }
}

void et_fast_maxpool_relu_arg_forward_serial(const et_window *win, const et_dims *in,
                                             const float *x, const et_dims *out, float *y,
                                             uint8_t *arg)
{
    const int ch = in->c;
    for (int n = 0; n < out->n; n++)
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++) {
                clip c = et_window_at(win, in, oy, ox);
                const size_t at = et_dims_index(out, n, oy, ox, 0);
                float *yp = y + at;
                uint8_t *ap = arg + at;
                if (!clip_count(&c)) {
                    memset(yp, 0, (size_t)ch * sizeof *yp);
                    memset(ap, ET_FAST_ARG_NONE, (size_t)ch);
                    continue;
                }
                const float *x0 = x + et_dims_index(in, n, c.y0, c.x0, 0);
                if (c.y1 - c.y0 == 2 && c.x1 - c.x0 == 2) {
                    forward_2x2(ch, (size_t)in->w * ch, x0, yp, ap);
                    continue;
                }
                const int cw = c.x1 - c.x0;
                for (int k = 0; k < ch; k++) {
                    float best = x0[k];
                    int pos = 0;
                    for (int iy = c.y0; iy < c.y1; iy++)
                        for (int ix = c.x0; ix < c.x1; ix++) {
                            float v = x[et_dims_index(in, n, iy, ix, k)];
                            if (v > best) {
                                best = v;
                                pos = (iy - c.y0) * cw + (ix - c.x0);
                            }
                        }
                    yp[k] = best;
                    ap[k] = (uint8_t)(best > 0.0f ? pos : ET_FAST_ARG_NONE);
                }
            }
}

/* One full 2x2 window, all channels: 0 + g at the recorded pixel, 0
 * elsewhere (the window owns its four pixels: windows do not overlap). The
 * position is compared as a float: GCC 12 vectorises float selects on float
 * compares, not on compares of the bytes. */
static void backward_2x2(int ch, size_t row, const uint8_t *restrict arg, const float *restrict g,
                         float *restrict d0)
{
    float *restrict d1 = d0 + ch, *restrict d2 = d0 + row, *restrict d3 = d2 + ch;
#pragma omp simd
    for (int k = 0; k < ch; k++) {
        const float a = (float)arg[k];
        const float v = 0.0f + g[k];
        d0[k] = a == 0.0f ? v : 0.0f;
        d1[k] = a == 1.0f ? v : 0.0f;
        d2[k] = a == 2.0f ? v : 0.0f;
        d3[k] = a == 3.0f ? v : 0.0f;
    }
}

void et_fast_maxpool_relu_arg_backward_serial(const et_window *win, const et_dims *in,
                                              const et_dims *out, const uint8_t *arg,
                                              const float *dy, float *dx)
{
    const int ch = in->c;
    const size_t in_img = (size_t)in->h * in->w * ch, row = (size_t)in->w * ch;
    /* Windows that tile the input exactly: each pixel is written once. */
    const int tiled = win->stride_h == win->k_h && win->stride_w == win->k_w &&
                      out->h * win->stride_h - win->pad_top >= in->h &&
                      out->w * win->stride_w - win->pad_left >= in->w;
    for (int n = 0; n < in->n; n++) {
        float *dxn = dx + (size_t)n * in_img;
        if (!tiled)
            memset(dxn, 0, in_img * sizeof *dxn);
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++) {
                clip c = et_window_at(win, in, oy, ox);
                if (!clip_count(&c))
                    continue;
                const size_t at = et_dims_index(out, n, oy, ox, 0);
                const float *g = dy + at;
                const uint8_t *ap = arg + at;
                float *d0 = dxn + ((size_t)c.y0 * in->w + c.x0) * ch;
                if (tiled && c.y1 - c.y0 == 2 && c.x1 - c.x0 == 2) {
                    backward_2x2(ch, row, ap, g, d0);
                    continue;
                }
                const int cw = c.x1 - c.x0;
                if (tiled)
                    for (int iy = c.y0; iy < c.y1; iy++)
                        memset(dxn + ((size_t)iy * in->w + c.x0) * ch, 0,
                               (size_t)cw * ch * sizeof *dxn);
                /* Overlapping windows add in output-pixel order, as the scatter
                 * of et_maxpool_backward_fast does. */
                for (int k = 0; k < ch; k++)
                    if (ap[k] != ET_FAST_ARG_NONE)
                        d0[((size_t)(ap[k] / cw) * in->w + ap[k] % cw) * ch + k] += g[k];
            }
    }
}
