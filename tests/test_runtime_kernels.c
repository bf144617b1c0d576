/* runtime kernels (runtime/kernels, etrt_*): the deployable inference math.
 *
 * - Fixed-point primitives (etrt_requant.h) on hand-checked values, including
 *   the saturating and rounding corners, and against brute-force formulas on
 *   random inputs.
 * - Every int8 kernel (a) bit for bit against a plain loop written here the
 *   way TFLite's reference kernel is written (no reordering, no scratch), and
 *   (b) against the float computation of the same quantized model:
 *   dequantize, run the training library's float reference kernel,
 *   quantize; the two agree within 1 LSB (TFLite's double rounding and the
 *   Q31 multiplier cost at most that), and exactly in cases built to have no
 *   rounding at all.
 * - Every float32 kernel against the training library's reference kernels
 *   (src/kernels/ref) within 1e-5 relative.
 * Shapes cover same and valid padding, strides 1 and 2, odd sizes, depth
 * multiplier 2, fused ReLU and ReLU6, saturation, and in-place add. */
#include "etrt_kernels.h"
#include "etrt_requant.h"
#include "kernels/kernels.h"

#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Helpers
 */

/* xorshift32: the same data on every machine and libc. */
static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static int32_t rng_int(uint32_t *s, int32_t lo, int32_t hi)
{
    return lo + (int32_t)(rng_next(s) % (uint32_t)(hi - lo + 1));
}

static float rng_uniform(uint32_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)(rng_next(s) >> 8) / 16777216.0f;
}

/* Buffers are released by each suite's fini, so that LeakSanitizer stays quiet. */
static void *tracked[64];
static int n_tracked;

static void *buf(size_t bytes)
{
    cr_assert_lt(n_tracked, 64);
    void *p = calloc(bytes ? bytes : 1, 1);
    cr_assert_not_null(p);
    return tracked[n_tracked++] = p;
}

static void free_tracked(void)
{
    while (n_tracked > 0)
        free(tracked[--n_tracked]);
}

static int8_t *s8rand(size_t n, uint32_t *s, int lo, int hi)
{
    int8_t *p = buf(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (int8_t)rng_int(s, lo, hi);
    return p;
}

static float *frand(size_t n, uint32_t *s, float lo, float hi)
{
    float *p = buf(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = rng_uniform(s, lo, hi);
    return p;
}

static etrt_dims rt_dims(et_dims d)
{
    return (etrt_dims){d.n, d.h, d.w, d.c};
}

static etrt_window rt_window(et_window w)
{
    return (etrt_window){w.k_h, w.k_w, w.stride_h, w.stride_w, w.pad_top, w.pad_left};
}

static int32_t clampi(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* TFLite's float -> int8: round half away from zero, add the zero point, clamp. */
static int32_t quantize_ref(double real, double scale, int32_t zp, int32_t lo, int32_t hi)
{
    double r = round(real / scale);
    if (r > 1e6)
        r = 1e6;
    if (r < -1e6)
        r = -1e6;
    return clampi((int32_t)r + zp, lo, hi);
}

static void dequantize(size_t n, const int8_t *q, float scale, int32_t zp, float *x)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (float)(q[i] - zp);
}

/* got and want, both int8, equal (tol 0) or within tol LSB everywhere. */
static void assert_s8_near(const char *what, const int8_t *got, const int8_t *want, size_t n,
                           int tol)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(abs(got[i] - want[i]) <= tol, "%s[%zu]: got %d, want %d (tolerance %d)", what, i,
                  got[i], want[i], tol);
}

static void assert_f32_near(const char *what, const float *got, const float *want, size_t n,
                            double rtol)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs((double)got[i] - want[i]) <= rtol * fmax(1.0, fabs(want[i])),
                  "%s[%zu]: got %.9g, want %.9g", what, i, got[i], want[i]);
}

/* Fused activation clamps in the output's quantized domain. */
enum { ACT_NONE, ACT_RELU, ACT_RELU6 };

static void act_range(int act, float scale, int32_t zp, int32_t *lo, int32_t *hi)
{
    *lo = act == ACT_NONE ? -128 : clampi(zp, -128, 127);
    *hi = act == ACT_RELU6 ? clampi(zp + (int32_t)lround(6.0 / scale), -128, 127) : 127;
}

TestSuite(requant);
TestSuite(conv_s8, .fini = free_tracked);
TestSuite(other_s8, .fini = free_tracked);
TestSuite(float32, .fini = free_tracked);

/* ------------------------------------------------------------------------
 * Fixed-point primitives
 */

