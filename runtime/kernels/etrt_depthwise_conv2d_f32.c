/* Depthwise conv2d, float32. Output channel ic * depth_multiplier + m reads
 * input channel ic. Each output pixel's channels are accumulated in place in
 * y (which does not overlap x), visiting the window positions inside the
 * input once each with a contiguous loop over channels; padding adds nothing. */
#include "etrt_kernels.h"

#include <stddef.h>
#include <stdint.h>

void etrt_depthwise_conv2d_f32(const etrt_conv_f32_params *p, etrt_dims in, const float *x,
                               const float *w, const float *bias, etrt_dims out, float *y)
{
    const etrt_window *win = &p->win;
    const int32_t mult = p->depth_multiplier;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oy = 0; oy < out.h; oy++)
            for (int32_t ox = 0; ox < out.w; ox++) {
                const int32_t y0 = oy * win->stride_h - win->pad_top;
                const int32_t x0 = ox * win->stride_w - win->pad_left;
                const int32_t ky0 = y0 < 0 ? -y0 : 0;
                const int32_t kx0 = x0 < 0 ? -x0 : 0;
                const int32_t ky1 = y0 + win->k_h > in.h ? in.h - y0 : win->k_h;
                const int32_t kx1 = x0 + win->k_w > in.w ? in.w - x0 : win->k_w;
                float *yp =
                    y + (((size_t)n * (size_t)out.h + (size_t)oy) * (size_t)out.w + (size_t)ox) *
                            (size_t)out.c;
                for (int32_t oc = 0; oc < out.c; oc++)
                    yp[oc] = bias ? bias[oc] : 0.0f;
                for (int32_t ky = ky0; ky < ky1; ky++)
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const float *xp =
                            x + (((size_t)n * (size_t)in.h + (size_t)(y0 + ky)) * (size_t)in.w +
                                 (size_t)(x0 + kx)) *
                                    (size_t)in.c;
                        const float *wp =
                            w + ((size_t)ky * (size_t)win->k_w + (size_t)kx) * (size_t)out.c;
                        for (int32_t ic = 0; ic < in.c; ic++)
                            for (int32_t m = 0; m < mult; m++)
                                yp[ic * mult + m] += xp[ic] * wp[ic * mult + m];
                    }
                for (int32_t oc = 0; oc < out.c; oc++) {
                    const float v = yp[oc] < p->act_min ? p->act_min : yp[oc];
                    yp[oc] = v > p->act_max ? p->act_max : v;
                }
            }
}
