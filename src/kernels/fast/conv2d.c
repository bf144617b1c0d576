/* Fast conv2d, NHWC input, OHWI weights. Three ways to compute, picked by the
 * shapes alone (plan_of):
 *
 * im2col + GEMM (OpenBLAS). Seen as matrices, with P = out->h * out->w output
 * pixels per image and K = k_h * k_w * in->c taps per output pixel:
 *   col[P][K]  row p = the input window of output pixel p, in [ky][kx][ic]
 *              order (padding as zeros), the same order as a row of w[oc][K]
 *   y  = col w^T               [P][out_c]
 *   dw = sum over images of dy^T col
 *   dx = col2im(dy w)          dy w is [P][K]; col2im adds each row back
 *                              onto the input pixels of its window
 * A 1x1 stride-1 conv is already a GEMM on NHWC data (col = x), so it skips
 * im2col and col2im and runs on the whole batch at once.
 *
 * Direct loops (conv2d_direct.c), for inputs of at most DIRECT_MAX_IN_C
 * channels (a first layer on grayscale or RGB pictures, where K is 9 or 27: a
 * GEMM over K that short does little work per byte it moves) and for convs
 * with few weights (the default conv net's second layer, 14x14x32 -> 16, where
 * im2col and OpenBLAS's packing copy every input value 9 times and a direct
 * loop runs half again as fast). Each image is copied into a zero-padded
 * buffer, so that every tap of every window lies inside it; the sums run over
 * blocks of output channels and pixels held in registers, with the weights
 * transposed to [K][out_c] once per call.
 *
 * dx of a stride-1 conv as a conv (the "flip"): dx is the stride-1 conv of dy
 * with the weights mirrored in space and their channels swapped,
 *   w'[ic][ky'][kx'][oc] = w[oc][k_h-1-ky'][k_w-1-kx'][ic],
 * and padding k-1-pad before. Computed that way (by the direct loops, or
 * im2col of dy + GEMM), each element of dx is written once: no zero-filling,
 * no col2im scatter, and no [P][K] buffer.
 *
 * The batch is cut into groups of consecutive images, fixed by the shapes
 * alone (et_fast_groups(n), fewer when 16 im2col buffers would pass 64 MiB).
 * Each group owns a slice of the scratch memory for its partial dw and
 * partial dbias; the working buffers (im2col, padded image, dy) are one per
 * thread, at most one thread per group. Groups run in parallel, each image
 * with a single-threaded sgemm or the direct loops; the partials are then
 * added in group order. So the scratch stays bounded however large the
 * batch, and the results do not depend on the number of threads. Before the
 * groups' slices, the scratch holds K * out_c floats shared by all groups:
 * the transposed weights (direct forward) or the flipped ones (dx), written
 * before the parallel part.
 *
 * The fused kernels (conv2d + ReLU, + max pool) run the ReLU on each image's
 * output and the pool on each group's while they are in cache; the fused
 * backward pass forms each group's dy from the pool's gradient in a working
 * buffer and never writes it out. */
#include "kernels/fast/fast_internal.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

/* Floats that the im2col buffers of all groups may take together (64 MiB). */
#define COL_BUDGET ((size_t)1 << 24)
/* Inputs with at most this many channels take the direct loops, and so do
 * convs whose weights take at most DIRECT_MAX_WEIGHTS floats (32 KiB, an L1
 * data cache): the loops stream the weights once per block of pixels. */
#define DIRECT_MAX_IN_C 4
#define DIRECT_MAX_WEIGHTS 8192

typedef struct conv_plan {
    int pointwise;   /* 1x1, stride 1, no padding: col would be x itself */
    int direct;      /* forward and dw by the direct loops, no im2col */
    int flip;        /* dx as the stride-1 conv of dy with flipped weights */
    int flip_direct; /* ... and that conv by the direct loops */
    int groups;      /* et_fast_groups(in->n), fewer for large images */
    int hp, wp;      /* direct: rows and columns of the zero-padded image */
    int hf, wf;      /* flip_direct: the same for dy */
    size_t pixels;   /* P: output pixels per image */
    size_t taps;     /* K: k_h * k_w * in->c */
    size_t shared;   /* floats of the transposed or flipped weights (0 when pointwise) */
    size_t col;      /* floats of one group's im2col or padded-image buffer */
} conv_plan;

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

