/* Max and average pooling, float32. Windows are clipped to the input
 * (padding takes no part): the average divides by the number of input pixels
 * under the window. A window holding no input pixel (impossible with
 * TensorFlow's padding) gives the clamp of 0, as the training kernels do. */
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

static float clamp(float v, float lo, float hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

void etrt_max_pool_f32(const etrt_pool_f32_params *p, etrt_dims in, const float *x, etrt_dims out,
                       float *y)
{
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oy = 0; oy < out.h; oy++)
            for (int32_t ox = 0; ox < out.w; ox++) {
                const clip c = window_at(&p->win, in, oy, ox);
                const int empty = c.y0 >= c.y1 || c.x0 >= c.x1;
                float *yp =
                    y + (((size_t)n * (size_t)out.h + (size_t)oy) * (size_t)out.w + (size_t)ox) *
                            (size_t)out.c;
                for (int32_t ch = 0; ch < out.c; ch++) {
                    float m = 0.0f;
                    if (!empty) {
                        m = x[(((size_t)n * (size_t)in.h + (size_t)c.y0) * (size_t)in.w +
                               (size_t)c.x0) *
                                  (size_t)in.c +
                              (size_t)ch];
                        for (int32_t iy = c.y0; iy < c.y1; iy++)
                            for (int32_t ix = c.x0; ix < c.x1; ix++) {
                                const float v =
                                    x[(((size_t)n * (size_t)in.h + (size_t)iy) * (size_t)in.w +
                                       (size_t)ix) *
                                          (size_t)in.c +
                                      (size_t)ch];
                                m = v > m ? v : m;
                            }
                    }
                    yp[ch] = clamp(m, p->act_min, p->act_max);
                }
            }
}

void etrt_avg_pool_f32(const etrt_pool_f32_params *p, etrt_dims in, const float *x, etrt_dims out,
                       float *y)
{
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oy = 0; oy < out.h; oy++)
            for (int32_t ox = 0; ox < out.w; ox++) {
                const clip c = window_at(&p->win, in, oy, ox);
                const int32_t count =
                    c.y1 > c.y0 && c.x1 > c.x0 ? (c.y1 - c.y0) * (c.x1 - c.x0) : 0;
                float *yp =
                    y + (((size_t)n * (size_t)out.h + (size_t)oy) * (size_t)out.w + (size_t)ox) *
                            (size_t)out.c;
                for (int32_t ch = 0; ch < out.c; ch++) {
                    float s = 0.0f;
                    for (int32_t iy = c.y0; iy < c.y1; iy++)
                        for (int32_t ix = c.x0; ix < c.x1; ix++)
                            s += x[(((size_t)n * (size_t)in.h + (size_t)iy) * (size_t)in.w +
                                    (size_t)ix) *
                                       (size_t)in.c +
                                   (size_t)ch];
                    yp[ch] = clamp(count ? s / (float)count : 0.0f, p->act_min, p->act_max);
                }
            }
}
