/* Fast depthwise conv2d, NHWC input, weights [k_h][k_w][in_c * multiplier].
 *
 * Every loop that does the arithmetic runs over contiguous channels (NHWC puts
 * them last, and the weights of one tap are a channel vector too), so the
 * compiler vectorises it. Multiplier 1, the MobileNet case, gets loops where
 * x, w and y share the channel index; other multipliers run a nested
 * [ic][m] loop.
 *
 * Forward and dx are gathers, parallel over output or input rows: each
 * element is one sum over the taps in (ky, kx) order. dw and dbias sum over
 * the batch, so the batch is cut into et_fast_groups(n) groups fixed by n,
 * each group sums into its own slice of the scratch memory, and the slices
 * are added in group order: the result does not depend on the thread count.
 *
 * Multiplier 1 with at most DW_MAX_TAPS taps (every MobileNet depthwise) runs
 * the loops of depthwise_conv2d.inc instead, compiled for 4-float vectors
 * (any target) and, on x86-64, for 8-float AVX2 vectors (used when
 * et_fast_avx2() says so). Forward and dx list each pixel's taps that fall
 * inside the image (once per row for the pixels whose window lies inside the
 * width), then sum them over up to four vectors of channels held in
 * registers: one store per output instead of one read-modify-write per tap,
 * and no bounds checks or padded copy. A 3x3 dw keeps the nine sums of a
 * vector of channels in registers over a whole output row, the columns whose
 * windows lie inside the image without bounds checks. Both builds sum the same
 * terms in the same order as the generic loops, a multiply then an add: the
 * AVX2 build is not given FMA on purpose, so the bits do not depend on the
 * CPU either. With fused multiply-adds the kernels ran no faster (they are
 * bound by memory traffic), and their rounding, amplified through the batch
 * norms of a 32x32 MobileNetV2 at batch 8, pushed a projection's weight
 * gradient past tests/test_net_grad.c's ref-vs-fast tolerance. */
#include "kernels/fast/fast_internal.h"

#include <string.h>

/* Most taps (k_h * k_w) the multiplier-1 loops take; larger windows run the
 * generic loops. */
#define DW_MAX_TAPS 49
#define DW_INLINE inline __attribute__((always_inline))

typedef float dw_f4 __attribute__((vector_size(16)));
#define DW_VEC dw_f4
#define DW_LANES 4
#define DW_SPLAT(a) ((dw_f4){a, a, a, a})
#define DW_MADD(c, a, b) ((c) + (a) * (b))
#define DW_FN(name) dw_##name##_f4
#define DW_ATTR
#include "kernels/fast/depthwise_conv2d.inc"
#undef DW_VEC
#undef DW_LANES
#undef DW_SPLAT
#undef DW_MADD
#undef DW_FN
#undef DW_ATTR

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DW_HAVE_AVX2 1
typedef float dw_f8 __attribute__((vector_size(32)));
#define DW_VEC dw_f8
#define DW_LANES 8
#define DW_SPLAT(a) ((dw_f8){a, a, a, a, a, a, a, a})
#define DW_MADD(c, a, b) ((c) + (a) * (b))
#define DW_FN(name) dw_##name##_avx2
#define DW_ATTR __attribute__((target("avx2")))
#include "kernels/fast/depthwise_conv2d.inc"
#undef DW_VEC
#undef DW_LANES
#undef DW_SPLAT
#undef DW_MADD
#undef DW_FN
#undef DW_ATTR
#define DW_AVX2_ON() et_fast_avx2()
#else
#define DW_AVX2_ON() 0
#endif

/* Whether the multiplier-1 loops (depthwise_conv2d.inc) take this shape. */
static int dw_vector_loops(const et_window *win, const et_dims *in, const et_dims *out)
{
    return out->c == in->c && win->k_h * win->k_w <= DW_MAX_TAPS;
}

size_t et_depthwise_conv2d_scratch_size_fast(const et_window *win, const et_dims *in,
                                             const et_dims *out)
{
    size_t per_group = (size_t)win->k_h * win->k_w * out->c + (size_t)out->c;
    return (size_t)et_fast_groups(in->n) * per_group * sizeof(float);
}

