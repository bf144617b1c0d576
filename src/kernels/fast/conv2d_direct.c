/* conv2d's direct loops, for inputs of few channels (conv2d.c picks them): a
 * first layer on grayscale or RGB pictures, where K = k_h * k_w * in_c is 9
 * or 27 and im2col + GEMM would move far more bytes than it multiplies.
 *
 * The loops run over one image zero-padded so that every window lies inside
 * it, over blocks of output channels whose sums are kept in SIMD registers.
 * They are compiled twice from conv2d_direct.inc: with 4-float vectors for any
 * target (SSE2 on baseline x86-64, NEON on AArch64) and, on x86-64, with
 * 8-float vectors and fused multiply-adds in functions built for AVX2 and
 * FMA, used when the CPU has both (17% faster than multiply-then-add on the
 * project's Zen 3 VM). Both sum the same terms in the same order; the fused
 * multiply-adds round once per term instead of twice, so the two sets agree
 * to rounding, not bit for bit. Either way the bits do not depend on the
 * number of threads. */
#include "kernels/fast/fast_internal.h"

#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

/* Output channels [o0, o0 + nb) in scalars: the tail after the vector blocks,
 * each sum in the same order as theirs. */
static void forward_tail(const et_fast_direct *d, const int *off, const float *xp, const float *wt,
                         const float *bias, int o0, int nb, int relu, float *y)
{
    const int taps = d->k_h * d->k_w * d->ic;
    for (int oy = 0; oy < d->out_h; oy++)
        for (int ox = 0; ox < d->out_w; ox++) {
            const float *xb =
                xp + ((size_t)oy * d->stride_h * d->wp + (size_t)ox * d->stride_w) * d->ic;
            float *yp = y + ((size_t)oy * d->out_w + ox) * d->oc + o0;
            for (int o = 0; o < nb; o++) {
                float acc = bias ? bias[o0 + o] : 0.0f;
                for (int t = 0; t < taps; t++)
                    acc += xb[off[t]] * wt[(size_t)t * d->oc + o0 + o];
                yp[o] = relu ? (acc > 0.0f ? acc : 0.0f) : acc;
            }
        }
}

static void weight_grad_tail(const et_fast_direct *d, const int *off, const float *xp,
                             const float *dy, int o0, int nb, int add, float *dwp)
{
    const int taps = d->k_h * d->k_w * d->ic;
    for (int o = 0; o < nb; o++)
        for (int t = 0; t < taps; t++) {
            float acc = add ? dwp[(size_t)(o0 + o) * taps + t] : 0.0f;
            const float *g = dy + o0 + o;
            for (int oy = 0; oy < d->out_h; oy++) {
                const float *xr = xp + (size_t)oy * d->stride_h * d->wp * d->ic + off[t];
                for (int ox = 0; ox < d->out_w; ox++, g += d->oc)
                    acc += xr[(size_t)ox * d->stride_w * d->ic] * *g;
            }
            dwp[(size_t)(o0 + o) * taps + t] = acc;
        }
}

/* off[t] for each tap t = (ky, kx, ic) of the window: its offset in the padded
 * image from the window's first float. */
static void tap_offsets(const et_fast_direct *d, int *off)
{
    int t = 0;
    for (int ky = 0; ky < d->k_h; ky++)
        for (int j = 0; j < d->k_w * d->ic; j++)
            off[t++] = ky * d->wp * d->ic + j;
}

#define DIRECT_INLINE inline __attribute__((always_inline))

typedef float f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));
#define DIRECT_VEC f4
#define DIRECT_IVEC i4
#define DIRECT_LANES 4
#define DIRECT_SPLAT(a) ((f4){a, a, a, a})
#define DIRECT_MADD(c, a, b) ((c) + (a) * (b))
#define DIRECT_KEEP(v) ((void)0)
#define DIRECT_FN(name) name##_f4
#define DIRECT_ATTR
#include "kernels/fast/conv2d_direct.inc"
#undef DIRECT_VEC
#undef DIRECT_IVEC
#undef DIRECT_LANES
#undef DIRECT_SPLAT
#undef DIRECT_MADD
#undef DIRECT_KEEP
#undef DIRECT_FN
#undef DIRECT_ATTR

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2_SET 1
typedef float f8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));
#define DIRECT_VEC f8
#define DIRECT_IVEC i8
#define DIRECT_LANES 8
#define DIRECT_SPLAT(a) ((f8){a, a, a, a, a, a, a, a})
#define DIRECT_MADD(c, a, b) ((f8)_mm256_fmadd_ps(a, b, c))
#define DIRECT_KEEP(v) __asm__("" : "+x"(v))
#define DIRECT_FN(name) name##_avx2
#define DIRECT_ATTR __attribute__((target("avx2,fma")))
#include "kernels/fast/conv2d_direct.inc"
#undef DIRECT_VEC
#undef DIRECT_IVEC
#undef DIRECT_LANES
#undef DIRECT_SPLAT
#undef DIRECT_MADD
#undef DIRECT_KEEP
#undef DIRECT_FN
#undef DIRECT_ATTR
#endif

/* -1: not decided yet; then 0 or 1. Written once (or by a test); a race
 * between two first calls writes the same value. */
static int avx2_allowed = -1;

int et_fast_avx2(void)
{
#ifdef HAVE_AVX2_SET
    if (avx2_allowed < 0)
        avx2_allowed = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
    return avx2_allowed;
#else
    return 0;
#endif
}

void et_fast_set_avx2(int allowed)
{
    avx2_allowed = allowed ? -1 : 0;
}

void et_fast_direct_forward(const et_fast_direct *d, const float *xp, const float *wt,
                            const float *bias, int relu, float *y)
{
    int off[ET_FAST_DIRECT_MAX_TAPS];
    tap_offsets(d, off);
#ifdef HAVE_AVX2_SET
    if (et_fast_avx2()) {
        forward_avx2(d, off, xp, wt, bias, relu, y);
        return;
    }
#endif
    forward_f4(d, off, xp, wt, bias, relu, y);
}

void et_fast_direct_weight_grad(const et_fast_direct *d, const float *xp, const float *dy, int add,
                                float *dwp)
{
    int off[ET_FAST_DIRECT_MAX_TAPS];
    tap_offsets(d, off);
#ifdef HAVE_AVX2_SET
    if (et_fast_avx2()) {
        weight_grad_avx2(d, off, xp, dy, add, dwp);
        return;
    }
#endif
    weight_grad_f4(d, off, xp, dy, add, dwp);
}