static conv_plan plan_of(const et_window *win, const et_dims *in, const et_dims *out)
{
    conv_plan p;
    p.pointwise = win->k_h == 1 && win->k_w == 1 && win->stride_h == 1 && win->stride_w == 1 &&
                  win->pad_top == 0 && win->pad_left == 0 && out->h == in->h && out->w == in->w;
    const size_t window = (size_t)win->k_h * win->k_w, weights = window * in->c * out->c;
    p.direct = !p.pointwise && window * in->c <= ET_FAST_DIRECT_MAX_TAPS &&
               (in->c <= DIRECT_MAX_IN_C || weights <= DIRECT_MAX_WEIGHTS);
    p.flip = !p.pointwise && win->stride_h == 1 && win->stride_w == 1 && win->pad_top < win->k_h &&
             win->pad_left < win->k_w;
    /* The flipped conv has in->c outputs: direct loops only from a whole
     * vector block of them on. */
    p.flip_direct = p.flip && weights <= DIRECT_MAX_WEIGHTS && in->c >= 8 &&
                    window * out->c <= ET_FAST_DIRECT_MAX_TAPS;
    p.groups = et_fast_groups(in->n);
    p.hp = (out->h - 1) * win->stride_h + win->k_h;
    p.wp = (out->w - 1) * win->stride_w + win->k_w;
    p.hf = in->h - 1 + win->k_h;
    p.wf = in->w - 1 + win->k_w;
    p.pixels = (size_t)out->h * out->w;
    p.taps = window * in->c;
    p.shared = p.pointwise ? 0 : p.taps * (size_t)out->c;
    p.col = 0;
    if (!p.pointwise) {
        /* Forward and dw: the padded image or im2col of x; dx: the padded
         * dy or im2col of dy (flip), or the [P][K] product that col2im
         * scatters. */
        size_t fwd = p.direct ? (size_t)p.hp * p.wp * in->c : p.pixels * p.taps;
        size_t bwd = p.flip_direct ? (size_t)p.hf * p.wf * out->c
                     : p.flip      ? (size_t)in->h * in->w * window * out->c
                                   : p.pixels * p.taps;
        p.col = max_size(fwd, bwd);
    }
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
    return (p.shared + (size_t)p.groups * per_group) * sizeof(float);
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

/* The ReLU of the fused forward pass, the same select as et_relu_forward_fast. */
static void relu_inplace(size_t count, float *y)
{
#pragma omp simd
    for (size_t i = 0; i < count; i++)
        y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

/* ------------------------------------------------------------------------
 * Direct loops (few input channels)
 */

/* Rows and columns [-pad, hp - pad) and [-pad, wp - pad) of one image, zero
 * outside x: every window of the conv lies inside. xp: [hp][wp][in->c]. Only
 * the border is zeroed: the inside is overwritten. */
static void pad_image(const et_window *win, const et_dims *in, const float *x, int hp, int wp,
                      float *xp)
{
    const size_t ic = (size_t)in->c, row = (size_t)wp * ic;
    /* Clamped so that any padding works, even one wider than the window. */
    const int top = win->pad_top < hp ? win->pad_top : hp;
    const int lpad = win->pad_left < wp ? win->pad_left : wp;
    const int rows = in->h < hp - top ? in->h : hp - top;
    const int cols = in->w < wp - lpad ? in->w : wp - lpad;
    const size_t left = (size_t)lpad * ic, mid = (size_t)cols * ic;
    memset(xp, 0, (size_t)top * row * sizeof *xp);
    for (int iy = 0; iy < rows; iy++) {
        float *r = xp + (size_t)(iy + top) * row;
        memset(r, 0, left * sizeof *r);
        memcpy(r + left, x + (size_t)iy * in->w * ic, mid * sizeof *r);
        memset(r + left + mid, 0, (row - left - mid) * sizeof *r);
    }
    memset(xp + (size_t)(top + rows) * row, 0, (size_t)(hp - top - rows) * row * sizeof *xp);
}

/* Threads for the groups: as many as OpenMP gives, at most one per group.
 * The scratch holds one im2col (or padded-image, or dy) buffer per group;
 * each thread uses the one of its number, whichever groups it takes, so that
 * a buffer stays in its cache from one group to the next. What a buffer
 * holds is used only by the group that wrote it, so results do not depend on
 * which thread takes which group. */
static int team_of(const conv_plan *p)
{
    int t = omp_get_max_threads();
    return t < p->groups ? t : p->groups;
}

static et_fast_direct direct_of(const et_window *win, const conv_plan *p, const et_dims *in,
                                const et_dims *out)
{
    return (et_fast_direct){win->k_h, win->k_w, win->stride_h, win->stride_w, in->c,
                            p->wp,    out->h,   out->w,        out->c};
}

/* ------------------------------------------------------------------------
 * Forward
 */

/* Where the forward pass also pools: into y over windows win, from the
 * conv's output after the ReLU, and the argmax into arg unless it is NULL. */
typedef struct pool_target {
    const et_window *win;
    const et_dims *out;
    float *y;
    uint8_t *arg;
} pool_target;

/* Images [i0, i1) of the pool (the calling thread's share). */
static void pool_images(const pool_target *pool, const et_dims *out, const float *y, size_t i0,
                        size_t i1)
{
    const size_t out_img = (size_t)out->h * out->w * out->c;
    const size_t pool_img = (size_t)pool->out->h * pool->out->w * out->c;
    const et_dims yd = {(int)(i1 - i0), out->h, out->w, out->c};
    const et_dims pd = {(int)(i1 - i0), pool->out->h, pool->out->w, out->c};
    if (pool->arg)
        et_fast_maxpool_relu_arg_forward_serial(pool->win, &yd, y + i0 * out_img, &pd,
                                                pool->y + i0 * pool_img, pool->arg + i0 * pool_img);
    else
        et_fast_maxpool_forward_serial(pool->win, &yd, y + i0 * out_img, &pd,
                                       pool->y + i0 * pool_img);
}

static void conv_forward(const et_window *win, const et_dims *in, const float *x, const float *w,
                         const float *bias, const et_dims *out, float *y, void *scratch, int relu,
                         const pool_target *pool)
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
        if (relu)
            et_relu_forward_fast(rows * oc, y, y);
        if (pool) {
#pragma omp parallel for schedule(dynamic, 1) if (p.groups > 1)
            for (int g = 0; g < p.groups; g++)
                pool_images(pool, out, y, et_fast_split(in->n, p.groups, g),
                            et_fast_split(in->n, p.groups, g + 1));
        }
        return;
    }
    const size_t in_img = (size_t)in->h * in->w * in->c, out_img = p.pixels * oc;
    const et_fast_direct dd = direct_of(win, &p, in, out);
    float *wt = scratch, *cols = wt + p.shared;
    if (p.direct)
        for (int o = 0; o < oc; o++)
            for (int t = 0; t < k; t++)
                wt[(size_t)t * oc + o] = w[(size_t)o * k + t];
    else
        et_fast_blas_single_thread();
#pragma omp parallel for schedule(dynamic, 1) num_threads(team_of(&p)) if (p.groups > 1)
    for (int g = 0; g < p.groups; g++) {
        float *col = cols + (size_t)omp_get_thread_num() * p.col;
        size_t i0 = et_fast_split(in->n, p.groups, g), i1 = et_fast_split(in->n, p.groups, g + 1);
        for (size_t i = i0; i < i1; i++) {
            float *yi = y + i * out_img;
            if (p.direct) {
                pad_image(win, in, x + i * in_img, p.hp, p.wp, col);
                et_fast_direct_forward(&dd, col, wt, bias, relu, yi);
                continue;
            }
            im2col(win, in, x + i * in_img, out, col);
            if (bias)
                fill_bias(0, p.pixels, oc, bias, yi);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)p.pixels, oc, k, 1.0f, col, k,
                        w, k, beta, yi, oc);
            if (relu)
                relu_inplace(out_img, yi);
        }
        if (pool)
            pool_images(pool, out, y, i0, i1); /* the group's outputs, still in cache */
    }
}

