/* Quantize and dequantize between float32 and int8 (TFLite's reference
 * AffineQuantize and Dequantize, bit for bit): the model's input and output.
 *
 * TFLite rounds x / scale with roundf (halves away from zero). Adding 0.5
 * and truncating is not the same (0.49999997f + 0.5f rounds up to 1.0f in
 * float), and libm is not available on the device, so the rounding is done
 * here on the integer part: the fraction r - trunc(r) is exact in float for
 * |r| < 2^24, and beyond that every float is an integer already.
 */
#include "etrt_kernels.h"

#include <stddef.h>
#include <stdint.h>

/* Values beyond this quantize to -128 or 127 whatever the zero point; the
 * bound keeps the conversion to int32 defined. */
#define QUANT_LIMIT 1.0e6f

static int32_t round_half_away(float r)
{
    int32_t t;
    float frac;
    if (r != r) /* NaN: taken as 0 (TFLite's cast would be undefined) */
        return 0;
    if (r > QUANT_LIMIT)
        return (int32_t)QUANT_LIMIT;
    if (r < -QUANT_LIMIT)
        return -(int32_t)QUANT_LIMIT;
    t = (int32_t)r; /* truncates towards zero */
    frac = r - (float)t;
    if (frac >= 0.5f)
        t++;
    else if (frac <= -0.5f)
        t--;
    return t;
}

void etrt_quantize_s8(size_t n, const float *x, float scale, int32_t zero_point, int8_t *q)
{
    for (size_t i = 0; i < n; i++) {
        int32_t v = round_half_away(x[i] / scale) + zero_point;
        q[i] = (int8_t)(v < INT8_MIN ? INT8_MIN : v > INT8_MAX ? INT8_MAX : v);
    }
}

/* scale * (q - zero_point): one float multiplication of exact operands, the
 * same correctly rounded value TFLite gets through double. */
void etrt_dequantize_s8(size_t n, const int8_t *q, float scale, int32_t zero_point, float *x)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (float)((int32_t)q[i] - zero_point);
}
