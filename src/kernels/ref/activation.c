/* Reference ReLU and ReLU6. Backward passes read the forward output (see
 * kernels.h), so both directions work in place. */
#include "kernels/kernels.h"

void et_relu_forward_ref(size_t count, const float *x, float *y)
{
    for (size_t i = 0; i < count; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void et_relu_backward_ref(size_t count, const float *y, const float *dy, float *dx)
{
    for (size_t i = 0; i < count; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void et_relu6_forward_ref(size_t count, const float *x, float *y)
{
    for (size_t i = 0; i < count; i++)
        y[i] = x[i] <= 0.0f ? 0.0f : x[i] >= 6.0f ? 6.0f : x[i];
}

void et_relu6_backward_ref(size_t count, const float *y, const float *dy, float *dx)
{
    for (size_t i = 0; i < count; i++)
        dx[i] = y[i] > 0.0f && y[i] < 6.0f ? dy[i] : 0.0f;
}
