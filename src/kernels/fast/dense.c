/* Fast dense layer through OpenBLAS: y = x w^T + b, dx = dy w, dw = dy^T x.
 * Each product is one et_fast_sgemm, which splits it into tiles along its
 * rows or columns but never along the summed dimension, so every element is
 * one sum and the result does not depend on the thread count. */
#include "kernels/fast/fast_internal.h"

#include <string.h>

void et_dense_forward_fast(int batch, int in_features, int out_features, const float *x,
                           const float *w, const float *bias, float *y)
{
    if (bias)
        for (int n = 0; n < batch; n++)
            memcpy(y + (size_t)n * out_features, bias, (size_t)out_features * sizeof *y);
    et_fast_sgemm(0, 1, batch, out_features, in_features, 1.0f, x, in_features, w, in_features,
                  bias ? 1.0f : 0.0f, y, out_features);
}

void et_dense_backward_fast(int batch, int in_features, int out_features, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *dbias)
{
    if (dx)
        et_fast_sgemm(0, 0, batch, in_features, out_features, 1.0f, dy, out_features, w,
                      in_features, 0.0f, dx, in_features);
    if (dw)
        et_fast_sgemm(1, 0, out_features, in_features, batch, 1.0f, dy, out_features, x,
                      in_features, 0.0f, dw, in_features);
    if (dbias)
        et_fast_colsum(0, (size_t)batch, out_features, dy, dbias);
}
