/* kernels: the reference training kernels (src/kernels/ref). Forward passes
 * are checked against small hand-computed cases; every backward pass is
 * checked against central finite differences of its forward pass, for inputs
 * and parameters, over strides, paddings and odd sizes. */
#include "kernels/kernels.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Helpers
 */

/* xorshift32: inputs are the same on every machine and libc. */
static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static float rng_uniform(uint32_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)(rng_next(s) >> 8) / 16777216.0f;
}

/* Test buffers are tracked and released by each suite's fini, so that test
 * bodies stay about the maths and LeakSanitizer stays quiet. */
static void *tracked[64];
static int n_tracked;

static float *fbuf(size_t n)
{
    cr_assert_lt(n_tracked, 64);
    float *p = calloc(n ? n : 1, sizeof *p);
    cr_assert_not_null(p);
    return tracked[n_tracked++] = p;
}

static void free_tracked(void)
{
    while (n_tracked > 0)
        free(tracked[--n_tracked]);
}

static float *frand(size_t n, uint32_t *s, float lo, float hi)
{
    float *p = fbuf(n);
    for (size_t i = 0; i < n; i++)
        p[i] = rng_uniform(s, lo, hi);
    return p;
}

/* A gradient buffer full of garbage: a backward pass that accumulated instead
 * of overwriting would fail its check. */
static float *fgarbage(size_t n)
{
    float *p = fbuf(n);
    for (size_t i = 0; i < n; i++)
        p[i] = 1e6f;
    return p;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void assert_near(const char *what, const float *got, const float *want, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabs((double)got[i] - want[i]) <= tol, "%s[%zu]: got %.7g, want %.7g", what, i,
                  got[i], want[i]);
}

#define NEAR(what, got, tol, ...)                                                                  \
    assert_near(what, got, (const float[]){__VA_ARGS__},                                           \
                sizeof((const float[]){__VA_ARGS__}) / sizeof(float), tol)

TestSuite(padding, .fini = free_tracked);
TestSuite(conv2d, .fini = free_tracked);
TestSuite(depthwise, .fini = free_tracked);
TestSuite(dense, .fini = free_tracked);
TestSuite(batchnorm, .fini = free_tracked);
TestSuite(activation, .fini = free_tracked);
TestSuite(pool, .fini = free_tracked);
TestSuite(elementwise, .fini = free_tracked);
TestSuite(softmax_xent, .fini = free_tracked);

/* ------------------------------------------------------------------------
 * Finite differences.
 *
 * The loss is L = sum(y * R) for a fixed random R, so dL/dy = R and the
 * backward pass called with dy = R must return dL/d(each input and parameter).
 * Each element v is moved to v + h and v - h (h = 1e-2), and the derivative
 * (L+ - L-) / (v+ - v-) is taken in double over the perturbation actually
 * stored in float.
 *
 * Why a relative tolerance of 1e-2: the forward pass rounds y to float32, so
 * L carries noise of about 6e-8 * |y| * sqrt(#outputs), a few 1e-6 here;
 * divided by 2h that is about 1e-4 on gradients of order 1. The truncation
 * error of a central difference, O(h^2 f'''), is about 1e-4 for the smooth
 * nonlinear ops (batch norm, softmax) and zero for the linear ones. The worst
 * error measured over all checks below is 1.3e-4 relative, so 1e-2 leaves a
 * wide margin, while real bugs (a wrong index, a missing term, a padding off
 * by one, accumulating into the garbage-filled outputs) give errors of order
 * 1. Elements whose gradient is tiny are compared against 10% of the tensor's
 * largest gradient instead of their own size, so float noise on a near-zero
 * value is not a 100% relative error.
 */
#define FD_H 1e-2
#define FD_RTOL 1e-2

typedef double (*loss_fn)(void *ctx);

static void check_grad(const char *name, const char *tensor, float *v, size_t n, const float *grad,
                       loss_fn loss, void *ctx)
{
    double *num = calloc(n ? n : 1, sizeof *num), gmax = 0.0;
    cr_assert_not_null(num);
    for (size_t i = 0; i < n; i++) {
        float keep = v[i], plus = (float)(keep + FD_H), minus = (float)(keep - FD_H);
        v[i] = plus;
        double lp = loss(ctx);
        v[i] = minus;
        double lm = loss(ctx);
        v[i] = keep;
        num[i] = (lp - lm) / ((double)plus - (double)minus);
        gmax = fmax(gmax, fabs(num[i]));
    }
    cr_assert_gt(gmax, 1e-3, "%s %s: the gradient is all zero, so the check would prove nothing",
                 name, tensor);
    for (size_t i = 0; i < n; i++) {
        double a = grad[i], scale = fmax(fmax(fabs(a), fabs(num[i])), 0.1 * gmax);
        cr_assert(fabs(a - num[i]) <= FD_RTOL * scale,
                  "%s %s[%zu]: backward gives %.7g, finite differences %.7g", name, tensor, i, a,
                  num[i]);
    }
    free(num);
}

/* ------------------------------------------------------------------------
 * Padding and window planning (TensorFlow's convention)
 */

static void expect_pad(int in, int k, int s, et_padding pad, int out, int before, int after)
{
    int o = -1, b = -1, a = -1;
    cr_assert_eq(et_pad_size(in, k, s, pad, &o, &b, &a, NULL), ET_OK);
    cr_assert(o == out && b == before && a == after,
              "in %d k %d s %d %s: got out %d pad %d/%d, want %d pad %d/%d", in, k, s,
              pad == ET_PADDING_SAME ? "same" : "valid", o, b, a, out, before, after);
}

