/* Reference pooling: max, average and global average, NHWC.
 *
 * Padding takes no part (TensorFlow's behaviour): windows are clipped to the
 * input, so a max never picks a padded zero and an average divides by the
 * number of real pixels. The backward passes scatter into dx, which they zero
 * first; overlapping windows (3x3 stride 2) add into the same dx element in a
 * fixed order, so results are reproducible. */
#include "kernels/kernels.h"

#include <string.h>

typedef et_window_clip clip;

static int clip_empty(const clip *c)
{
    return c->y0 >= c->y1 || c->x0 >= c->x1;
}

/* Offset in x of the first maximum of channel ch in the clipped window (row-major
 * scan, strict > so the first of equal values wins). The window must not be empty. */
static size_t argmax_at(const et_dims *in, const float *x, int n, const clip *c, int ch)
{
    size_t best = et_dims_index(in, n, c->y0, c->x0, ch);
    for (int iy = c->y0; iy < c->y1; iy++)
        for (int ix = c->x0; ix < c->x1; ix++) {
            size_t i = et_dims_index(in, n, iy, ix, ch);
            if (x[i] > x[best])
                best = i;
        }
    return best;
}

void et_maxpool_forward_ref(const et_window *win, const et_dims *in, const float *x,
                            const et_dims *out, float *y)
{
    for (int n = 0; n < out->n; n++)
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++) {
                clip c = et_window_at(win, in, oy, ox);
                float *yp = y + et_dims_index(out, n, oy, ox, 0);
                for (int ch = 0; ch < out->c; ch++)
                    yp[ch] = clip_empty(&c) ? 0.0f : x[argmax_at(in, x, n, &c, ch)];
            }
}

void et_maxpool_backward_ref(const et_window *win, const et_dims *in, const float *x,
                             const et_dims *out, const float *dy, float *dx)
{
    memset(dx, 0, et_dims_count(in) * sizeof *dx);
    for (int n = 0; n < out->n; n++)
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++) {
                clip c = et_window_at(win, in, oy, ox);
                if (clip_empty(&c))
                    continue;
                const float *g = dy + et_dims_index(out, n, oy, ox, 0);
                for (int ch = 0; ch < out->c; ch++)
                    dx[argmax_at(in, x, n, &c, ch)] += g[ch];
            }
}

void et_avgpool_forward_ref(const et_window *win, const et_dims *in, const float *x,
                            const et_dims *out, float *y)
{
    for (int n = 0; n < out->n; n++)
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++) {
                clip c = et_window_at(win, in, oy, ox);
                int count = clip_empty(&c) ? 0 : (c.y1 - c.y0) * (c.x1 - c.x0);
                for (int ch = 0; ch < out->c; ch++) {
                    double acc = 0.0;
                    for (int iy = c.y0; iy < c.y1; iy++)
                        for (int ix = c.x0; ix < c.x1; ix++)
                            acc += x[et_dims_index(in, n, iy, ix, ch)];
                    y[et_dims_index(out, n, oy, ox, ch)] = count ? (float)(acc / count) : 0.0f;
                }
            }
}

void et_avgpool_backward_ref(const et_window *win, const et_dims *in, const et_dims *out,
                             const float *dy, float *dx)
{
    memset(dx, 0, et_dims_count(in) * sizeof *dx);
    for (int n = 0; n < out->n; n++)
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++) {
                clip c = et_window_at(win, in, oy, ox);
                if (clip_empty(&c))
                    continue;
                double count = (double)(c.y1 - c.y0) * (c.x1 - c.x0);
                for (int ch = 0; ch < out->c; ch++) {
                    float g = (float)(dy[et_dims_index(out, n, oy, ox, ch)] / count);
                    for (int iy = c.y0; iy < c.y1; iy++)
                        for (int ix = c.x0; ix < c.x1; ix++)
                            dx[et_dims_index(in, n, iy, ix, ch)] += g;
                }
            }
}

void et_global_avgpool_forward_ref(const et_dims *in, const float *x, float *y)
{
    size_t pixels = (size_t)in->h * in->w;
    for (int n = 0; n < in->n; n++)
        for (int ch = 0; ch < in->c; ch++) {
            double acc = 0.0;
            for (size_t p = 0; p < pixels; p++)
                acc += x[((size_t)n * pixels + p) * in->c + ch];
            y[(size_t)n * in->c + ch] = (float)(acc / (double)pixels);
        }
}

void et_global_avgpool_backward_ref(const et_dims *in, const float *dy, float *dx)
{
    size_t pixels = (size_t)in->h * in->w;
    for (int n = 0; n < in->n; n++)
        for (size_t p = 0; p < pixels; p++)
            for (int ch = 0; ch < in->c; ch++)
                dx[((size_t)n * pixels + p) * in->c + ch] =
                    (float)(dy[(size_t)n * in->c + ch] / (double)pixels);
}
