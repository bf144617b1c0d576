/* Reference element-wise ops: add (residual connections) and dropout. All of
 * them allow their output to alias an input, so plain index loops are used
 * rather than memcpy. */
#include "kernels/kernels.h"

void et_add_forward_ref(size_t count, const float *a, const float *b, float *y)
{
    for (size_t i = 0; i < count; i++)
        y[i] = a[i] + b[i];
}

void et_add_backward_ref(size_t count, const float *dy, float *da, float *db)
{
    for (size_t i = 0; i < count; i++) {
        float g = dy[i];
        if (da)
            da[i] = g;
        if (db)
            db[i] = g;
    }
}

void et_dropout_forward_ref(size_t count, const float *x, const uint8_t *mask, float scale,
                            float *y)
{
    for (size_t i = 0; i < count; i++)
        y[i] = mask[i] ? x[i] * scale : 0.0f;
}

void et_dropout_backward_ref(size_t count, const float *dy, const uint8_t *mask, float scale,
                             float *dx)
{
    for (size_t i = 0; i < count; i++)
        dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}
