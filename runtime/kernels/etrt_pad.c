/* Constant padding of the two spatial axes, NHWC, int8 and float32 (TFLite's
 * reference Pad with a constant value). Rows of the output are written in
 * order: a padded row is all value, an input row is left padding, a copy of
 * the input row, right padding. */
#include "etrt_kernels.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

void etrt_pad_s8(const etrt_pad_params *p, etrt_dims in, const int8_t *x, int8_t value,
                 etrt_dims out, int8_t *y)
{
    const size_t c = (size_t)in.c;
    const size_t in_row = (size_t)in.w * c, out_row = (size_t)out.w * c;
    const size_t left = (size_t)p->left * c, right = (size_t)p->right * c;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oy = 0; oy < out.h; oy++) {
            const int32_t iy = oy - p->top;
            int8_t *yr = y + ((size_t)n * (size_t)out.h + (size_t)oy) * out_row;
            if (iy < 0 || iy >= in.h) {
                memset(yr, value, out_row);
                continue;
            }
            memset(yr, value, left);
            memcpy(yr + left, x + ((size_t)n * (size_t)in.h + (size_t)iy) * in_row, in_row);
            memset(yr + left + in_row, value, right);
        }
}

static void fill_f32(float *y, float value, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = value;
}

void etrt_pad_f32(const etrt_pad_params *p, etrt_dims in, const float *x, float value,
                  etrt_dims out, float *y)
{
    const size_t c = (size_t)in.c;
    const size_t in_row = (size_t)in.w * c, out_row = (size_t)out.w * c;
    const size_t left = (size_t)p->left * c, right = (size_t)p->right * c;
    for (int32_t n = 0; n < out.n; n++)
        for (int32_t oy = 0; oy < out.h; oy++) {
            const int32_t iy = oy - p->top;
            float *yr = y + ((size_t)n * (size_t)out.h + (size_t)oy) * out_row;
            if (iy < 0 || iy >= in.h) {
                fill_f32(yr, value, out_row);
                continue;
            }
            fill_f32(yr, value, left);
            memcpy(yr + left, x + ((size_t)n * (size_t)in.h + (size_t)iy) * in_row,
                   in_row * sizeof *yr);
            fill_f32(yr + left + in_row, value, right);
        }
}
