/* Fully connected, int8 (TFLite's reference_integer_ops::FullyConnected and
 * FullyConnectedPerChannel, bit for bit). Weights are symmetric (TFLite's
 * int8 spec: filter zero point 0), so only the input carries an offset. */
#include "etrt_kernels.h"
#include "etrt_requant.h"

#include <stddef.h>
#include <stdint.h>

void etrt_fully_connected_s8(const etrt_fc_s8_params *p, int32_t batches, int32_t in_n,
                             const int8_t *x, int32_t out_n, const int8_t *w, const int32_t *bias,
                             int8_t *y)
{
    const int32_t off = p->input_offset;
    for (int32_t b = 0; b < batches; b++) {
        const int8_t *xb = x + (size_t)b * (size_t)in_n;
        int8_t *yb = y + (size_t)b * (size_t)out_n;
        for (int32_t o = 0; o < out_n; o++) {
            const int8_t *wo = w + (size_t)o * (size_t)in_n;
            const int32_t q = p->per_channel ? o : 0;
            int32_t acc = 0, v;
            for (int32_t i = 0; i < in_n; i++)
                acc += ((int32_t)xb[i] + off) * (int32_t)wo[i];
            if (bias)
                acc += bias[o];
            v = etrt_mul_by_quantized_multiplier(acc, p->multiplier[q], p->shift[q]);
            v += p->output_offset;
            if (v < p->act_min)
                v = p->act_min;
            if (v > p->act_max)
                v = p->act_max;
            yb[o] = (int8_t)v;
        }
    }
}