Test(padding, same_matches_tensorflow)
{
    expect_pad(7, 3, 2, ET_PADDING_SAME, 4, 1, 1);
    expect_pad(96, 3, 2, ET_PADDING_SAME, 48, 0, 1);
    expect_pad(96, 3, 1, ET_PADDING_SAME, 96, 1, 1);
    expect_pad(5, 4, 1, ET_PADDING_SAME, 5, 1, 2); /* odd total: extra pixel after */
    expect_pad(6, 1, 2, ET_PADDING_SAME, 3, 0, 0); /* 1x1 stride 2 needs none */
    expect_pad(4, 2, 2, ET_PADDING_SAME, 2, 0, 0); /* pool 2 on an even size */
    expect_pad(7, 2, 2, ET_PADDING_SAME, 4, 0, 1); /* pool 2 on an odd size */
    expect_pad(1, 3, 1, ET_PADDING_SAME, 1, 1, 1); /* kernel larger than the input */
    expect_pad(7, 5, 2, ET_PADDING_SAME, 4, 2, 2);
}

Test(padding, valid_and_errors)
{
    expect_pad(7, 3, 2, ET_PADDING_VALID, 3, 0, 0);
    expect_pad(96, 3, 2, ET_PADDING_VALID, 47, 0, 0);
    expect_pad(7, 2, 2, ET_PADDING_VALID, 3, 0, 0); /* the last row is dropped */
    expect_pad(3, 3, 1, ET_PADDING_VALID, 1, 0, 0);
    et_error err = {0};
    int o = 42;
    cr_assert_eq(et_pad_size(2, 3, 1, ET_PADDING_VALID, &o, NULL, NULL, &err), ET_EINVAL);
    cr_assert_eq(o, 42, "nothing is written on failure");
    cr_assert(strstr(err.msg, "larger than the input"), "message: %s", err.msg);
    cr_assert_eq(et_pad_size(5, 3, 0, ET_PADDING_SAME, &o, NULL, NULL, NULL), ET_EINVAL);
    cr_assert_eq(et_pad_size(0, 1, 1, ET_PADDING_SAME, &o, NULL, NULL, NULL), ET_EINVAL);
    cr_assert_eq(et_pad_size(5, 3, 1, (et_padding)7, &o, NULL, NULL, NULL), ET_EINVAL);
}

Test(padding, window_plan_fills_pads_and_output)
{
    et_window win = {.k_h = 3, .k_w = 5, .stride_h = 2, .stride_w = 2};
    et_dims in = {2, 96, 7, 3}, out = {0, 0, 0, 16};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_SAME, &in, &out, NULL), ET_OK);
    cr_assert(win.pad_top == 0 && win.pad_left == 2, "pads %d/%d", win.pad_top, win.pad_left);
    cr_assert(out.n == 2 && out.h == 48 && out.w == 4 && out.c == 16);
    et_window bad = {.k_h = 3, .k_w = 9, .stride_h = 1, .stride_w = 1, .pad_top = -5};
    et_dims keep = out;
    cr_assert_eq(et_window_plan(&bad, ET_PADDING_VALID, &in, &out, NULL), ET_EINVAL);
    cr_assert_eq(bad.pad_top, -5);
    cr_assert(memcmp(&keep, &out, sizeof out) == 0, "nothing is written on failure");
}

/* ------------------------------------------------------------------------
 * Conv2d and depthwise: hand-computed forward results
 */

/* A 4x4x2 input: channel 0 holds 1..16 row by row, channel 1 is all ones.
 * Output channel 0 applies [[1,0,0],[0,0,0],[0,0,2]] to channel 0, so
 * y = x(r-1,c-1) + 2 x(r+1,c+1) + 0.5: cross-correlation, not a flipped kernel.
 * Output channel 1 applies all ones to channel 1, counting the input pixels
 * in the window (4 in corners, 6 on edges, 9 inside), minus 1. */
static void conv_hand(et_padding pad, int stride, const float *want, int want_hw)
{
    float x[32], w[36] = {0}, b[2] = {0.5f, -1.0f}, y[32];
    for (int i = 0; i < 16; i++)
        x[2 * i] = (float)(i + 1), x[2 * i + 1] = 1.0f;
    w[(0 * 3 + 0) * 2 + 0] = 1.0f; /* w[oc 0][ky 0][kx 0][ic 0] */
    w[(2 * 3 + 2) * 2 + 0] = 2.0f; /* w[oc 0][ky 2][kx 2][ic 0] */
    for (int t = 0; t < 9; t++)
        w[18 + t * 2 + 1] = 1.0f; /* w[oc 1][*][*][ic 1] */
    et_window win = {.k_h = 3, .k_w = 3, .stride_h = stride, .stride_w = stride};
    et_dims in = {1, 4, 4, 2}, out = {.c = 2};
    cr_assert_eq(et_window_plan(&win, pad, &in, &out, NULL), ET_OK);
    cr_assert(out.h == want_hw && out.w == want_hw);
    et_conv2d_forward_ref(&win, &in, x, w, b, &out, y, NULL);
    assert_near("y", y, want, et_dims_count(&out), 1e-5);
}

