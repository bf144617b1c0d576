/* kernels: the fast training kernels (src/kernels/fast) against their ref/
 * twins on random inputs with odd sizes, and the fast kernels' promise that
 * the number of threads does not change a single bit of their results. */
#include "kernels/fast/fast_internal.h"
#include "kernels/kernels.h"

#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
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

/* Buffers are tracked and released by each suite's fini, so that LeakSanitizer
 * stays quiet when an assertion ends a test early. */
#define MAX_TRACKED 1024
static void *tracked[MAX_TRACKED];
static int n_tracked;

static void *track(void *p)
{
    cr_assert_lt(n_tracked, MAX_TRACKED);
    cr_assert_not_null(p);
    return tracked[n_tracked++] = p;
}

static void free_tracked(void)
{
    while (n_tracked > 0)
        free(tracked[--n_tracked]);
}

static float *fbuf(size_t n)
{
    return track(calloc(n ? n : 1, sizeof(float)));
}

static float *frand(size_t n, uint32_t *s, float lo, float hi)
{
    float *p = fbuf(n);
    for (size_t i = 0; i < n; i++)
        p[i] = rng_uniform(s, lo, hi);
    return p;
}

/* Outputs start as garbage, so a kernel that accumulated into them, or left
 * some unwritten, fails. */
static float *fgarbage(size_t n)
{
    float *p = fbuf(n);
    for (size_t i = 0; i < n; i++)
        p[i] = 1e6f;
    return p;
}

/* Scratch of exactly the size asked for, so that AddressSanitizer catches a
 * kernel that goes past it. */
static void *scratch(size_t bytes)
{
    return track(malloc(bytes ? bytes : 1));
}

/* Relative tolerance: GEMM and the fast kernels sum in float in another order
 * than ref/'s double accumulators. The expected error of a sum of K float terms
 * is about 6e-8 * sqrt(K) times their size; the longest sums here have K = 1280,
 * so 1e-4 leaves a wide margin (the worst error measured over every check is
 * 2.2% of its tolerance), while a wrong index or a missing term gives errors
 * of order 1. An element that cancels to near zero is compared against a
 * tenth of the tensor's largest value rather than its own size. */
#define RTOL 1e-4

static void assert_close(const char *name, const char *what, const float *got, const float *want,
                         size_t n)
{
    double big = 0.0;
    for (size_t i = 0; i < n; i++)
        big = fmax(big, fabs(want[i]));
    size_t i = 0; /* one assertion, on the first bad element: fast under ASan */
    while (i < n && fabs((double)got[i] - want[i]) <= RTOL * (fabs(want[i]) + 0.1 * big))
        i++;
    cr_assert(i == n, "%s %s[%zu]: fast %.8g, ref %.8g", name, what, i, got[i], want[i]);
}

static void assert_same(const char *name, const char *what, const float *got, const float *want,
                        size_t n)
{
    size_t i = 0;
    while (i < n && memcmp(&got[i], &want[i], sizeof *got) == 0)
        i++;
    cr_assert(i == n, "%s %s[%zu]: got %.9g, want exactly %.9g", name, what, i, got[i], want[i]);
}

static float *copy_of(const float *p, size_t n)
{
    float *c = fbuf(n);
    memcpy(c, p, n * sizeof *c);
    return c;
}

TestSuite(fast_conv, .fini = free_tracked);
TestSuite(fast_dense, .fini = free_tracked);
TestSuite(fast_batchnorm, .fini = free_tracked);
TestSuite(fast_pool, .fini = free_tracked);
TestSuite(fast_elementwise, .fini = free_tracked);
TestSuite(fast_threads, .fini = free_tracked);

/* ------------------------------------------------------------------------
 * Conv2d and depthwise
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
    size_t nx, ny, nw;
    float *x, *w, *b, *dy;
    char name[96];
} conv_case;

static void conv_setup(const conv_cfg *cfg, conv_case *k)
{
    *k = (conv_case){.cfg = cfg, .out = {.c = cfg->out_c}};
    k->win = (et_window){cfg->k_h, cfg->k_w, cfg->stride_h, cfg->stride_w, 0, 0};
    cr_assert_eq(et_window_plan(&k->win, cfg->padding, &cfg->in, &k->out, NULL), ET_OK);
    k->nx = et_dims_count(&cfg->in), k->ny = et_dims_count(&k->out);
    k->nw = (size_t)cfg->k_h * cfg->k_w * cfg->out_c * (cfg->depthwise ? 1 : cfg->in.c);
    uint32_t s = cfg->seed;
    k->x = frand(k->nx, &s, -1, 1), k->w = frand(k->nw, &s, -1, 1);
    k->b = frand(cfg->out_c, &s, -1, 1), k->dy = frand(k->ny, &s, -1, 1);
    snprintf(k->name, sizeof k->name, "%s %dx%dx%dx%d->%d %dx%d stride %dx%d %s",
             cfg->depthwise ? "depthwise" : "conv2d", cfg->in.n, cfg->in.h, cfg->in.w, cfg->in.c,
             cfg->out_c, cfg->k_h, cfg->k_w, cfg->stride_h, cfg->stride_w,
             cfg->padding == ET_PADDING_SAME ? "same" : "valid");
}

/* Forward (y) then backward (dx, dw, db; each may be NULL) with one variant. */
static void conv_run(const conv_case *k, bool fast, const float *bias, float *y, float *dx,
                     float *dw, float *db)
{
    const et_dims *in = &k->cfg->in;
    if (k->cfg->depthwise) {
        void *s =
            fast ? scratch(et_depthwise_conv2d_scratch_size_fast(&k->win, in, &k->out)) : NULL;
        if (fast) {
            et_depthwise_conv2d_forward_fast(&k->win, in, k->x, k->w, bias, &k->out, y, s);
            et_depthwise_conv2d_backward_fast(&k->win, in, k->x, k->w, &k->out, k->dy, dx, dw, db,
                                              s);
        } else {
            et_depthwise_conv2d_forward_ref(&k->win, in, k->x, k->w, bias, &k->out, y, s);
            et_depthwise_conv2d_backward_ref(&k->win, in, k->x, k->w, &k->out, k->dy, dx, dw, db,
                                             s);
        }
    } else {
        void *s = fast ? scratch(et_conv2d_scratch_size_fast(&k->win, in, &k->out)) : NULL;
        if (fast) {
            et_conv2d_forward_fast(&k->win, in, k->x, k->w, bias, &k->out, y, s);
            et_conv2d_backward_fast(&k->win, in, k->x, k->w, &k->out, k->dy, dx, dw, db, s);
        } else {
            et_conv2d_forward_ref(&k->win, in, k->x, k->w, bias, &k->out, y, s);
            et_conv2d_backward_ref(&k->win, in, k->x, k->w, &k->out, k->dy, dx, dw, db, s);
        }
    }
}

static void conv_compare(const conv_cfg *cfg)
{
    conv_case k;
    conv_setup(cfg, &k);
    float *y0 = fgarbage(k.ny), *dx0 = fgarbage(k.nx), *dw0 = fgarbage(k.nw);
    float *db0 = fgarbage(cfg->out_c);
    float *y1 = fgarbage(k.ny), *dx1 = fgarbage(k.nx), *dw1 = fgarbage(k.nw);
    float *db1 = fgarbage(cfg->out_c);
    conv_run(&k, false, k.b, y0, dx0, dw0, db0);
    conv_run(&k, true, k.b, y1, dx1, dw1, db1);
    assert_close(k.name, "y", y1, y0, k.ny);
    assert_close(k.name, "dx", dx1, dx0, k.nx);
    assert_close(k.name, "dw", dw1, dw0, k.nw);
    assert_close(k.name, "dbias", db1, db0, cfg->out_c);

    /* No bias; and each gradient alone must equal its value from the full call. */
    float *y2 = fgarbage(k.ny), *g1 = fgarbage(k.nx), *g2 = fgarbage(k.nw);
    float *g3 = fgarbage(cfg->out_c);
    conv_run(&k, false, NULL, y0, NULL, NULL, NULL);
    conv_run(&k, true, NULL, y2, g1, NULL, NULL);
    assert_close(k.name, "y without bias", y2, y0, k.ny);
    assert_same(k.name, "dx alone", g1, dx1, k.nx);
    conv_run(&k, true, NULL, y2, NULL, g2, NULL);
    assert_same(k.name, "dw alone", g2, dw1, k.nw);
    conv_run(&k, true, NULL, y2, NULL, NULL, g3);
    assert_same(k.name, "dbias alone", g3, db1, cfg->out_c);
}

