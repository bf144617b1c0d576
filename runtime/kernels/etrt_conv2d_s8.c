/* Conv2d, int8 (TFLite's reference_integer_ops::ConvPerChannel, bit for bit).
 *
 * The accumulator is an exact integer sum, so the order of its terms does not
 * change the result and the loops can be arranged for speed. Two paths, by
 * k = k_h * k_w * in_c, the length of one output value's dot product:
 *
 * - k > ETRT_CONV_SMALL_K (most layers): for each output pixel, the input
 *   patch under the window is gathered once into scratch as int16:
 *   x + input_offset, in [-255, 255], and 0 where the window hangs over the
 *   border, which is what a padded zero point contributes. Output channels
 *   then take it four at a time: four dot products with the channels'
 *   contiguous [k_h][k_w][in_c] weights in one loop, so each patch value is
 *   loaded once for four channels (the compiler vectorises it, int16 x int8
 *   -> int32). A 1x1 conv takes this path too: its "gather" is one widening
 *   copy of in_c values.
 * - k <= ETRT_CONV_SMALL_K (a first layer on 1 or 3 channels): a dot product
 *   of 9 or 27 terms is too short to vectorise, and the requantization of
 *   every output would cost more than its products. So up to
 *   ETRT_CONV_PIXELS output pixels of a row whose windows lie inside the
 *   input left to right are done together, straight from the input: for
 *   each output channel, each tap adds weight x one vector of pixels; their
 *   requantization shares one multiplier and shift. Border pixels take the
 *   patch path.
 *
 * Scratch: k int16 (the patch), the same on both paths; the pixel path keeps
 * ETRT_CONV_PIXELS int32 on the stack.
 */
#include "etrt_kernels.h"
#include "etrt_requant.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ETRT_CONV_SMALL_K 32 /* dot products up to this length: the pixel path */
#define ETRT_CONV_PIXELS 16  /* output pixels done together on that path */

/* On x86-64 with GCC, the pixel path uses GCC's vector extensions (16 lanes;
 * GCC lowers them to whatever the target has), and the conv is built for
 * several instruction sets, the best one the CPU has picked at load time
 * (target_clones; glibc's ifunc). Only the vector width changes: every build
 * computes the same integers. ETRT_NO_CLONES keeps the baseline build alone,
 * ETRT_NO_VECTORS the portable loops alone (a test checks each). Elsewhere
 * (other compilers, microcontrollers) the portable loops. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(ETRT_NO_VECTORS)
#define ETRT_VECTORS 1
#define ETRT_INLINE __attribute__((always_inline)) inline /* into each clone */
#if defined(__linux__) && !defined(ETRT_NO_CLONES)
#define ETRT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef ETRT_CLONES
#define ETRT_CLONES
#endif
#ifndef ETRT_INLINE
#define ETRT_INLINE
#endif

size_t etrt_conv2d_s8_scratch_size(const etrt_conv_s8_params *p, etrt_dims in, etrt_dims out)
{
    size_t bytes = (size_t)p->win.k_h * (size_t)p->win.k_w * (size_t)in.c * sizeof(int16_t);
    (void)out;
    /* Rounded up to 4 bytes, so that a buffer placed right after it stays aligned. */
    return (bytes + 3) & ~(size_t)3;
}

/* Requantizes one accumulator into the output's domain and clamps it. */
static ETRT_INLINE int8_t requantize(const etrt_conv_s8_params *p, int32_t oc, int32_t acc)
{
    int32_t v = etrt_mul_by_quantized_multiplier(acc, p->multiplier[oc], p->shift[oc]);
    v += p->output_offset;
    if (v < p->act_min)
        v = p->act_min;
    if (v > p->act_max)
        v = p->act_max;
    return (int8_t)v;
}

static ETRT_INLINE int32_t dot_s16_s8(const int16_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    for (int32_t i = 0; i < n; i++)
        acc += (int32_t)a[i] * (int32_t)b[i];
    return acc;
}