void et_conv2d_forward_fast(const et_window *win, const et_dims *in, const float *x, const float *w,
                            const float *bias, const et_dims *out, float *y, void *scratch)
{
    conv_forward(win, in, x, w, bias, out, y, scratch, 0, NULL);
}

void et_conv2d_relu_forward_fast(const et_window *win, const et_dims *in, const float *x,
                                 const float *w, const float *bias, const et_dims *out, float *y,
                                 void *scratch)
{
    conv_forward(win, in, x, w, bias, out, y, scratch, 1, NULL);
}

void et_conv2d_relu_maxpool_forward_fast(const et_window *win, const et_dims *in, const float *x,
                                         const float *w, const float *bias, const et_dims *out,
                                         float *y, const et_window *pool_win,
                                         const et_dims *pool_out, float *pool_y, uint8_t *pool_arg,
                                         void *scratch)
{
    const pool_target pool = {pool_win, pool_out, pool_y, pool_arg};
    conv_forward(win, in, x, w, bias, out, y, scratch, 1, &pool);
}

/* ------------------------------------------------------------------------
 * Backward
 */

/* The flipped conv's window: stride 1, padding k - 1 - pad before. */
static et_window flip_window(const et_window *win)
{
    return (et_window){
        win->k_h, win->k_w, 1, 1, win->k_h - 1 - win->pad_top, win->k_w - 1 - win->pad_left};
}