Test(requant, doubling_high_mul_by_hand)
{
    cr_assert_eq(etrt_sat_rounding_doubling_high_mul(INT32_MIN, INT32_MIN), INT32_MAX,
                 "-1 * -1 saturates");
    cr_assert_eq(etrt_sat_rounding_doubling_high_mul(INT32_MAX, INT32_MAX), 2147483646);
    cr_assert_eq(etrt_sat_rounding_doubling_high_mul(INT32_MIN, INT32_MAX), -2147483647);
    cr_assert_eq(etrt_sat_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
    /* Times 1/2: halves go up, towards +infinity, for both signs (VQRDMULH). */
    cr_assert_eq(etrt_sat_rounding_doubling_high_mul(3, 1 << 30), 2);
    cr_assert_eq(etrt_sat_rounding_doubling_high_mul(-3, 1 << 30), -1);
    /* Times 1/4, no ties: nearest. */
    cr_assert_eq(etrt_sat_rounding_doubling_high_mul(-5, 1 << 29), -1);
    cr_assert_eq(etrt_sat_rounding_doubling_high_mul(-7, 1 << 29), -2);
    cr_assert_eq(etrt_sat_rounding_doubling_high_mul(0, INT32_MIN), 0);
}

/* floor((a * b + 2^30) / 2^31) by floor division: the same rounding, derived
 * independently of gemmlowp's nudge-and-truncate formulation. */
static int32_t srdhm_brute(int32_t a, int32_t b)
{
    int64_t num = (int64_t)a * b + ((int64_t)1 << 30), d = (int64_t)1 << 31;
    int64_t q = num / d;
    if (num % d != 0 && num < 0)
        q--;
    return q > INT32_MAX ? INT32_MAX : (int32_t)q;
}

Test(requant, doubling_high_mul_random)
{
    uint32_t s = 1;
    for (int i = 0; i < 200000; i++) {
        int32_t a = (int32_t)rng_next(&s), b = (int32_t)rng_next(&s);
        if (i % 4 == 1)
            b = rng_int(&s, -1000, 1000);
        cr_assert_eq(etrt_sat_rounding_doubling_high_mul(a, b), srdhm_brute(a, b), "%d * %d", a, b);
    }
}

Test(requant, rounding_divide_by_pot)
{
    cr_assert_eq(etrt_rounding_divide_by_pot(5, 1), 3, "2.5 -> 3");
    cr_assert_eq(etrt_rounding_divide_by_pot(-5, 1), -3, "-2.5 -> -3: away from zero");
    cr_assert_eq(etrt_rounding_divide_by_pot(7, 2), 2);
    cr_assert_eq(etrt_rounding_divide_by_pot(-7, 2), -2);
    cr_assert_eq(etrt_rounding_divide_by_pot(-6, 2), -2, "-1.5 -> -2");
    cr_assert_eq(etrt_rounding_divide_by_pot(-5, 2), -1, "-1.25 -> -1");
    cr_assert_eq(etrt_rounding_divide_by_pot(-123, 0), -123);
    cr_assert_eq(etrt_rounding_divide_by_pot(INT32_MIN, 31), -1);
    cr_assert_eq(etrt_rounding_divide_by_pot(INT32_MAX, 31), 1);
    cr_assert_eq(etrt_rounding_divide_by_pot(-(1 << 30), 31), -1, "-0.5 -> -1");
    cr_assert_eq(etrt_rounding_divide_by_pot((1 << 30) - 1, 31), 0);
    uint32_t s = 2;
    for (int i = 0; i < 100000; i++) {
        int32_t x = (int32_t)rng_next(&s);
        int e = (int)(rng_next(&s) % 32);
        double q = ldexp((double)x, -e); /* exact */
        double want = q < 0 ? -floor(-q + 0.5) : floor(q + 0.5);
        cr_assert_eq(etrt_rounding_divide_by_pot(x, e), (int32_t)want, "%d / 2^%d", x, e);
    }
}

Test(requant, mul_by_quantized_multiplier_shift_signs)
{
    /* 0.5 * 2^1 = 1, 0.5 * 2^-1 = 0.25. */
    cr_assert_eq(etrt_mul_by_quantized_multiplier(100, 1 << 30, 1), 100);
    cr_assert_eq(etrt_mul_by_quantized_multiplier(100, 1 << 30, -1), 25);
    cr_assert_eq(etrt_mul_by_quantized_multiplier(-100, 1 << 30, -1), -25);
    cr_assert_eq(etrt_mul_by_quantized_multiplier(1000, 1 << 30, 4), 8000, "left shift first");
    /* TFLite's double rounding: 5 * 0.25 = 1.25, but 5 * 0.5 rounds to 3
     * first, and 3 / 2 = 1.5 rounds to 2. A bit-exact kernel must give 2. */
    cr_assert_eq(etrt_mul_by_quantized_multiplier(5, 1 << 30, -1), 2);
    cr_assert_eq(etrt_mul_by_quantized_multiplier(-7, 1 << 30, -2), -1, "-3.5 -> -3, -0.75 -> -1");
    cr_assert_eq(etrt_mul_by_quantized_multiplier_smaller_than_one(5, 1 << 30, -1), 2);
    cr_assert_eq(etrt_mul_by_quantized_multiplier_greater_than_one(-3, 1 << 30, 3), -12);
    /* Against real arithmetic, where it is not a tie: within one unit. */
    uint32_t s = 3;
    for (int i = 0; i < 20000; i++) {
        int32_t m, sh, x = rng_int(&s, -1000000, 1000000);
        double real = ldexp(rng_uniform(&s, 0.5f, 1.0f), rng_int(&s, -20, 3));
        etrt_quantize_multiplier(real, &m, &sh);
        double want = (double)x * m / 2147483648.0 * ldexp(1.0, sh);
        cr_assert(fabs(etrt_mul_by_quantized_multiplier(x, m, sh) - want) <= 1.0, "%d * %g", x,
                  real);
    }
}

static void expect_qm(double real, int32_t want_m, int want_shift)
{
    int32_t m = -1;
    int sh = -99;
    etrt_quantize_multiplier(real, &m, &sh);
    cr_assert(m == want_m && sh == want_shift, "%.17g: got %d, %d; want %d, %d", real, m, sh,
              want_m, want_shift);
}

Test(requant, quantize_multiplier)
{
    expect_qm(0.0, 0, 0);
    expect_qm(1.0, 1 << 30, 1);
    expect_qm(0.5, 1 << 30, 0);
    expect_qm(0.75, 1610612736, 0);
    expect_qm(0.1, 1717986918, -3);               /* 0.8 * 2^31 = 1717986918.4 */
    expect_qm(1.0 - ldexp(1.0, -40), 1 << 30, 1); /* q rounds up to 2^31 */
    expect_qm(ldexp(1.0, -31), 1 << 30, -30);
    expect_qm(ldexp(1.0, -32), 1 << 30, -31);
    expect_qm(ldexp(1.0, -33), 0, 0); /* shift < -31: flushed */
    expect_qm(1e-10, 0, 0);
    uint32_t s = 4;
    for (int i = 0; i < 10000; i++) {
        double real = ldexp(rng_uniform(&s, 0.5f, 1.0f) + ldexp(rng_next(&s), -56), -20 + i % 30);
        int32_t m;
        int sh;
        etrt_quantize_multiplier(real, &m, &sh);
        cr_assert(m >= (1 << 30), "normalised Q31 mantissa");
        cr_assert(fabs(ldexp(m, sh - 31) - real) <= ldexp(1.0, sh - 32), "%.17g", real);
    }
}

Test(requant, softmax_and_add_prepare)
{
    etrt_softmax_s8_params sp;
    etrt_softmax_s8_prepare(1.0 / 16, 1.0, &sp); /* 2^-4 * 2^26 = 0.5 * 2^23 */
    cr_assert(sp.input_multiplier == 1 << 30 && sp.input_left_shift == 23 && sp.diff_min == -248,
              "%d %d %d", sp.input_multiplier, sp.input_left_shift, sp.diff_min);
    etrt_softmax_s8_prepare((double)0.1f, 1.0, &sp); /* ~ 0.8 * 2^23 */
    cr_assert(sp.input_multiplier == 1717986944 && sp.input_left_shift == 23 && sp.diff_min == -248,
              "%d %d %d", sp.input_multiplier, sp.input_left_shift, sp.diff_min);
    etrt_softmax_s8_prepare(100.0, 1.0, &sp); /* capped at 2^31 - 1 */
    cr_assert(sp.input_multiplier == INT32_MAX && sp.input_left_shift == 31 && sp.diff_min == 0,
              "%d %d %d", sp.input_multiplier, sp.input_left_shift, sp.diff_min);

    etrt_add_s8_params ap;
    etrt_add_s8_prepare(0.5, 0.25, 1.0, &ap);
    cr_assert_eq(ap.left_shift, 20);
    cr_assert(ap.input1_multiplier == 1 << 30 && ap.input1_shift == 0);
    cr_assert(ap.input2_multiplier == 1 << 30 && ap.input2_shift == -1);
    cr_assert(ap.output_multiplier == 1 << 30 && ap.output_shift == -19); /* 2^-20 */
}

/* ------------------------------------------------------------------------
 * Conv2d and depthwise conv2d, int8
 */

typedef struct conv_case {
    int depthwise;
    et_dims in;
    int out_c; /* conv2d: filters; depthwise: the depth multiplier */
    int k_h, k_w, stride;
    et_padding pad;
    int act, bias;
} conv_case;

/* A quantized conv: data, scales, the kernel's parameters, and the float
 * result of the same model computed by the training library's reference. */
typedef struct qconv {
    int depthwise;
    et_window win;
    et_dims in, out;
    float s_in, s_out, *s_w;
    int32_t zp_in, zp_out, *mult, *shift, *bias;
    int8_t *x, *w;
    float *yf; /* float result before quantization */
    etrt_conv_s8_params p;
} qconv;

static size_t weight_count(const qconv *q)
{
    return (size_t)q->win.k_h * q->win.k_w * q->out.c * (q->depthwise ? 1 : q->in.c);
}

/* Output channel of weight i: conv2d [oc][kh][kw][ic], depthwise [kh][kw][oc]. */
static int weight_channel(const qconv *q, size_t i)
{
    return q->depthwise ? (int)(i % (size_t)q->out.c) : (int)(i / (weight_count(q) / q->out.c));
}

/* Builds a random quantized conv. out_div sets the output scale to
 * max|y| / out_div: ~100 leaves most outputs unsaturated, larger saturates. */
static void qconv_make(qconv *q, const conv_case *c, uint32_t seed, double out_div)
{
    uint32_t s = seed;
    memset(q, 0, sizeof *q);
    q->depthwise = c->depthwise;
    q->win =
        (et_window){.k_h = c->k_h, .k_w = c->k_w, .stride_h = c->stride, .stride_w = c->stride};
    q->in = c->in;
    q->out.c = c->depthwise ? c->in.c * c->out_c : c->out_c;
    cr_assert_eq(et_window_plan(&q->win, c->pad, &q->in, &q->out, NULL), ET_OK);
    size_t nx = et_dims_count(&q->in), ny = et_dims_count(&q->out), nw = weight_count(q);
    int oc_n = q->out.c;

    q->s_in = 0.03f;
    q->zp_in = rng_int(&s, -20, 20);
    q->x = s8rand(nx, &s, -128, 127);
    q->w = s8rand(nw, &s, -127, 127);
    q->s_w = frand((size_t)oc_n, &s, 0.002f, 0.01f);
    if (c->bias) {
        q->bias = buf((size_t)oc_n * sizeof *q->bias);
        for (int oc = 0; oc < oc_n; oc++)
            q->bias[oc] = rng_int(&s, -3000, 3000);
    }

    /* The float model: dequantized input, weights and bias. */
    float *xf = buf(nx * sizeof *xf), *wf = buf(nw * sizeof *wf), *bf = NULL;
    dequantize(nx, q->x, q->s_in, q->zp_in, xf);
    for (size_t i = 0; i < nw; i++)
        wf[i] = q->s_w[weight_channel(q, i)] * q->w[i];
    if (q->bias) {
        bf = buf((size_t)oc_n * sizeof *bf);
        for (int oc = 0; oc < oc_n; oc++)
            bf[oc] = (float)((double)q->bias[oc] * q->s_in * q->s_w[oc]);
    }
    q->yf = buf(ny * sizeof *q->yf);
    if (q->depthwise)
        et_depthwise_conv2d_forward_ref(&q->win, &q->in, xf, wf, bf, &q->out, q->yf, NULL);
    else
        et_conv2d_forward_ref(&q->win, &q->in, xf, wf, bf, &q->out, q->yf, NULL);

    float ymax = 1e-6f;
    for (size_t i = 0; i < ny; i++)
        ymax = fmaxf(ymax, fabsf(q->yf[i]));
    q->s_out = (float)(ymax / out_div);
    q->zp_out = rng_int(&s, -10, 10);

    /* Per-channel requantization, as TFLite's Prepare computes it. */
    q->mult = buf((size_t)oc_n * sizeof *q->mult);
    q->shift = buf((size_t)oc_n * sizeof *q->shift);
    for (int oc = 0; oc < oc_n; oc++) {
        int sh;
        etrt_quantize_multiplier((double)q->s_in * (double)q->s_w[oc] / (double)q->s_out,
                                 &q->mult[oc], &sh);
        q->shift[oc] = sh;
    }
    q->p.win = rt_window(q->win);
    q->p.depth_multiplier = c->depthwise ? c->out_c : 1;
    q->p.input_offset = -q->zp_in;
    q->p.output_offset = q->zp_out;
    act_range(c->act, q->s_out, q->zp_out, &q->p.act_min, &q->p.act_max);
    q->p.multiplier = q->mult;
    q->p.shift = q->shift;
}

/* Runs the runtime kernel, with exactly the scratch it asks for (so that
 * AddressSanitizer sees an overrun). */
static int8_t *qconv_run(const qconv *q)
{
    etrt_dims in = rt_dims(q->in), out = rt_dims(q->out);
    int8_t *y = buf(et_dims_count(&q->out));
    if (q->depthwise) {
        void *scratch = buf(etrt_depthwise_conv2d_s8_scratch_size(&q->p, in, out));
        etrt_depthwise_conv2d_s8(&q->p, in, q->x, q->w, q->bias, out, y, scratch);
    } else {
        void *scratch = buf(etrt_conv2d_s8_scratch_size(&q->p, in, out));
        etrt_conv2d_s8(&q->p, in, q->x, q->w, q->bias, out, y, scratch);
    }
    return y;
}

/* The conv as TFLite's reference_integer_ops writes it: one accumulator per
 * output, taps in order, padding skipped. */
static int8_t *qconv_loops(const qconv *q)
{
    const et_dims *in = &q->in, *out = &q->out;
    const et_window *win = &q->win;
    const int mult = q->depthwise ? out->c / in->c : 1;
    int8_t *y = buf(et_dims_count(out));
    for (int n = 0; n < out->n; n++)
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++)
                for (int oc = 0; oc < out->c; oc++) {
                    int32_t acc = 0;
                    for (int ky = 0; ky < win->k_h; ky++)
                        for (int kx = 0; kx < win->k_w; kx++) {
                            int iy = oy * win->stride_h - win->pad_top + ky;
                            int ix = ox * win->stride_w - win->pad_left + kx;
                            if (iy < 0 || iy >= in->h || ix < 0 || ix >= in->w)
                                continue;
                            if (q->depthwise) {
                                int32_t xv = q->x[et_dims_index(in, n, iy, ix, oc / mult)];
                                acc += (xv - q->zp_in) * q->w[(ky * win->k_w + kx) * out->c + oc];
                                continue;
                            }
                            for (int ic = 0; ic < in->c; ic++) {
                                int32_t xv = q->x[et_dims_index(in, n, iy, ix, ic)];
                                int32_t wv =
                                    q->w[((oc * win->k_h + ky) * win->k_w + kx) * in->c + ic];
                                acc += (xv - q->zp_in) * wv;
                            }
                        }
                    if (q->bias)
                        acc += q->bias[oc];
                    acc = etrt_mul_by_quantized_multiplier(acc, q->mult[oc], q->shift[oc]);
                    y[et_dims_index(out, n, oy, ox, oc)] =
                        (int8_t)clampi(acc + q->zp_out, q->p.act_min, q->p.act_max);
                }
    return y;
}

