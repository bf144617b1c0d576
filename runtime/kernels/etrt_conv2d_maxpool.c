/* Conv2d followed by a max pool, fused, int8 and float32.
 *
 * The conv's output is never held in full: for each output row of the pool,
 * the conv rows under that row's windows (a band of at most pool k_h rows)
 * are computed into scratch by the conv kernel itself, then pooled into the
 * output row by the max pool kernel itself. So the result is exactly the one
 * of the two ops in turn, and the RAM is the band instead of the whole conv
 * output (for a 28x28x32 conv under a 2x2 pool: 1,792 bytes instead of 25,088).
 *
 * A band is computed by handing the conv kernel a view of the input that
 * starts at the band's first input row: rows above it become padding
 * (pad_top) or are skipped (the input pointer moves down), rows below it
 * are clipped by the view's height, as for any conv. Max pooling commutes
 * with the conv's clamp and with its (monotonic) requantization, so the pool
 * needs no clamp of its own.
 *
 * Overlapping pool windows (stride_h < k_h) would compute shared conv rows
 * once per window: correct but slower. The converter fuses only pools whose
 * windows do not overlap vertically.
 */
#include "etrt_kernels.h"

#include <float.h>
#include <stddef.h>
#include <stdint.h>

/* The conv rows under pool output row py, and the conv call that computes
 * them: in and win describe the input view starting x_row rows down. */
typedef struct band {
    int32_t rows;  /* conv rows in the band (>= 1 for a valid window) */
    int32_t x_row; /* first input row of the view */
    etrt_dims in;  /* the view: in.h shortened by x_row */
    etrt_window win;
} band;

static band band_at(const etrt_window *cw, const etrt_window *pw, etrt_dims in, etrt_dims conv,
                    int32_t py)
{
    band b;
    const int32_t r0 = py * pw->stride_h - pw->pad_top;
    const int32_t first = r0 < 0 ? 0 : r0;
    const int32_t end = r0 + pw->k_h > conv.h ? conv.h : r0 + pw->k_h;
    /* Conv row `first` reads input rows from first * stride_h - pad_top on. */
    const int32_t top = first * cw->stride_h - cw->pad_top;
    b.rows = end - first;
    b.in = in;
    b.in.n = 1;
    b.win = *cw;
    if (top >= 0) {
        b.x_row = top;
        b.in.h = in.h - top;
        b.win.pad_top = 0;
    } else {
        b.x_row = 0;
        b.win.pad_top = -top;
    }
    return b;
}

/* The pool over a band of rows conv rows: one output row. */
static etrt_window band_pool(const etrt_window *pw, int32_t rows)
{
    etrt_window w = *pw;
    w.k_h = rows;
    w.stride_h = 1;
    w.pad_top = 0;
    return w;
}

static size_t band_bytes(const etrt_window *pw, etrt_dims conv, size_t elem)
{
    const int32_t rows = pw->k_h < conv.h ? pw->k_h : conv.h;
    const size_t bytes = (size_t)rows * (size_t)conv.w * (size_t)conv.c * elem;
    return (bytes + 15) & ~(size_t)15; /* the conv's scratch follows, aligned */
}

size_t etrt_conv2d_maxpool_s8_scratch_size(const etrt_conv_s8_params *p, const etrt_window *pool,
                                           etrt_dims in, etrt_dims conv)
{
    return band_bytes(pool, conv, 1) + etrt_conv2d_s8_scratch_size(p, in, conv);
}

void etrt_conv2d_maxpool_s8(const etrt_conv_s8_params *p, const etrt_window *pool, etrt_dims in,
                            const int8_t *x, const int8_t *w, const int32_t *bias, etrt_dims conv,
                            etrt_dims out, int8_t *y, void *scratch)
{
    int8_t *rows = (int8_t *)scratch;
    void *conv_scratch = (uint8_t *)scratch + band_bytes(pool, conv, 1);
    const size_t in_row = (size_t)in.w * (size_t)in.c, out_row = (size_t)out.w * (size_t)out.c;
    for (int32_t n = 0; n < out.n; n++) {
        const int8_t *xn = x + (size_t)n * (size_t)in.h * in_row;
        for (int32_t py = 0; py < out.h; py++) {
            const band b = band_at(&p->win, pool, in, conv, py);
            etrt_conv_s8_params cp = *p;
            etrt_pool_s8_params pp;
            etrt_dims bd = conv, row = out;
            cp.win = b.win;
            bd.n = 1;
            bd.h = b.rows;
            etrt_conv2d_s8(&cp, b.in, xn + (size_t)b.x_row * in_row, w, bias, bd, rows,
                           conv_scratch);
            pp.win = band_pool(pool, b.rows);
            pp.act_min = -128;
            pp.act_max = 127;
            row.n = 1;
            row.h = 1;
            etrt_max_pool_s8(&pp, bd, rows, row,
                             y + ((size_t)n * (size_t)out.h + (size_t)py) * out_row);
        }
    }
}

size_t etrt_conv2d_maxpool_f32_scratch_size(const etrt_conv_f32_params *p, const etrt_window *pool,
                                            etrt_dims in, etrt_dims conv)
{
    return band_bytes(pool, conv, sizeof(float)) + etrt_conv2d_f32_scratch_size(p, in, conv);
}

void etrt_conv2d_maxpool_f32(const etrt_conv_f32_params *p, const etrt_window *pool, etrt_dims in,
                             const float *x, const float *w, const float *bias, etrt_dims conv,
                             etrt_dims out, float *y, void *scratch)
{
    float *rows = (float *)scratch;
    void *conv_scratch = (uint8_t *)scratch + band_bytes(pool, conv, sizeof(float));
    const size_t in_row = (size_t)in.w * (size_t)in.c, out_row = (size_t)out.w * (size_t)out.c;
    for (int32_t n = 0; n < out.n; n++) {
        const float *xn = x + (size_t)n * (size_t)in.h * in_row;
        for (int32_t py = 0; py < out.h; py++) {
            const band b = band_at(&p->win, pool, in, conv, py);
            etrt_conv_f32_params cp = *p;
            etrt_pool_f32_params pp;
            etrt_dims bd = conv, row = out;
            cp.win = b.win;
            bd.n = 1;
            bd.h = b.rows;
            etrt_conv2d_f32(&cp, b.in, xn + (size_t)b.x_row * in_row, w, bias, bd, rows,
                            conv_scratch);
            pp.win = band_pool(pool, b.rows);
            pp.act_min = -FLT_MAX;
            pp.act_max = FLT_MAX;
            row.n = 1;
            row.h = 1;
            etrt_max_pool_f32(&pp, bd, rows, row,
                              y + ((size_t)n * (size_t)out.h + (size_t)py) * out_row);
        }
    }
}
