/* Fast element-wise ops: ReLU, ReLU6, add and dropout, forward and backward.
 *
 * Each output element depends on the same index of the inputs only, so the
 * loops are split across threads and SIMD lanes freely and the results are
 * those of ref/ exactly, whatever the thread count. Outputs may alias inputs
 * (kernels.h allows it), so no pointer is restrict: `omp simd` tells the
 * compiler that the lanes are independent, which holds for y[i] = f(x[i])
 * also when y == x. Both arms of a select are computed before it (no load
 * under a condition), so that GCC can turn the select into a vector blend. */
#include "kernels/fast/fast_internal.h"

void et_relu_forward_fast(size_t count, const float *x, float *y)
{
#pragma omp parallel for simd schedule(dynamic, 8192) if (count > ET_FAST_PAR_MIN)
    for (size_t i = 0; i < count; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void et_relu_backward_fast(size_t count, const float *y, const float *dy, float *dx)
{
#pragma omp parallel for simd schedule(dynamic, 8192) if (count > ET_FAST_PAR_MIN)
    for (size_t i = 0; i < count; i++) {
        float g = dy[i];
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

void et_relu6_forward_fast(size_t count, const float *x, float *y)
{
#pragma omp parallel for simd schedule(dynamic, 8192) if (count > ET_FAST_PAR_MIN)
    for (size_t i = 0; i < count; i++)
        y[i] = x[i] <= 0.0f ? 0.0f : x[i] >= 6.0f ? 6.0f : x[i];
}

void et_relu6_backward_fast(size_t count, const float *y, const float *dy, float *dx)
{
#pragma omp parallel for simd schedule(dynamic, 8192) if (count > ET_FAST_PAR_MIN)
    for (size_t i = 0; i < count; i++) {
        float v = y[i], g = dy[i];
        dx[i] = (v > 0.0f) & (v < 6.0f) ? g : 0.0f;
    }
}

void et_add_forward_fast(size_t count, const float *a, const float *b, float *y)
{
#pragma omp parallel for simd schedule(dynamic, 8192) if (count > ET_FAST_PAR_MIN)
    for (size_t i = 0; i < count; i++)
        y[i] = a[i] + b[i];
}

void et_add_backward_fast(size_t count, const float *dy, float *da, float *db)
{
    /* Copies, but through loops: da or db may be dy itself, which memcpy forbids. */
    if (da && da != dy) {
#pragma omp parallel for simd schedule(dynamic, 8192) if (count > ET_FAST_PAR_MIN)
        for (size_t i = 0; i < count; i++)
            da[i] = dy[i];
    }
    if (db && db != dy) {
#pragma omp parallel for simd schedule(dynamic, 8192) if (count > ET_FAST_PAR_MIN)
        for (size_t i = 0; i < count; i++)
            db[i] = dy[i];
    }
}

void et_dropout_forward_fast(size_t count, const float *x, const uint8_t *mask, float scale,
                             float *y)
{
#pragma omp parallel for simd schedule(dynamic, 8192) if (count > ET_FAST_PAR_MIN)
    for (size_t i = 0; i < count; i++) {
        float v = x[i] * scale;
        y[i] = mask[i] ? v : 0.0f;
    }
}

void et_dropout_backward_fast(size_t count, const float *dy, const uint8_t *mask, float scale,
                              float *dx)
{
#pragma omp parallel for simd schedule(dynamic, 8192) if (count > ET_FAST_PAR_MIN)
    for (size_t i = 0; i < count; i++) {
        float v = dy[i] * scale;
        dx[i] = mask[i] ? v : 0.0f;
    }
}