/* The float result quantized to the output, with the same clamp. */
static int8_t *qconv_float(const qconv *q)
{
    size_t ny = et_dims_count(&q->out);
    int8_t *y = buf(ny);
    for (size_t i = 0; i < ny; i++)
        y[i] = (int8_t)quantize_ref(q->yf[i], q->s_out, q->zp_out, q->p.act_min, q->p.act_max);
    return y;
}

static const conv_case conv_cases[] = {
    {0, {2, 7, 9, 3}, 5, 3, 3, 1, ET_PADDING_SAME, ACT_NONE, 1},
    {0, {1, 8, 7, 4}, 6, 3, 3, 2, ET_PADDING_SAME, ACT_RELU, 1},
    {0, {1, 9, 9, 2}, 3, 3, 3, 2, ET_PADDING_VALID, ACT_RELU6, 0},
    {0, {1, 6, 5, 3}, 4, 5, 3, 1, ET_PADDING_SAME, ACT_NONE, 1},
    {0, {2, 5, 3, 37}, 11, 1, 1, 1, ET_PADDING_VALID, ACT_RELU, 1}, /* pointwise */
    {0, {1, 7, 7, 8}, 5, 1, 1, 2, ET_PADDING_SAME, ACT_NONE, 1},    /* 1x1, stride 2 */
    /* 1x1 stride 1 (the pointwise path): pixels and channels not multiples of
     * four, a batch of three, two input channels. */
    {0, {3, 3, 5, 64}, 13, 1, 1, 1, ET_PADDING_SAME, ACT_RELU6, 1},
    {0, {1, 4, 4, 2}, 5, 1, 1, 1, ET_PADDING_VALID, ACT_RELU, 0},
    {0, {1, 8, 6, 3}, 2, 2, 2, 2, ET_PADDING_VALID, ACT_NONE, 1},
    {0, {1, 12, 12, 16}, 24, 3, 3, 1, ET_PADDING_SAME, ACT_RELU6, 1},
    /* One input channel, stride 1, rows wider than 16: blocks of 16 pixels
     * from the input, the last one overlapping; 5x5 valid; 3 channels and
     * stride 2 (the same path, lane by lane). */
    {0, {2, 20, 30, 1}, 7, 3, 3, 1, ET_PADDING_SAME, ACT_RELU, 1},
    {0, {1, 9, 40, 1}, 5, 5, 5, 1, ET_PADDING_VALID, ACT_NONE, 0},
    {0, {1, 6, 17, 1}, 3, 3, 3, 1, ET_PADDING_SAME, ACT_RELU6, 1},
    {0, {1, 10, 21, 3}, 4, 3, 3, 1, ET_PADDING_SAME, ACT_RELU6, 1},
    {0, {1, 11, 35, 1}, 3, 3, 3, 2, ET_PADDING_SAME, ACT_NONE, 1},
    {1, {2, 7, 9, 3}, 1, 3, 3, 1, ET_PADDING_SAME, ACT_NONE, 1},
    {1, {1, 8, 7, 4}, 2, 3, 3, 2, ET_PADDING_SAME, ACT_RELU6, 1},
    {1, {1, 6, 5, 16}, 1, 3, 3, 1, ET_PADDING_VALID, ACT_RELU, 0},
    {1, {1, 9, 9, 2}, 3, 5, 5, 2, ET_PADDING_SAME, ACT_NONE, 1},
};

