/* Quantization-aware training: int8 fake quantization of weights and
 * activations inside the float training engine (straight-through
 * estimator: the backward pass ignores the rounding). */
#include "nn/net_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

et_status et_net_set_fake_quant(et_net *n, const et_fake_quant *acts, size_t n_acts, et_error *err)
{
    if (n_acts == 0) {
        n->fq = false;
        return ET_OK;
    }
    for (size_t k = 0; k < n_acts; k++)
        if (acts[k].node < 0 || acts[k].node >= n->n_nodes || !(acts[k].scale > 0) ||
            !isfinite(acts[k].scale) || acts[k].zero_point < -128 || acts[k].zero_point > 127)
            return et_error_set(err, ET_EINVAL,
                                "fake quantization %zu: node %d, scale %g, zero point %d", k,
                                acts[k].node, (double)acts[k].scale, (int)acts[k].zero_point);
    if (!n->qparams) {
        n->qparams = malloc(n->n_params * sizeof *n->qparams + 1);
        n->fq_scale = calloc((size_t)n->n_nodes, sizeof *n->fq_scale);
        n->fq_zero = calloc((size_t)n->n_nodes, sizeof *n->fq_zero);
        if (!n->qparams || !n->fq_scale || !n->fq_zero)
            return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    memset(n->fq_scale, 0, (size_t)n->n_nodes * sizeof *n->fq_scale);
    for (size_t k = 0; k < n_acts; k++) {
        n->fq_scale[acts[k].node] = acts[k].scale;
        n->fq_zero[acts[k].node] = acts[k].zero_point;
    }
    n->fq = true;
    return ET_OK;
}

/* Rounds weights [channel c of `channels`] to int8 per channel; weight k of
 * channel c sits at w[c * c_stride + k * k_stride]. */
static void fq_channels(float *w, size_t channels, size_t per, size_t c_stride, size_t k_stride)
{
#pragma omp parallel for schedule(static) if (channels * per > 65536)
    for (size_t c = 0; c < channels; c++) {
        float m = 0;
        for (size_t k = 0; k < per; k++)
            m = fmaxf(m, fabsf(w[c * c_stride + k * k_stride]));
        if (m == 0)
            continue;
        float s = m / 127.0f;
        for (size_t k = 0; k < per; k++) {
            float *v = &w[c * c_stride + k * k_stride];
            *v = s * fminf(127.0f, fmaxf(-127.0f, roundf(*v / s)));
        }
    }
}

void et_net_fq_weights(et_net *n)
{
    memcpy(n->qparams, n->params, n->n_params * sizeof *n->qparams);
    for (int i = 0; i < n->n_nodes; i++) {
        const et_nn_node *nd = n->nodes[i].node;
        const et_layer_info *l = &nd->info;
        float *w = n->qparams + nd->weight;
        size_t oc = (size_t)l->units;
        switch (l->kind) {
        case ET_NODE_CONV2D: /* [oc][k_h][k_w][in_c] */
        case ET_NODE_DENSE: /* [out][in] */ {
            size_t per =
                (size_t)(l->kind == ET_NODE_CONV2D ? l->kernel_h * l->kernel_w * nd->in_dims.c
                                                   : nd->in_dims.h * nd->in_dims.w * nd->in_dims.c);
            fq_channels(w, oc, per, per, 1);
            break;
        }
        case ET_NODE_DEPTHWISE_CONV2D: /* [k_h][k_w][oc], channel fastest */
            fq_channels(w, oc, (size_t)l->kernel_h * l->kernel_w, 1, oc);
            break;
        default: break;
        }
    }
}

void et_net_fq_output(et_net *n, int i, float *y, size_t total)
{
    float s = n->fq_scale[i], inv = 1.0f / s;
    float zp = (float)n->fq_zero[i], lo = -128.0f - zp, hi = 127.0f - zp;
#pragma omp parallel for schedule(static) if (total > 65536)
    for (size_t e = 0; e < total; e++)
        y[e] = s * fminf(hi, fmaxf(lo, roundf(y[e] * inv)));
}
