/* Reference depthwise conv2d with a depth multiplier, NHWC input, weights
 * [k_h][k_w][in_c * multiplier]; output channel oc reads input channel
 * oc / multiplier. Gathers with double accumulators, as in conv2d.c. */
#include "kernels/kernels.h"

/* The output position whose window puts tap k on input position i, or -1. */
static int tap_output(int i, int k, int pad, int stride, int out_len)
{
    int t = i + pad - k;
    if (t < 0 || t % stride != 0)
        return -1;
    t /= stride;
    return t < out_len ? t : -1;
}

size_t et_depthwise_conv2d_scratch_size_ref(const et_window *win, const et_dims *in,
                                            const et_dims *out)
{
    (void)win;
    (void)in;
    (void)out;
    return 0;
}

void et_depthwise_conv2d_forward_ref(const et_window *win, const et_dims *in, const float *x,
                                     const float *w, const float *bias, const et_dims *out,
                                     float *y, void *scratch)
{
    (void)scratch;
    const int mult = out->c / in->c;
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
                            acc += (double)x[et_dims_index(in, n, iy, ix, oc / mult)] *
                                   w[((size_t)ky * win->k_w + kx) * out->c + oc];
                        }
                    }
                    y[et_dims_index(out, n, oy, ox, oc)] = (float)acc;
                }
}

/* dL/dx[n][iy][ix][ic] sums, over the multiplier's channels oc = ic*mult + m and
 * over the taps that land on this pixel, dy[n][oy][ox][oc] * w[ky][kx][oc]. */
static void input_grad(const et_window *win, const et_dims *in, const float *w, const et_dims *out,
                       const float *dy, float *dx)
{
    const int mult = out->c / in->c;
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
                            for (int m = 0; m < mult; m++) {
                                int oc = ic * mult + m;
                                acc += (double)dy[et_dims_index(out, n, oy, ox, oc)] *
                                       w[((size_t)ky * win->k_w + kx) * out->c + oc];
                            }
                        }
                    }
                    dx[et_dims_index(in, n, iy, ix, ic)] = (float)acc;
                }
}

/* dL/dw[ky][kx][oc] = sum over n, oy, ox of dy[n][oy][ox][oc] * x[n][iy][ix][oc / mult]. */
static void weight_grad(const et_window *win, const et_dims *in, const float *x, const et_dims *out,
                        const float *dy, float *dw)
{
    const int mult = out->c / in->c;
    for (int ky = 0; ky < win->k_h; ky++)
        for (int kx = 0; kx < win->k_w; kx++)
            for (int oc = 0; oc < out->c; oc++) {
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
                                   x[et_dims_index(in, n, iy, ix, oc / mult)];
                        }
                    }
                dw[((size_t)ky * win->k_w + kx) * out->c + oc] = (float)acc;
            }
}

void et_depthwise_conv2d_backward_ref(const et_window *win, const et_dims *in, const float *x,
                                      const float *w, const et_dims *out, const float *dy,
                                      float *dx, float *dw, float *dbias, void *scratch)
{
    (void)scratch;
    if (dx)
        input_grad(win, in, w, out, dy, dx);
    if (dw)
        weight_grad(win, in, x, out, dy, dw);
    if (dbias) {
        size_t pixels = (size_t)out->n * out->h * out->w;
        for (int oc = 0; oc < out->c; oc++) {
            double acc = 0.0;
            for (size_t p = 0; p < pixels; p++)
                acc += dy[p * out->c + oc];
            dbias[oc] = (float)acc;
        }
    }
}