static const char *case_name(const conv_case *c, char *name, size_t size)
{
    snprintf(name, size, "%s %dx%dx%dx%d k%dx%d s%d %s act %d",
             c->depthwise ? "depthwise" : "conv2d", c->in.n, c->in.h, c->in.w, c->in.c, c->k_h,
             c->k_w, c->stride, c->pad == ET_PADDING_SAME ? "same" : "valid", c->act);
    return name;
}

Test(conv_s8, bit_exact_with_tflite_loops_and_within_1_lsb_of_float)
{
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
        char name[128];
        qconv q;
        qconv_make(&q, &conv_cases[i], 100 + (uint32_t)i, 100.0);
        size_t ny = et_dims_count(&q.out);
        int8_t *got = qconv_run(&q);
        assert_s8_near(case_name(&conv_cases[i], name, sizeof name), got, qconv_loops(&q), ny, 0);
        assert_s8_near(name, got, qconv_float(&q), ny, 1);
        free_tracked();
    }
}

/* The fused conv2d + max pool against the two kernels in turn, bit for bit,
 * int8 and float32, over every conv2d case and pool windows that tile
 * (2x2/2), hang over the edge with padding (3x3/3 same), overlap (3x3/2
 * same, 2x2/1: conv rows computed again) or skip rows (1x2/2). */
Test(conv_s8, fused_max_pool_is_the_two_kernels_in_turn)
{
    static const struct {
        int k_h, k_w, stride;
        et_padding pad;
    } pools[] = {{2, 2, 2, ET_PADDING_VALID},
                 {3, 3, 3, ET_PADDING_SAME},
                 {3, 3, 2, ET_PADDING_SAME},
                 {2, 2, 1, ET_PADDING_VALID},
                 {1, 2, 2, ET_PADDING_VALID}};
    int tried = 0;
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
        if (conv_cases[i].depthwise)
            continue;
        for (size_t k = 0; k < sizeof pools / sizeof *pools; k++) {
            char name[160];
            qconv q;
            qconv_make(&q, &conv_cases[i], 300 + (uint32_t)i, 100.0);
            et_window pw = {.k_h = pools[k].k_h,
                            .k_w = pools[k].k_w,
                            .stride_h = pools[k].stride,
                            .stride_w = pools[k].stride};
            et_dims pout = {.c = q.out.c};
            if (et_window_plan(&pw, pools[k].pad, &q.out, &pout, NULL) != ET_OK) {
                free_tracked(); /* a pool larger than the conv's output */
                continue;
            }
            char conv_name[128];
            snprintf(name, sizeof name, "%s, pool %d",
                     case_name(&conv_cases[i], conv_name, sizeof conv_name), (int)k);
            etrt_window rpw = rt_window(pw);
            etrt_dims in = rt_dims(q.in), conv = rt_dims(q.out), out = rt_dims(pout);
            size_t npool = et_dims_count(&pout);

            int8_t *want = buf(npool), *got = buf(npool);
            etrt_pool_s8_params pp = {rpw, -128, 127};
            etrt_max_pool_s8(&pp, conv, qconv_run(&q), out, want);
            void *scratch = buf(etrt_conv2d_maxpool_s8_scratch_size(&q.p, &rpw, in, conv));
            etrt_conv2d_maxpool_s8(&q.p, &rpw, in, q.x, q.w, q.bias, conv, out, got, scratch);
            assert_s8_near(name, got, want, npool, 0);

            /* float32: the same shapes, random floats, ReLU. */
            uint32_t s = 900 + (uint32_t)(i * 10 + k);
            float *xf = frand(et_dims_count(&q.in), &s, -1, 1);
            float *wf = frand(weight_count(&q), &s, -0.5f, 0.5f);
            float *bf = frand((size_t)q.out.c, &s, -0.1f, 0.1f);
            etrt_conv_f32_params fp = {q.p.win, 1, 0.0f, FLT_MAX};
            float *yc = buf(et_dims_count(&q.out) * sizeof *yc);
            float *fwant = buf(npool * sizeof *fwant), *fgot = buf(npool * sizeof *fgot);
            etrt_conv2d_f32(&fp, in, xf, wf, bf, conv, yc,
                            buf(etrt_conv2d_f32_scratch_size(&fp, in, conv)));
            etrt_pool_f32_params fpp = {rpw, -FLT_MAX, FLT_MAX};
            etrt_max_pool_f32(&fpp, conv, yc, out, fwant);
            etrt_conv2d_maxpool_f32(&fp, &rpw, in, xf, wf, bf, conv, out, fgot,
                                    buf(etrt_conv2d_maxpool_f32_scratch_size(&fp, &rpw, in, conv)));
            cr_assert_arr_eq(fgot, fwant, npool * sizeof *fgot, "%s: float32 differs", name);
            tried++;
            free_tracked();
        }
    }
    cr_assert_geq(tried, 50, "only %d cases ran", tried);
}

Test(conv_s8, saturates_at_int8_limits)
{
    /* A tiny output scale: most outputs lie far outside [-128, 127]. */
    for (int d = 0; d < 2; d++) {
        qconv q;
        qconv_make(&q, &conv_cases[d ? 9 : 0], 7, 3000.0);
        size_t ny = et_dims_count(&q.out), lo = 0, hi = 0;
        int8_t *got = qconv_run(&q);
        assert_s8_near("saturated", got, qconv_loops(&q), ny, 0);
        assert_s8_near("saturated vs float", got, qconv_float(&q), ny, 1);
        for (size_t i = 0; i < ny; i++) {
            lo += got[i] == q.p.act_min;
            hi += got[i] == q.p.act_max;
        }
        cr_assert(lo > ny / 4 && hi > ny / 8, "%zu low and %zu high of %zu", lo, hi, ny);
        free_tracked();
    }
}

Test(conv_s8, exact_when_nothing_rounds)
{
    /* input_scale * weight_scale / output_scale = 1 (0.5 * 0.25 / 0.125): the
     * requantization is an exact identity, so y = clamp(acc + zp) and the
     * float model gives the same integers. Small values keep acc in range. */
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
        char name[128];
        qconv q;
        uint32_t s = 5 + (uint32_t)i;
        qconv_make(&q, &conv_cases[i], 200 + (uint32_t)i, 100.0);
        for (size_t j = 0; j < et_dims_count(&q.in); j++)
            q.x[j] = (int8_t)(q.zp_in + rng_int(&s, -3, 3));
        for (size_t j = 0; j < weight_count(&q); j++)
            q.w[j] = (int8_t)rng_int(&s, -2, 2);
        for (int oc = 0; oc < q.out.c; oc++) {
            q.mult[oc] = 1 << 30;
            q.shift[oc] = 1;
            if (q.bias)
                q.bias[oc] = rng_int(&s, -20, 20);
        }
        size_t ny = et_dims_count(&q.out);
        int8_t *got = qconv_run(&q), *want = qconv_loops(&q);
        assert_s8_near(case_name(&conv_cases[i], name, sizeof name), got, want, ny, 0);
        /* The float model at scales 0.5, 0.25, 0.125 is exact too. */
        float *xf = buf(et_dims_count(&q.in) * sizeof *xf), *wf = buf(weight_count(&q) * 4);
        float *bf = q.bias ? buf((size_t)q.out.c * sizeof *bf) : NULL, *yf = buf(ny * 4);
        dequantize(et_dims_count(&q.in), q.x, 0.5f, q.zp_in, xf);
        dequantize(weight_count(&q), q.w, 0.25f, 0, wf);
        for (int oc = 0; bf && oc < q.out.c; oc++)
            bf[oc] = 0.125f * (float)q.bias[oc];
        if (q.depthwise)
            et_depthwise_conv2d_forward_ref(&q.win, &q.in, xf, wf, bf, &q.out, yf, NULL);
        else
            et_conv2d_forward_ref(&q.win, &q.in, xf, wf, bf, &q.out, yf, NULL);
        for (size_t j = 0; j < ny; j++)
            cr_assert_eq(got[j], quantize_ref(yf[j], 0.125, q.zp_out, q.p.act_min, q.p.act_max),
                         "%s: [%zu]", name, j);
        free_tracked();
    }
}