/* acc[oc] += a[oc / mult] * b[oc] for oc in [0, ic * mult). */
static inline void madd(int ic, int mult, float *restrict acc, const float *restrict a,
                        const float *restrict b)
{
    if (mult == 1) {
#pragma omp simd
        for (int c = 0; c < ic; c++)
            acc[c] += a[c] * b[c];
        return;
    }
    for (int c = 0; c < ic; c++)
        for (int m = 0; m < mult; m++)
            acc[c * mult + m] += a[c] * b[c * mult + m];
}

void et_depthwise_conv2d_forward_fast(const et_window *win, const et_dims *in, const float *x,
                                      const float *w, const float *bias, const et_dims *out,
                                      float *y, void *scratch)
{
    (void)scratch;
    const int ic = in->c, oc = out->c, mult = out->c / in->c;
    const long rows = (long)out->n * out->h;
    const int vec = dw_vector_loops(win, in, out), avx2 = vec && DW_AVX2_ON();
#pragma omp parallel for schedule(dynamic, 4) if (et_dims_count(out) > ET_FAST_PAR_MIN)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / out->h), oy = (int)(r % out->h);
#ifdef DW_HAVE_AVX2
        if (avx2) {
            dw_forward_row_avx2(win, in, x, w, bias, out, n, oy, y);
            continue;
        }
#endif
        if (vec) {
            dw_forward_row_f4(win, in, x, w, bias, out, n, oy, y);
            continue;
        }
        for (int ox = 0; ox < out->w; ox++) {
            float *yp = y + et_dims_index(out, n, oy, ox, 0);
            if (bias)
                memcpy(yp, bias, (size_t)oc * sizeof *yp);
            else
                memset(yp, 0, (size_t)oc * sizeof *yp);
            for (int ky = 0; ky < win->k_h; ky++) {
                int iy = oy * win->stride_h - win->pad_top + ky;
                if (iy < 0 || iy >= in->h)
                    continue;
                for (int kx = 0; kx < win->k_w; kx++) {
                    int ix = ox * win->stride_w - win->pad_left + kx;
                    if (ix < 0 || ix >= in->w)
                        continue;
                    madd(ic, mult, yp, x + et_dims_index(in, n, iy, ix, 0),
                         w + ((size_t)ky * win->k_w + kx) * oc);
                }
            }
        }
    }
}

/* dx[n][iy][ix][ic] = sum over the taps that some output pixel places here and
 * over m of dy[n][oy][ox][ic*mult + m] * w[ky][kx][ic*mult + m]. */
static void input_grad(const et_window *win, const et_dims *in, const float *w, const et_dims *out,
                       const float *dy, float *dx)
{
    const int ic = in->c, oc = out->c, mult = out->c / in->c;
    const long rows = (long)in->n * in->h;
    const int vec = dw_vector_loops(win, in, out), avx2 = vec && DW_AVX2_ON();
#pragma omp parallel for schedule(dynamic, 4) if (et_dims_count(in) > ET_FAST_PAR_MIN)
    for (long r = 0; r < rows; r++) {
        const int n = (int)(r / in->h), iy = (int)(r % in->h);
#ifdef DW_HAVE_AVX2
        if (avx2) {
            dw_input_grad_row_avx2(win, in, w, out, dy, n, iy, dx);
            continue;
        }
#endif
        if (vec) {
            dw_input_grad_row_f4(win, in, w, out, dy, n, iy, dx);
            continue;
        }
        for (int ix = 0; ix < in->w; ix++) {
            float *restrict d = dx + et_dims_index(in, n, iy, ix, 0);
            memset(d, 0, (size_t)ic * sizeof *d);
            for (int ky = 0; ky < win->k_h; ky++) {
                int oy = et_fast_tap_output(iy, ky, win->pad_top, win->stride_h, out->h);
                if (oy < 0)
                    continue;
                for (int kx = 0; kx < win->k_w; kx++) {
                    int ox = et_fast_tap_output(ix, kx, win->pad_left, win->stride_w, out->w);
                    if (ox < 0)
                        continue;
                    const float *restrict g = dy + et_dims_index(out, n, oy, ox, 0);
                    const float *restrict wt = w + ((size_t)ky * win->k_w + kx) * oc;
                    if (mult == 1) {
#pragma omp simd
                        for (int c = 0; c < ic; c++)
                            d[c] += g[c] * wt[c];
                    } else {
                        for (int c = 0; c < ic; c++)
                            for (int m = 0; m < mult; m++)
                                d[c] += g[c * mult + m] * wt[c * mult + m];
                    }
                }
            }
        }
    }
}

