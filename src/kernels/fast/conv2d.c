/* Fast conv2d: im2col + GEMM (OpenBLAS), NHWC input, OHWI weights.
 *
 * Seen as matrices, with P = out->h * out->w output pixels per image and
 * K = k_h * k_w * in->c taps per output pixel:
 *   col[P][K]  row p = the input window of output pixel p, in [ky][kx][ic]
 *              order (padding as zeros), the same order as a row of w[oc][K]
 *   y  = col w^T               [P][out_c]
 *   dw = sum over images of dy^T col
 *   dx = col2im(dy w)          dy w is [P][K]; col2im adds each row back
 *                              onto the input pixels of its window
 * A 1x1 stride-1 conv is already a GEMM on NHWC data (col = x), so it skips
 * im2col and col2im and runs on the whole batch at once.
 *
 * The batch is cut into et_fast_groups(n) groups of consecutive images, fixed
 * by the shapes alone (fewer when 16 im2col buffers would pass 64 MiB). Each
 * group owns a slice of the scratch memory: an im2col buffer for one image
 * (reused for dy w in the backward pass), a partial dw and a partial dbias.
 * Groups run in parallel, each image with a single-threaded sgemm; the
 * partials are then added in group order. So the scratch stays bounded however
 * large the batch, and the results do not depend on the number of threads. */
#include "kernels/fast/fast_internal.h"

#include <cblas.h>
#include <string.h>

/* Floats that the im2col buffers of all groups may take together (64 MiB). */
#define COL_BUDGET ((size_t)1 << 24)

typedef struct conv_plan {
    int pointwise; /* 1x1, stride 1, no padding: col would be x itself */
    int groups;    /* et_fast_groups(in->n), fewer for large images */
    size_t pixels; /* P: output pixels per image */
    size_t taps;   /* K: k_h * k_w * in->c */
    size_t col;    /* floats of one group's im2col buffer (0 when pointwise) */
} conv_plan;

static conv_plan plan_of(const et_window *win, const et_dims *in, const et_dims *out)
{
    conv_plan p;
    p.pointwise = win->k_h == 1 && win->k_w == 1 && win->stride_h == 1 && win->stride_w == 1 &&
                  win->pad_top == 0 && win->pad_left == 0 && out->h == in->h && out->w == in->w;
    p.groups = et_fast_groups(in->n);
    p.pixels = (size_t)out->h * out->w;
    p.taps = (size_t)win->k_h * win->k_w * in->c;
    p.col = p.pointwise ? 0 : p.pixels * p.taps;
    /* Large images: fewer groups (so fewer threads) rather than a scratch of
     * gigabytes. Still a function of the shapes alone. */
    if (p.col > 0 && (size_t)p.groups * p.col > COL_BUDGET)
        p.groups = p.col >= COL_BUDGET ? 1 : (int)(COL_BUDGET / p.col);
    return p;
}

size_t et_conv2d_scratch_size_fast(const et_window *win, const et_dims *in, const et_dims *out)
{
    conv_plan p = plan_of(win, in, out);
    size_t per_group = p.col + (size_t)out->c * p.taps + (size_t)out->c;
    return (size_t)p.groups * per_group * sizeof(float);
}

/* The input window of every output pixel of one image, as rows of col[P][K]. */
static void im2col(const et_window *win, const et_dims *in, const float *x, const et_dims *out,
                   float *col)
{
    const int ic = in->c;
    const size_t row_len = (size_t)win->k_w * ic;
    for (int oy = 0; oy < out->h; oy++)
        for (int ox = 0; ox < out->w; ox++) {
            float *row = col + ((size_t)oy * out->w + ox) * win->k_h * row_len;
            int ix0 = ox * win->stride_w - win->pad_left;
            int lo = ix0 < 0 ? -ix0 : 0;
            int hi = in->w - ix0 < win->k_w ? in->w - ix0 : win->k_w;
            if (hi < lo)
                hi = lo;
            for (int ky = 0; ky < win->k_h; ky++, row += row_len) {
                int iy = oy * win->stride_h - win->pad_top + ky;
                if (iy < 0 || iy >= in->h) {
                    memset(row, 0, row_len * sizeof *row);
                    continue;
                }
                /* Taps lo..hi of this kernel row lie on consecutive input pixels. */
                memset(row, 0, (size_t)lo * ic * sizeof *row);
                if (hi > lo)
                    memcpy(row + (size_t)lo * ic, x + ((size_t)iy * in->w + ix0 + lo) * ic,
                           (size_t)(hi - lo) * ic * sizeof *row);
                memset(row + (size_t)hi * ic, 0, (size_t)(win->k_w - hi) * ic * sizeof *row);
            }
        }
}

/* The adjoint of im2col: dx = 0, then each row of col is added onto the input
 * pixels of its window, in output-pixel order. */