/* A 1x1 conv on one channel takes the 16-pixel path: acc = w * (x + offset)
 * + bias, with random biases, multipliers and shifts: every output is
 * TFLite's scalar requantization of its accumulator. */
Test(conv_s8, pixel_path_requantizes_as_the_scalar_formula)
{
    enum { W = 48, C = 64 };
    uint32_t s = 77;
    int8_t x[W], w[C], y[W * C];
    int32_t bias[C], mult[C], shift[C];
    for (int rep = 0; rep < 50; rep++) {
        for (int i = 0; i < W; i++)
            x[i] = (int8_t)rng_int(&s, -128, 127);
        for (int c = 0; c < C; c++) {
            w[c] = (int8_t)rng_int(&s, -127, 127);
            /* Far wider than real biases and shifts, yet every result stays
             * far from overflowing int32 when the output offset is added
             * (|acc << 4| < 2^25), as with real scales. */
            bias[c] = rng_int(&s, -(1 << 20), 1 << 20);
            mult[c] = (int32_t)(rng_next(&s) >> 1); /* [0, 2^31) */
            shift[c] = rng_int(&s, -31, 4);
        }
        mult[0] = INT32_MAX;
        mult[1] = 0;
        etrt_conv_s8_params p = {.win = {1, 1, 1, 1, 0, 0},
                                 .input_offset = rng_int(&s, -127, 128),
                                 .output_offset = rng_int(&s, -128, 127),
                                 .act_min = -128,
                                 .act_max = 127,
                                 .multiplier = mult,
                                 .shift = shift};
        etrt_dims in = {1, 1, W, 1}, out = {1, 1, W, C};
        int32_t scratch[4];
        etrt_conv2d_s8(&p, in, x, w, bias, out, y, scratch);
        for (int i = 0; i < W; i++)
            for (int c = 0; c < C; c++) {
                int32_t acc = w[c] * (x[i] + p.input_offset) + bias[c];
                int32_t v = etrt_mul_by_quantized_multiplier(acc, mult[c], shift[c]) +
                            p.output_offset;
                v = v < -128 ? -128 : v > 127 ? 127 : v;
                cr_assert_eq(y[i * C + c], v, "rep %d pixel %d channel %d: acc %d mult %d shift %d",
                             rep, i, c, acc, mult[c], shift[c]);
            }
    }
}

Test(conv_s8, by_hand)
{
    /* 2x2 input 1, 2, 3, 4 with zero point 1 (reals 0..3 at scale 1), a 2x2
     * kernel of ones, bias 10, multiplier 1: acc = 0+1+2+3+10 = 16, plus the
     * output zero point -5 = 11. */
    const int8_t x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, 1};
    const int32_t bias[1] = {10}, m[1] = {1 << 30}, sh[1] = {1};
    etrt_conv_s8_params p = {.win = {2, 2, 1, 1, 0, 0},
                             .input_offset = -1,
                             .output_offset = -5,
                             .act_min = -128,
                             .act_max = 127,
                             .multiplier = m,
                             .shift = sh};
    etrt_dims in = {1, 2, 2, 1}, out = {1, 1, 1, 1};
    int8_t y[4];
    int32_t scratch[16]; /* the kernels want 4-byte alignment */
    cr_assert_leq(etrt_conv2d_s8_scratch_size(&p, in, out), sizeof scratch);
    etrt_conv2d_s8(&p, in, x, w, bias, out, y, scratch);
    cr_assert_eq(y[0], 11);
    /* Same padding, 3x3 kernel on the 2x2 input: pixel (0,0) sees x[0..3] at
     * taps (1,1), (1,2), (2,1), (2,2); taps on the padding add nothing. */
    const int8_t w3[9] = {9, 9, 9, 9, 1, 2, 9, 3, 4};
    p.win = (etrt_window){3, 3, 1, 1, 1, 1};
    out = (etrt_dims){1, 2, 2, 1};
    etrt_conv2d_s8(&p, in, x, w3, NULL, out, y, scratch);
    cr_assert_eq(y[0], 0 * 1 + 1 * 2 + 2 * 3 + 3 * 4 - 5);
    /* Pointwise with ReLU: out = clamp(2 * (x - 1) - 5, -5, 127). */
    const int8_t w1[1] = {2};
    p.win = (etrt_window){1, 1, 1, 1, 0, 0};
    p.act_min = -5;
    cr_assert_eq(etrt_conv2d_s8_scratch_size(&p, in, out), 4, "one int16, rounded up to 4 bytes");
    etrt_conv2d_s8(&p, in, x, w1, NULL, out, y, scratch);
    cr_assert(y[0] == -5 && y[1] == -3 && y[2] == -1 && y[3] == 1, "%d %d %d %d", y[0], y[1], y[2],
              y[3]);
}

/* ------------------------------------------------------------------------
 * Fully connected, pooling, add, softmax, pad, quantize: int8
 */

/* The fully connected layer as TFLite's reference loop writes it. */
static void fc_loops(const etrt_fc_s8_params *p, int batches, int in_n, const int8_t *x, int out_n,
                     const int8_t *w, const int32_t *bias, int8_t *y)
{
    for (int b = 0; b < batches; b++)
        for (int o = 0; o < out_n; o++) {
            int32_t acc = bias ? bias[o] : 0;
            int q = p->per_channel ? o : 0;
            for (int i = 0; i < in_n; i++)
                acc += (x[b * in_n + i] + p->input_offset) * w[o * in_n + i];
            acc = etrt_mul_by_quantized_multiplier(acc, p->multiplier[q], p->shift[q]);
            y[b * out_n + o] = (int8_t)clampi(acc + p->output_offset, p->act_min, p->act_max);
        }
}