/* Four dot products of a with b, b + n, b + 2n, b + 3n. */
static ETRT_INLINE void dot4_s16_s8(const int16_t *a, const int8_t *b, int32_t n, int32_t acc[4])
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const int8_t *b1 = b + n, *b2 = b + 2 * (size_t)n, *b3 = b + 3 * (size_t)n;
    for (int32_t i = 0; i < n; i++) {
        const int32_t v = a[i];
        a0 += v * b[i];
        a1 += v * b1[i];
        a2 += v * b2[i];
        a3 += v * b3[i];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Writes the window of output pixel (oy, ox) of image x as int16 into
 * patch[k_h][k_w][in.c], with input_offset added and 0 outside the input. */
static ETRT_INLINE void gather_patch(const etrt_conv_s8_params *p, etrt_dims in, const int8_t *x,
                                     int32_t oy, int32_t ox, int16_t *patch)
{
    const etrt_window *win = &p->win;
    const int32_t y0 = oy * win->stride_h - win->pad_top;
    const int32_t x0 = ox * win->stride_w - win->pad_left;
    const int32_t row = win->k_w * in.c;
    const int16_t off = (int16_t)p->input_offset;
    /* A window row inside the input is k_w * in.c contiguous inputs. */
    const int row_inside = x0 >= 0 && x0 + win->k_w <= in.w;
    for (int32_t ky = 0; ky < win->k_h; ky++) {
        const int32_t iy = y0 + ky;
        int16_t *dst = patch + ky * row;
        const int8_t *src;
        if (iy < 0 || iy >= in.h) {
            for (int32_t i = 0; i < row; i++)
                dst[i] = 0;
            continue;
        }
        src = x + (size_t)iy * (size_t)in.w * (size_t)in.c; /* input row iy */
        if (row_inside) {
            src += (size_t)x0 * (size_t)in.c;
            for (int32_t i = 0; i < row; i++)
                dst[i] = (int16_t)(src[i] + off);
            continue;
        }
        for (int32_t kx = 0; kx < win->k_w; kx++) {
            const int32_t ix = x0 + kx;
            int16_t *d = dst + kx * in.c;
            if (ix < 0 || ix >= in.w) {
                for (int32_t c = 0; c < in.c; c++)
                    d[c] = 0;
            } else {
                for (int32_t c = 0; c < in.c; c++)
                    d[c] = (int16_t)(src[(size_t)ix * (size_t)in.c + (size_t)c] + off);
            }
        }
    }
}

/* Output pixels ox0 .. ox0 + count - 1 of row oy, whose windows lie inside
 * the input left to right (count <= ETRT_CONV_PIXELS): for each output
 * channel and each tap, the weight times the count input values under that
 * tap (every stride_w * in_c-th value of an input row, contiguous for a
 * stride-1 conv on one channel), added over all pixels at once. Window rows
 * above or below the input add nothing and are skipped. */
#ifdef ETRT_VECTORS
/* ETRT_CONV_PIXELS lanes of int32, and the int64 lanes of half of them. */
typedef int32_t etrt_v16i32 __attribute__((vector_size(64)));
typedef int8_t etrt_v16i8 __attribute__((vector_size(16)));
typedef int16_t etrt_v16i16 __attribute__((vector_size(32)));
typedef int32_t etrt_v8i32 __attribute__((vector_size(32)));
typedef int64_t etrt_v8i64 __attribute__((vector_size(64)));

typedef uint32_t etrt_v8u32 __attribute__((vector_size(32)));

/* etrt_mul_by_quantized_multiplier on 8 lanes, in place, formula for
 * formula (the multiplier is >= 0, so its INT32_MIN * INT32_MIN case cannot
 * occur). A comparison gives -1 (all bits) where true, 0 where false. Vectors
 * go by pointer: none crosses a function boundary by value. */
static ETRT_INLINE void requant8(etrt_v8i32 *x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const etrt_v8i32 xl = (etrt_v8i32)((etrt_v8u32)*x << left); /* etrt_shl: wraps */
    etrt_v8i64 ab = __builtin_convertvector(xl, etrt_v8i64) * (int64_t)multiplier;
    const etrt_v8i64 neg = ab < 0;
    ab += ((int64_t)1 << 30) + (neg & (1 - ((int64_t)1 << 31))); /* the nudge */
    ab += (ab >> 63) & (((int64_t)1 << 31) - 1); /* division by 2^31 truncates towards 0 */
    const etrt_v8i32 h = __builtin_convertvector(ab >> 31, etrt_v8i32);
    const int32_t mask = (int32_t)(((int64_t)1 << right) - 1);
    const etrt_v8i32 threshold = (mask >> 1) - (h < 0);
    *x = (h >> right) - ((h & mask) > threshold);
}

/* Clamp of 8 lanes to [lo, hi], in place. */
static ETRT_INLINE void clamp8(etrt_v8i32 *x, int32_t lo, int32_t hi)
{
    etrt_v8i32 v = *x, below = v<lo, above = v> hi;
    v = (v & ~below) | (lo & below);
    *x = (v & ~above) | (hi & above);
}

/* The pixel path's common case: ETRT_CONV_PIXELS pixels whose inputs under a
 * tap are contiguous (stride 1, one input channel). */
static ETRT_INLINE void conv_pixels16(const etrt_conv_s8_params *p, etrt_dims in, int32_t k,
                                      const int8_t *first, const int8_t *w, const int32_t *bias,
                                      etrt_dims out, int32_t y0, int32_t ky0, int32_t ky1,
                                      int8_t *ydst)
{
    const etrt_window *win = &p->win;
    const int32_t row_len = win->k_w * in.c;
    const int16_t off = (int16_t)p->input_offset; /* x + off is in [-255, 255] */
    for (int32_t oc = 0; oc < out.c; oc++) {
        const int8_t *wo = w + (size_t)oc * (size_t)k;
        etrt_v16i32 acc = (etrt_v16i32){0} + (bias ? bias[oc] : 0);
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const int8_t *row = first + (size_t)(y0 + ky) * (size_t)in.w * (size_t)in.c;
            const int8_t *wr = wo + (size_t)ky * (size_t)row_len;
            for (int32_t t = 0; t < row_len; t++) {
                etrt_v16i8 v;
                memcpy(&v, row + t, sizeof v);
                /* int8 -> int16 -> int32 in two steps: GCC 12 widens int8
                 * straight to int32 lane by lane. */
                const etrt_v16i16 x16 = __builtin_convertvector(v, etrt_v16i16) + off;
                acc += __builtin_convertvector(x16, etrt_v16i32) * wr[t];
            }
        }
        etrt_v8i32 lo, hi;
        memcpy(&lo, &acc, sizeof lo);
        memcpy(&hi, (const char *)&acc + sizeof lo, sizeof hi);
        requant8(&lo, p->multiplier[oc], p->shift[oc]);
        requant8(&hi, p->multiplier[oc], p->shift[oc]);
        lo += p->output_offset;
        hi += p->output_offset;
        clamp8(&lo, p->act_min, p->act_max);
        clamp8(&hi, p->act_min, p->act_max);
        for (int32_t j = 0; j < 8; j++) {
            ydst[(size_t)j * (size_t)out.c + (size_t)oc] = (int8_t)lo[j];
            ydst[(size_t)(j + 8) * (size_t)out.c + (size_t)oc] = (int8_t)hi[j];
        }
    }
}
#endif