Test(conv2d, forward_by_hand)
{
    const float same1[32] = {
        12.5f, 3, 14.5f, 5, 16.5f, 5, 0.5f,  3, /* row 0 */
        20.5f, 5, 23.5f, 8, 26.5f, 8, 3.5f,  5, /* row 1 */
        28.5f, 5, 35.5f, 8, 38.5f, 8, 7.5f,  5, /* row 2 */
        0.5f,  3, 9.5f,  5, 10.5f, 5, 11.5f, 3, /* row 3 */
    };
    conv_hand(ET_PADDING_SAME, 1, same1, 4);
    conv_hand(ET_PADDING_VALID, 1, (const float[]){23.5f, 8, 26.5f, 8, 35.5f, 8, 38.5f, 8}, 2);
    /* 4 -> 2 with total padding 1, all of it bottom/right: windows centred on
     * pixels (1,1), (1,3), (3,1), (3,3). */
    conv_hand(ET_PADDING_SAME, 2, (const float[]){23.5f, 8, 3.5f, 5, 9.5f, 5, 11.5f, 3}, 2);
}

Test(conv2d, forward_1x1_mixes_channels)
{
    const float x[4] = {1, 2, 3, 4};        /* 1x1x2 pixels, 2 channels */
    const float w[6] = {1, 0, 0, 1, 1, -1}; /* [3 out][1][1][2 in] */
    const float b[3] = {0, 0, 10};
    float y[6];
    et_window win = {.k_h = 1, .k_w = 1, .stride_h = 1, .stride_w = 1};
    et_dims in = {1, 1, 2, 2}, out = {.c = 3};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_VALID, &in, &out, NULL), ET_OK);
    cr_assert_eq(et_conv2d_scratch_size_ref(&win, &in, &out), 0);
    et_conv2d_forward_ref(&win, &in, x, w, b, &out, y, NULL);
    NEAR("y", y, 1e-6, 1, 2, 9, 3, 4, 9);
    et_conv2d_forward_ref(&win, &in, x, w, NULL, &out, y, NULL);
    cr_assert_float_eq(y[2], -1.0f, 1e-6, "NULL bias is no bias");
}

Test(depthwise, forward_multiplier2_by_hand)
{
    /* 3x3 input, channel 0 = 1..9, channel 1 = 10 * channel 0; 2x2 valid
     * windows, multiplier 2: output channel oc reads input channel oc / 2.
     *   oc 0: top-left tap        oc 1: top-right + bottom-left taps, bias 1
     *   oc 2: bottom-right tap    oc 3: top-right + bottom-left taps */
    float x[18], y[16];
    for (int i = 0; i < 9; i++)
        x[2 * i] = (float)(i + 1), x[2 * i + 1] = 10.0f * (i + 1);
    const float w[16] = {1, 0, 0, 0, /* ky 0, kx 0 */
                         0, 1, 0, 1, /* ky 0, kx 1 */
                         0, 1, 0, 1, /* ky 1, kx 0 */
                         0, 0, 1, 0 /* ky 1, kx 1 */};
    const float b[4] = {0, 1, 0, 0};
    et_window win = {.k_h = 2, .k_w = 2, .stride_h = 1, .stride_w = 1};
    et_dims in = {1, 3, 3, 2}, out = {.c = 4};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_VALID, &in, &out, NULL), ET_OK);
    cr_assert_eq(et_depthwise_conv2d_scratch_size_ref(&win, &in, &out), 0);
    et_depthwise_conv2d_forward_ref(&win, &in, x, w, b, &out, y, NULL);
    NEAR("y", y, 1e-5, 1, 7, 50, 60, 2, 9, 60, 80, 4, 13, 80, 120, 5, 15, 90, 140);
}

Test(depthwise, forward_equals_conv2d_with_block_diagonal_weights)
{
    /* Finite differences only prove that backward matches forward; this ties
     * the depthwise forward pass, with same padding and stride 2, to conv2d's,
     * which is checked by hand above. */
    uint32_t s = 9;
    et_window win = {.k_h = 3, .k_w = 3, .stride_h = 2, .stride_w = 2};
    et_dims in = {2, 7, 5, 3}, out = {.c = 6};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_SAME, &in, &out, NULL), ET_OK);
    size_t ny = et_dims_count(&out);
    float *x = frand(et_dims_count(&in), &s, -1, 1), *wd = frand(9 * 6, &s, -1, 1);
    float *b = frand(6, &s, -1, 1), *wc = fbuf(6 * 9 * 3), *yd = fbuf(ny), *yc = fbuf(ny);
    for (int oc = 0; oc < 6; oc++)
        for (int t = 0; t < 9; t++) /* w_conv[oc][tap][oc / 2] = w_dw[tap][oc] */
            wc[((size_t)oc * 9 + t) * 3 + oc / 2] = wd[t * 6 + oc];
    et_depthwise_conv2d_forward_ref(&win, &in, x, wd, b, &out, yd, NULL);
    et_conv2d_forward_ref(&win, &in, x, wc, b, &out, yc, NULL);
    assert_near("y", yd, yc, ny, 1e-5);
}

/* ------------------------------------------------------------------------
 * Conv2d and depthwise: finite-difference gradient checks
 */

typedef struct conv_cfg {
    et_dims in;
    int out_c; /* depthwise: in.c * multiplier */
    int k_h, k_w, stride_h, stride_w;
    et_padding padding;
    bool depthwise;
    uint32_t seed;
} conv_cfg;

typedef struct conv_case {
    const conv_cfg *cfg;
    et_window win;
    et_dims out;
    float *x, *w, *b, *y, *r;
} conv_case;