/* dx of one image as the stride-1 conv of dy with the flipped weights wf
 * ([ic][k_h][k_w][oc]): im2col of dy over dx's pixels, then one GEMM. */
static void flip_input_grad(const et_window *win, const et_dims *in, const et_dims *out,
                            const float *wf, const float *dyi, float *col, float *dxi)
{
    const et_window fw = flip_window(win);
    const et_dims dyd = {1, out->h, out->w, out->c}, dxd = {1, in->h, in->w, in->c};
    const int kf = win->k_h * win->k_w * out->c, pixels = in->h * in->w;
    im2col(&fw, &dyd, dyi, &dxd, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, pixels, in->c, kf, 1.0f, col, kf, wf, kf,
                0.0f, dxi, in->c);
}

/* The flipped weights, w'[ic][k_h-1-ky][k_w-1-kx][oc] = w[oc][ky][kx][ic],
 * as a GEMM wants them ([ic][K'], transposed: 0) or as the direct loops do
 * ([K'][ic], transposed: 1). */
static void flip_weights(const et_window *win, int ic, int oc, const float *w, int transposed,
                         float *wf)
{
    const size_t kf = (size_t)win->k_h * win->k_w * oc;
    for (int o = 0; o < oc; o++)
        for (int ky = 0; ky < win->k_h; ky++)
            for (int kx = 0; kx < win->k_w; kx++)
                for (int i = 0; i < ic; i++) {
                    size_t t =
                        ((size_t)(win->k_h - 1 - ky) * win->k_w + (win->k_w - 1 - kx)) * oc + o;
                    wf[transposed ? t * ic + i : i * kf + t] =
                        w[(((size_t)o * win->k_h + ky) * win->k_w + kx) * ic + i];
                }
}

/* dx of one image as the flipped conv of dy by the direct loops: dy padded
 * into col, then wf as [K'][ic]. */
static void flip_input_grad_direct(const et_window *win, const conv_plan *p, const et_dims *in,
                                   const et_dims *out, const float *wf, const float *dyi,
                                   float *col, float *dxi)
{
    const et_window fw = flip_window(win);
    const et_dims dyd = {1, out->h, out->w, out->c};
    const et_fast_direct fd = {win->k_h, win->k_w, 1, 1, out->c, p->wf, in->h, in->w, in->c};
    pad_image(&fw, &dyd, dyi, p->hf, p->wf, col);
    et_fast_direct_forward(&fd, col, wf, NULL, 0, dxi);
}

/* Where the backward pass finds dy: the argument (pool NULL), or formed group
 * by group from the gradient dy of the max pool that follows the conv's ReLU,
 * routed by arg (the forward pass's argmax) or, when arg is NULL, by y (the
 * ReLU's output, the pool's input). */
typedef struct pool_source {
    const et_window *win;
    const et_dims *out;
    const float *y, *dy;
    const uint8_t *arg;
} pool_source;

/* The most images a group holds: the first groups get the extra ones. */
static size_t group_images(int n, int groups)
{
    return et_fast_split((size_t)n, (size_t)groups, 1);
}