static ETRT_INLINE void conv_pixels(const etrt_conv_s8_params *p, etrt_dims in, const int8_t *xn,
                                    const int8_t *w, const int32_t *bias, etrt_dims out, int32_t oy,
                                    int32_t ox0, int32_t count, int8_t *yrow)
{
    const etrt_window *win = &p->win;
    const int32_t k = win->k_h * win->k_w * in.c;
    const int32_t off = p->input_offset;
    const int32_t y0 = oy * win->stride_h - win->pad_top;
    const size_t step = (size_t)win->stride_w * (size_t)in.c; /* between the pixels' inputs */
    const int8_t *first = xn + (size_t)(ox0 * win->stride_w - win->pad_left) * (size_t)in.c;
    const int32_t ky0 = y0 < 0 ? -y0 : 0;
    const int32_t ky1 = y0 + win->k_h > in.h ? in.h - y0 : win->k_h;
#ifdef ETRT_VECTORS
    if (step == 1 && count == ETRT_CONV_PIXELS) {
        conv_pixels16(p, in, k, first, w, bias, out, y0, ky0, ky1,
                      yrow + (size_t)ox0 * (size_t)out.c);
        return;
    }
#endif
    for (int32_t oc = 0; oc < out.c; oc++) {
        int32_t acc[ETRT_CONV_PIXELS];
        const int8_t *wo = w + (size_t)oc * (size_t)k;
        const int32_t b = bias ? bias[oc] : 0;
        for (int32_t j = 0; j < count; j++)
            acc[j] = b;
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const int8_t *row = first + (size_t)(y0 + ky) * (size_t)in.w * (size_t)in.c;
            const int8_t *wr = wo + (size_t)ky * (size_t)win->k_w * (size_t)in.c;
            for (int32_t t = 0; t < win->k_w * in.c; t++) {
                const int32_t wv = wr[t];
                const int8_t *src = row + t;
                for (int32_t j = 0; j < count; j++)
                    acc[j] += wv * ((int32_t)src[(size_t)j * step] + off);
            }
        }
        for (int32_t j = 0; j < count; j++)
            yrow[((size_t)ox0 + (size_t)j) * (size_t)out.c + (size_t)oc] =
                requantize(p, oc, acc[j]);
    }
}

