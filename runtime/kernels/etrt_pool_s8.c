/* Max and average pooling, int8 (TFLite's reference_integer_ops::MaxPool and
 * AveragePool, bit for bit). Input and output share scale and zero point, so
 * no requantization: max picks a stored value, average divides the integer
 * sum, rounding halves away from zero.
 *
 * Windows are clipped to the input (padding takes no part). With TensorFlow's
 * padding a window always holds at least one input pixel; a hand-made window
 * that holds none gives the clamp of -128 for max (TFLite's starting value)
 * and of 0 for average (where TFLite would report an error).
 */
#include "etrt_kernels.h"

#include <stddef.h>
#include <stdint.h>

typedef struct clip {
    int32_t y0, y1, x0, x1;
} clip;

static clip window_at(const etrt_window *win, etrt_dims in, int32_t oy, int32_t ox)
{
    clip c;
    const int32_t ys = oy * win->stride_h - win->pad_top;
    const int32_t xs = ox * win->stride_w - win->pad_left;
    c.y0 = ys < 0 ? 0 : ys;
    c.x0 = xs < 0 ? 0 : xs;
    c.y1 = ys + win->k_h > in.h ? in.h : ys + win->k_h;
    c.x1 = xs + win->k_w > in.w ? in.w : xs + win->k_w;
    return c;
}

static int8_t clamp(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

void etrt_max_pool_s8(const etrt_pool_s8_params *p, etrt_dims in, const int8_t *x, etrt_dims out,
                      int8_t *y)
{
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oy = 0; oy < out.h; oy++)
            for (int32_t ox = 0; ox < out.w; ox++) {
                const clip c = window_at(&p->win, in, oy, ox);
                int8_t *yp =
                    y + (((size_t)n * (size_t)out.h + (size_t)oy) * (size_t)out.w + (size_t)ox) *
                            (size_t)out.c;
                /* Channels innermost: contiguous in both x and y. */
                for (int32_t ch = 0; ch < out.c; ch++)
                    yp[ch] = INT8_MIN;
                for (int32_t iy = c.y0; iy < c.y1; iy++)
                    for (int32_t ix = c.x0; ix < c.x1; ix++) {
                        const int8_t *xp =
                            x +
                            (((size_t)n * (size_t)in.h + (size_t)iy) * (size_t)in.w + (size_t)ix) *
                                (size_t)in.c;
                        for (int32_t ch = 0; ch < out.c; ch++)
                            yp[ch] = xp[ch] > yp[ch] ? xp[ch] : yp[ch];
                    }
                for (int32_t ch = 0; ch < out.c; ch++)
                    yp[ch] = clamp(yp[ch], p->act_min, p->act_max);
            }
}

void etrt_avg_pool_s8(const etrt_pool_s8_params *p, etrt_dims in, const int8_t *x, etrt_dims out,
                      int8_t *y)
{
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oy = 0; oy < out.h; oy++)
            for (int32_t ox = 0; ox < out.w; ox++) {
                const clip c = window_at(&p->win, in, oy, ox);
                const int32_t count =
                    c.y1 > c.y0 && c.x1 > c.x0 ? (c.y1 - c.y0) * (c.x1 - c.x0) : 0;
                int8_t *yp =
                    y + (((size_t)n * (size_t)out.h + (size_t)oy) * (size_t)out.w + (size_t)ox) *
                            (size_t)out.c;
                for (int32_t ch = 0; ch < out.c; ch++) {
                    int32_t s = 0, v;
                    for (int32_t iy = c.y0; iy < c.y1; iy++)
                        for (int32_t ix = c.x0; ix < c.x1; ix++)
                            s += x[(((size_t)n * (size_t)in.h + (size_t)iy) * (size_t)in.w +
                                    (size_t)ix) *
                                       (size_t)in.c +
                                   (size_t)ch];
                    if (count == 0)
                        v = 0;
                    else
                        v = s > 0 ? (s + count / 2) / count : (s - count / 2) / count;
                    yp[ch] = clamp(v, p->act_min, p->act_max);
                }
            }
}