static void col2im(const et_window *win, const et_dims *in, const float *col, const et_dims *out,
                   float *dx)
{
    const int ic = in->c;
    const size_t row_len = (size_t)win->k_w * ic;
    memset(dx, 0, (size_t)in->h * in->w * ic * sizeof *dx);
    for (int oy = 0; oy < out->h; oy++)
        for (int ox = 0; ox < out->w; ox++) {
            const float *row = col + ((size_t)oy * out->w + ox) * win->k_h * row_len;
            int ix0 = ox * win->stride_w - win->pad_left;
            int lo = ix0 < 0 ? -ix0 : 0;
            int hi = in->w - ix0 < win->k_w ? in->w - ix0 : win->k_w;
            for (int ky = 0; ky < win->k_h; ky++, row += row_len) {
                int iy = oy * win->stride_h - win->pad_top + ky;
                if (iy < 0 || iy >= in->h || hi <= lo)
                    continue;
                float *d = dx + ((size_t)iy * in->w + ix0 + lo) * ic;
                const float *s = row + (size_t)lo * ic;
                const size_t len = (size_t)(hi - lo) * ic;
#pragma omp simd
                for (size_t i = 0; i < len; i++)
                    d[i] += s[i];
            }
        }
}

/* y[r][oc] = bias[oc] for rows r0..r1, so that sgemm can add onto it (beta 1). */
static void fill_bias(size_t r0, size_t r1, int oc, const float *bias, float *y)
{
    for (size_t r = r0; r < r1; r++)
        memcpy(y + r * oc, bias, (size_t)oc * sizeof *y);
}

void et_conv2d_forward_fast(const et_window *win, const et_dims *in, const float *x, const float *w,
                            const float *bias, const et_dims *out, float *y, void *scratch)
{
    const conv_plan p = plan_of(win, in, out);
    const int oc = out->c, k = (int)p.taps;
    const float beta = bias ? 1.0f : 0.0f;
    if (p.pointwise) {
        size_t rows = (size_t)in->n * p.pixels;
        if (bias) {
#pragma omp parallel for schedule(dynamic, 1) if (rows * oc > ET_FAST_PAR_MIN)
            for (int g = 0; g < ET_FAST_GROUPS; g++)
                fill_bias(et_fast_split(rows, ET_FAST_GROUPS, g),
                          et_fast_split(rows, ET_FAST_GROUPS, g + 1), oc, bias, y);
        }
        et_fast_sgemm(0, 1, (int)rows, oc, k, 1.0f, x, k, w, k, beta, y, oc);
        return;
    }
    const size_t in_img = (size_t)in->h * in->w * in->c;
    et_fast_blas_single_thread();
    float *cols = scratch;
#pragma omp parallel for schedule(dynamic, 1) if (p.groups > 1)
    for (int g = 0; g < p.groups; g++) {
        float *col = cols + (size_t)g * p.col;
        size_t i0 = et_fast_split(in->n, p.groups, g), i1 = et_fast_split(in->n, p.groups, g + 1);
        for (size_t i = i0; i < i1; i++) {
            float *yi = y + i * p.pixels * oc;
            im2col(win, in, x + i * in_img, out, col);
            if (bias)
                fill_bias(0, p.pixels, oc, bias, yi);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)p.pixels, oc, k, 1.0f, col, k,
                        w, k, beta, yi, oc);
        }
    }
}

void et_conv2d_backward_fast(const et_window *win, const et_dims *in, const float *x,
                             const float *w, const et_dims *out, const float *dy, float *dx,
                             float *dw, float *dbias, void *scratch)
{
    if (!dx && !dw && !dbias)
        return;
    const conv_plan p = plan_of(win, in, out);
    const int oc = out->c, ic = in->c, k = (int)p.taps;
    const size_t in_img = (size_t)in->h * in->w * ic, dw_len = (size_t)oc * p.taps;
    float *cols = scratch;
    float *dw_parts = cols + (size_t)p.groups * p.col;
    float *db_parts = dw_parts + (size_t)p.groups * dw_len;
    et_fast_blas_single_thread();
#pragma omp parallel for schedule(dynamic, 1) if (p.groups > 1)
    for (int g = 0; g < p.groups; g++) {
        size_t i0 = et_fast_split(in->n, p.groups, g), i1 = et_fast_split(in->n, p.groups, g + 1);
        float *dwp = dw_parts + g * dw_len;
        if (p.pointwise) {
            /* The group's rows of x and dy are contiguous: one GEMM each. */
            const int rows = (int)((i1 - i0) * p.pixels);
            const float *dyg = dy + i0 * p.pixels * oc;
            if (dw)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, oc, ic, rows, 1.0f, dyg, oc,
                            x + i0 * in_img, ic, 0.0f, dwp, ic);
            if (dx)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, ic, oc, 1.0f, dyg, oc,
                            w, ic, 0.0f, dx + i0 * in_img, ic);
        } else {
            float *col = cols + (size_t)g * p.col;
            for (size_t i = i0; i < i1; i++) {
                const float *dyi = dy + i * p.pixels * oc;
                if (dw) {
                    im2col(win, in, x + i * in_img, out, col);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, oc, k, (int)p.pixels, 1.0f,
                                dyi, oc, col, k, i == i0 ? 0.0f : 1.0f, dwp, k);
                }
                if (dx) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p.pixels, k, oc,
                                1.0f, dyi, oc, w, k, 0.0f, col, k);
                    col2im(win, in, col, out, dx + i * in_img);
                }
            }
        }
        if (dbias)
            et_fast_colsum(i0 * p.pixels, i1 * p.pixels, oc, dy, db_parts + (size_t)g * oc);
    }
    if (dw)
        et_fast_sum_parts(p.groups, dw_len, dw_len, dw_parts, dw);
    if (dbias)
        et_fast_sum_parts(p.groups, oc, oc, db_parts, dbias);
}
