/* Element-wise add, int8 (TFLite's reference_integer_ops::Add, bit for bit).
 *
 * The two inputs have their own scales, so each is brought to a common scale
 * first: shifted left by left_shift (20) to keep precision, then multiplied by
 * s_i / (2 * max(s1, s2)) <= 1/2, which leaves room for the sum in int32. The
 * sum is then requantized to the output's scale. Reading x1[i] and x2[i]
 * before writing y[i] makes in-place use (y == x1 or y == x2) safe.
 */
#include "etrt_kernels.h"
#include "etrt_requant.h"

#include <stddef.h>
#include <stdint.h>

void etrt_add_s8(const etrt_add_s8_params *p, size_t n, const int8_t *x1, const int8_t *x2,
                 int8_t *y)
{
    for (size_t i = 0; i < n; i++) {
        const int32_t a = etrt_shl((int32_t)x1[i] + p->input1_offset, p->left_shift);
        const int32_t b = etrt_shl((int32_t)x2[i] + p->input2_offset, p->left_shift);
        const int32_t sa = etrt_mul_by_quantized_multiplier_smaller_than_one(
            a, p->input1_multiplier, p->input1_shift);
        const int32_t sb = etrt_mul_by_quantized_multiplier_smaller_than_one(
            b, p->input2_multiplier, p->input2_shift);
        int32_t v = etrt_mul_by_quantized_multiplier_smaller_than_one(sa + sb, p->output_multiplier,
                                                                      p->output_shift);
        v += p->output_offset;
        if (v < p->act_min)
            v = p->act_min;
        if (v > p->act_max)
            v = p->act_max;
        y[i] = (int8_t)v;
    }
}
