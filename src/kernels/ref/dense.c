/* Reference dense layer: y = x W^T + b with W stored [out][in] (TFLite's
 * FullyConnected layout). Each result is one double-accumulated sum. */
#include "kernels/kernels.h"

void et_dense_forward_ref(int batch, int in_features, int out_features, const float *x,
                          const float *w, const float *bias, float *y)
{
    for (int n = 0; n < batch; n++) {
        const float *xn = x + (size_t)n * in_features;
        for (int o = 0; o < out_features; o++) {
            const float *wo = w + (size_t)o * in_features;
            double acc = bias ? bias[o] : 0.0;
            for (int i = 0; i < in_features; i++)
                acc += (double)xn[i] * wo[i];
            y[(size_t)n * out_features + o] = (float)acc;
        }
    }
}

void et_dense_backward_ref(int batch, int in_features, int out_features, const float *x,
                           const float *w, const float *dy, float *dx, float *dw, float *dbias)
{
    /* dx = dy W */
    if (dx)
        for (int n = 0; n < batch; n++)
            for (int i = 0; i < in_features; i++) {
                double acc = 0.0;
                for (int o = 0; o < out_features; o++)
                    acc +=
                        (double)dy[(size_t)n * out_features + o] * w[(size_t)o * in_features + i];
                dx[(size_t)n * in_features + i] = (float)acc;
            }
    /* dW = dy^T x, summed over the batch */
    if (dw)
        for (int o = 0; o < out_features; o++)
            for (int i = 0; i < in_features; i++) {
                double acc = 0.0;
                for (int n = 0; n < batch; n++)
                    acc +=
                        (double)dy[(size_t)n * out_features + o] * x[(size_t)n * in_features + i];
                dw[(size_t)o * in_features + i] = (float)acc;
            }
    if (dbias)
        for (int o = 0; o < out_features; o++) {
            double acc = 0.0;
            for (int n = 0; n < batch; n++)
                acc += dy[(size_t)n * out_features + o];
            dbias[o] = (float)acc;
        }
}
