/* Depthwise conv2d, int8 (TFLite's reference_integer_ops::
 * DepthwiseConvPerChannel, bit for bit).
 *
 * Output channel ic * depth_multiplier + m reads input channel ic. For each
 * output pixel the int32 accumulators of all output channels live in scratch;
 * the window positions inside the input are visited once each, and at each
 * one a loop over the contiguous channels adds (x + input_offset) * w, which
 * the compiler vectorises when depth_multiplier is 1 (the common case).
 * Window positions outside the input are skipped: a padded zero point adds
 * nothing. The sum is exact, so this order gives TFLite's bits.
 */
#include "etrt_kernels.h"
#include "etrt_requant.h"

#include <stddef.h>
#include <stdint.h>

size_t etrt_depthwise_conv2d_s8_scratch_size(const etrt_conv_s8_params *p, etrt_dims in,
                                             etrt_dims out)
{
    (void)p;
    (void)in;
    return (size_t)out.c * sizeof(int32_t);
}

/* Adds the contribution of one input pixel xp (in.c channels) under weights
 * wp (out.c channels) to acc. */
static void accumulate(int32_t *acc, const int8_t *xp, const int8_t *wp, int32_t in_c, int32_t mult,
                       int32_t off)
{
    if (mult == 1) {
        for (int32_t c = 0; c < in_c; c++)
            acc[c] += ((int32_t)xp[c] + off) * (int32_t)wp[c];
        return;
    }
    for (int32_t c = 0; c < in_c; c++) {
        const int32_t xv = (int32_t)xp[c] + off;
        for (int32_t m = 0; m < mult; m++)
            acc[c * mult + m] += xv * (int32_t)wp[c * mult + m];
    }
}

void etrt_depthwise_conv2d_s8(const etrt_conv_s8_params *p, etrt_dims in, const int8_t *x,
                              const int8_t *w, const int32_t *bias, etrt_dims out, int8_t *y,
                              void *scratch)
{
    const etrt_window *win = &p->win;
    int32_t *acc = (int32_t *)scratch;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oy = 0; oy < out.h; oy++)
            for (int32_t ox = 0; ox < out.w; ox++) {
                const int32_t y0 = oy * win->stride_h - win->pad_top;
                const int32_t x0 = ox * win->stride_w - win->pad_left;
                /* The window clipped to the input. */
                const int32_t ky0 = y0 < 0 ? -y0 : 0;
                const int32_t kx0 = x0 < 0 ? -x0 : 0;
                const int32_t ky1 = y0 + win->k_h > in.h ? in.h - y0 : win->k_h;
                const int32_t kx1 = x0 + win->k_w > in.w ? in.w - x0 : win->k_w;
                int8_t *yp =
                    y + (((size_t)n * (size_t)out.h + (size_t)oy) * (size_t)out.w + (size_t)ox) *
                            (size_t)out.c;
                for (int32_t oc = 0; oc < out.c; oc++)
                    acc[oc] = bias ? bias[oc] : 0;
                for (int32_t ky = ky0; ky < ky1; ky++)
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const int8_t *xp =
                            x + (((size_t)n * (size_t)in.h + (size_t)(y0 + ky)) * (size_t)in.w +
                                 (size_t)(x0 + kx)) *
                                    (size_t)in.c;
                        const int8_t *wp =
                            w + ((size_t)ky * (size_t)win->k_w + (size_t)kx) * (size_t)out.c;
                        accumulate(acc, xp, wp, in.c, p->depth_multiplier, p->input_offset);
                    }
                for (int32_t oc = 0; oc < out.c; oc++) {
                    int32_t v =
                        etrt_mul_by_quantized_multiplier(acc[oc], p->multiplier[oc], p->shift[oc]);
                    v += p->output_offset;
                    if (v < p->act_min)
                        v = p->act_min;
                    if (v > p->act_max)
                        v = p->act_max;
                    yp[oc] = (int8_t)v;
                }
            }
}