static double conv_loss(void *ctx)
{
    conv_case *k = ctx;
    if (k->cfg->depthwise)
        et_depthwise_conv2d_forward_ref(&k->win, &k->cfg->in, k->x, k->w, k->b, &k->out, k->y,
                                        NULL);
    else
        et_conv2d_forward_ref(&k->win, &k->cfg->in, k->x, k->w, k->b, &k->out, k->y, NULL);
    return dot(k->y, k->r, et_dims_count(&k->out));
}

static void conv_backward(conv_case *k, float *dx, float *dw, float *db)
{
    if (k->cfg->depthwise)
        et_depthwise_conv2d_backward_ref(&k->win, &k->cfg->in, k->x, k->w, &k->out, k->r, dx, dw,
                                         db, NULL);
    else
        et_conv2d_backward_ref(&k->win, &k->cfg->in, k->x, k->w, &k->out, k->r, dx, dw, db, NULL);
}

static void conv_gradcheck(const conv_cfg *cfg)
{
    conv_case k = {.cfg = cfg, .out = {.c = cfg->out_c}};
    k.win = (et_window){cfg->k_h, cfg->k_w, cfg->stride_h, cfg->stride_w, 0, 0};
    cr_assert_eq(et_window_plan(&k.win, cfg->padding, &cfg->in, &k.out, NULL), ET_OK);
    size_t nx = et_dims_count(&cfg->in), ny = et_dims_count(&k.out);
    size_t nw = (size_t)cfg->k_h * cfg->k_w * cfg->out_c * (cfg->depthwise ? 1 : cfg->in.c);
    uint32_t s = cfg->seed;
    k.x = frand(nx, &s, -1, 1), k.w = frand(nw, &s, -1, 1), k.b = frand(cfg->out_c, &s, -1, 1);
    k.r = frand(ny, &s, -1, 1), k.y = fbuf(ny);
    float *dx = fgarbage(nx), *dw = fgarbage(nw), *db = fgarbage(cfg->out_c);
    conv_backward(&k, dx, dw, db);
    char name[64];
    snprintf(name, sizeof name, "%s %dx%d stride %dx%d %s", cfg->depthwise ? "depthwise" : "conv2d",
             cfg->k_h, cfg->k_w, cfg->stride_h, cfg->stride_w,
             cfg->padding == ET_PADDING_SAME ? "same" : "valid");
    check_grad(name, "dx", k.x, nx, dx, conv_loss, &k);
    check_grad(name, "dw", k.w, nw, dw, conv_loss, &k);
    check_grad(name, "dbias", k.b, cfg->out_c, db, conv_loss, &k);
    /* Skipping dx and dbias must not change dw. */
    float *dw2 = fgarbage(nw);
    conv_backward(&k, NULL, dw2, NULL);
    cr_assert(memcmp(dw, dw2, nw * sizeof *dw) == 0);
}

/* Batch 2 of 7x5 pictures with 3 channels: odd sizes make "same" padding
 * uneven and make stride 2 leave pixels over. */
#define CONV(oc, kh, kw, sh, sw, pad, dw, seed)                                                    \
    {                                                                                              \
        {2, 7, 5, 3}, oc, kh, kw, sh, sw, ET_PADDING_##pad, dw, seed                               \
    }

