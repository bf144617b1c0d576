/* Lowering: the training graph (nn.h) to the graph the runtime runs. Batch
 * norm folds into the convolution before it, ReLU/ReLU6 into the clamp of
 * the op before them, dropout vanishes, flatten becomes an in-place reshape,
 * global average pooling an average pool over the whole input. */
#include "quant/quant_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void et_qgraph_free(et_qgraph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_ops; i++) {
        free(g->ops[i].w);
        free(g->ops[i].b);
    }
    for (int i = 0; i < g->n_t; i++) {
        free(g->t[i].ch_sum);
        free(g->t[i].hist);
    }
    free(g->ops);
    free(g->t);
    memset(g, 0, sizeof *g);
}

static int new_tensor(et_qgraph *g, et_shape s, int node)
{
    et_qtensor *t = &g->t[g->n_t];
    memset(t, 0, sizeof *t);
    t->h = s.h;
    t->w = s.w;
    t->c = s.c;
    t->node = node;
    t->alias = -1;
    t->same_q_as = -1;
    return g->n_t++;
}

static et_qop *new_op(et_qgraph *g, etrt_op_kind kind, int node, int in, int out)
{
    et_qop *op = &g->ops[g->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->node = node;
    op->in[0] = in;
    op->in[1] = -1;
    op->out = out;
    op->depth_multiplier = 1;
    return op;
}

static void set_window(et_qop *op, const et_layer_info *l)
{
    op->k_h = l->kernel_h;
    op->k_w = l->kernel_w;
    op->stride_h = l->stride_h;
    op->stride_w = l->stride_w;
    op->pad_top = l->pad_top;
    op->pad_left = l->pad_left;
}

/* Copies a layer's weights and bias (zeros when it has none). */
static et_status take_weights(et_qop *op, const et_layer_info *l, const float *params, size_t w_n,
                              int out_c, et_error *err)
{
    op->w = malloc(w_n * sizeof *op->w);
    op->b = calloc((size_t)out_c, sizeof *op->b);
    if (!op->w || !op->b)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    memcpy(op->w, params + l->param_offset, w_n * sizeof *op->w);
    if (l->use_bias)
        memcpy(op->b, params + l->param_offset + w_n, (size_t)out_c * sizeof *op->b);
    op->w_n = w_n;
    op->out_c = out_c;
    return ET_OK;
}

/* w' = w * gamma / sqrt(var + eps) per output channel; b' = beta + (b - mean) * that. */
static void fold_batchnorm(et_qop *op, const et_layer_info *bn, const float *params)
{
    int c = op->out_c;
    const float *gamma = params + bn->param_offset, *beta = gamma + c, *mean = beta + c,
                *var = mean + c;
    for (int oc = 0; oc < c; oc++) {
        double s = gamma[oc] / sqrt((double)var[oc] + bn->bn_epsilon);
        op->b[oc] = (float)(beta[oc] + ((double)op->b[oc] - mean[oc]) * s);
        if (op->kind == ETRT_OP_CONV2D) {
            size_t per = op->w_n / (size_t)c;
            for (size_t k = 0; k < per; k++)
                op->w[(size_t)oc * per + k] = (float)(op->w[(size_t)oc * per + k] * s);
        } else { /* depthwise: [k_h][k_w][c], channel fastest */
            for (size_t k = (size_t)oc; k < op->w_n; k += (size_t)c)
                op->w[k] = (float)(op->w[k] * s);
        }
    }
}

et_status et_qgraph_lower(const et_model *m, const float *params, et_qgraph *g, et_error *err)
{
    memset(g, 0, sizeof *g);
    int n = et_model_node_count(m);
    int *val = malloc((size_t)n * sizeof *val);   /* node -> tensor holding its value */
    int *open = malloc((size_t)n * sizeof *open); /* node -> op that may still absorb */
    int *uses = calloc((size_t)n, sizeof *uses);  /* consumers per node */
    g->ops = calloc((size_t)n, sizeof *g->ops);
    g->t = calloc((size_t)n, sizeof *g->t);
    if (!val || !open || !uses || !g->ops || !g->t) {
        free(val);
        free(open);
        free(uses);
        et_qgraph_free(g);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < et_model_layer(m, i)->n_inputs; k++)
            uses[et_model_layer(m, i)->inputs[k]]++;
    et_status rc = ET_OK;
    for (int i = 0; i < n && rc == ET_OK; i++) {
        const et_layer_info *l = et_model_layer(m, i);
        int src = l->n_inputs > 0 ? l->inputs[0] : -1;
        int in = src >= 0 ? val[src] : -1;
        val[i] = -1;
        open[i] = -1;
        switch (l->kind) {
        case ET_NODE_INPUT: val[i] = g->input = new_tensor(g, l->out, i); break;
        case ET_NODE_CONV2D:
        case ET_NODE_DEPTHWISE_CONV2D: {
            bool dw = l->kind == ET_NODE_DEPTHWISE_CONV2D;
            et_qop *op = new_op(g, dw ? ETRT_OP_DEPTHWISE_CONV2D : ETRT_OP_CONV2D, i, in,
                                new_tensor(g, l->out, i));
            set_window(op, l);
            if (dw)
                op->depth_multiplier = l->depth_multiplier;
            const et_layer_info *il = et_model_layer(m, src);
            size_t w_n = (size_t)l->kernel_h * l->kernel_w * l->out.c * (dw ? 1 : il->out.c);
            rc = take_weights(op, l, params, w_n, l->out.c, err);
            val[i] = op->out;
            open[i] = g->n_ops - 1;
            break;
        }
        case ET_NODE_DENSE: {
            et_qop *op = new_op(g, ETRT_OP_FULLY_CONNECTED, i, in, new_tensor(g, l->out, i));
            const et_qtensor *t = &g->t[in];
            rc = take_weights(op, l, params, (size_t)t->h * t->w * t->c * l->out.c, l->out.c, err);
            val[i] = op->out;
            open[i] = g->n_ops - 1;
            break;
        }
        case ET_NODE_BATCHNORM:
        case ET_NODE_RELU:
        case ET_NODE_RELU6: {
            int o = open[src];
            bool bn = l->kind == ET_NODE_BATCHNORM;
            bool ok = o >= 0 && uses[src] == 1 && g->ops[o].act == ET_QACT_NONE &&
                      (!bn || g->ops[o].kind == ETRT_OP_CONV2D ||
                       g->ops[o].kind == ETRT_OP_DEPTHWISE_CONV2D);
            if (!ok) {
                rc = et_error_set(err, ET_EINVAL,
                                  "layer '%s' (%s) cannot be merged into the layer before it; "
                                  "the runtime has no separate %s op",
                                  l->name, et_node_kind_name(l->kind), et_node_kind_name(l->kind));
                break;
            }
            if (bn)
                fold_batchnorm(&g->ops[o], l, params);
            else
                g->ops[o].act = l->kind == ET_NODE_RELU ? ET_QACT_RELU : ET_QACT_RELU6;
            val[i] = in;
            g->t[in].node = i;
            open[i] = o;
            break;
        }
        case ET_NODE_MAXPOOL:
        case ET_NODE_AVGPOOL: {
            et_qop *op = new_op(g, l->kind == ET_NODE_MAXPOOL ? ETRT_OP_MAX_POOL : ETRT_OP_AVG_POOL,
                                i, in, new_tensor(g, l->out, i));
            set_window(op, l);
            g->t[op->out].same_q_as = in;
            val[i] = op->out;
            break;
        }
        case ET_NODE_GLOBAL_AVGPOOL: {
            et_qop *op = new_op(g, ETRT_OP_AVG_POOL, i, in, new_tensor(g, l->out, i));
            op->k_h = g->t[in].h;
            op->k_w = g->t[in].w;
            op->stride_h = op->stride_w = 1;
            g->t[op->out].same_q_as = in;
            val[i] = op->out;
            break;
        }
        case ET_NODE_ADD: {
            et_qop *op = new_op(g, ETRT_OP_ADD, i, in, new_tensor(g, l->out, i));
            op->in[1] = val[l->inputs[1]];
            val[i] = op->out;
            open[i] = g->n_ops - 1;
            break;
        }
        case ET_NODE_FLATTEN: {
            et_qop *op = new_op(g, ETRT_OP_RESHAPE, i, in, new_tensor(g, l->out, i));
            g->t[op->out].alias = in;
            g->t[op->out].same_q_as = in;
            val[i] = op->out;
            break;
        }
        case ET_NODE_DROPOUT: val[i] = in; break;
        case ET_NODE_SOFTMAX: {
            et_qop *op = new_op(g, ETRT_OP_SOFTMAX, i, in, new_tensor(g, l->out, i));
            val[i] = op->out;
            break;
        }
        }
    }
    if (rc == ET_OK)
        g->output = val[n - 1];
    free(val);
    free(open);
    free(uses);
    if (rc < 0)
        et_qgraph_free(g);
    return rc;
}