/* One group's share of dw (and dbias): images i0..i1, summed in order into
 * dwp[k_h][k_w][oc] and dbp[oc]. */
static void group_weight_grad(const et_window *win, const et_dims *in, const float *x,
                              const et_dims *out, const float *dy, size_t i0, size_t i1, float *dwp,
                              float *dbp)
{
    const int ic = in->c, oc = out->c, mult = out->c / in->c;
    if (dwp) {
        memset(dwp, 0, (size_t)win->k_h * win->k_w * oc * sizeof *dwp);
        if (mult == 1 && win->k_h == 3 && win->k_w == 3) {
            const int avx2 = DW_AVX2_ON();
            for (size_t i = i0; i < i1; i++)
                for (int oy = 0; oy < out->h; oy++) {
#ifdef DW_HAVE_AVX2
                    if (avx2) {
                        dw_weight_grad_row3_avx2(win, in, x, out, dy, (int)i, oy, dwp);
                        continue;
                    }
#endif
                    (void)avx2;
                    dw_weight_grad_row3_f4(win, in, x, out, dy, (int)i, oy, dwp);
                }
        } else {
            for (size_t i = i0; i < i1; i++)
                for (int oy = 0; oy < out->h; oy++)
                    for (int ox = 0; ox < out->w; ox++) {
                        const float *g = dy + et_dims_index(out, (int)i, oy, ox, 0);
                        for (int ky = 0; ky < win->k_h; ky++) {
                            int iy = oy * win->stride_h - win->pad_top + ky;
                            if (iy < 0 || iy >= in->h)
                                continue;
                            for (int kx = 0; kx < win->k_w; kx++) {
                                int ix = ox * win->stride_w - win->pad_left + kx;
                                if (ix < 0 || ix >= in->w)
                                    continue;
                                madd(ic, mult, dwp + ((size_t)ky * win->k_w + kx) * oc,
                                     x + et_dims_index(in, (int)i, iy, ix, 0), g);
                            }
                        }
                    }
        }
    }
    if (dbp) {
        size_t pixels = (size_t)out->h * out->w;
        et_fast_colsum(i0 * pixels, i1 * pixels, oc, dy, dbp);
    }
}

void et_depthwise_conv2d_backward_fast(const et_window *win, const et_dims *in, const float *x,
                                       const float *w, const et_dims *out, const float *dy,
                                       float *dx, float *dw, float *dbias, void *scratch)
{
    if (dx)
        input_grad(win, in, w, out, dy, dx);
    if (!dw && !dbias)
        return;
    const int groups = et_fast_groups(in->n);
    const size_t dw_len = (size_t)win->k_h * win->k_w * out->c;
    float *dw_parts = scratch, *db_parts = dw_parts + (size_t)groups * dw_len;
#pragma omp parallel for schedule(dynamic, 1) if (groups > 1)
    for (int g = 0; g < groups; g++)
        group_weight_grad(win, in, x, out, dy, et_fast_split(in->n, groups, g),
                          et_fast_split(in->n, groups, g + 1), dw ? dw_parts + g * dw_len : NULL,
                          dbias ? db_parts + (size_t)g * out->c : NULL);
    if (dw)
        et_fast_sum_parts(groups, dw_len, dw_len, dw_parts, dw);
    if (dbias)
        et_fast_sum_parts(groups, out->c, out->c, db_parts, dbias);
}