Test(other_s8, fully_connected_per_tensor_and_per_channel)
{
    enum { B = 3, IN = 37, OUT = 10 };
    for (int per_channel = 0; per_channel < 2; per_channel++)
        for (int act = ACT_NONE; act <= ACT_RELU6; act++) {
            uint32_t s = 11 + (uint32_t)(per_channel * 3 + act);
            const float s_in = 0.05f;
            const int32_t zp_in = rng_int(&s, -30, 30), zp_out = rng_int(&s, -10, 10);
            int8_t *x = s8rand(B * IN, &s, -128, 127), *w = s8rand(OUT * IN, &s, -127, 127);
            float *s_w = frand(OUT, &s, 0.002f, 0.01f);
            int32_t bias[OUT], mult[OUT], shift[OUT];
            float xf[B * IN], wf[OUT * IN], bf[OUT], yf[B * OUT], ymax = 1e-6f;
            if (!per_channel)
                for (int o = 1; o < OUT; o++)
                    s_w[o] = s_w[0];
            for (int o = 0; o < OUT; o++) {
                bias[o] = rng_int(&s, -2000, 2000);
                bf[o] = (float)((double)bias[o] * s_in * s_w[o]);
                for (int i = 0; i < IN; i++)
                    wf[o * IN + i] = s_w[o] * w[o * IN + i];
            }
            dequantize(B * IN, x, s_in, zp_in, xf);
            et_dense_forward_ref(B, IN, OUT, xf, wf, bf, yf);
            for (int i = 0; i < B * OUT; i++)
                ymax = fmaxf(ymax, fabsf(yf[i]));
            const float s_out = ymax / 100;
            for (int o = 0; o < OUT; o++) {
                int sh;
                etrt_quantize_multiplier((double)s_in * s_w[o] / s_out, &mult[o], &sh);
                shift[o] = sh;
            }
            etrt_fc_s8_params p = {.input_offset = -zp_in,
                                   .output_offset = zp_out,
                                   .per_channel = per_channel,
                                   .multiplier = mult,
                                   .shift = shift};
            act_range(act, s_out, zp_out, &p.act_min, &p.act_max);
            int8_t y[B * OUT], want[B * OUT];
            etrt_fully_connected_s8(&p, B, IN, x, OUT, w, bias, y);
            fc_loops(&p, B, IN, x, OUT, w, bias, want);
            assert_s8_near("fc vs loops", y, want, B * OUT, 0);
            for (int i = 0; i < B * OUT; i++)
                want[i] = (int8_t)quantize_ref(yf[i], s_out, zp_out, p.act_min, p.act_max);
            assert_s8_near("fc vs float", y, want, B * OUT, 1);
            etrt_fully_connected_s8(&p, B, IN, x, OUT, w, NULL, y);
            fc_loops(&p, B, IN, x, OUT, w, NULL, want);
            assert_s8_near("fc without bias", y, want, B * OUT, 0);
            free_tracked();
        }
}

typedef struct pool_case {
    et_dims in;
    int k_h, k_w, stride;
    et_padding pad;
} pool_case;

static const pool_case pool_cases[] = {
    {{2, 7, 9, 5}, 2, 2, 2, ET_PADDING_VALID}, {{2, 7, 9, 5}, 3, 3, 2, ET_PADDING_SAME},
    {{1, 6, 5, 3}, 3, 3, 1, ET_PADDING_SAME},  {{1, 7, 7, 4}, 2, 2, 2, ET_PADDING_SAME},
    {{2, 5, 6, 7}, 5, 6, 1, ET_PADDING_VALID}, /* global: the whole input */
};

Test(other_s8, max_and_avg_pool)
{
    for (size_t k = 0; k < sizeof pool_cases / sizeof *pool_cases; k++)
        for (int clamp = 0; clamp < 2; clamp++) {
            const pool_case *c = &pool_cases[k];
            uint32_t s = 21 + (uint32_t)k;
            et_window win = {
                .k_h = c->k_h, .k_w = c->k_w, .stride_h = c->stride, .stride_w = c->stride};
            et_dims in = c->in, out = {.c = c->in.c};
            cr_assert_eq(et_window_plan(&win, c->pad, &in, &out, NULL), ET_OK);
            size_t nx = et_dims_count(&in), ny = et_dims_count(&out);
            const float scale = 0.07f;
            const int32_t zp = rng_int(&s, -20, 20);
            int8_t *x = s8rand(nx, &s, -128, 127), *y = buf(ny), *want = buf(ny);
            float *xf = buf(nx * sizeof *xf), *yf = buf(ny * sizeof *yf);
            etrt_pool_s8_params p = {
                .win = rt_window(win), .act_min = clamp ? -20 : -128, .act_max = clamp ? 50 : 127};
            dequantize(nx, x, scale, zp, xf);

            /* Max: dequantizing commutes with max, so the float reference
             * quantized back must match exactly. */
            etrt_max_pool_s8(&p, rt_dims(in), x, rt_dims(out), y);
            et_maxpool_forward_ref(&win, &in, xf, &out, yf);
            for (size_t i = 0; i < ny; i++)
                want[i] = (int8_t)quantize_ref(yf[i], scale, zp, p.act_min, p.act_max);
            assert_s8_near("max pool", y, want, ny, 0);

            /* Average: exact against TFLite's integer rounding, within 1 LSB
             * of the float average (float may land either side of a tie). */
            etrt_avg_pool_s8(&p, rt_dims(in), x, rt_dims(out), y);
            et_avgpool_forward_ref(&win, &in, xf, &out, yf);
            for (int n = 0; n < out.n; n++)
                for (int oy = 0; oy < out.h; oy++)
                    for (int ox = 0; ox < out.w; ox++) {
                        et_window_clip cl = et_window_at(&win, &in, oy, ox);
                        int count = (cl.y1 - cl.y0) * (cl.x1 - cl.x0);
                        for (int ch = 0; ch < out.c; ch++) {
                            int32_t sum = 0;
                            for (int iy = cl.y0; iy < cl.y1; iy++)
                                for (int ix = cl.x0; ix < cl.x1; ix++)
                                    sum += x[et_dims_index(&in, n, iy, ix, ch)];
                            double avg = (double)sum / count;
                            int32_t r = (int32_t)(avg < 0 ? -floor(-avg + 0.5) : floor(avg + 0.5));
                            want[et_dims_index(&out, n, oy, ox, ch)] =
                                (int8_t)clampi(r, p.act_min, p.act_max);
                        }
                    }
            assert_s8_near("avg pool vs integer rounding", y, want, ny, 0);
            for (size_t i = 0; i < ny; i++)
                want[i] = (int8_t)quantize_ref(yf[i], scale, zp, p.act_min, p.act_max);
            assert_s8_near("avg pool vs float", y, want, ny, 1);
            free_tracked();
        }
}

Test(other_s8, avg_pool_rounds_halves_away_from_zero)
{
    /* One row of two pixels, 1x2 window: sums 3, -3, 4, 5 over 2 pixels. */
    const int8_t x[8] = {1, -1, 2, 127, 2, -2, 2, -122};
    int8_t y[4];
    etrt_pool_s8_params p = {.win = {1, 2, 1, 1, 0, 0}, .act_min = -128, .act_max = 127};
    etrt_avg_pool_s8(&p, (etrt_dims){1, 1, 2, 4}, x, (etrt_dims){1, 1, 1, 4}, y);
    cr_assert(y[0] == 2 && y[1] == -2 && y[2] == 2 && y[3] == 3, "%d %d %d %d", y[0], y[1], y[2],
              y[3]);
    /* Thirds: 5 / 3 = 1.67 -> 2, -4 / 3 = -1.33 -> -1. */
    const int8_t x3[6] = {1, -1, 2, -1, 2, -2};
    etrt_avg_pool_s8(&p, (etrt_dims){1, 1, 3, 2}, x3, (etrt_dims){1, 1, 1, 2}, (p.win.k_w = 3, y));
    cr_assert(y[0] == 2 && y[1] == -1, "%d %d", y[0], y[1]);
}

Test(other_s8, add_scales_in_place_and_saturation)
{
    uint32_t s = 31;
    const size_t n = 300;
    const float s1 = 0.05f, s2 = 0.02f, so = 0.06f;
    const int32_t z1 = 7, z2 = -12, zo = 3;
    int8_t *x1 = s8rand(n, &s, -128, 127), *x2 = s8rand(n, &s, -128, 127), *y = buf(n);
    etrt_add_s8_params p = {.input1_offset = -z1,
                            .input2_offset = -z2,
                            .output_offset = zo,
                            .act_min = -128,
                            .act_max = 127};
    etrt_add_s8_prepare(s1, s2, so, &p);
    etrt_add_s8(&p, n, x1, x2, y);
    for (size_t i = 0; i < n; i++) {
        double real = (double)s1 * (x1[i] - z1) + (double)s2 * (x2[i] - z2);
        int32_t want = quantize_ref(real, so, zo, -128, 127);
        cr_assert(abs(y[i] - want) <= 1, "[%zu]: got %d, want %d", i, y[i], want);
    }
    /* In place, either operand, with a ReLU clamp. */
    int8_t *a = buf(n), *b = buf(n), *ref = buf(n);
    p.act_min = zo;
    etrt_add_s8(&p, n, x1, x2, ref);
    memcpy(a, x1, n);
    etrt_add_s8(&p, n, a, x2, a);
    cr_assert_arr_eq(a, ref, n, "y == x1");
    memcpy(b, x2, n);
    etrt_add_s8(&p, n, x1, b, b);
    cr_assert_arr_eq(b, ref, n, "y == x2");
    for (size_t i = 0; i < n; i++)
        cr_assert_geq(ref[i], zo);
    /* Equal scales, zero points 0: the fixed-point path is exact, y = x1 + x2
     * saturated. */
    const int8_t e1[5] = {3, 100, -100, -128, 127}, e2[5] = {4, 100, -100, 127, -1};
    int8_t ey[5];
    etrt_add_s8_params q = {.act_min = -128, .act_max = 127};
    etrt_add_s8_prepare(0.1, 0.1, 0.1, &q);
    etrt_add_s8(&q, 5, e1, e2, ey);
    cr_assert(ey[0] == 7 && ey[1] == 127 && ey[2] == -128 && ey[3] == -1 && ey[4] == 126,
              "%d %d %d %d %d", ey[0], ey[1], ey[2], ey[3], ey[4]);
}