/* Output pixel (oy, ox) by the gathered patch, four channels at a time. */
static ETRT_INLINE void conv_pixel(const etrt_conv_s8_params *p, etrt_dims in, const int8_t *xn,
                                   const int8_t *w, const int32_t *bias, etrt_dims out, int32_t oy,
                                   int32_t ox, int8_t *yp, int16_t *patch)
{
    const int32_t k = p->win.k_h * p->win.k_w * in.c;
    int32_t oc = 0;
    gather_patch(p, in, xn, oy, ox, patch);
    for (; oc + 4 <= out.c; oc += 4) {
        int32_t acc[4];
        dot4_s16_s8(patch, w + (size_t)oc * (size_t)k, k, acc);
        for (int32_t i = 0; i < 4; i++)
            yp[oc + i] = requantize(p, oc + i, acc[i] + (bias ? bias[oc + i] : 0));
    }
    for (; oc < out.c; oc++) {
        int32_t acc = dot_s16_s8(patch, w + (size_t)oc * (size_t)k, k);
        if (bias)
            acc += bias[oc];
        yp[oc] = requantize(p, oc, acc);
    }
}

/* A 1x1 conv with stride 1 and no padding (MobileNets' expand and project
 * layers): output pixel q reads input pixel q alone, in.c contiguous int8.
 * No patch is gathered: sum (x + off) * w = sum x * w + off * sum w, and
 * off * sum w + bias is worked out once per output channel, four channels at
 * a time. With vectors (x86-64), blocks of four pixels by four channels load
 * each input and weight value once for four products (sixteen sums), which
 * halves the memory traffic of the patch path. The sums are the same
 * integers as the patch path's: both are exact. */
static ETRT_INLINE void conv_pointwise(const etrt_conv_s8_params *p, etrt_dims in,
                                       const int8_t *x, const int8_t *w, const int32_t *bias,
                                       etrt_dims out, int8_t *y)
{
    const int32_t k = in.c;
    const size_t npix = (size_t)out.n * (size_t)out.h * (size_t)out.w;
    int32_t oc = 0;
    for (; oc < out.c; oc += 4) {
        const int32_t nc = out.c - oc < 4 ? out.c - oc : 4;
        const int8_t *wr[4];
        int32_t base[4];
        for (int32_t c = 0; c < 4; c++) {
            /* Fewer than four channels left: repeat the last (written once). */
            const int32_t cc = oc + (c < nc ? c : nc - 1);
            int32_t sum = 0;
            wr[c] = w + (size_t)cc * (size_t)k;
            for (int32_t i = 0; i < k; i++)
                sum += wr[c][i];
            base[c] = (bias ? bias[cc] : 0) + p->input_offset * sum;
        }
        size_t q = 0;
        const int8_t *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3];
#ifdef ETRT_VECTORS
        /* With vector registers: four pixels at once. A microcontroller has
         * too few registers for sixteen sums and takes one pixel at a time. */
        for (; q + 4 <= npix; q += 4) {
            const int8_t *x0 = x + q * (size_t)k, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
            /* Sixteen plain sums over i, which the compiler vectorises. */
            int32_t a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
            int32_t a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
            for (int32_t i = 0; i < k; i++) {
                const int32_t v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i];
                const int32_t c0 = w0[i], c1 = w1[i], c2 = w2[i], c3 = w3[i];
                a00 += v0 * c0, a01 += v0 * c1, a02 += v0 * c2, a03 += v0 * c3;
                a10 += v1 * c0, a11 += v1 * c1, a12 += v1 * c2, a13 += v1 * c3;
                a20 += v2 * c0, a21 += v2 * c1, a22 += v2 * c2, a23 += v2 * c3;
                a30 += v3 * c0, a31 += v3 * c1, a32 += v3 * c2, a33 += v3 * c3;
            }
            const int32_t a[4][4] = {
                {a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}};
            for (int32_t j = 0; j < 4; j++)
                for (int32_t c = 0; c < nc; c++)
                    y[(q + (size_t)j) * (size_t)out.c + (size_t)(oc + c)] =
                        requantize(p, oc + c, a[j][c] + base[c]);
        }
