/*
 * etrt requantization: the fixed-point arithmetic of TensorFlow Lite's integer
 * kernels (tensorflow/lite/kernels/internal/common.h and gemmlowp's
 * fixedpoint.h, default build, i.e. without TFLITE_SINGLE_ROUNDING), shared
 * by the runtime kernels and by the library's int8 converter and evaluation
 * so that both compute the same bits (STYLE rule 9).
 *
 * Two parts:
 *
 * - Run time: integer only, used by the kernels. A real multiplier M is held
 *   as a Q31 integer m in [2^30, 2^31) and a power-of-two exponent `shift`
 *   with M = m / 2^31 * 2^shift (shift > 0 multiplies, < 0 divides).
 *
 * - Preparation (etrt_quantize_multiplier, etrt_softmax_s8_prepare,
 *   etrt_add_s8_prepare): turns float scales into multipliers once, on the
 *   host (converter, tests) or in a loader. These use <math.h> (frexp, round,
 *   floor). They are static inline functions that no kernel calls, and an
 *   unused static inline function emits no code, so a device build that
 *   includes this header through the kernels does not link libm.
 *
 * Every function is pure, C99 and needs only <stdint.h> at run time. Signed
 * right shifts are written so that they do not depend on the compiler's
 * implementation-defined >> of negative numbers, and left shifts that may
 * overflow wrap (as TFLite's `x * (1 << s)` does in practice) instead of
 * being undefined.
 */
#ifndef ETRT_REQUANT_H
#define ETRT_REQUANT_H

#include "etrt_kernels.h"

#include <math.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x >> s rounding towards minus infinity, for 0 <= s <= 31. ~x is
 * non-negative when x is negative, so both shifts are well defined; compilers
 * turn the expression into one arithmetic shift. */
static inline int32_t etrt_asr(int32_t x, int s)
{
    return x < 0 ? ~(~x >> s) : x >> s;
}

/* x * 2^s modulo 2^32, for 0 <= s <= 31: wraps where a signed shift would be
 * undefined. The conversion back to int32_t wraps on every two's complement
 * compiler. */
static inline int32_t etrt_shl(int32_t x, int s)
{
    return (int32_t)((uint32_t)x << s);
}

/* round(a * b / 2^31), halves away from zero, as ARM's VQRDMULH: the high
 * half of the doubled 64-bit product. The one product that does not fit,
 * INT32_MIN * INT32_MIN (= +1.0), saturates to INT32_MAX. The nudge and the
 * division (which truncates towards zero) reproduce gemmlowp's rounding of
 * negative products exactly. */
static inline int32_t etrt_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    int64_t ab, nudge;
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* round(x / 2^exponent), halves away from zero, for 0 <= exponent <= 31.
 * gemmlowp's formulation: floor division, then add one when the remainder
 * is above half (at or above half for negative x, which turns floor's
 * rounding towards minus infinity into rounding away from zero). */