/* Float softmax of the dequantized row, quantized to scale 1/256, zero point
 * -128 (TFLite's int8 softmax output). */
static void softmax_float_q(const int8_t *x, int depth, float scale, int8_t *want)
{
    double max = -1e30, sum = 0.0;
    for (int c = 0; c < depth; c++)
        max = fmax(max, scale * x[c]);
    for (int c = 0; c < depth; c++)
        sum += exp(scale * x[c] - max);
    for (int c = 0; c < depth; c++)
        want[c] = (int8_t)quantize_ref(exp(scale * x[c] - max) / sum, 1.0 / 256, -128, -128, 127);
}

Test(other_s8, softmax_matches_float_within_1_lsb)
{
    const float scales[] = {0.02f, 0.1f, 0.25f, 1.0f}; /* 1.0: most inputs beyond diff_min */
    const int depths[] = {1, 2, 10, 37, 200};
    for (size_t k = 0; k < sizeof scales / sizeof *scales; k++)
        for (size_t d = 0; d < sizeof depths / sizeof *depths; d++) {
            uint32_t s = 41 + (uint32_t)(k * 8 + d);
            const int rows = 4, depth = depths[d];
            int8_t *x = s8rand((size_t)rows * depth, &s, -128, 127);
            int8_t *y = buf((size_t)rows * depth), *want = buf((size_t)depth);
            etrt_softmax_s8_params p;
            etrt_softmax_s8_prepare(scales[k], 1.0, &p);
            etrt_softmax_s8(&p, rows, depth, x, y);
            for (int r = 0; r < rows; r++) {
                softmax_float_q(x + r * depth, depth, scales[k], want);
                for (int c = 0; c < depth; c++)
                    cr_assert(abs(y[r * depth + c] - want[c]) <= 1,
                              "scale %g depth %d [%d][%d]: got %d, want %d", scales[k], depth, r, c,
                              y[r * depth + c], want[c]);
            }
            free_tracked();
        }
}

Test(other_s8, softmax_by_hand)
{
    etrt_softmax_s8_params p;
    int8_t y[4];
    etrt_softmax_s8_prepare(0.1, 1.0, &p);
    /* Four equal inputs: 1/4 = 64/256 -> -128 + 64. */
    etrt_softmax_s8(&p, 1, 4, (const int8_t[]){5, 5, 5, 5}, y);
    cr_assert(y[0] == -64 && y[1] == -64 && y[2] == -64 && y[3] == -64, "%d", y[0]);
    /* One input alone: probability 1 saturates at 127. */
    etrt_softmax_s8(&p, 1, 1, (const int8_t[]){-100}, y);
    cr_assert_eq(y[0], 127);
    /* 25.5 apart at scale 0.1: exp(-25.5) is far below 1/256; the gap is
     * inside diff_min (-248), so the small ones go through exp and round to
     * the minimum; the large one is 1. */
    etrt_softmax_s8(&p, 1, 3, (const int8_t[]){-128, 127, -128}, y);
    cr_assert(y[0] == -128 && y[1] == 127 && y[2] == -128, "%d %d %d", y[0], y[1], y[2]);
    /* At scale 1 (multiplier 2^26 = 0.5 * 2^27) diff_min is
     * -floor(31 * 2^26 / 2^27) = -15: a gap of 16 is cut off before exp,
     * where the Q5.26 input would overflow. */
    etrt_softmax_s8_prepare(1.0, 1.0, &p);
    cr_assert(p.input_left_shift == 27 && p.diff_min == -15, "%d %d", p.input_left_shift,
              p.diff_min);
    etrt_softmax_s8(&p, 1, 2, (const int8_t[]){0, 16}, y);
    cr_assert(y[0] == -128 && y[1] == 127, "%d %d", y[0], y[1]);
    /* ln 3 apart: 1/4 and 3/4 -> -64 and 64. */
    etrt_softmax_s8_prepare(log(3.0) / 100, 1.0, &p);
    etrt_softmax_s8(&p, 1, 2, (const int8_t[]){0, 100}, y);
    cr_assert(abs(y[0] + 64) <= 1 && abs(y[1] - 64) <= 1, "%d %d", y[0], y[1]);
}

Test(other_s8, pad)
{
    /* 1x2x3x2 input, padded top 1, bottom 2, left 0, right 1 -> 1x5x4x2. */
    int8_t x[12], y[40];
    for (int i = 0; i < 12; i++)
        x[i] = (int8_t)(i + 1);
    etrt_pad_params p = {.top = 1, .bottom = 2, .left = 0, .right = 1};
    etrt_pad_s8(&p, (etrt_dims){1, 2, 3, 2}, x, -7, (etrt_dims){1, 5, 4, 2}, y);
    for (int oy = 0; oy < 5; oy++)
        for (int ox = 0; ox < 4; ox++)
            for (int c = 0; c < 2; c++) {
                int iy = oy - 1, inside = iy >= 0 && iy < 2 && ox < 3;
                int want = inside ? x[(iy * 3 + ox) * 2 + c] : -7;
                cr_assert_eq(y[(oy * 4 + ox) * 2 + c], want, "(%d, %d, %d)", oy, ox, c);
            }
    /* Two images, left padding only. */
    int8_t y2[2 * 2 * 4 * 2];
    p = (etrt_pad_params){.left = 1};
    int8_t x2[24];
    for (int i = 0; i < 24; i++)
        x2[i] = (int8_t)(i + 1);
    etrt_pad_s8(&p, (etrt_dims){2, 2, 3, 2}, x2, 0, (etrt_dims){2, 2, 4, 2}, y2);
    cr_assert(y2[0] == 0 && y2[1] == 0 && y2[2] == 1 && y2[7] == 6 && y2[8] == 0, "row 0");
    cr_assert(y2[16] == 0 && y2[18] == 13 && y2[31] == 24, "image 1");
}

Test(other_s8, quantize_and_dequantize)
{
    int8_t q[12];
    const float x[12] = {0.5f,         -0.5f, 1.5f,  2.5f,   -2.5f,   0.49999997f,
                         -0.49999997f, 1e9f,  -1e9f, 126.5f, -128.5f, NAN};
    etrt_quantize_s8(12, x, 1.0f, 0, q);
    const int8_t want[12] = {1, -1, 2, 3, -3, 0, 0, 127, -128, 127, -128, 0};
    cr_assert_arr_eq(q, want, 12, "halves away from zero, saturation, NaN as 0");
    etrt_quantize_s8(3, (const float[]){0.0f, 0.25f, -1.0f}, 0.5f, -10, q);
    cr_assert(q[0] == -10 && q[1] == -9 && q[2] == -12, "zero point %d %d %d", q[0], q[1], q[2]);
    uint32_t s = 51;
    for (int i = 0; i < 10000; i++) {
        float v = rng_uniform(&s, -20.0f, 20.0f), scale = rng_uniform(&s, 0.01f, 0.2f);
        int32_t zp = rng_int(&s, -128, 127);
        int8_t got;
        etrt_quantize_s8(1, &v, scale, zp, &got);
        cr_assert_eq(got, clampi((int32_t)roundf(v / scale) + zp, -128, 127), "%.9g / %.9g", v,
                     scale);
        float back;
        etrt_dequantize_s8(1, &got, scale, zp, &back);
        cr_assert_eq(back, (float)((double)scale * (got - zp)), "dequantize is TFLite's");
    }
}