ParameterizedTestParameters(conv2d, grad)
{
    static conv_cfg cases[] = {
        CONV(5, 3, 3, 1, 1, SAME, false, 1),  CONV(5, 3, 3, 2, 2, SAME, false, 2),
        CONV(5, 3, 3, 1, 1, VALID, false, 3), CONV(5, 3, 3, 2, 2, VALID, false, 4),
        CONV(5, 1, 1, 1, 1, VALID, false, 5), CONV(5, 1, 1, 2, 2, SAME, false, 6),
        CONV(4, 5, 5, 2, 2, SAME, false, 7), /* padding 2 on every side */
        CONV(5, 2, 3, 2, 1, SAME, false, 8), /* padding 0/1 rows, 1/1 columns */
    };
    return cr_make_param_array(conv_cfg, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(conv_cfg *cfg, conv2d, grad)
{
    conv_gradcheck(cfg);
}

ParameterizedTestParameters(depthwise, grad)
{
    static conv_cfg cases[] = {
        CONV(3, 3, 3, 1, 1, SAME, true, 11), /* multiplier 1 */
        CONV(6, 3, 3, 2, 2, SAME, true, 12), /* multiplier 2 */
        CONV(6, 3, 3, 1, 1, VALID, true, 13), CONV(6, 3, 3, 2, 2, VALID, true, 14),
        CONV(9, 3, 2, 1, 2, SAME, true, 15), /* multiplier 3, non-square */
    };
    return cr_make_param_array(conv_cfg, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(conv_cfg *cfg, depthwise, grad)
{
    conv_gradcheck(cfg);
}

/* ------------------------------------------------------------------------
 * Dense
 */

Test(dense, forward_by_hand)
{
    const float x[6] = {1, 2, 3, -1, 0, 2}, w[6] = {1, 0, -1, 2, 1, 0.5f}, b[2] = {0.5f, -1};
    float y[4];
    et_dense_forward_ref(2, 3, 2, x, w, b, y);
    NEAR("y", y, 1e-6, -1.5f, 4.5f, -2.5f, -2);
}

typedef struct dense_case {
    float *x, *w, *b, *y, *r;
} dense_case;

static double dense_loss(void *ctx)
{
    dense_case *k = ctx;
    et_dense_forward_ref(3, 7, 4, k->x, k->w, k->b, k->y);
    return dot(k->y, k->r, 3 * 4);
}

Test(dense, grad)
{
    uint32_t s = 21;
    dense_case k = {frand(21, &s, -1, 1), frand(28, &s, -1, 1), frand(4, &s, -1, 1), fbuf(12),
                    frand(12, &s, -1, 1)};
    float *dx = fgarbage(21), *dw = fgarbage(28), *db = fgarbage(4);
    et_dense_backward_ref(3, 7, 4, k.x, k.w, k.r, dx, dw, db);
    check_grad("dense", "dx", k.x, 21, dx, dense_loss, &k);
    check_grad("dense", "dw", k.w, 28, dw, dense_loss, &k);
    check_grad("dense", "dbias", k.b, 4, db, dense_loss, &k);
}

/* ------------------------------------------------------------------------
 * Batch norm
 */

Test(batchnorm, forward_train_by_hand)
{
    /* Channel 0: 1, 2, 3, 4 (mean 2.5, variance 1.25); channel 1 constant,
     * so it normalizes to beta through 1/sqrt(epsilon). */
    const float x[8] = {1, 10, 2, 10, 3, 10, 4, 10};
    const float gamma[2] = {2, 1}, beta[2] = {1, 0.5f};
    float y[8], mean[2], invstd[2], rmean[2] = {0, 0}, rvar[2] = {1, 1};
    et_batchnorm_params p = {.epsilon = 1e-3f, .momentum = 0.9f};
    et_batchnorm_forward_train_ref(&p, 4, 2, x, gamma, beta, y, mean, invstd, rmean, rvar);
    NEAR("y", y, 1e-5, -1.6822089f, 0.5f, 0.1059304f, 0.5f, 1.8940696f, 0.5f, 3.6822089f, 0.5f);
    NEAR("mean", mean, 1e-6, 2.5f, 10);
    NEAR("invstd", invstd, 1e-4, 0.8940696f, 31.622777f);
    /* running = 0.9 running + 0.1 batch, with the unbiased variance 1.25 * 4/3. */
    NEAR("running mean", rmean, 1e-6, 0.25f, 1.0f);
    NEAR("running var", rvar, 1e-6, 1.0666667f, 0.9f);
}

Test(batchnorm, forward_infer_by_hand)
{
    const float x[4] = {3, 12, -1, 9};
    const float gamma[2] = {2, 1}, beta[2] = {1, 0.5f};
    const float rmean[2] = {1, 10}, rvar[2] = {3.999f, 0.999f}; /* + eps: std 2 and 1 */
    float y[4];
    et_batchnorm_params p = {.epsilon = 1e-3f, .momentum = 0.99f};
    et_batchnorm_forward_infer_ref(&p, 2, 2, x, gamma, beta, rmean, rvar, y);
    NEAR("y", y, 1e-5, 3, 2.5f, -1, -0.5f);
}

/* NHWC 2x3x5x4 seen as rows = 30 by c = 4. */
typedef struct bn_case {
    bool infer;
    et_batchnorm_params p;
    float *x, *gamma, *beta, *y, *r, *mean, *invstd, *rmean, *rvar;
} bn_case;

static double bn_loss(void *ctx)
{
    bn_case *k = ctx;
    if (k->infer)
        et_batchnorm_forward_infer_ref(&k->p, 30, 4, k->x, k->gamma, k->beta, k->rmean, k->rvar,
                                       k->y);
    else
        et_batchnorm_forward_train_ref(&k->p, 30, 4, k->x, k->gamma, k->beta, k->y, k->mean,
                                       k->invstd, NULL, NULL);
    return dot(k->y, k->r, 120);
}

static void bn_gradcheck(bool infer, uint32_t s)
{
    /* Inputs off-centre and spread, as real activations are. */
    bn_case k = {.infer = infer, .p = {.epsilon = 1e-3f, .momentum = 0.9f}};
    k.x = frand(120, &s, 1, 5), k.r = frand(120, &s, -1, 1), k.y = fbuf(120);
    k.gamma = frand(4, &s, 0.5f, 2), k.beta = frand(4, &s, -1, 1);
    k.mean = fbuf(4), k.invstd = fbuf(4);
    k.rmean = frand(4, &s, 2, 4), k.rvar = frand(4, &s, 0.5f, 2);
    float *dx = fgarbage(120), *dg = fgarbage(4), *dbeta = fgarbage(4);
    if (infer) {
        et_batchnorm_backward_infer_ref(&k.p, 30, 4, k.x, k.gamma, k.rmean, k.rvar, k.r, dx, dg,
                                        dbeta);
    } else {
        bn_loss(&k); /* fills mean and invstd */
        et_batchnorm_backward_ref(30, 4, k.x, k.gamma, k.mean, k.invstd, k.r, dx, dg, dbeta);
    }
    const char *name = infer ? "batchnorm infer" : "batchnorm train";
    check_grad(name, "dx", k.x, 120, dx, bn_loss, &k);
    check_grad(name, "dgamma", k.gamma, 4, dg, bn_loss, &k);
    check_grad(name, "dbeta", k.beta, 4, dbeta, bn_loss, &k);
}

Test(batchnorm, grad_train_and_infer_modes)
{
    bn_gradcheck(false, 31);
    bn_gradcheck(true, 32);
}

/* ------------------------------------------------------------------------
 * Activations
 */

Test(activation, forward_and_kinks_by_hand)
{
    const float x[6] = {-1, 0, 0.5f, 3, 6, 7}, dy[6] = {1, 1, 1, 1, 1, 1};
    float y[6], dx[6], z[6];
    et_relu_forward_ref(6, x, y);
    NEAR("relu", y, 0, 0, 0, 0.5f, 3, 6, 7);
    et_relu_backward_ref(6, y, dy, dx);
    NEAR("relu'", dx, 0, 0, 0, 1, 1, 1, 1);
    et_relu6_forward_ref(6, x, y);
    NEAR("relu6", y, 0, 0, 0, 0.5f, 3, 6, 6);
    et_relu6_backward_ref(6, y, dy, dx);
    NEAR("relu6'", dx, 0, 0, 0, 1, 1, 0, 0);
    memcpy(z, x, sizeof z);
    et_relu6_forward_ref(6, z, z);
    assert_near("relu6 in place", z, y, 6, 0);
}

typedef struct act_case {
    bool six;
    float *x, *y, *r;
} act_case;

static double act_loss(void *ctx)
{
    act_case *k = ctx;
    (k->six ? et_relu6_forward_ref : et_relu_forward_ref)(210, k->x, k->y);
    return dot(k->y, k->r, 210);
}

static void act_gradcheck(bool six, uint32_t s)
{
    /* Inputs stay 0.2 away from the kinks at 0 and 6, farther than FD_H. */
    act_case k = {six, fbuf(210), fbuf(210), frand(210, &s, -1, 1)};
    for (size_t i = 0; i < 210; i++) {
        float v;
        do
            v = rng_uniform(&s, 0.2f, 7.8f);
        while (fabsf(v - 6.0f) < 0.2f);
        k.x[i] = (rng_next(&s) & 1) ? v : -v;
    }
    float *dx = fgarbage(210);
    act_loss(&k);
    (six ? et_relu6_backward_ref : et_relu_backward_ref)(210, k.y, k.r, dx);
    check_grad(six ? "relu6" : "relu", "dx", k.x, 210, dx, act_loss, &k);
}

Test(activation, grad_relu_and_relu6)
{
    act_gradcheck(false, 41);
    act_gradcheck(true, 42);
}

/* ------------------------------------------------------------------------
 * Pooling
 */

Test(pool, maxpool_by_hand)
{
    const float x[16] = {1, 5, 2, 0, 3, 4, 8, 7, -1, -2, 6, 6, -3, -4, 6, 9};
    float y[4], dx[16];
    et_window win = {.k_h = 2, .k_w = 2, .stride_h = 2, .stride_w = 2};
    et_dims in = {1, 4, 4, 1}, out = {.c = 1};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_VALID, &in, &out, NULL), ET_OK);
    et_maxpool_forward_ref(&win, &in, x, &out, y);
    NEAR("y", y, 0, 5, 8, -1, 9);
    /* On the tie of 6s and 9 the 9 wins; the gradient goes to each maximum. */
    et_maxpool_backward_ref(&win, &in, x, &out, (const float[]){1, 2, 3, 4}, dx);
    NEAR("dx", dx, 0, 0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 4);
    /* Equal values: only the first (row-major) gets the gradient. */
    const float flat[4] = {5, 5, 5, 5};
    et_dims in1 = {1, 2, 2, 1}, out1 = {1, 1, 1, 1};
    et_maxpool_backward_ref(&win, &in1, flat, &out1, (const float[]){1}, dx);
    NEAR("tie", dx, 0, 1, 0, 0, 0);
}

Test(pool, padding_takes_no_part)
{
    /* All inputs negative: a padded zero would win a max or shrink an average
     * if padding took part. */
    float x[9], y[9];
    for (int i = 0; i < 9; i++)
        x[i] = -(float)(i + 1);
    et_window win = {.k_h = 3, .k_w = 3, .stride_h = 2, .stride_w = 2};
    et_dims in = {1, 3, 3, 1}, out = {.c = 1};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_SAME, &in, &out, NULL), ET_OK);
    cr_assert(out.h == 2 && out.w == 2 && win.pad_top == 1 && win.pad_left == 1);
    et_maxpool_forward_ref(&win, &in, x, &out, y);
    NEAR("max", y, 0, -1, -2, -4, -5);
    win = (et_window){.k_h = 3, .k_w = 3, .stride_h = 1, .stride_w = 1};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_SAME, &in, &out, NULL), ET_OK);
    et_avgpool_forward_ref(&win, &in, x, &out, y);
    /* corner -(1+2+4+5)/4, edge -(1+2+3+4+5+6)/6, centre -45/9 */
    NEAR("avg", y, 1e-6, -3, -3.5f, -4, -4.5f, -5, -5.5f, -6, -6.5f, -7);

    /* Padding 2: every 5x5 window covers its whole 3x3 image, and image 1's
     * windows start two rows before it, where image 0 lies in memory. */
    float x2[18];
    for (int i = 0; i < 9; i++)
        x2[i] = 10.0f + i, x2[9 + i] = 1.0f + i;
    win = (et_window){.k_h = 5, .k_w = 5, .stride_h = 2, .stride_w = 2};
    in = (et_dims){2, 3, 3, 1};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_SAME, &in, &out, NULL), ET_OK);
    cr_assert(out.h == 2 && out.w == 2 && win.pad_top == 2 && win.pad_left == 2);
    float y2[8];
    et_maxpool_forward_ref(&win, &in, x2, &out, y2);
    NEAR("max pad 2", y2, 0, 18, 18, 18, 18, 9, 9, 9, 9);
    et_avgpool_forward_ref(&win, &in, x2, &out, y2);
    NEAR("avg pad 2", y2, 1e-6, 14, 14, 14, 14, 5, 5, 5, 5);
}

