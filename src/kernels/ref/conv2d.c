/* Reference conv2d, NHWC input, OHWI weights.
 *
 * Both passes are written as gathers: every output element (y, dx, dw, dbias)
 * is one sum, accumulated in double and stored once. That keeps the code a
 * direct transcription of the formulas, makes the float rounding independent
 * of loop order, and needs no scratch memory. */
#include "kernels/kernels.h"

/* The output position whose window puts kernel tap k on input position i, or -1
 * when no output does (the tap falls between strides or past the output). */
static int tap_output(int i, int k, int pad, int stride, int out_len)
{
    int t = i + pad - k;
    if (t < 0 || t % stride != 0)
        return -1;
    t /= stride;
    return t < out_len ? t : -1;
}

size_t et_conv2d_scratch_size_ref(const et_window *win, const et_dims *in, const et_dims *out)
{
    (void)win;
    (void)in;
    (void)out;
    return 0;
}

void et_conv2d_forward_ref(const et_window *win, const et_dims *in, const float *x, const float *w,
                           const float *bias, const et_dims *out, float *y, void *scratch)
{
    (void)scratch;
    const int ic_n = in->c;
    for (int n = 0; n < out->n; n++)
        for (int oy = 0; oy < out->h; oy++)
            for (int ox = 0; ox < out->w; ox++)
                for (int oc = 0; oc < out->c; oc++) {
                    double acc = bias ? bias[oc] : 0.0;
                    for (int ky = 0; ky < win->k_h; ky++) {
                        int iy = oy * win->stride_h - win->pad_top + ky;
                        if (iy < 0 || iy >= in->h)
                            continue;
                        for (int kx = 0; kx < win->k_w; kx++) {
                            int ix = ox * win->stride_w - win->pad_left + kx;
                            if (ix < 0 || ix >= in->w)
                                continue;
                            const float *xp = x + et_dims_index(in, n, iy, ix, 0);
                            const float *wp =
                                w + (((size_t)oc * win->k_h + ky) * win->k_w + kx) * ic_n;
                            for (int ic = 0; ic < ic_n; ic++)
                                acc += (double)xp[ic] * wp[ic];
                        }
                    }
                    y[et_dims_index(out, n, oy, ox, oc)] = (float)acc;
                }
}

/* dL/dx[n][iy][ix][ic] = sum over taps (ky, kx) that some output (oy, ox) places
 * on this pixel, and over oc, of dy[n][oy][ox][oc] * w[oc][ky][kx][ic]. */
static void input_grad(const et_window *win, const et_dims *in, const float *w, const et_dims *out,
                       const float *dy, float *dx)
{
    for (int n = 0; n < in->n; n++)
        for (int iy = 0; iy < in->h; iy++)
            for (int ix = 0; ix < in->w; ix++)
                for (int ic = 0; ic < in->c; ic++) {
                    double acc = 0.0;
                    for (int ky = 0; ky < win->k_h; ky++) {
                        int oy = tap_output(iy, ky, win->pad_top, win->stride_h, out->h);
                        if (oy < 0)
                            continue;
                        for (int kx = 0; kx < win->k_w; kx++) {
                            int ox = tap_output(ix, kx, win->pad_left, win->stride_w, out->w);
                            if (ox < 0)
                                continue;
                            const float *g = dy + et_dims_index(out, n, oy, ox, 0);
                            for (int oc = 0; oc < out->c; oc++)
                                acc +=
                                    (double)g[oc] *
                                    w[(((size_t)oc * win->k_h + ky) * win->k_w + kx) * in->c + ic];
                        }
                    }
                    dx[et_dims_index(in, n, iy, ix, ic)] = (float)acc;
                }
}

/* dL/dw[oc][ky][kx][ic] = sum over n, oy, ox of dy[n][oy][ox][oc] * x[n][iy][ix][ic],
 * where (iy, ix) is the input pixel under tap (ky, kx); padding contributes 0. */
static void weight_grad(const et_window *win, const et_dims *in, const float *x, const et_dims *out,
                        const float *dy, float *dw)
{
    size_t i = 0;
    for (int oc = 0; oc < out->c; oc++)
        for (int ky = 0; ky < win->k_h; ky++)
            for (int kx = 0; kx < win->k_w; kx++)
                for (int ic = 0; ic < in->c; ic++) {
                    double acc = 0.0;
                    for (int n = 0; n < out->n; n++)
                        for (int oy = 0; oy < out->h; oy++) {
                            int iy = oy * win->stride_h - win->pad_top + ky;
                            if (iy < 0 || iy >= in->h)
                                continue;
                            for (int ox = 0; ox < out->w; ox++) {
                                int ix = ox * win->stride_w - win->pad_left + kx;
                                if (ix < 0 || ix >= in->w)
                                    continue;
                                acc += (double)dy[et_dims_index(out, n, oy, ox, oc)] *
                                       x[et_dims_index(in, n, iy, ix, ic)];
                            }
                        }
                    dw[i++] = (float)acc;
                }
}

static void bias_grad(const et_dims *out, const float *dy, float *dbias)
{
    size_t pixels = (size_t)out->n * out->h * out->w;
    for (int oc = 0; oc < out->c; oc++) {
        double acc = 0.0;
        for (size_t p = 0; p < pixels; p++)
            acc += dy[p * out->c + oc];
        dbias[oc] = (float)acc;
    }
}

void et_conv2d_backward_ref(const et_window *win, const et_dims *in, const float *x, const float *w,
                            const et_dims *out, const float *dy, float *dx, float *dw, float *dbias,
                            void *scratch)
{
    (void)scratch;
    if (dx)
        input_grad(win, in, w, out, dy, dx);
    if (dw)
        weight_grad(win, in, x, out, dy, dw);
    if (dbias)
        bias_grad(out, dy, dbias);
}