#endif
        for (; q < npix; q++) {
            const int8_t *xq = x + q * (size_t)k;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            for (int32_t i = 0; i < k; i++) {
                const int32_t v = xq[i];
                a0 += v * w0[i];
                a1 += v * w1[i];
                a2 += v * w2[i];
                a3 += v * w3[i];
            }
            const int32_t a[4] = {a0, a1, a2, a3};
            for (int32_t c = 0; c < nc; c++)
                y[q * (size_t)out.c + (size_t)(oc + c)] = requantize(p, oc + c, a[c] + base[c]);
        }
    }
}

ETRT_CLONES
void etrt_conv2d_s8(const etrt_conv_s8_params *p, etrt_dims in, const int8_t *x, const int8_t *w,
                    const int32_t *bias, etrt_dims out, int8_t *y, void *scratch)
{
    const etrt_window *win = &p->win;
    const int32_t k = win->k_h * win->k_w * in.c;
    int16_t *patch = (int16_t *)scratch;
    /* Output columns whose windows lie inside the input left to right. */
    int32_t lo = (win->pad_left + win->stride_w - 1) / win->stride_w;
    int32_t hi = in.w - win->k_w + win->pad_left >= 0
                     ? (in.w - win->k_w + win->pad_left) / win->stride_w + 1
                     : 0;
    if (k > ETRT_CONV_SMALL_K || hi > out.w)
        hi = out.w;
    if (k > ETRT_CONV_SMALL_K || lo > hi)
        lo = hi;
    if (win->k_h == 1 && win->k_w == 1 && win->stride_h == 1 && win->stride_w == 1 &&
        win->pad_top == 0 && win->pad_left == 0 && in.h == out.h && in.w == out.w) {
        conv_pointwise(p, in, x, w, bias, out, y);
        return;
    }
    for (int32_t n = 0; n < out.n; n++) {
        const int8_t *xn = x + (size_t)n * (size_t)in.h * (size_t)in.w * (size_t)in.c;
        for (int32_t oy = 0; oy < out.h; oy++) {
            int8_t *yrow =
                y + ((size_t)n * (size_t)out.h + (size_t)oy) * (size_t)out.w * (size_t)out.c;
            for (int32_t ox = 0; ox < out.w; ox++) {
                if (ox == lo && lo < hi) {
                    /* Full blocks; when at least one fits, the last one ends at
                     * hi and may redo a few pixels (the same values again). */
                    for (; ox < hi; ox += ETRT_CONV_PIXELS) {
                        int32_t start = ox, count = hi - ox;
                        if (count < ETRT_CONV_PIXELS && hi - lo >= ETRT_CONV_PIXELS)
                            start = hi - ETRT_CONV_PIXELS;
                        count = hi - start < ETRT_CONV_PIXELS ? hi - start : ETRT_CONV_PIXELS;
                        conv_pixels(p, in, xn, w, bias, out, oy, start, count, yrow);
                    }
                    ox = hi - 1;
                    continue;
                }
                conv_pixel(p, in, xn, w, bias, out, oy, ox, yrow + (size_t)ox * (size_t)out.c,
                           patch);
            }
        }
    }
}