Test(pool, global_avgpool_by_hand)
{
    const float x[8] = {1, 10, 2, 20, 3, 30, 6, 0}; /* 1x2x2x2 */
    float y[2], dx[8];
    et_dims in = {1, 2, 2, 2};
    et_global_avgpool_forward_ref(&in, x, y);
    NEAR("y", y, 1e-6, 3, 15);
    et_global_avgpool_backward_ref(&in, (const float[]){4, -8}, dx);
    NEAR("dx", dx, 1e-6, 1, -2, 1, -2, 1, -2, 1, -2);
}

typedef enum { MAX, AVG, GLOBAL } pool_kind;

typedef struct pool_cfg {
    pool_kind kind;
    int k, stride;
    et_padding padding;
    uint32_t seed;
} pool_cfg;

typedef struct pool_case {
    pool_kind kind;
    et_window win;
    et_dims in, out;
    float *x, *y, *r;
} pool_case;

static double pool_loss(void *ctx)
{
    pool_case *k = ctx;
    if (k->kind == MAX)
        et_maxpool_forward_ref(&k->win, &k->in, k->x, &k->out, k->y);
    else if (k->kind == AVG)
        et_avgpool_forward_ref(&k->win, &k->in, k->x, &k->out, k->y);
    else
        et_global_avgpool_forward_ref(&k->in, k->x, k->y);
    return dot(k->y, k->r, et_dims_count(&k->out));
}

