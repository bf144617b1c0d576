/* Conv2d, float32. The same organisation as the int8 kernel: for each output
 * pixel the window is gathered once into scratch (0 for padding), then each
 * output channel is one dot product of that contiguous patch with the
 * channel's contiguous [k_h][k_w][in_c] weights, accumulated in float. */
#include "etrt_kernels.h"

#include <stddef.h>
#include <stdint.h>

size_t etrt_conv2d_f32_scratch_size(const etrt_conv_f32_params *p, etrt_dims in, etrt_dims out)
{
    (void)out;
    return (size_t)p->win.k_h * (size_t)p->win.k_w * (size_t)in.c * sizeof(float);
}

static void gather_patch(const etrt_window *win, etrt_dims in, const float *x, int32_t oy,
                         int32_t ox, float *patch)
{
    const int32_t y0 = oy * win->stride_h - win->pad_top;
    const int32_t x0 = ox * win->stride_w - win->pad_left;
    for (int32_t ky = 0; ky < win->k_h; ky++)
        for (int32_t kx = 0; kx < win->k_w; kx++) {
            const int32_t iy = y0 + ky, ix = x0 + kx;
            float *d = patch + ((size_t)ky * (size_t)win->k_w + (size_t)kx) * (size_t)in.c;
            if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) {
                for (int32_t c = 0; c < in.c; c++)
                    d[c] = 0.0f;
            } else {
                const float *s = x + ((size_t)iy * (size_t)in.w + (size_t)ix) * (size_t)in.c;
                for (int32_t c = 0; c < in.c; c++)
                    d[c] = s[c];
            }
        }
}

void etrt_conv2d_f32(const etrt_conv_f32_params *p, etrt_dims in, const float *x, const float *w,
                     const float *bias, etrt_dims out, float *y, void *scratch)
{
    const int32_t k = p->win.k_h * p->win.k_w * in.c;
    float *patch = (float *)scratch;
    for (int32_t n = 0; n < out.n; n++) {
        const float *xn = x + (size_t)n * (size_t)in.h * (size_t)in.w * (size_t)in.c;
        for (int32_t oy = 0; oy < out.h; oy++)
            for (int32_t ox = 0; ox < out.w; ox++) {
                float *yp =
                    y + (((size_t)n * (size_t)out.h + (size_t)oy) * (size_t)out.w + (size_t)ox) *
                            (size_t)out.c;
                gather_patch(&p->win, in, xn, oy, ox, patch);
                for (int32_t oc = 0; oc < out.c; oc++) {
                    const float *wo = w + (size_t)oc * (size_t)k;
                    float acc = bias ? bias[oc] : 0.0f;
                    for (int32_t i = 0; i < k; i++)
                        acc += patch[i] * wo[i];
                    acc = acc < p->act_min ? p->act_min : acc;
                    yp[oc] = acc > p->act_max ? p->act_max : acc;
                }
            }
    }
}