/* Batch 3 of 13x11 pictures: odd sizes make "same" padding uneven and make
 * stride 2 leave pixels over. */
#define CONV(c, oc, kh, kw, sh, sw, pad, dw, seed)                                                 \
    {                                                                                              \
        {3, 13, 11, c}, oc, kh, kw, sh, sw, ET_PADDING_##pad, dw, seed                             \
    }

/* One test per kernel looping over its cases, rather than a parameterized
 * test, because each test is a process and the process start-ups would
 * dominate the time under AddressSanitizer; failures name their case. */
Test(fast_conv, conv2d_matches_ref)
{
    static const conv_cfg cases[] = {
        CONV(5, 8, 3, 3, 1, 1, SAME, false, 1),
        CONV(7, 16, 3, 3, 2, 2, SAME, false, 2),
        CONV(12, 9, 3, 3, 1, 1, VALID, false, 3),
        CONV(6, 10, 3, 3, 2, 2, VALID, false, 4),
        CONV(5, 7, 5, 5, 1, 1, SAME, false, 5),
        CONV(6, 10, 5, 5, 2, 2, VALID, false, 6),
        CONV(40, 24, 1, 1, 1, 1, VALID, false, 7), /* 1x1 stride 1: GEMM on x itself */
        CONV(17, 33, 1, 1, 2, 2, SAME, false, 8),  /* 1x1 stride 2: through im2col */
        CONV(3, 16, 3, 3, 2, 2, SAME, false, 9),   /* a first layer on RGB */
        CONV(9, 11, 2, 3, 2, 1, SAME, false, 10),  /* non-square, uneven padding */
        {{20, 9, 7, 6}, 8, 3, 3, 1, 1, ET_PADDING_SAME, false, 11}, /* 16 groups, some of 2 */
        {{20, 6, 5, 24}, 13, 1, 1, 1, 1, ET_PADDING_SAME, false, 12},
        {{1, 13, 11, 5}, 8, 3, 3, 1, 1, ET_PADDING_SAME, false, 13}, /* batch 1 */
        /* At most 4 input channels: the direct loops; stride 1 also takes dx
         * as a conv of dy (the flip). Output channels in blocks of 32, 16 and
         * 4 and a scalar tail. */
        CONV(1, 32, 3, 3, 1, 1, SAME, false, 14), /* the default conv net's first layer */
        CONV(1, 16, 3, 3, 2, 2, SAME, false, 15), /* MobileNet's on grayscale */
        CONV(2, 40, 3, 3, 1, 1, VALID, false, 16),
        CONV(4, 23, 5, 5, 1, 1, SAME, false, 17),
        CONV(3, 7, 3, 3, 2, 2, VALID, false, 18),
        CONV(1, 3, 2, 3, 1, 2, SAME, false, 19),
        CONV(4, 52, 3, 1, 2, 1, SAME, false, 20),
        {{5, 28, 28, 1}, 32, 3, 3, 1, 1, ET_PADDING_SAME, false, 21},
        {{20, 9, 7, 1}, 8, 3, 3, 1, 1, ET_PADDING_SAME, false, 22}, /* 16 groups, some of 2 */
        /* Weights of at most 8,192 floats: the direct loops too, and dx
         * by the flipped conv's direct loops from 8 input channels on. */
        {{3, 14, 14, 32}, 16, 3, 3, 1, 1, ET_PADDING_SAME, false, 23}, /* the second layer */
        CONV(6, 9, 1, 3, 1, 1, VALID, false, 24),
        CONV(9, 20, 3, 3, 1, 1, SAME, false, 25),
        /* More weights: im2col + GEMM, dx by the flip (stride 1) or col2im. */
        CONV(40, 24, 3, 3, 1, 1, SAME, false, 26),
        CONV(40, 24, 3, 3, 2, 2, VALID, false, 27),
        CONV(33, 50, 2, 3, 1, 1, SAME, false, 28),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_compare(&cases[i]);
}

/* The fused conv2d + ReLU gives the bits of the fast conv2d then the fast ReLU. */
Test(fast_conv, conv2d_relu_is_conv2d_then_relu)
{
    static const conv_cfg cases[] = {
        CONV(1, 32, 3, 3, 1, 1, SAME, false, 31),
        CONV(3, 13, 3, 3, 2, 2, VALID, false, 32),
        CONV(12, 9, 3, 3, 1, 1, SAME, false, 33),
        CONV(40, 24, 1, 1, 1, 1, VALID, false, 34),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conv_case k;
        conv_setup(&cases[i], &k);
        void *s = scratch(et_conv2d_scratch_size_fast(&k.win, &cases[i].in, &k.out));
        float *want = fgarbage(k.ny), *got = fgarbage(k.ny);
        for (int bias = 0; bias < 2; bias++) {
            const float *b = bias ? k.b : NULL;
            et_conv2d_forward_fast(&k.win, &cases[i].in, k.x, k.w, b, &k.out, want, s);
            et_relu_forward_fast(k.ny, want, want);
            et_conv2d_relu_forward_fast(&k.win, &cases[i].in, k.x, k.w, b, &k.out, got, s);
            assert_same(k.name, "relu(conv)", got, want, k.ny);
        }
    }
}

/* The fused passes of conv2d -> ReLU -> max pool give the bits of the fast
 * kernels one after the other: forward, conv2d + ReLU then max pool;
 * backward, max pool + ReLU then conv2d. */
static void conv_relu_pool_compare(const conv_cfg *cfg, int pool_k, int pool_stride,
                                   et_padding pool_pad)
{
    conv_case k;
    conv_setup(cfg, &k);
    const et_dims *in = &cfg->in;
    et_window pw = {pool_k, pool_k, pool_stride, pool_stride, 0, 0};
    et_dims pout = {.c = cfg->out_c};
    cr_assert_eq(et_window_plan(&pw, pool_pad, &k.out, &pout, NULL), ET_OK);
    size_t np = et_dims_count(&pout);
    uint32_t seed = cfg->seed + 1000;
    float *y = fbuf(k.ny), *pdy = frand(np, &seed, -1, 1);
    void *s = scratch(et_conv2d_scratch_size_fast(&k.win, in, &k.out));
    void *sf = scratch(et_conv2d_relu_maxpool_scratch_size_fast(&k.win, in, &k.out));
    et_conv2d_relu_forward_fast(&k.win, in, k.x, k.w, k.b, &k.out, y, s);
    float *py = fgarbage(np), *y2 = fgarbage(k.ny), *py2 = fgarbage(np);
    uint8_t *arg = track(malloc(np));
    et_maxpool_forward_fast(&pw, &k.out, y, &pout, py);
    et_conv2d_relu_maxpool_forward_fast(&k.win, in, k.x, k.w, k.b, &k.out, y2, &pw, &pout, py2,
                                        NULL, s);
    assert_same(k.name, "fused forward y", y2, y, k.ny);
    assert_same(k.name, "fused forward pool", py2, py, np);
    et_conv2d_relu_maxpool_forward_fast(&k.win, in, k.x, k.w, k.b, &k.out, y2, &pw, &pout, py2, arg,
                                        s);
    assert_same(k.name, "fused forward y, argmax kept", y2, y, k.ny);
    assert_same(k.name, "fused forward pool, argmax kept", py2, py, np);
    float *dy = fgarbage(k.ny), *want[3], *got[3];
    size_t lens[3] = {k.nx, k.nw, (size_t)cfg->out_c};
    for (int j = 0; j < 3; j++)
        want[j] = fgarbage(lens[j]), got[j] = fgarbage(lens[j]);
    et_maxpool_relu_backward_fast(&pw, &k.out, y, &pout, pdy, dy);
    et_conv2d_backward_fast(&k.win, in, k.x, k.w, &k.out, dy, want[0], want[1], want[2], s);
    for (int by_arg = 0; by_arg < 2; by_arg++) {
        const char *how[2] = {"fused, from y", "fused, from the argmax"};
        for (int j = 0; j < 3; j++)
            memset(got[j], 0xff, lens[j] * sizeof *got[j]);
        et_conv2d_relu_maxpool_backward_fast(&k.win, in, k.x, k.w, &k.out, by_arg ? NULL : y,
                                             by_arg ? arg : NULL, &pw, &pout, pdy, got[0], got[1],
                                             got[2], sf);
        assert_same(how[by_arg], "dx", got[0], want[0], k.nx);
        assert_same(how[by_arg], "dw", got[1], want[1], k.nw);
        assert_same(how[by_arg], "dbias", got[2], want[2], cfg->out_c);
        float *dw_alone = fgarbage(k.nw);
        et_conv2d_relu_maxpool_backward_fast(&k.win, in, k.x, k.w, &k.out, by_arg ? NULL : y,
                                             by_arg ? arg : NULL, &pw, &pout, pdy, NULL, dw_alone,
                                             NULL, sf);
        assert_same(how[by_arg], "dw alone", dw_alone, want[1], k.nw);
    }
}

Test(fast_conv, conv2d_relu_maxpool_is_the_composition)
{
    static const conv_cfg gray = {{5, 28, 28, 1}, 32, 3, 3, 1, 1, ET_PADDING_SAME, false, 51};
    static const conv_cfg second = {{20, 14, 14, 32}, 16, 3, 3, 1, 1, ET_PADDING_SAME, false, 52};
    static const conv_cfg odd = CONV(12, 9, 3, 3, 1, 1, SAME, false, 53);
    static const conv_cfg wide = CONV(40, 24, 3, 3, 2, 2, SAME, false, 54);
    static const conv_cfg pointwise = {{20, 6, 5, 24}, 13, 1, 1, 1, 1, ET_PADDING_SAME, false, 55};
    conv_relu_pool_compare(&gray, 2, 2, ET_PADDING_SAME);
    conv_relu_pool_compare(&second, 2, 2, ET_PADDING_SAME);
    conv_relu_pool_compare(&odd, 2, 2, ET_PADDING_SAME);   /* 13x11: clipped windows */
    conv_relu_pool_compare(&odd, 3, 2, ET_PADDING_SAME);   /* overlapping windows */
    conv_relu_pool_compare(&wide, 2, 2, ET_PADDING_VALID); /* im2col + GEMM */
    conv_relu_pool_compare(&pointwise, 2, 2, ET_PADDING_VALID);
    conv_relu_pool_compare(&odd, 3, 3, ET_PADDING_VALID); /* rows and columns left over */
    conv_relu_pool_compare(&gray, 3, 3, ET_PADDING_SAME);
}

/* The direct loops' portable build (4-float vectors, a multiply then an add)
 * against ref/, and against their AVX2 + FMA build where the CPU has it: the
 * same sums, rounded once per term instead of twice. */
Test(fast_conv, direct_loops_portable_and_avx2)
{
    static const conv_cfg cases[] = {
        CONV(1, 32, 3, 3, 1, 1, SAME, false, 41),
        CONV(3, 21, 5, 5, 2, 2, SAME, false, 42),
        {{3, 14, 14, 32}, 16, 3, 3, 1, 1, ET_PADDING_SAME, false, 43},
        CONV(12, 13, 3, 2, 1, 1, VALID, false, 44),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        conv_case k;
        conv_setup(&cases[i], &k);
        float *out[2][4];
        for (int avx2 = 0; avx2 < 2; avx2++) {
            et_fast_set_avx2(avx2);
            out[avx2][0] = fgarbage(k.ny), out[avx2][1] = fgarbage(k.nx);
            out[avx2][2] = fgarbage(k.nw), out[avx2][3] = fgarbage(cases[i].out_c);
            conv_run(&k, true, k.b, out[avx2][0], out[avx2][1], out[avx2][2], out[avx2][3]);
        }
        et_fast_set_avx2(1);
        cr_log_info("%s: AVX2 %s", k.name, et_fast_avx2() ? "used" : "not available");
        float *y0 = fgarbage(k.ny), *dx0 = fgarbage(k.nx), *dw0 = fgarbage(k.nw);
        float *db0 = fgarbage(cases[i].out_c);
        conv_run(&k, false, k.b, y0, dx0, dw0, db0);
        assert_close(k.name, "portable y", out[0][0], y0, k.ny);
        assert_close(k.name, "portable dx", out[0][1], dx0, k.nx);
        assert_close(k.name, "portable dw", out[0][2], dw0, k.nw);
        assert_close(k.name, "portable dbias", out[0][3], db0, cases[i].out_c);
        assert_close(k.name, "y, AVX2 or not", out[1][0], out[0][0], k.ny);
        assert_close(k.name, "dx, AVX2 or not", out[1][1], out[0][1], k.nx);
        assert_close(k.name, "dw, AVX2 or not", out[1][2], out[0][2], k.nw);
        assert_close(k.name, "dbias, AVX2 or not", out[1][3], out[0][3], cases[i].out_c);
    }
}

Test(fast_conv, scratch_stays_bounded)
{
    /* Batch 256 of 96x96x32 -> 32, 3x3: weights of 9,216 floats, too many
     * for the direct loops, so im2col + GEMM; one image's im2col (and dy's,
     * for dx) is 2.65 M floats, so 6 groups, not 16. Before the groups, the
     * transposed or flipped weights. */
    et_window win = {.k_h = 3, .k_w = 3, .stride_h = 1, .stride_w = 1};
    et_dims in = {256, 96, 96, 32}, out = {.c = 32};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_SAME, &in, &out, NULL), ET_OK);
    size_t col = (size_t)96 * 96 * 9 * 32, parts = 32 * 9 * 32 + 32, shared = 9 * 32 * 32;
    cr_assert_eq(et_conv2d_scratch_size_fast(&win, &in, &out),
                 (shared + 6 * (col + parts)) * sizeof(float));
    /* A 1x1 stride-1 conv needs no im2col at all. */
    et_window pw = {.k_h = 1, .k_w = 1, .stride_h = 1, .stride_w = 1};
    out.c = 16;
    cr_assert_eq(et_window_plan(&pw, ET_PADDING_SAME, &in, &out, NULL), ET_OK);
    cr_assert_eq(et_conv2d_scratch_size_fast(&pw, &in, &out), 16 * (16 * 32 + 16) * sizeof(float));
    /* The default conv net's second conv, 14x14x32 -> 16: the direct loops,
     * over the image padded to 16x16 (dx: over dy padded, 16x16x16). */
    et_dims second = {256, 14, 14, 32};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_SAME, &second, &out, NULL), ET_OK);
    col = (size_t)16 * 16 * 32, parts = 16 * 9 * 32 + 16, shared = 9 * 32 * 16;
    cr_assert_eq(et_conv2d_scratch_size_fast(&win, &second, &out),
                 (shared + 16 * (col + parts)) * sizeof(float));
    /* One input channel: the padded image (30x30) or, for dx, im2col of dy
     * (28x28 pixels x 9 taps x 16 channels): a flipped conv with one output
     * channel is no case for the direct loops. */
    et_dims gray = {256, 28, 28, 1};
    cr_assert_eq(et_window_plan(&win, ET_PADDING_SAME, &gray, &out, NULL), ET_OK);
    col = (size_t)28 * 28 * 9 * 16, parts = 16 * 9 + 16, shared = 9 * 16;
    cr_assert_eq(et_conv2d_scratch_size_fast(&win, &gray, &out),
                 (shared + 16 * (col + parts)) * sizeof(float));
    et_window s2 = {.k_h = 3, .k_w = 3, .stride_h = 2, .stride_w = 2};
    cr_assert_eq(et_window_plan(&s2, ET_PADDING_SAME, &gray, &out, NULL), ET_OK);
    col = (size_t)14 * 14 * 9; /* col2im's [P][K] beats the padded image, 29x29 */
    cr_assert_eq(et_conv2d_scratch_size_fast(&s2, &gray, &out),
                 (shared + 16 * (col + parts)) * sizeof(float));
    et_window dw = {.k_h = 3, .k_w = 3, .stride_h = 2, .stride_w = 2};
    out.c = 64;
    cr_assert_eq(et_window_plan(&dw, ET_PADDING_SAME, &in, &out, NULL), ET_OK);
    cr_assert_eq(et_depthwise_conv2d_scratch_size_fast(&dw, &in, &out),
                 16 * (9 * 64 + 64) * sizeof(float));
}