/* ------------------------------------------------------------------------
 * float32 kernels against the training library's reference kernels
 */

static void clamp_f32(float *y, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        y[i] = fminf(fmaxf(y[i], lo), hi);
}

Test(float32, conv2d_and_depthwise)
{
    for (size_t k = 0; k < sizeof conv_cases / sizeof *conv_cases; k++) {
        const conv_case *c = &conv_cases[k];
        char name[128];
        uint32_t s = 61 + (uint32_t)k;
        et_window win = {
            .k_h = c->k_h, .k_w = c->k_w, .stride_h = c->stride, .stride_w = c->stride};
        et_dims in = c->in, out = {.c = c->depthwise ? c->in.c * c->out_c : c->out_c};
        cr_assert_eq(et_window_plan(&win, c->pad, &in, &out, NULL), ET_OK);
        size_t nx = et_dims_count(&in), ny = et_dims_count(&out);
        size_t nw = (size_t)win.k_h * win.k_w * out.c * (c->depthwise ? 1 : in.c);
        float *x = frand(nx, &s, -1, 1), *w = frand(nw, &s, -1, 1);
        float *b = c->bias ? frand((size_t)out.c, &s, -1, 1) : NULL;
        float *y = buf(ny * sizeof *y), *want = buf(ny * sizeof *want);
        etrt_conv_f32_params p = {.win = rt_window(win),
                                  .depth_multiplier = c->out_c,
                                  .act_min = c->act == ACT_NONE ? -FLT_MAX : 0.0f,
                                  .act_max = c->act == ACT_RELU6 ? 6.0f : FLT_MAX};
        case_name(c, name, sizeof name);
        if (c->depthwise) {
            etrt_depthwise_conv2d_f32(&p, rt_dims(in), x, w, b, rt_dims(out), y);
            et_depthwise_conv2d_forward_ref(&win, &in, x, w, b, &out, want, NULL);
        } else {
            size_t ss = etrt_conv2d_f32_scratch_size(&p, rt_dims(in), rt_dims(out));
            etrt_conv2d_f32(&p, rt_dims(in), x, w, b, rt_dims(out), y, buf(ss));
            et_conv2d_forward_ref(&win, &in, x, w, b, &out, want, NULL);
        }
        clamp_f32(want, ny, p.act_min, p.act_max);
        assert_f32_near(name, y, want, ny, 1e-5);
        free_tracked();
    }
}

Test(float32, fully_connected_add_softmax)
{
    uint32_t s = 71;
    const int batch = 3, in_n = 37, out_n = 10;
    float *x = frand((size_t)batch * in_n, &s, -1, 1), *w = frand((size_t)out_n * in_n, &s, -1, 1);
    float *b = frand((size_t)out_n, &s, -1, 1), y[30], want[30];
    etrt_act_f32 none = {-FLT_MAX, FLT_MAX}, relu6 = {0.0f, 6.0f};
    etrt_fully_connected_f32(&relu6, batch, in_n, x, out_n, w, b, y);
    et_dense_forward_ref(batch, in_n, out_n, x, w, b, want);
    clamp_f32(want, 30, 0.0f, 6.0f);
    assert_f32_near("fc relu6", y, want, 30, 1e-5);
    etrt_fully_connected_f32(&none, batch, in_n, x, out_n, w, NULL, y);
    et_dense_forward_ref(batch, in_n, out_n, x, w, NULL, want);
    assert_f32_near("fc no bias", y, want, 30, 1e-5);

    /* Add, in place on either operand. */
    float a[30], c[30];
    memcpy(a, want, sizeof a);
    et_add_forward_ref(30, want, x, c);
    etrt_add_f32(&none, 30, a, x, a);
    assert_f32_near("add in place", a, c, 30, 0);
    etrt_add_f32(&relu6, 30, want, x, y);
    clamp_f32(c, 30, 0.0f, 6.0f);
    assert_f32_near("add relu6", y, c, 30, 0);

    /* Softmax: the probabilities of the training loss' forward pass. */
    const int32_t labels[3] = {0, 1, 2};
    et_softmax_xent_params sx = {0};
    float logits[30];
    for (int i = 0; i < 30; i++)
        logits[i] = 8.0f * want[i];
    et_softmax_xent_forward_ref(&sx, batch, out_n, logits, labels, c);
    etrt_softmax_f32(batch, out_n, logits, y);
    assert_f32_near("softmax", y, c, 30, 1e-6);
    etrt_softmax_f32(batch, out_n, logits, logits);
    assert_f32_near("softmax in place", logits, c, 30, 1e-6);
}

Test(float32, pooling)
{
    for (size_t k = 0; k < sizeof pool_cases / sizeof *pool_cases; k++) {
        const pool_case *c = &pool_cases[k];
        uint32_t s = 81 + (uint32_t)k;
        et_window win = {
            .k_h = c->k_h, .k_w = c->k_w, .stride_h = c->stride, .stride_w = c->stride};
        et_dims in = c->in, out = {.c = c->in.c};
        cr_assert_eq(et_window_plan(&win, c->pad, &in, &out, NULL), ET_OK);
        size_t nx = et_dims_count(&in), ny = et_dims_count(&out);
        float *x = frand(nx, &s, -2, 2), *y = buf(ny * 4), *want = buf(ny * 4);
        etrt_pool_f32_params p = {.win = rt_window(win), .act_min = -FLT_MAX, .act_max = FLT_MAX};
        etrt_max_pool_f32(&p, rt_dims(in), x, rt_dims(out), y);
        et_maxpool_forward_ref(&win, &in, x, &out, want);
        assert_f32_near("max pool", y, want, ny, 0);
        etrt_avg_pool_f32(&p, rt_dims(in), x, rt_dims(out), y);
        et_avgpool_forward_ref(&win, &in, x, &out, want);
        assert_f32_near("avg pool", y, want, ny, 1e-5);
        if (out.h == 1 && out.w == 1) { /* the whole input: a global average */
            et_global_avgpool_forward_ref(&in, x, want);
            assert_f32_near("global avg pool", y, want, ny, 1e-5);
        }
        p.act_min = 0.0f; /* ReLU */
        etrt_max_pool_f32(&p, rt_dims(in), x, rt_dims(out), y);
        et_maxpool_forward_ref(&win, &in, x, &out, want);
        clamp_f32(want, ny, 0.0f, FLT_MAX);
        assert_f32_near("max pool relu", y, want, ny, 0);
        free_tracked();
    }
}

Test(float32, pad)
{
    float x[12], y[40];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i + 0.5f;
    etrt_pad_params p = {.top = 2, .bottom = 1, .left = 1, .right = 0};
    etrt_pad_f32(&p, (etrt_dims){1, 2, 3, 2}, x, -1.5f, (etrt_dims){1, 5, 4, 2}, y);
    for (int oy = 0; oy < 5; oy++)
        for (int ox = 0; ox < 4; ox++)
            for (int c = 0; c < 2; c++) {
                int iy = oy - 2, ix = ox - 1, inside = iy >= 0 && iy < 2 && ix >= 0;
                float want = inside ? x[(iy * 3 + ix) * 2 + c] : -1.5f;
                cr_assert_eq(y[(oy * 4 + ox) * 2 + c], want, "(%d, %d, %d)", oy, ox, c);
            }
}