static void conv_backward(const et_window *win, const et_dims *in, const float *x, const float *w,
                          const et_dims *out, const float *dy, const pool_source *pool, float *dx,
                          float *dw, float *dbias, void *scratch)
{
    if (!dx && !dw && !dbias)
        return;
    const conv_plan p = plan_of(win, in, out);
    const int oc = out->c, ic = in->c, k = (int)p.taps;
    const size_t in_img = (size_t)in->h * in->w * ic, dw_len = (size_t)oc * p.taps;
    const size_t out_img = p.pixels * oc;
    const et_fast_direct dd = direct_of(win, &p, in, out);
    float *wf = scratch, *cols = wf + p.shared;
    float *dw_parts = cols + (size_t)p.groups * p.col;
    float *db_parts = dw_parts + (size_t)p.groups * dw_len;
    float *dy_bufs = db_parts + (size_t)p.groups * oc; /* pool: one per group */
    if (dx && p.flip)
        flip_weights(win, ic, oc, w, p.flip_direct, wf);
    et_fast_blas_single_thread();
#pragma omp parallel for schedule(dynamic, 1) num_threads(team_of(&p)) if (p.groups > 1)
    for (int g = 0; g < p.groups; g++) {
        const int slot = omp_get_thread_num();
        size_t i0 = et_fast_split(in->n, p.groups, g), i1 = et_fast_split(in->n, p.groups, g + 1);
        float *dwp = dw_parts + g * dw_len;
        /* The group's dy, [i1 - i0][P][oc]. */
        const float *dyg = dy ? dy + i0 * out_img : NULL;
        if (pool) {
            float *buf = dy_bufs + (size_t)slot * group_images(in->n, p.groups) * out_img;
            const size_t pool_img = (size_t)pool->out->h * pool->out->w * oc;
            const et_dims yd = {(int)(i1 - i0), out->h, out->w, oc};
            const et_dims pd = {(int)(i1 - i0), pool->out->h, pool->out->w, oc};
            if (pool->arg)
                et_fast_maxpool_relu_arg_backward_serial(
                    pool->win, &yd, &pd, pool->arg + i0 * pool_img, pool->dy + i0 * pool_img, buf);
            else
                et_fast_maxpool_relu_backward_serial(pool->win, &yd, pool->y + i0 * out_img, &pd,
                                                     pool->dy + i0 * pool_img, buf);
            dyg = buf;
        }
        if (p.pointwise) {
            /* The group's rows of x and dy are contiguous: one GEMM each. */
            const int rows = (int)((i1 - i0) * p.pixels);
            if (dw)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, oc, ic, rows, 1.0f, dyg, oc,
                            x + i0 * in_img, ic, 0.0f, dwp, ic);
            if (dx)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, ic, oc, 1.0f, dyg, oc,
                            w, ic, 0.0f, dx + i0 * in_img, ic);
        } else {
            float *col = cols + (size_t)slot * p.col;
            for (size_t i = i0; i < i1; i++) {
                const float *dyi = dyg + (i - i0) * out_img;
                if (dw && p.direct) {
                    pad_image(win, in, x + i * in_img, p.hp, p.wp, col);
                    et_fast_direct_weight_grad(&dd, col, dyi, i > i0, dwp);
                } else if (dw) {
                    im2col(win, in, x + i * in_img, out, col);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, oc, k, (int)p.pixels, 1.0f,
                                dyi, oc, col, k, i == i0 ? 0.0f : 1.0f, dwp, k);
                }
                if (dx && p.flip_direct) {
                    flip_input_grad_direct(win, &p, in, out, wf, dyi, col, dx + i * in_img);
                } else if (dx && p.flip) {
                    flip_input_grad(win, in, out, wf, dyi, col, dx + i * in_img);
                } else if (dx) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p.pixels, k, oc,
                                1.0f, dyi, oc, w, k, 0.0f, col, k);
                    col2im(win, in, col, out, dx + i * in_img);
                }
            }
        }
        if (dbias)
            et_fast_colsum(0, (i1 - i0) * p.pixels, oc, dyg, db_parts + (size_t)g * oc);
    }
    if (dw)
        et_fast_sum_parts(p.groups, dw_len, dw_len, dw_parts, dw);
    if (dbias)
        et_fast_sum_parts(p.groups, oc, oc, db_parts, dbias);
}

void et_conv2d_backward_fast(const et_window *win, const et_dims *in, const float *x,
                             const float *w, const et_dims *out, const float *dy, float *dx,
                             float *dw, float *dbias, void *scratch)
{
    conv_backward(win, in, x, w, out, dy, NULL, dx, dw, dbias, scratch);
}

size_t et_conv2d_relu_maxpool_scratch_size_fast(const et_window *win, const et_dims *in,
                                                const et_dims *out)
{
    conv_plan p = plan_of(win, in, out);
    size_t dy_bufs = (size_t)p.groups * group_images(in->n, p.groups) * p.pixels * out->c;
    return et_conv2d_scratch_size_fast(win, in, out) + dy_bufs * sizeof(float);
}

void et_conv2d_relu_maxpool_backward_fast(const et_window *win, const et_dims *in, const float *x,
                                          const float *w, const et_dims *out, const float *y,
                                          const uint8_t *pool_arg, const et_window *pool_win,
                                          const et_dims *pool_out, const float *pool_dy, float *dx,
                                          float *dw, float *dbias, void *scratch)
{
    const pool_source pool = {pool_win, pool_out, y, pool_dy, pool_arg};
    conv_backward(win, in, x, w, out, NULL, &pool, dx, dw, dbias, scratch);
}
