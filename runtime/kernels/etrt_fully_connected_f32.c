/* Fully connected, float32: y[b][o] = clamp(bias[o] + sum_i x[b][i] * w[o][i]). */
#include "etrt_kernels.h"

#include <stddef.h>
#include <stdint.h>

void etrt_fully_connected_f32(const etrt_act_f32 *p, int32_t batches, int32_t in_n, const float *x,
                              int32_t out_n, const float *w, const float *bias, float *y)
{
    for (int32_t b = 0; b < batches; b++) {
        const float *xb = x + (size_t)b * (size_t)in_n;
        for (int32_t o = 0; o < out_n; o++) {
            const float *wo = w + (size_t)o * (size_t)in_n;
            float acc = bias ? bias[o] : 0.0f;
            for (int32_t i = 0; i < in_n; i++)
                acc += xb[i] * wo[i];
            acc = acc < p->act_min ? p->act_min : acc;
            y[(size_t)b * (size_t)out_n + (size_t)o] = acc > p->act_max ? p->act_max : acc;
        }
    }
}