/* Images large enough for fewer groups than images (8 im2col buffers of
 * 64x64x576 floats would pass 64 MiB, so 7 groups, one of two images) give
 * what the same kernel gives image by image. ref/ would take seconds here.
 * 16 output channels: weights too many for the direct loops. */
Test(fast_conv, large_images_match_image_by_image)
{
    static const conv_cfg cfg = {{8, 64, 64, 64}, 16, 3, 3, 1, 1, ET_PADDING_SAME, false, 15};
    conv_case k;
    conv_setup(&cfg, &k);
    const size_t nx1 = k.nx / 8, ny1 = k.ny / 8;
    float *y = fgarbage(k.ny), *dw = fgarbage(k.nw), *db = fgarbage(16);
    conv_run(&k, true, k.b, y, NULL, dw, db); /* dx: the same code as with smaller images */
    double *dw_sum = track(calloc(k.nw, sizeof *dw_sum));
    float *y1 = fgarbage(ny1), *dw1 = fgarbage(k.nw), *db1 = fgarbage(16);
    float *want = fbuf(k.nw);
    const conv_cfg one = {{1, 64, 64, 64}, 16, 3, 3, 1, 1, ET_PADDING_SAME, false, 15};
    for (int i = 0; i < 8; i++) {
        conv_case ki = k;
        ki.cfg = &one, ki.out.n = 1, ki.x = k.x + i * nx1, ki.dy = k.dy + i * ny1;
        conv_run(&ki, true, k.b, y1, NULL, dw1, db1);
        assert_same(k.name, "y of one image", y1, y + i * ny1, ny1);
        for (size_t j = 0; j < k.nw; j++)
            dw_sum[j] += dw1[j];
    }
    for (size_t j = 0; j < k.nw; j++)
        want[j] = (float)dw_sum[j];
    assert_close(k.name, "dw, summed image by image", dw, want, k.nw);
}