ParameterizedTestParameters(pool, grad)
{
    static pool_cfg cases[] = {
        {MAX, 3, 2, ET_PADDING_SAME, 51},  /* overlapping windows, padding 1/1 */
        {MAX, 2, 2, ET_PADDING_VALID, 52}, /* odd sizes: last row and column dropped */
        {MAX, 2, 2, ET_PADDING_SAME, 53},  /* odd sizes: padding 0/1 */
        {MAX, 3, 1, ET_PADDING_SAME, 54},  {AVG, 3, 2, ET_PADDING_SAME, 55},
        {AVG, 2, 2, ET_PADDING_VALID, 56}, {AVG, 2, 2, ET_PADDING_SAME, 57},
        {AVG, 3, 1, ET_PADDING_SAME, 58},  {GLOBAL, 0, 0, ET_PADDING_VALID, 59},
        {MAX, 5, 2, ET_PADDING_SAME, 60}, /* padding 2 on every side */
        {AVG, 5, 2, ET_PADDING_SAME, 61},
    };
    return cr_make_param_array(pool_cfg, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(pool_cfg *cfg, pool, grad)
{
    pool_case k = {.kind = cfg->kind, .in = {2, 7, 5, 3}, .out = {2, 1, 1, 3}};
    k.win = (et_window){cfg->k, cfg->k, cfg->stride, cfg->stride, 0, 0};
    if (cfg->kind != GLOBAL)
        cr_assert_eq(et_window_plan(&k.win, cfg->padding, &k.in, &k.out, NULL), ET_OK);
    size_t nx = et_dims_count(&k.in), ny = et_dims_count(&k.out);
    uint32_t s = cfg->seed;
    /* Distinct values 0.05 apart, shuffled: a perturbation of FD_H cannot change
     * which element is a window's maximum. */
    k.x = fbuf(nx), k.y = fbuf(ny), k.r = frand(ny, &s, -1, 1);
    for (size_t i = 0; i < nx; i++)
        k.x[i] = 0.05f * (float)i - 5.0f;
    for (size_t i = nx - 1; i > 0; i--) {
        size_t j = rng_next(&s) % (i + 1);
        float t = k.x[i];
        k.x[i] = k.x[j], k.x[j] = t;
    }
    float *dx = fgarbage(nx);
    if (cfg->kind == MAX)
        et_maxpool_backward_ref(&k.win, &k.in, k.x, &k.out, k.r, dx);
    else if (cfg->kind == AVG)
        et_avgpool_backward_ref(&k.win, &k.in, &k.out, k.r, dx);
    else
        et_global_avgpool_backward_ref(&k.in, k.r, dx);
    char name[64];
    snprintf(name, sizeof name, "%s pool %dx%d stride %d %s",
             cfg->kind == MAX   ? "max"
             : cfg->kind == AVG ? "avg"
                                : "global avg",
             cfg->k, cfg->k, cfg->stride, cfg->padding == ET_PADDING_SAME ? "same" : "valid");
    check_grad(name, "dx", k.x, nx, dx, pool_loss, &k);
}

/* ------------------------------------------------------------------------
 * Add and dropout
 */

Test(elementwise, add_and_dropout_by_hand)
{
    float a[4] = {1, 2, 3, 4}, y[4], da[4], db[4];
    const float b[4] = {0.5f, -2, 0, 1};
    et_add_forward_ref(4, a, b, y);
    NEAR("add", y, 0, 1.5f, 0, 3, 5);
    et_add_backward_ref(4, b, da, db);
    assert_near("da", da, b, 4, 0);
    assert_near("db", db, b, 4, 0);
    et_add_forward_ref(4, a, b, a);
    NEAR("add in place", a, 0, 1.5f, 0, 3, 5);

    const float x[4] = {1, 2, 3, 4};
    const uint8_t mask[4] = {1, 0, 1, 0};
    et_dropout_forward_ref(4, x, mask, 2.0f, y);
    NEAR("dropout", y, 0, 2, 0, 6, 0);
    et_dropout_backward_ref(4, x, mask, 2.0f, da);
    NEAR("dropout'", da, 0, 2, 0, 6, 0);
}

typedef struct ew_case {
    const uint8_t *mask; /* NULL: add */
    float scale;
    float *a, *b, *y, *r;
} ew_case;

static double ew_loss(void *ctx)
{
    ew_case *k = ctx;
    if (k->mask)
        et_dropout_forward_ref(105, k->a, k->mask, k->scale, k->y);
    else
        et_add_forward_ref(105, k->a, k->b, k->y);
    return dot(k->y, k->r, 105);
}

Test(elementwise, grad_add)
{
    uint32_t s = 61;
    ew_case k = {
        NULL, 1, frand(105, &s, -1, 1), frand(105, &s, -1, 1), fbuf(105), frand(105, &s, -1, 1)};
    float *da = fgarbage(105), *db = fgarbage(105);
    et_add_backward_ref(105, k.r, da, db);
    check_grad("add", "da", k.a, 105, da, ew_loss, &k);
    check_grad("add", "db", k.b, 105, db, ew_loss, &k);
}

Test(elementwise, grad_dropout)
{
    uint32_t s = 62;
    uint8_t mask[105];
    for (size_t i = 0; i < sizeof mask; i++)
        mask[i] = rng_uniform(&s, 0, 1) >= 0.3f; /* rate 0.3 */
    ew_case k = {mask, 1.0f / 0.7f, frand(105, &s, -1, 1), NULL, fbuf(105), frand(105, &s, -1, 1)};
    float *dx = fgarbage(105);
    et_dropout_backward_ref(105, k.r, mask, k.scale, dx);
    check_grad("dropout", "dx", k.a, 105, dx, ew_loss, &k);
    for (size_t i = 0; i < 105; i++)
        if (!mask[i])
            cr_assert_eq(dx[i], 0.0f, "dropped element %zu passes no gradient", i);
}

/* ------------------------------------------------------------------------
 * Softmax cross-entropy
 */

Test(softmax_xent, plain_and_smoothed_by_hand)
{
    /* softmax(0, ln 2, ln 3) = (1/6, 1/3, 1/2) */
    const float z[3] = {0, (float)log(2.0), (float)log(3.0)};
    const int32_t label[1] = {2};
    float p[3], g[3];
    et_softmax_xent_params plain = {0};
    cr_assert_float_eq(et_softmax_xent_forward_ref(&plain, 1, 3, z, label, p), log(2.0), 1e-6);
    NEAR("p", p, 1e-6, 1 / 6.0f, 1 / 3.0f, 0.5f);
    et_softmax_xent_backward_ref(&plain, 1, 3, p, label, g);
    NEAR("dz", g, 1e-6, 1 / 6.0f, 1 / 3.0f, -0.5f);

    /* Smoothing 0.3 over 3 classes: targets (0.1, 0.1, 0.8). */
    et_softmax_xent_params smooth = {.label_smoothing = 0.3f};
    double loss = et_softmax_xent_forward_ref(&smooth, 1, 3, z, label, p);
    cr_assert_float_eq(loss, 0.8435549, 1e-6, "loss %.8f", loss);
    et_softmax_xent_backward_ref(&smooth, 1, 3, p, label, g);
    NEAR("dz smoothed", g, 1e-6, 1 / 6.0f - 0.1f, 1 / 3.0f - 0.1f, -0.3f);
}

Test(softmax_xent, class_weights_by_hand)
{
    /* Sample 0 as above (loss ln 2, class 2, weight 3); sample 1 uniform
     * (loss ln 3, class 0, weight 0.5). Mean over the batch of 2. */
    const float z[6] = {0, (float)log(2.0), (float)log(3.0), 0, 0, 0};
    const int32_t labels[2] = {2, 0};
    const float weights[3] = {0.5f, 1, 3};
    et_softmax_xent_params p = {.class_weights = weights};
    float probs[6], g[6];
    double loss = et_softmax_xent_forward_ref(&p, 2, 3, z, labels, probs);
    cr_assert_float_eq(loss, 1.3143738, 1e-6, "loss %.8f", loss);
    et_softmax_xent_backward_ref(&p, 2, 3, probs, labels, g);
    NEAR("dz", g, 1e-6, 0.25f, 0.5f, -0.75f, -1 / 6.0f, 1 / 12.0f, 1 / 12.0f);
}

Test(softmax_xent, extreme_logits_stay_finite)
{
    const float z[3] = {1000, 0, -1000};
    const int32_t label[1] = {1};
    float p[3];
    et_softmax_xent_params plain = {0};
    cr_assert_float_eq(et_softmax_xent_forward_ref(&plain, 1, 3, z, label, p), 1000.0, 1e-9);
    NEAR("p", p, 0, 1, 0, 0);
}

typedef struct xent_case {
    et_softmax_xent_params p;
    const int32_t *labels;
    float *z, *probs;
} xent_case;

static double xent_loss(void *ctx)
{
    xent_case *k = ctx;
    return et_softmax_xent_forward_ref(&k->p, 5, 4, k->z, k->labels, k->probs);
}

Test(softmax_xent, grad_with_smoothing_and_weights)
{
    uint32_t s = 71;
    const int32_t labels[5] = {0, 3, 1, 3, 2};
    const float weights[4] = {0.5f, 2, 1, 1.5f};
    xent_case k = {{.label_smoothing = 0.1f, .class_weights = weights},
                   labels,
                   frand(20, &s, -3, 3),
                   fbuf(20)};
    float *g = fgarbage(20);
    xent_loss(&k);
    et_softmax_xent_backward_ref(&k.p, 5, 4, k.probs, labels, g);
    check_grad("softmax_xent", "dlogits", k.z, 20, g, xent_loss, &k);
}