static inline int32_t etrt_rounding_divide_by_pot(int32_t x, int exponent)
{
    int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return etrt_asr(x, exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier / 2^31 * 2^shift with TFLite's double rounding: a left shift
 * (shift > 0) first, then the rounding doubling high multiply, then a
 * rounding right shift (shift < 0). This is TFLite's
 * MultiplyByQuantizedMultiplier, the requantization of conv, depthwise and
 * fully connected. shift in [-31, 31]. */
static inline int32_t etrt_mul_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return etrt_rounding_divide_by_pot(
        etrt_sat_rounding_doubling_high_mul(etrt_shl(x, left), multiplier), right);
}

/* The same for a multiplier below one (left_shift <= 0): no left shift.
 * TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp, used by add. */
static inline int32_t
etrt_mul_by_quantized_multiplier_smaller_than_one(int32_t x, int32_t multiplier, int left_shift)
{
    return etrt_rounding_divide_by_pot(etrt_sat_rounding_doubling_high_mul(x, multiplier),
                                       -left_shift);
}

/* The same for a multiplier above one (left_shift >= 0): no right shift.
 * TFLite's MultiplyByQuantizedMultiplierGreaterThanOne, used by softmax. */
static inline int32_t
etrt_mul_by_quantized_multiplier_greater_than_one(int32_t x, int32_t multiplier, int left_shift)
{
    return etrt_sat_rounding_doubling_high_mul(etrt_shl(x, left_shift), multiplier);
}

/* ------------------------------------------------------------------------
 * Preparation (host side; needs libm, see the top of this file).
 */

/* real = multiplier / 2^31 * 2^shift, TFLite's QuantizeMultiplier: frexp
 * splits real into q in [0.5, 1) and an exponent, q is rounded to Q31
 * (halves away from zero); a q that rounds up to 2^31 becomes 2^30 with the
 * exponent one higher. A multiplier below about 2^-32 (shift < -31) is
 * flushed to 0, and 0 gives multiplier 0, shift 0. For 0 <= real < 2^31 the
 * shift lies in [-31, 31], the range the functions above accept. */
static inline void etrt_quantize_multiplier(double real, int32_t *multiplier, int *shift)
{
    int e = 0;
    double q;
    int64_t q_fixed;
    if (real == 0.0) {
        *multiplier = 0;
        *shift = 0;
        return;
    }
    q = frexp(real, &e);
    q_fixed = (int64_t)round(q * 2147483648.0);
    if (q_fixed == ((int64_t)1 << 31)) {
        q_fixed /= 2;
        e++;
    }
    if (e < -31) {
        e = 0;
        q_fixed = 0;
    }
    *multiplier = (int32_t)q_fixed;
    *shift = e;
}

/* Softmax parameters as TFLite's reference Prepare computes them for int8
 * (PreprocessSoftmaxScaling and CalculateInputRadius with 5 integer bits):
 *   real = min(beta * input_scale * 2^26, 2^31 - 1)   (Q5.26 input to exp)
 *   input_multiplier, input_left_shift = quantize_multiplier(real)
 *   diff_min = -floor(31 * 2^26 / 2^input_left_shift)
 * Pass the tensor's float scale and the op's float beta, converted to double,
 * as TFLite does. TFLite refuses real <= 1 (beta * input_scale <= 2^-26, no
 * model has it); here a real below 1 gets shift 0 and the multiplier
 * round(real * 2^31), so that the kernel's left shift stays defined. */
static inline void etrt_softmax_s8_prepare(double input_scale, double beta,
                                           etrt_softmax_s8_params *p)
{
    const int integer_bits = 5;
    double real = beta * input_scale * (double)((int64_t)1 << (31 - integer_bits));
    double radius;
    int shift = 0;
    if (real > 2147483647.0)
        real = 2147483647.0;
    etrt_quantize_multiplier(real, &p->input_multiplier, &shift);
    if (shift < 0) {
        p->input_multiplier = (int32_t)round(real * 2147483648.0);
        shift = 0;
    }
    p->input_left_shift = shift;
    radius = floor(1.0 * ((1 << integer_bits) - 1) * (double)((int64_t)1 << (31 - integer_bits)) /
                   (double)((int64_t)1 << shift));
    p->diff_min = -(int32_t)radius;
}

/* Add parameters as TFLite's Prepare computes them for int8 (left_shift 20):
 *   twice_max = 2 * max(s1, s2)
 *   input1: s1 / twice_max, input2: s2 / twice_max  (both <= 1/2)
 *   output: twice_max / (2^20 * so)
 * Fills left_shift and the three multiplier/shift pairs; offsets and the
 * clamp are the caller's. Scales are the tensors' float scales as double. */
static inline void etrt_add_s8_prepare(double input1_scale, double input2_scale,
                                       double output_scale, etrt_add_s8_params *p)
{
    double twice_max = 2.0 * (input1_scale > input2_scale ? input1_scale : input2_scale);
    int s1 = 0, s2 = 0, so = 0;
    p->left_shift = 20;
    etrt_quantize_multiplier(input1_scale / twice_max, &p->input1_multiplier, &s1);
    etrt_quantize_multiplier(input2_scale / twice_max, &p->input2_multiplier, &s2);
    etrt_quantize_multiplier(twice_max / ((double)(1 << p->left_shift) * output_scale),
                             &p->output_multiplier, &so);
    p->input1_shift = s1;
    p->input2_shift = s2;
    p->output_shift = so;
}

#ifdef __cplusplus
}
#endif
#endif