Test(fast_conv, depthwise_matches_ref)
{
    static const conv_cfg cases[] = {
        CONV(8, 8, 3, 3, 1, 1, SAME, true, 21),
        CONV(16, 16, 3, 3, 2, 2, SAME, true, 22),
        CONV(5, 10, 3, 3, 1, 1, VALID, true, 23), /* multiplier 2 */
        CONV(7, 14, 3, 3, 2, 2, SAME, true, 24),
        CONV(40, 40, 5, 5, 1, 1, SAME, true, 25),
        CONV(13, 13, 5, 5, 2, 2, VALID, true, 26),
        CONV(6, 18, 3, 2, 1, 2, SAME, true, 27),
        CONV(33, 33, 1, 1, 1, 1, VALID, true, 28),
        {{20, 9, 7, 12}, 12, 3, 3, 1, 1, ET_PADDING_SAME, true, 29},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        conv_compare(&cases[i]);
}

/* The multiplier-1 loops (depthwise_conv2d.inc) in their portable build
 * (4-float vectors) and their AVX2 build (8-float vectors) against ref/, and
 * against each other bit for bit (both multiply then add, in the same order):
 * channel counts with whole vector blocks, a block of 1-3 vectors left and
 * channels left past the last vector; stride 2 with odd sizes (uneven "same"
 * padding); images narrower or shorter than the window; a 7x7 window (49
 * taps, the most the loops take) and an 8x8 one (the generic loops); the
 * small late stages of a 32x32 MobileNetV2. */
static const conv_cfg dw_vector_cases[] = {
    CONV(3, 3, 3, 3, 1, 1, SAME, true, 61),
    CONV(20, 20, 3, 3, 2, 2, SAME, true, 62),
    CONV(44, 44, 3, 3, 1, 1, SAME, true, 63),
    CONV(96, 96, 3, 3, 2, 2, SAME, true, 64),
    CONV(13, 13, 3, 3, 1, 2, SAME, true, 65),
    CONV(24, 24, 3, 3, 2, 1, VALID, true, 66),
    {{2, 2, 1, 12}, 12, 3, 3, 1, 1, ET_PADDING_SAME, true, 67},
    {{2, 1, 5, 9}, 9, 3, 3, 2, 2, ET_PADDING_SAME, true, 68},
    {{2, 16, 14, 32}, 32, 3, 3, 1, 1, ET_PADDING_SAME, true, 69},
    {{2, 15, 17, 32}, 32, 3, 3, 2, 2, ET_PADDING_SAME, true, 70},
    CONV(8, 8, 7, 7, 1, 1, SAME, true, 71),
    CONV(8, 8, 8, 8, 1, 1, SAME, true, 72),
    CONV(16, 16, 3, 1, 1, 1, SAME, true, 73),
    {{8, 4, 4, 144}, 144, 3, 3, 2, 2, ET_PADDING_SAME, true, 74},
    {{8, 2, 2, 192}, 192, 3, 3, 1, 1, ET_PADDING_SAME, true, 75},
    {{8, 2, 2, 192}, 192, 3, 3, 2, 2, ET_PADDING_SAME, true, 76},
    {{8, 1, 1, 384}, 384, 3, 3, 1, 1, ET_PADDING_SAME, true, 77},
    {{8, 16, 16, 96}, 96, 3, 3, 2, 2, ET_PADDING_SAME, true, 78},
    {{8, 8, 8, 144}, 144, 3, 3, 1, 1, ET_PADDING_SAME, true, 79},
};
#define DW_VECTOR_CASES (sizeof dw_vector_cases / sizeof dw_vector_cases[0])

/* Two tests, each one process, so that neither passes the buffers a test may
 * track. */
Test(fast_conv, depthwise_vector_loops_match_ref)
{
    for (int avx2 = 0; avx2 < 2; avx2++) {
        et_fast_set_avx2(avx2);
        for (size_t i = 0; i < DW_VECTOR_CASES; i++)
            conv_compare(&dw_vector_cases[i]);
    }
    et_fast_set_avx2(1);
    cr_log_info("depthwise: AVX2 %s", et_fast_avx2() ? "used" : "not available");
}

Test(fast_conv, depthwise_vector_loops_same_bits_avx2_or_not)
{
    const conv_cfg *cases = dw_vector_cases;
    for (size_t i = 0; i < DW_VECTOR_CASES; i++) {
        conv_case k;
        conv_setup(&cases[i], &k);
        float *out[2][4];
        for (int avx2 = 0; avx2 < 2; avx2++) {
            et_fast_set_avx2(avx2);
            out[avx2][0] = fgarbage(k.ny), out[avx2][1] = fgarbage(k.nx);
            out[avx2][2] = fgarbage(k.nw), out[avx2][3] = fgarbage(cases[i].out_c);
            conv_run(&k, true, k.b, out[avx2][0], out[avx2][1], out[avx2][2], out[avx2][3]);
        }
        assert_same(k.name, "y, AVX2 or not", out[1][0], out[0][0], k.ny);
        assert_same(k.name, "dx, AVX2 or not", out[1][1], out[0][1], k.nx);
        assert_same(k.name, "dw, AVX2 or not", out[1][2], out[0][2], k.nw);
        assert_same(k.name, "dbias, AVX2 or not", out[1][3], out[0][3], cases[i].out_c);
    }
    et_fast_set_avx2(1);
}

/* ------------------------------------------------------------------------
 * Dense
 */

static void dense_compare(int batch, int in, int out, uint32_t s)
{
    char name[64];
    snprintf(name, sizeof name, "dense %dx%d->%d", batch, in, out);
    size_t nx = (size_t)batch * in, nw = (size_t)out * in, ny = (size_t)batch * out;
    float *x = frand(nx, &s, -1, 1), *w = frand(nw, &s, -1, 1), *b = frand(out, &s, -1, 1);
    float *dy = frand(ny, &s, -1, 1);
    float *y0 = fgarbage(ny), *dx0 = fgarbage(nx), *dw0 = fgarbage(nw), *db0 = fgarbage(out);
    float *y1 = fgarbage(ny), *dx1 = fgarbage(nx), *dw1 = fgarbage(nw), *db1 = fgarbage(out);
    et_dense_forward_ref(batch, in, out, x, w, b, y0);
    et_dense_forward_fast(batch, in, out, x, w, b, y1);
    assert_close(name, "y", y1, y0, ny);
    et_dense_forward_ref(batch, in, out, x, w, NULL, y0);
    et_dense_forward_fast(batch, in, out, x, w, NULL, y1);
    assert_close(name, "y without bias", y1, y0, ny);
    et_dense_backward_ref(batch, in, out, x, w, dy, dx0, dw0, db0);
    et_dense_backward_fast(batch, in, out, x, w, dy, dx1, dw1, db1);
    assert_close(name, "dx", dx1, dx0, nx);
    assert_close(name, "dw", dw1, dw0, nw);
    assert_close(name, "dbias", db1, db0, out);
    float *dw2 = fgarbage(nw);
    et_dense_backward_fast(batch, in, out, x, w, dy, NULL, dw2, NULL);
    assert_same(name, "dw alone", dw2, dw1, nw);
}

Test(fast_dense, matches_ref)
{
    dense_compare(3, 37, 11, 41);
    dense_compare(1, 5, 1, 42);
    dense_compare(32, 1280, 16, 43); /* a MobileNet head */
    dense_compare(64, 512, 96, 44);  /* large enough to be cut into tiles */
    dense_compare(96, 40, 100, 45);
}

/* ------------------------------------------------------------------------
 * Batch norm
 */

static void bn_compare(size_t rows, int c, uint32_t s)
{
    char name[64];
    snprintf(name, sizeof name, "batchnorm %zux%d", rows, c);
    size_t n = rows * (size_t)c;
    et_batchnorm_params p = {.epsilon = 1e-3f, .momentum = 0.9f};
    /* Off-centre and spread, as real activations are. */
    float *x = frand(n, &s, 1, 5), *dy = frand(n, &s, -1, 1);
    float *gamma = frand(c, &s, 0.5f, 2), *beta = frand(c, &s, -1, 1);
    float *rm0 = frand(c, &s, 2, 4), *rv0 = frand(c, &s, 0.5f, 2);
    float *rm1 = copy_of(rm0, c), *rv1 = copy_of(rv0, c);
    float *y0 = fgarbage(n), *m0 = fgarbage(c), *is0 = fgarbage(c);
    float *y1 = fgarbage(n), *m1 = fgarbage(c), *is1 = fgarbage(c);

    et_batchnorm_forward_train_ref(&p, rows, c, x, gamma, beta, y0, m0, is0, rm0, rv0);
    et_batchnorm_forward_train_fast(&p, rows, c, x, gamma, beta, y1, m1, is1, rm1, rv1);
    assert_close(name, "train y", y1, y0, n);
    assert_close(name, "mean", m1, m0, c);
    assert_close(name, "invstd", is1, is0, c);
    assert_close(name, "running mean", rm1, rm0, c);
    assert_close(name, "running var", rv1, rv0, c);
    float *yin = copy_of(x, n); /* in place, y == x */
    et_batchnorm_forward_train_fast(&p, rows, c, yin, gamma, beta, yin, m1, is1, NULL, NULL);
    assert_same(name, "train y in place", yin, y1, n);

    float *dx0 = fgarbage(n), *dg0 = fgarbage(c), *dbt0 = fgarbage(c);
    float *dx1 = fgarbage(n), *dg1 = fgarbage(c), *dbt1 = fgarbage(c);
    et_batchnorm_backward_ref(rows, c, x, gamma, m0, is0, dy, dx0, dg0, dbt0);
    et_batchnorm_backward_fast(rows, c, x, gamma, m0, is0, dy, dx1, dg1, dbt1);
    assert_close(name, "train dx", dx1, dx0, n);
    assert_close(name, "train dgamma", dg1, dg0, c);
    assert_close(name, "train dbeta", dbt1, dbt0, c);
    float *g = fgarbage(n);
    et_batchnorm_backward_fast(rows, c, x, gamma, m0, is0, dy, g, NULL, NULL);
    assert_same(name, "train dx alone", g, dx1, n);

    et_batchnorm_forward_infer_ref(&p, rows, c, x, gamma, beta, rm0, rv0, y0);
    et_batchnorm_forward_infer_fast(&p, rows, c, x, gamma, beta, rm0, rv0, y1);
    assert_close(name, "infer y", y1, y0, n);
    et_batchnorm_backward_infer_ref(&p, rows, c, x, gamma, rm0, rv0, dy, dx0, dg0, dbt0);
    et_batchnorm_backward_infer_fast(&p, rows, c, x, gamma, rm0, rv0, dy, dx1, dg1, dbt1);
    assert_close(name, "infer dx", dx1, dx0, n);
    assert_close(name, "infer dgamma", dg1, dg0, c);
    assert_close(name, "infer dbeta", dbt1, dbt0, c);
}

/* Batch norm fused with the activation after it: the bits of the fast batch
 * norm then the fast activation, both ways (the backward pass with the mask
 * recomputed from x and read from y), and close to ref/'s composition. */
static void bn_act_compare(size_t rows, int c, et_act act, uint32_t s)
{
    char name[64];
    snprintf(name, sizeof name, "batchnorm+%s %zux%d", act == ET_ACT_RELU ? "relu" : "relu6", rows,
             c);
    size_t n = rows * (size_t)c;
    et_batchnorm_params p = {.epsilon = 1e-3f, .momentum = 0.9f};
    /* Spread so that both clips of ReLU6 are hit: gamma up to 4 puts some
     * outputs above 6. */
    float *x = frand(n, &s, 1, 5), *dy = frand(n, &s, -1, 1);
    float *gamma = frand(c, &s, 0.5f, 4), *beta = frand(c, &s, -1, 3);
    float *rm0 = frand(c, &s, 2, 4), *rv0 = frand(c, &s, 0.5f, 2);
    float *rm1 = copy_of(rm0, c), *rv1 = copy_of(rv0, c), *rm2 = copy_of(rm0, c),
          *rv2 = copy_of(rv0, c);
    void (*act_fwd_ref)(size_t, const float *, float *) =
        act == ET_ACT_RELU ? et_relu_forward_ref : et_relu6_forward_ref;
    void (*act_bwd_ref)(size_t, const float *, const float *, float *) =
        act == ET_ACT_RELU ? et_relu_backward_ref : et_relu6_backward_ref;
    void (*act_fwd)(size_t, const float *, float *) =
        act == ET_ACT_RELU ? et_relu_forward_fast : et_relu6_forward_fast;
    void (*act_bwd)(size_t, const float *, const float *, float *) =
        act == ET_ACT_RELU ? et_relu_backward_fast : et_relu6_backward_fast;

    /* ref/: batch norm, then the activation in place. */
    float *y0 = fgarbage(n), *m0 = fgarbage(c), *is0 = fgarbage(c);
    et_batchnorm_forward_train_ref(&p, rows, c, x, gamma, beta, y0, m0, is0, rm0, rv0);
    act_fwd_ref(n, y0, y0);
    /* fast, unfused. */
    float *y1 = fgarbage(n), *m1 = fgarbage(c), *is1 = fgarbage(c);
    et_batchnorm_forward_train_fast(&p, rows, c, x, gamma, beta, y1, m1, is1, rm1, rv1);
    act_fwd(n, y1, y1);
    /* fast, fused. */
    float *y2 = fgarbage(n), *m2 = fgarbage(c), *is2 = fgarbage(c);
    et_batchnorm_act_forward_train_fast(&p, act, rows, c, x, gamma, beta, y2, m2, is2, rm2, rv2);
    assert_close(name, "train y", y2, y0, n);
    assert_same(name, "train y", y2, y1, n);
    assert_same(name, "mean", m2, m1, c);
    assert_same(name, "invstd", is2, is1, c);
    assert_same(name, "running mean", rm2, rm1, c);
    assert_same(name, "running var", rv2, rv1, c);
    size_t clipped = 0;
    for (size_t i = 0; i < n; i++)
        clipped += y2[i] == 0.0f || y2[i] == 6.0f;
    cr_assert(clipped > 0 && clipped < n, "%s: %zu of %zu outputs clipped", name, clipped, n);

    float *g0 = fgarbage(n), *dx0 = fgarbage(n), *dg0 = fgarbage(c), *db0 = fgarbage(c);
    act_bwd_ref(n, y0, dy, g0);
    et_batchnorm_backward_ref(rows, c, x, gamma, m0, is0, g0, dx0, dg0, db0);
    float *g1 = fgarbage(n), *dx1 = fgarbage(n), *dg1 = fgarbage(c), *db1 = fgarbage(c);
    act_bwd(n, y1, dy, g1);
    et_batchnorm_backward_fast(rows, c, x, gamma, m1, is1, g1, dx1, dg1, db1);
    for (int from_y = 0; from_y < 2; from_y++) {
        char what[32];
        float *dx2 = fgarbage(n), *dg2 = fgarbage(c), *db2 = fgarbage(c);
        et_batchnorm_act_backward_fast(act, rows, c, x, from_y ? y2 : NULL, gamma, beta, m2, is2,
                                       dy, dx2, dg2, db2);
        snprintf(what, sizeof what, "dx%s", from_y ? " (mask from y)" : "");
        assert_close(name, what, dx2, dx0, n);
        assert_same(name, what, dx2, dx1, n);
        snprintf(what, sizeof what, "dgamma%s", from_y ? " (mask from y)" : "");
        assert_close(name, what, dg2, dg0, c);
        assert_same(name, what, dg2, dg1, c);
        snprintf(what, sizeof what, "dbeta%s", from_y ? " (mask from y)" : "");
        assert_close(name, what, db2, db0, c);
        assert_same(name, what, db2, db1, c);
    }
    float *dxa = fgarbage(n);
    et_batchnorm_act_backward_fast(act, rows, c, x, NULL, gamma, beta, m2, is2, dy, dxa, NULL,
                                   NULL);
    assert_same(name, "dx alone", dxa, dx1, n);

    et_batchnorm_forward_infer_ref(&p, rows, c, x, gamma, beta, rm0, rv0, y0);
    act_fwd_ref(n, y0, y0);
    et_batchnorm_forward_infer_fast(&p, rows, c, x, gamma, beta, rm0, rv0, y1);
    act_fwd(n, y1, y1);
    float *yin = copy_of(x, n); /* in place, y == x */
    et_batchnorm_act_forward_infer_fast(&p, act, rows, c, yin, gamma, beta, rm0, rv0, yin);
    assert_close(name, "infer y", yin, y0, n);
    assert_same(name, "infer y", yin, y1, n);
}

Test(fast_batchnorm, fused_with_activation)
{
    bn_act_compare(3 * 13 * 11, 5, ET_ACT_RELU6, 56);
    bn_act_compare(3 * 7 * 5, 150, ET_ACT_RELU6, 57);   /* three channel blocks */
    bn_act_compare(20 * 13 * 11, 24, ET_ACT_RELU6, 58); /* parallel, all chunks */
    bn_act_compare(3 * 13 * 11, 40, ET_ACT_RELU, 59);
    bn_act_compare(3, 16, ET_ACT_RELU6, 60);
}

/* The one-pass statistics on data whose mean is large against its spread,
 * where unshifted sums of squares would cancel. (Only the statistics: y is
 * computed in float from the float mean, as before, which is all float can
 * do here.) */
Test(fast_batchnorm, offset_data)
{
    size_t rows = 4000;
    int c = 3;
    uint32_t s = 61;
    float *x = fbuf(rows * c);
    for (size_t i = 0; i < rows * c; i++)
        x[i] = 1000.0f + rng_uniform(&s, -0.01f, 0.01f);
    float gamma[3] = {1, 1, 1}, beta[3] = {0, 0, 0}, m0[3], is0[3], m1[3], is1[3];
    float *y0 = fbuf(rows * c), *y1 = fbuf(rows * c);
    et_batchnorm_params p = {.epsilon = 1e-7f, .momentum = 0.9f};
    et_batchnorm_forward_train_ref(&p, rows, c, x, gamma, beta, y0, m0, is0, NULL, NULL);
    et_batchnorm_forward_train_fast(&p, rows, c, x, gamma, beta, y1, m1, is1, NULL, NULL);
    assert_close("batchnorm offset", "mean", m1, m0, 3);
    assert_close("batchnorm offset", "invstd", is1, is0, 3);
}

Test(fast_batchnorm, matches_ref)
{
    bn_compare(3 * 13 * 11, 5, 51);
    bn_compare(3 * 13 * 11, 40, 52);
    bn_compare(3 * 7 * 5, 150, 53); /* three channel blocks, the last one partial */
    bn_compare(3, 16, 54);          /* a dense layer's output, fewer rows than chunks */
    bn_compare(1, 7, 55);           /* one row: no spread */
}

/* ------------------------------------------------------------------------
 * Pooling
 */

typedef struct pool_cfg {
    et_dims in;
    int k, stride;
    et_padding padding;
    uint32_t seed;
} pool_cfg;

static void pool_compare(const pool_cfg *cfg);

Test(fast_pool, matches_ref)
{
    static const pool_cfg cases[] = {
        {{3, 13, 11, 5}, 2, 2, ET_PADDING_VALID, 61},
        {{3, 13, 11, 8}, 2, 2, ET_PADDING_SAME, 62},
        {{3, 13, 11, 17}, 3, 2, ET_PADDING_SAME, 63}, /* overlapping windows */
        {{3, 13, 11, 40}, 3, 1, ET_PADDING_SAME, 64},
        {{3, 13, 11, 70}, 5, 2, ET_PADDING_VALID, 65},
        /* Windows that do not overlap: each element of dx written once. */
        {{3, 28, 28, 32}, 2, 2, ET_PADDING_SAME, 66},
        {{3, 13, 11, 16}, 3, 3, ET_PADDING_SAME, 67},
        {{3, 13, 11, 6}, 3, 3, ET_PADDING_VALID, 68},
        {{3, 14, 13, 3}, 2, 2, ET_PADDING_VALID, 69},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        pool_compare(&cases[i]);
}

static void pool_compare(const pool_cfg *cfg)
{
    char name[64];
    snprintf(name, sizeof name, "pool %d stride %d %s, %d channels", cfg->k, cfg->stride,
             cfg->padding == ET_PADDING_SAME ? "same" : "valid", cfg->in.c);
    et_window win = {cfg->k, cfg->k, cfg->stride, cfg->stride, 0, 0};
    et_dims out = {.c = cfg->in.c};
    cr_assert_eq(et_window_plan(&win, cfg->padding, &cfg->in, &out, NULL), ET_OK);
    size_t nx = et_dims_count(&cfg->in), ny = et_dims_count(&out);
    uint32_t s = cfg->seed;
    /* Few distinct values, so that windows hold ties for the maximum. */
    float *x = frand(nx, &s, -2, 2), *dy = frand(ny, &s, -1, 1);
    for (size_t i = 0; i < nx; i++)
        x[i] = roundf(x[i] * 2.0f) / 2.0f;
    float *y0 = fgarbage(ny), *y1 = fgarbage(ny), *dx0 = fgarbage(nx), *dx1 = fgarbage(nx);

    et_maxpool_forward_ref(&win, &cfg->in, x, &out, y0);
    et_maxpool_forward_fast(&win, &cfg->in, x, &out, y1);
    assert_same(name, "max y", y1, y0, ny);
    et_maxpool_backward_ref(&win, &cfg->in, x, &out, dy, dx0);
    et_maxpool_backward_fast(&win, &cfg->in, x, &out, dy, dx1);
    assert_same(name, "max dx", dx1, dx0, nx); /* same routing, same order of additions */

    /* Fused with the backward pass of the ReLU that made x: x >= 0 with
     * zeros, windows whose maximum is 0, and a -0 gradient. */
    float *xr = fbuf(nx), *dyr = copy_of(dy, ny), *dxr = fgarbage(nx);
    et_relu_forward_ref(nx, x, xr);
    dyr[0] = -0.0f;
    et_maxpool_backward_ref(&win, &cfg->in, xr, &out, dyr, dx0);
    et_relu_backward_ref(nx, xr, dx0, dx0);
    et_maxpool_relu_backward_fast(&win, &cfg->in, xr, &out, dyr, dxr);
    assert_same(name, "max+relu dx", dxr, dx0, nx);

    et_avgpool_forward_ref(&win, &cfg->in, x, &out, y0);
    et_avgpool_forward_fast(&win, &cfg->in, x, &out, y1);
    assert_close(name, "avg y", y1, y0, ny);
    et_avgpool_backward_ref(&win, &cfg->in, &out, dy, dx0);
    et_avgpool_backward_fast(&win, &cfg->in, &out, dy, dx1);
    assert_close(name, "avg dx", dx1, dx0, nx);

    size_t ng = (size_t)cfg->in.n * cfg->in.c;
    float *g0 = fgarbage(ng), *g1 = fgarbage(ng);
    et_global_avgpool_forward_ref(&cfg->in, x, g0);
    et_global_avgpool_forward_fast(&cfg->in, x, g1);
    assert_same(name, "global avg y", g1, g0, ng); /* the same double sums */
    et_global_avgpool_backward_ref(&cfg->in, dy, dx0);
    et_global_avgpool_backward_fast(&cfg->in, dy, dx1);
    assert_close(name, "global avg dx", dx1, dx0, nx);
}

/* ------------------------------------------------------------------------
 * Element-wise: exact, and in place
 */

Test(fast_elementwise, exact_and_in_place)
{
    const size_t n = 100003; /* above the threshold for threads, and odd */
    uint32_t s = 71;
    float *x = frand(n, &s, -2, 8), *b = frand(n, &s, -1, 1), *dy = frand(n, &s, -1, 1);
    x[0] = 0.0f, x[1] = 6.0f, x[2] = -0.0f, x[3] = NAN; /* kinks and a NaN */
    uint8_t *mask = track(malloc(n));
    for (size_t i = 0; i < n; i++)
        mask[i] = (uint8_t)(rng_next(&s) % 3 != 0);
    float *y0 = fgarbage(n), *y1 = fgarbage(n), *d0 = fgarbage(n), *d1 = fgarbage(n);
    float *io = fbuf(n);

#define EXACT_UNARY(fwd_ref, fwd_fast, bwd_ref, bwd_fast, what)                                    \
    do {                                                                                           \
        fwd_ref(n, x, y0);                                                                         \
        fwd_fast(n, x, y1);                                                                        \
        assert_same(what, "y", y1, y0, n);                                                         \
        memcpy(io, x, n * sizeof *io);                                                             \
        fwd_fast(n, io, io);                                                                       \
        assert_same(what, "y in place", io, y0, n);                                                \
        bwd_ref(n, y0, dy, d0);                                                                    \
        bwd_fast(n, y0, dy, d1);                                                                   \
        assert_same(what, "dx", d1, d0, n);                                                        \
        memcpy(io, dy, n * sizeof *io);                                                            \
        bwd_fast(n, y0, io, io);                                                                   \
        assert_same(what, "dx in place", io, d0, n);                                               \
    } while (0)

    EXACT_UNARY(et_relu_forward_ref, et_relu_forward_fast, et_relu_backward_ref,
                et_relu_backward_fast, "relu");
    EXACT_UNARY(et_relu6_forward_ref, et_relu6_forward_fast, et_relu6_backward_ref,
                et_relu6_backward_fast, "relu6");

    et_add_forward_ref(n, x, b, y0);
    et_add_forward_fast(n, x, b, y1);
    assert_same("add", "y", y1, y0, n);
    memcpy(io, b, n * sizeof *io);
    et_add_forward_fast(n, x, io, io);
    assert_same("add", "y in place of b", io, y0, n);
    et_add_backward_fast(n, dy, d1, y1);
    assert_same("add", "da", d1, dy, n);
    assert_same("add", "db", y1, dy, n);
    memcpy(io, dy, n * sizeof *io);
    et_add_backward_fast(n, io, io, NULL);
    assert_same("add", "da in place", io, dy, n);

    et_dropout_forward_ref(n, x, mask, 1.5f, y0);
    et_dropout_forward_fast(n, x, mask, 1.5f, y1);
    assert_same("dropout", "y", y1, y0, n);
    memcpy(io, x, n * sizeof *io);
    et_dropout_forward_fast(n, io, mask, 1.5f, io);
    assert_same("dropout", "y in place", io, y0, n);
    et_dropout_backward_ref(n, dy, mask, 1.5f, d0);
    et_dropout_backward_fast(n, dy, mask, 1.5f, d1);
    assert_same("dropout", "dx", d1, d0, n);
}

/* ------------------------------------------------------------------------
 * Thread count: 1, 2 and 3 threads give the same bits.
 *
 * The shapes are large enough for every parallel region to go parallel (more
 * than ET_FAST_PAR_MIN elements, more than one group and GEMM tile). Before
 * each run OpenBLAS is asked for 2 threads: the GEMM kernels must set it back
 * to one, since the result of a multi-threaded sgemm called from OpenMP
 * threads is not theirs to control.
 */

#define THREAD_RUNS 3

typedef void (*kernel_run)(void *ctx, float **outs);

static void same_bits_for_threads(const char *name, bool gemm, kernel_run run, void *ctx,
                                  const size_t *lens, int nouts)
{
    float *outs[THREAD_RUNS][8];
    cr_assert_leq(nouts, 8);
    int keep = omp_get_max_threads();
    for (int t = 0; t < THREAD_RUNS; t++) {
        for (int o = 0; o < nouts; o++)
            outs[t][o] = fgarbage(lens[o]);
        omp_set_num_threads(t + 1);
        openblas_set_num_threads(2);
        run(ctx, outs[t]);
        if (gemm)
            cr_assert_eq(openblas_get_num_threads(), 1, "%s left OpenBLAS multi-threaded", name);
    }
    omp_set_num_threads(keep);
    for (int t = 1; t < THREAD_RUNS; t++)
        for (int o = 0; o < nouts; o++) {
            char what[48];
            snprintf(what, sizeof what, "output %d with %d threads", o, t + 1);
            assert_same(name, what, outs[t][o], outs[0][o], lens[o]);
        }
}

static void conv_threads_run(void *ctx, float **o)
{
    conv_run(ctx, true, ((conv_case *)ctx)->b, o[0], o[1], o[2], o[3]);
}

Test(fast_threads, conv2d_and_depthwise)
{
    static const conv_cfg cfgs[] = {
        {{20, 16, 15, 8}, 16, 3, 3, 1, 1, ET_PADDING_SAME, false, 81},   /* direct */
        {{20, 16, 15, 1}, 32, 3, 3, 1, 1, ET_PADDING_SAME, false, 85},   /* direct, gray */
        {{20, 16, 15, 40}, 24, 3, 3, 1, 1, ET_PADDING_SAME, false, 86},  /* im2col + GEMM */
        {{20, 16, 15, 32}, 32, 1, 1, 1, 1, ET_PADDING_VALID, false, 82}, /* 4 GEMM tiles */
        {{20, 24, 23, 16}, 16, 3, 3, 2, 2, ET_PADDING_SAME, true, 83},
        {{20, 16, 15, 8}, 16, 3, 3, 1, 1, ET_PADDING_SAME, true, 84},
        {{20, 13, 11, 20}, 20, 3, 3, 2, 2, ET_PADDING_SAME, true, 87}, /* channels left over */
        {{20, 12, 10, 44}, 44, 3, 3, 1, 1, ET_PADDING_SAME, true, 88},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        conv_case k;
        conv_setup(&cfgs[i], &k);
        size_t lens[4] = {k.ny, k.nx, k.nw, (size_t)cfgs[i].out_c};
        same_bits_for_threads(k.name, !cfgs[i].depthwise, conv_threads_run, &k, lens, 4);
    }
}

typedef struct dense_ctx {
    int batch, in, out;
    float *x, *w, *b, *dy;
} dense_ctx;

static void dense_threads_run(void *ctx, float **o)
{
    dense_ctx *d = ctx;
    et_dense_forward_fast(d->batch, d->in, d->out, d->x, d->w, d->b, o[0]);
    et_dense_backward_fast(d->batch, d->in, d->out, d->x, d->w, d->dy, o[1], o[2], o[3]);
}

Test(fast_threads, dense)
{
    uint32_t s = 91;
    dense_ctx d = {.batch = 64, .in = 512, .out = 96};
    d.x = frand((size_t)d.batch * d.in, &s, -1, 1), d.w = frand((size_t)d.out * d.in, &s, -1, 1);
    d.b = frand(d.out, &s, -1, 1), d.dy = frand((size_t)d.batch * d.out, &s, -1, 1);
    size_t lens[4] = {(size_t)d.batch * d.out, (size_t)d.batch * d.in, (size_t)d.out * d.in,
                      (size_t)d.out};
    same_bits_for_threads("dense 64x512->96", true, dense_threads_run, &d, lens, 4);
}

typedef struct bn_ctx {
    size_t rows;
    int c;
    float *x, *dy, *gamma, *beta, *rm, *rv;
} bn_ctx;

static void bn_threads_run(void *ctx, float **o)
{
    bn_ctx *b = ctx;
    et_batchnorm_params p = {.epsilon = 1e-3f, .momentum = 0.9f};
    float *rm = o[3], *rv = o[4];
    memcpy(rm, b->rm, b->c * sizeof *rm);
    memcpy(rv, b->rv, b->c * sizeof *rv);
    et_batchnorm_forward_train_fast(&p, b->rows, b->c, b->x, b->gamma, b->beta, o[0], o[1], o[2],
                                    rm, rv);
    et_batchnorm_backward_fast(b->rows, b->c, b->x, b->gamma, o[1], o[2], b->dy, o[5], o[6], o[7]);
}

static void bn_act_threads_run(void *ctx, float **o)
{
    bn_ctx *b = ctx;
    et_batchnorm_params p = {.epsilon = 1e-3f, .momentum = 0.9f};
    float *rm = o[3], *rv = o[4];
    memcpy(rm, b->rm, b->c * sizeof *rm);
    memcpy(rv, b->rv, b->c * sizeof *rv);
    et_batchnorm_act_forward_train_fast(&p, ET_ACT_RELU6, b->rows, b->c, b->x, b->gamma, b->beta,
                                        o[0], o[1], o[2], rm, rv);
    et_batchnorm_act_backward_fast(ET_ACT_RELU6, b->rows, b->c, b->x, NULL, b->gamma, b->beta, o[1],
                                   o[2], b->dy, o[5], o[6], o[7]);
}

static void bn_infer_threads_run(void *ctx, float **o)
{
    bn_ctx *b = ctx;
    et_batchnorm_params p = {.epsilon = 1e-3f, .momentum = 0.9f};
    et_batchnorm_forward_infer_fast(&p, b->rows, b->c, b->x, b->gamma, b->beta, b->rm, b->rv, o[0]);
    et_batchnorm_backward_infer_fast(&p, b->rows, b->c, b->x, b->gamma, b->rm, b->rv, b->dy, o[1],
                                     o[2], o[3]);
}

Test(fast_threads, batchnorm)
{
    uint32_t s = 92;
    bn_ctx b = {.rows = 20 * 13 * 11, .c = 80}; /* two channel blocks */
    size_t n = b.rows * b.c, c = (size_t)b.c;
    b.x = frand(n, &s, 1, 5), b.dy = frand(n, &s, -1, 1);
    b.gamma = frand(c, &s, 0.5f, 2), b.beta = frand(c, &s, -1, 1);
    b.rm = frand(c, &s, 2, 4), b.rv = frand(c, &s, 0.5f, 2);
    size_t lens[8] = {n, c, c, c, c, n, c, c}, infer_lens[4] = {n, n, c, c};
    same_bits_for_threads("batchnorm train", false, bn_threads_run, &b, lens, 8);
    same_bits_for_threads("batchnorm+relu6 train", false, bn_act_threads_run, &b, lens, 8);
    same_bits_for_threads("batchnorm infer", false, bn_infer_threads_run, &b, infer_lens, 4);
}

typedef struct pool_ctx {
    et_window win;
    et_dims in, out;
    float *x, *dy, *gdy;
} pool_ctx;

static void pool_threads_run(void *ctx, float **o)
{
    pool_ctx *p = ctx;
    et_maxpool_forward_fast(&p->win, &p->in, p->x, &p->out, o[0]);
    et_maxpool_backward_fast(&p->win, &p->in, p->x, &p->out, p->dy, o[1]);
    et_avgpool_forward_fast(&p->win, &p->in, p->x, &p->out, o[2]);
    et_avgpool_backward_fast(&p->win, &p->in, &p->out, p->dy, o[3]);
    et_global_avgpool_forward_fast(&p->in, p->x, o[4]);
    et_global_avgpool_backward_fast(&p->in, p->gdy, o[5]);
}

Test(fast_threads, pooling)
{
    uint32_t s = 93;
    pool_ctx p = {.win = {3, 3, 2, 2, 0, 0}, .in = {20, 24, 23, 16}, .out = {.c = 16}};
    cr_assert_eq(et_window_plan(&p.win, ET_PADDING_SAME, &p.in, &p.out, NULL), ET_OK);
    size_t nx = et_dims_count(&p.in), ny = et_dims_count(&p.out), ng = 20 * 16;
    p.x = frand(nx, &s, -1, 1), p.dy = frand(ny, &s, -1, 1), p.gdy = frand(ng, &s, -1, 1);
    size_t lens[6] = {ny, nx, ny, nx, ng, nx};
    same_bits_for_threads("pooling", false, pool_threads_run, &p, lens, 6);
}
