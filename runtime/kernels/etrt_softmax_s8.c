/* Softmax, int8 in and out (TFLite's reference_ops::Softmax for int8, bit for
 * bit; the same code runs in TFLite Micro). Output scale 1/256, zero point
 * -128.
 *
 * Per row: d = x - max(row) <= 0 is scaled to Q5.26 (5 integer bits) by
 * beta * input_scale; exp(d) is evaluated in fixed point by gemmlowp's method
 * (below) as Q0.31; the exps are summed in Q12.19; the sum's reciprocal is
 * taken by Newton-Raphson in Q0.31 with a power-of-two exponent; each output
 * is exp * reciprocal rounded to 1/256. Inputs more than diff_min below the
 * row's maximum have an exp too small to matter and output -128 directly.
 *
 * Fixed-point conventions, as in gemmlowp: an int32 "Qk" value v with k
 * integer bits stands for v / 2^(31 - k); the product of a Qa and a Qb is the
 * rounding doubling high multiply of their raw values, a Q(a+b).
 */
#include "etrt_kernels.h"
#include "etrt_requant.h"

#include <stddef.h>
#include <stdint.h>

/* Shorthands for this file's fixed-point arithmetic. */
static int32_t mul(int32_t a, int32_t b)
{
    return etrt_sat_rounding_doubling_high_mul(a, b);
}

/* x * 2^e for 1 <= e <= 30, saturating (gemmlowp's
 * SaturatingRoundingMultiplyByPOT with a positive exponent). */
static int32_t sat_shl(int32_t x, int e)
{
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - e)) - 1);
    if (x > threshold)
        return INT32_MAX;
    if (x < -threshold)
        return INT32_MIN;
    return etrt_shl(x, e);
}

/* round((a + b) / 2), halves away from zero, without overflow. */
static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* exp(a) for a (Q0.31) in [-1/4, 0): Taylor series around -1/8,
 *   exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24) with x = a + 1/8,
 * where the x^4 and x^3 terms share a multiplication by 1/3. */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) in Q0.31 */
    const int32_t one_third = 715827883;             /* 1/3 in Q0.31 */
    const int32_t x = a + (1 << 28);                 /* + 1/8 */
    const int32_t x2 = mul(x, x);
    const int32_t x3 = mul(x2, x);
    const int32_t x4 = mul(x2, x2);
    const int32_t x4_over_4 = etrt_rounding_divide_by_pot(x4, 2);
    const int32_t poly = etrt_rounding_divide_by_pot(mul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + mul(exp_minus_one_eighth, x + poly);
}

/* exp(a) for a <= 0 given in Q5.26, result in Q0.31. a is split into a part
 * in [-1/4, 0) handled by the series above and a multiple of 1/4 whose bits
 * select factors exp(-1/4), exp(-1/2), exp(-1), ..., exp(-16) (a barrel
 * shifter of constant multiplications). exp(0) is 1, saturated to INT32_MAX. */
static int32_t exp_on_negative_values(int32_t a)
{
    /* exp(-2^k) in Q0.31 for k = -2 .. 4, gemmlowp's constants. */
    static const int32_t factors[7] = {1672461947, 1302514674, 790015084, 290630308,
                                       39332535,   720401,     242};
    const int fractional_bits = 26;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_quarter = (a & (one_quarter - 1)) - one_quarter;
    /* Q5.26 -> Q0.31: a left shift by 5 that cannot saturate here. */
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        sat_shl(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int k = 0; k < 7; k++)
        if (remainder & ((int32_t)1 << (fractional_bits - 2 + k)))
            result = mul(result, factors[k]);
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1) (Q0.31), result in Q0.31: three Newton-Raphson
 * steps on the half denominator (1 + a) / 2, from the initial guess
 * 48/17 - 32/17 * d, in Q2.29. */
static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    const int32_t c48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t neg_c32_over_17 = -1010580540; /* Q2.29 */
    const int32_t one_q2 = (int32_t)1 << 29;     /* 1.0 in Q2.29 */
    int32_t x = c48_over_17 + mul(half_denominator, neg_c32_over_17);
    for (int i = 0; i < 3; i++) {
        const int32_t one_minus_dx = one_q2 - mul(half_denominator, x);
        x = x + sat_shl(mul(x, one_minus_dx), 2); /* Q4 product back to Q2 */
    }
    /* x approximates 1 / d = 2 / (1 + a) in Q2.29, i.e. 1 / (1 + a) in Q1.30. */
    return sat_shl(x, 1);
}

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0)
        return 32;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

/* 1 / x for x > 0 in Q12.19: returns the reciprocal's mantissa in Q0.31
 * and writes the exponent, so that 1 / x = result * 2^-num_bits_over_unit. */
static int32_t reciprocal_q12(int32_t x, int *num_bits_over_unit)
{
    const int headroom_plus_one = count_leading_zeros((uint32_t)x);
    /* x normalised to [1, 2), minus 1, in Q0.31. */
    const int32_t shifted_minus_one =
        (int32_t)(((uint32_t)x << headroom_plus_one) - ((uint32_t)1 << 31));
    *num_bits_over_unit = 12 - headroom_plus_one;
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one);
}

void etrt_softmax_s8(const etrt_softmax_s8_params *p, int32_t rows, int32_t depth, const int8_t *x,
                     int8_t *y)
{
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *xr = x + (size_t)r * (size_t)depth;
        int8_t *yr = y + (size_t)r * (size_t)depth;
        int32_t max = INT8_MIN, sum = 0, scale;
        int bits_over_unit, exponent;
        for (int32_t c = 0; c < depth; c++)
            max = xr[c] > max ? xr[c] : max;
        for (int32_t c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)xr[c] - max;
            if (diff >= p->diff_min) {
                const int32_t scaled = etrt_mul_by_quantized_multiplier_greater_than_one(
                    diff, p->input_multiplier, p->input_left_shift);
                sum += etrt_rounding_divide_by_pot(exp_on_negative_values(scaled), 12);
            }
        }
        /* sum >= exp(0) = 2^19 in Q12.19 (the maximum always counts), so the
         * reciprocal is defined and bits_over_unit is in [0, 11]. */
        scale = reciprocal_q12(sum, &bits_over_unit);
        exponent = bits_over_unit + 31 - 8;
        for (int32_t c = 0; c < depth; c++) {
            const int32_t diff = (int32_t)xr[c] - max;
            int32_t v = INT8_MIN;
            if (diff >= p->diff_min) {
                const int32_t scaled = etrt_mul_by_quantized_multiplier_greater_than_one(
                    diff, p->input_multiplier, p->input_left_shift);
                const int32_t prob = mul(scale, exp_on_negative_values(scaled));
                /* A non-negative Q0.31 value divided by 2^32 or more rounds to
                 * 0; only rows of 512 or more near-equal values get there
                 * (TFLite refuses them: its shift must stay <= 31). */
                v = (exponent <= 31 ? etrt_rounding_divide_by_pot(prob, exponent) : 0) + INT8_MIN;
                v = v > INT8_MAX ? INT8_MAX : v < INT8_MIN ? INT8_MIN : v;
            }
            yr[c] = (int8_t)v;
        }
    }
}
