/* Softmax, float32, over rows of depth values (TFLite's reference with
 * beta 1): the row's maximum is subtracted first so that expf cannot
 * overflow. The one runtime kernel that needs libm. y may be x. */
#include "etrt_kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

void etrt_softmax_f32(int32_t rows, int32_t depth, const float *x, float *y)
{
    for (int32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)depth;
        float *yr = y + (size_t)r * (size_t)depth;
        float max = xr[0], sum = 0.0f;
        for (int32_t c = 1; c < depth; c++)
            max = xr[c] > max ? xr[c] : max;
        for (int32_t c = 0; c < depth; c++) {
            yr[c] = expf(xr[c] - max);
            sum += yr[c];
        }
        for (int32_t c = 0; c < depth; c++)
            yr[c] /= sum;
    }
}
