/* The execution engine: planning a net over a model graph, the forward pass
 * (training and inference), the loss and the backward pass.
 *
 * Memory, planned in et_net_create and never changed:
 * - one activation buffer of max_batch samples per node, except that
 *   flatten reads its input in place (NHWC is already flat) and a ReLU or
 *   ReLU6 that is the only consumer of its input overwrites it (every
 *   backward pass that needs those values needs the activated ones: the
 *   activation's own, and its consumers');
 * - gradients of activations in one pool, placed by lifetime (net_plan.c);
 * - parameters, their gradients and the optimizer's moments, each one flat
 *   buffer in the model's layout.
 *
 * The backward pass walks the nodes from the last down. Kernels overwrite
 * their gradient outputs, so the first consumer of a tensor to send it a
 * gradient writes the buffer and later ones (the skip path of a residual
 * block) write into acc_tmp and add it on. */
#include "nn/net_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ET_NET_MAX_BATCH 65536
/* Buffers start on 64-byte boundaries (16 floats): whole cache lines for
 * the vectorised kernels. */
#define ET_NET_ALIGN 16

static size_t round_up(size_t n)
{
    return (n + ET_NET_ALIGN - 1) / ET_NET_ALIGN * ET_NET_ALIGN;
}

/* calloc that counts the bytes and remembers a failure in n->oom; count 0
 * still gives a valid pointer. */
static void *net_calloc(et_net *n, size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size);
    if (!p)
        n->oom = true;
    else
        n->bytes += (count ? count : 1) * size;
    return p;
}

void et_net_destroy(et_net *n)
{
    if (!n)
        return;
    free(n->nodes);
    free(n->params);
    free(n->grads);
    free(n->opt_m);
    free(n->opt_v);
    free(n->ranges);
    free(n->acts);
    free(n->grad_pool);
    free(n->acc_tmp);
    free(n->loss_probs);
    free(n->qparams);
    free(n->fq_scale);
    free(n->fq_zero);
    free(n->scratch);
    free(n->masks);
    free(n->bn_saved);
    free(n);
}

static et_status resolve_kernels(et_kernel_set *k, et_error *err)
{
    if (*k == ET_KERNELS_REF || *k == ET_KERNELS_FAST)
        return ET_OK;
    if (*k != ET_KERNELS_AUTO)
        return et_error_set(err, ET_EINVAL, "unknown kernel set %d", (int)*k);
    const char *env = getenv("ET_KERNELS");
    if (!env || !*env || !strcmp(env, "fast"))
        *k = ET_KERNELS_FAST;
    else if (!strcmp(env, "ref"))
        *k = ET_KERNELS_REF;
    else
        return et_error_set(err, ET_EINVAL, "ET_KERNELS=%s: use ref or fast (or unset it)", env);
    return ET_OK;
}

/* The engine runs graphs whose input is node 0 and whose softmax is the
 * last node and the only one; the model builders make no other kind. */
static et_status check_graph(const et_model *m, et_error *err)
{
    int count = et_model_node_count(m);
    if (count < 2 || et_nn_node_at(m, 0)->info.kind != ET_NODE_INPUT ||
        et_nn_node_at(m, count - 1)->info.kind != ET_NODE_SOFTMAX)
        return et_error_set(err, ET_EINVAL,
                            "the model must start with its input and end with a softmax");
    for (int i = 1; i < count; i++) {
        const et_layer_info *l = &et_nn_node_at(m, i)->info;
        if ((l->kind == ET_NODE_SOFTMAX && i != count - 1) || l->kind == ET_NODE_INPUT ||
            (unsigned)l->kind >= ET_NODE_KIND_COUNT || l->n_inputs < 1 ||
            l->n_inputs != (l->kind == ET_NODE_ADD ? 2 : 1))
            return et_error_set(err, ET_EINVAL, "layer '%s' (%s) cannot be run by the engine",
                                l->name, et_node_kind_name(l->kind));
    }
    return ET_OK;
}

/* Node i's input k. */
static et_net_node *input_of(et_net *n, int i, int k)
{
    return &n->nodes[n->nodes[i].node->info.inputs[k]];
}

/* Whether node i's output is its input's buffer: flatten (a view), or the
 * ReLU(6) that runs in place over it. */
static bool borrows_input(et_net *n, int i)
{
    return i > 0 &&
           (n->nodes[i].node->info.kind == ET_NODE_FLATTEN || input_of(n, i, 0)->shares_with_relu);
}

/* Activation buffers: which nodes own one, then one allocation for all. */
static void plan_activations(et_net *n)
{
    size_t total = 0, mb = (size_t)n->max_batch;
    for (int i = 0; i < n->n_nodes; i++) {
        et_net_node *r = &n->nodes[i];
        et_node_kind kind = r->node->info.kind;
        if (i > 0 && (kind == ET_NODE_RELU || kind == ET_NODE_RELU6)) {
            et_net_node *in = input_of(n, i, 0);
            et_node_kind ik = in->node->info.kind;
            in->shares_with_relu = in->n_consumers == 1 && ik != ET_NODE_INPUT &&
                                   ik != ET_NODE_FLATTEN && ik != ET_NODE_RELU &&
                                   ik != ET_NODE_RELU6;
        }
    }
    if (n->inference)
        return;
    for (int i = 0; i < n->n_nodes; i++)
        if (!borrows_input(n, i))
            total += round_up(mb * n->nodes[i].count);
    n->acts = net_calloc(n, total, sizeof(float));
    if (n->oom)
        return;
    size_t at = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        et_net_node *r = &n->nodes[i];
        if (borrows_input(n, i)) {
            r->y = input_of(n, i, 0)->y;
        } else {
            r->y = n->acts + at;
            at += round_up(mb * r->count);
        }
        r->kept = true;
    }
}

/* An inference net's activations, placed by lifetime (after plan_fusions):
 * a buffer lives from the forward step that writes it (a max pool's is
 * written by the fused conv2d before its ReLU) to the last step that reads
 * it or a node that borrows it, or to the end for the last node and the
 * nodes the caller keeps. Two buffers alive at the same step never overlap,
 * so no kernel writes over its own input. */
static void plan_inference_activations(et_net *n, const int *keep, int n_keep)
{
    int count = n->n_nodes, end = count;
    size_t *size = calloc((size_t)count, sizeof *size),
           *offset = calloc((size_t)count, sizeof *offset);
    int *first = calloc((size_t)count, sizeof *first), *last = calloc((size_t)count, sizeof *last),
        *owner = calloc((size_t)count, sizeof *owner);
    size_t total = (size_t)-1;
    if (size && offset && first && last && owner) {
        for (int i = 0; i < count; i++) {
            owner[i] = borrows_input(n, i) ? owner[n->nodes[i].node->info.inputs[0]] : i;
            if (owner[i] == i) {
                size[i] = round_up((size_t)n->max_batch * n->nodes[i].count);
                first[i] = last[i] = i;
            }
        }
        for (int i = 1; i < count; i++)
            if (n->nodes[i].fwd_pool) /* conv -> ReLU -> pool: the pool's y is written here */
                first[n->nodes[n->nodes[i].last_consumer].last_consumer] = i;
        for (int i = 0; i < count; i++) {
            int o = owner[i], until = n->nodes[i].last_consumer;
            if (until > last[o])
                last[o] = until;
        }
        last[owner[count - 1]] = end;
        for (int k = 0; k < n_keep; k++)
            last[owner[keep[k]]] = end;
        total = et_net_plan_lifetimes(count, size, first, last, offset);
    }
    if (total != (size_t)-1)
        n->acts = net_calloc(n, total, sizeof(float));
    else
        n->oom = true;
    for (int i = 0; !n->oom && i < count; i++) {
        n->nodes[i].y = n->acts + offset[owner[i]];
        n->nodes[i].kept = last[owner[i]] == end;
    }
    free(size);
    free(offset);
    free(first);
    free(last);
    free(owner);
}

/* Batch norm -> ReLU(6) pairs run through the fused kernels (net_internal.h:
 * fwd_act, bwd_bn, bwd_by): a batch norm whose only consumer is the
 * activation that runs in place over its output, unless a max pool already
 * runs that activation's backward pass. */
static void plan_bn_fusions(et_net *n)
{
    const et_net_ops *k = n->ops;
    if (!k->bn_act_train || !k->bn_act_infer || !k->bn_act_bwd)
        return;
    for (int i = 1; i < n->n_nodes; i++) {
        et_net_node *r = &n->nodes[i];
        if (r->node->info.kind != ET_NODE_BATCHNORM || !r->shares_with_relu)
            continue;
        et_net_node *act = &n->nodes[r->last_consumer];
        et_node_kind ak = act->node->info.kind;
        r->fwd_act = ak == ET_NODE_RELU6  ? ET_ACT_RELU6
                     : ak == ET_NODE_RELU ? ET_ACT_RELU
                                          : ET_ACT_NONE;
        if (r->fwd_act != ET_ACT_NONE && act->bwd_by < 0) {
            act->bwd_bn = true;
            r->bwd_by = r->last_consumer;
        }
    }
}

/* Which conv2d -> ReLU -> max pool chains run through the fused kernels
 * (net_internal.h: fwd_relu, fwd_pool, bwd_relu, bwd_conv, bwd_by), then
 * the batch norm -> ReLU(6) pairs. */
static void plan_fusions(et_net *n)
{
    const et_net_ops *k = n->ops;
    for (int i = 0; i < n->n_nodes; i++)
        n->nodes[i].bwd_by = -1;
    for (int i = 1; i < n->n_nodes; i++) {
        et_net_node *r = &n->nodes[i];
        if (r->node->info.kind == ET_NODE_CONV2D && r->shares_with_relu && k->conv2d_relu_fwd) {
            const et_net_node *relu = &n->nodes[r->last_consumer];
            r->fwd_relu = relu->node->info.kind == ET_NODE_RELU;
            r->fwd_pool = r->fwd_relu && relu->n_consumers == 1 && k->conv2d_relu_maxpool_fwd &&
                          n->nodes[relu->last_consumer].node->info.kind == ET_NODE_MAXPOOL;
        }
        if (r->node->info.kind != ET_NODE_MAXPOOL || !k->maxpool_relu_bwd)
            continue;
        int ri = r->node->info.inputs[0];
        et_net_node *relu = &n->nodes[ri];
        if (ri == 0 || relu->node->info.kind != ET_NODE_RELU || relu->n_consumers != 1)
            continue;
        r->bwd_relu = true;
        relu->bwd_by = i;
        int ci = relu->node->info.inputs[0];
        et_net_node *conv = &n->nodes[ci];
        if (ci > 0 && conv->node->info.kind == ET_NODE_CONV2D && conv->n_consumers == 1 &&
            input_of(n, ci, 0)->n_consumers == 1 && k->conv2d_relu_maxpool_bwd) {
            r->bwd_conv = true;
            conv->bwd_by = i;
        }
    }
    plan_bn_fusions(n);
}

/* Gradients of activations, placed by lifetime. Backward step s runs node
 * n_nodes - 1 - s; node i's gradient is written first by its last consumer
 * and read last by its own backward pass. Nodes whose backward pass a fused
 * kernel runs (bwd_by) need none, and they write their inputs' gradients at
 * that kernel's step. */
static void plan_gradients(et_net *n)
{
    int count = n->n_nodes;
    size_t *size = calloc((size_t)count, sizeof *size),
           *offset = calloc((size_t)count, sizeof *offset);
    int *first = calloc((size_t)count, sizeof *first), *last = calloc((size_t)count, sizeof *last);
    size_t total = (size_t)-1, acc = 0;
    if (size && offset && first && last) {
        for (int i = 0; i < count; i++) {
            const et_net_node *r = &n->nodes[i];
            if (r->last_consumer < 0 || r->bwd_by >= 0)
                continue;
            int writer = r->last_consumer;
            if (n->nodes[writer].bwd_by >= 0)
                writer = n->nodes[writer].bwd_by;
            size[i] = round_up((size_t)n->max_batch * r->count);
            first[i] = count - 1 - writer;
            last[i] = count - 1 - i;
            if (r->n_consumers > 1 && size[i] > acc)
                acc = size[i];
        }
        total = et_net_plan_lifetimes(count, size, first, last, offset);
    }
    if (total != (size_t)-1) {
        n->grad_pool = net_calloc(n, total, sizeof(float));
        n->acc_tmp = net_calloc(n, acc, sizeof(float));
        for (int i = 0; !n->oom && i < count; i++)
            n->nodes[i].dy = size[i] ? n->grad_pool + offset[i] : NULL;
    } else {
        n->oom = true;
    }
    free(size);
    free(offset);
    free(first);
    free(last);
}

/* Whether node i is a max pool fused both ways with the conv2d and ReLU
 * before it, with windows small enough for its argmax to fit a byte. */
static bool wants_arg(const et_net *n, int i)
{
    const et_net_node *r = &n->nodes[i];
    if (!r->bwd_conv || n->inference)
        return false;
    int conv = n->nodes[r->node->info.inputs[0]].node->info.inputs[0];
    return n->nodes[conv].fwd_pool && r->node->win.k_h * r->node->win.k_w < 255;
}

/* Dropout masks, max pools' argmax, batch-norm statistics, kernel scratch,
 * trainable ranges. */
static void plan_extras(et_net *n)
{
    size_t mask_bytes = 0, bn_floats = 0, scratch = 0;
    int ranges = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        const et_nn_node *nd = n->nodes[i].node;
        et_dims in = nd->in_dims, out = nd->out_dims;
        in.n = out.n = n->max_batch;
        size_t s = 0;
        if (n->inference &&
            (nd->info.kind == ET_NODE_DROPOUT || nd->info.kind == ET_NODE_BATCHNORM))
            ; /* no masks (dropout is off) and no saved statistics */
        else if (nd->info.kind == ET_NODE_DROPOUT || wants_arg(n, i))
            mask_bytes += round_up((size_t)n->max_batch * n->nodes[i].count);
        else if (nd->info.kind == ET_NODE_BATCHNORM)
            bn_floats += 2 * round_up((size_t)nd->out_dims.c);
        else if (nd->info.kind == ET_NODE_CONV2D && n->nodes[i].bwd_by >= 0 && !n->inference)
            s = n->ops->conv2d_relu_maxpool_scratch(&nd->win, &in, &out);
        else if (nd->info.kind == ET_NODE_CONV2D)
            s = n->ops->conv2d_scratch(&nd->win, &in, &out);
        else if (nd->info.kind == ET_NODE_DEPTHWISE_CONV2D && !n->inference)
            s = n->ops->dw_scratch(&nd->win, &in, &out); /* its forward pass needs none */
        if (s > scratch)
            scratch = s;
        ranges += nd->info.trainable_params > 0;
    }
    n->masks = net_calloc(n, mask_bytes, 1);
    n->bn_saved = net_calloc(n, bn_floats, sizeof(float));
    n->scratch = net_calloc(n, scratch, 1);
    n->ranges = net_calloc(n, (size_t)ranges, sizeof *n->ranges);
    n->loss_probs = net_calloc(n, (size_t)n->max_batch * n->classes, sizeof(float));
    if (n->oom)
        return;
    size_t mask_at = 0, bn_at = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        et_net_node *r = &n->nodes[i];
        const et_layer_info *l = &r->node->info;
        if (n->inference) {
            continue; /* nothing more below: no masks, statistics or ranges */
        } else if (l->kind == ET_NODE_DROPOUT) {
            r->mask = n->masks + mask_at;
            mask_at += round_up((size_t)n->max_batch * r->count);
        } else if (wants_arg(n, i)) {
            r->arg = n->masks + mask_at;
            mask_at += round_up((size_t)n->max_batch * r->count);
        } else if (l->kind == ET_NODE_BATCHNORM) {
            size_t c = round_up((size_t)r->node->out_dims.c);
            r->save_mean = n->bn_saved + bn_at;
            r->save_invstd = n->bn_saved + bn_at + c;
            bn_at += 2 * c;
        }
        /* Every node's trainable floats come first in its block (weights
         * and bias, or gamma and beta; nn.h), so one range covers them. */
        if (l->trainable_params > 0)
            n->ranges[n->n_ranges++] = (et_net_range){l->param_offset, (size_t)l->trainable_params};
    }
}

/* Checks the arguments of the et_net_create functions. */
static et_status check_create(const et_model *m, int max_batch, et_net **out, et_error *err)
{
    if (!out)
        return et_error_set(err, ET_EINVAL, "et_net_create: out is NULL");
    *out = NULL;
    if (!m)
        return et_error_set(err, ET_EINVAL, "et_net_create: no model");
    if (max_batch < 1 || max_batch > ET_NET_MAX_BATCH)
        return et_error_set(err, ET_EINVAL, "batch size %d is outside 1..%d", max_batch,
                            ET_NET_MAX_BATCH);
    return check_graph(m, err);
}

/* The planning shared by training and inference nets: keep and n_keep only
 * for inference. */
static et_status net_create(const et_model *m, int max_batch, const et_net_ops *ops, bool inference,
                            const int *keep, int n_keep, et_net **out, et_error *err)
{
    et_net *n = calloc(1, sizeof *n);
    if (!n)
        return et_error_set(err, ET_ENOMEM, "out of memory creating the net");
    n->model = m;
    n->ops = ops;
    n->inference = inference;
    n->n_nodes = et_model_node_count(m);
    n->max_batch = max_batch;
    n->classes = et_model_classes(m);
    n->n_params = (size_t)et_model_totals_all(m).params;
    n->nodes = net_calloc(n, (size_t)n->n_nodes, sizeof *n->nodes);
    n->params = net_calloc(n, n->n_params, sizeof(float));
    if (!inference) {
        n->grads = net_calloc(n, n->n_params, sizeof(float));
        n->opt_m = net_calloc(n, n->n_params, sizeof(float));
        n->opt_v = net_calloc(n, n->n_params, sizeof(float));
    }
    if (!n->oom) {
        for (int i = 0; i < n->n_nodes; i++) {
            et_net_node *r = &n->nodes[i];
            r->node = et_nn_node_at(m, i);
            r->count = et_dims_count(&r->node->out_dims);
            r->last_consumer = -1;
            for (int k = 0; k < r->node->info.n_inputs; k++) {
                et_net_node *in = input_of(n, i, k);
                in->n_consumers++;
                in->last_consumer = i;
            }
        }
        plan_activations(n);
        plan_fusions(n);
        if (!n->oom && inference)
            plan_inference_activations(n, keep, n_keep);
        else if (!n->oom)
            plan_gradients(n);
        if (!n->oom)
            plan_extras(n);
    }
    if (n->oom) {
        size_t bytes = n->bytes;
        et_net_destroy(n);
        return et_error_set(err, ET_ENOMEM,
                            "out of memory planning the net for batch %d (%zu MB allocated "
                            "before it failed); use a smaller batch or model",
                            max_batch, bytes >> 20);
    }
    et_net_plan_backward(n);
    *out = n;
    return ET_OK;
}

et_status et_net_create_with(const et_model *m, int max_batch, et_kernel_set kernels, et_net **out,
                             et_error *err)
{
    et_status st = check_create(m, max_batch, out, err);
    if (st < 0 || (st = resolve_kernels(&kernels, err)) < 0)
        return st;
    return net_create(m, max_batch, et_net_ops_for(kernels), false, NULL, 0, out, err);
}

et_status et_net_create(const et_model *m, int max_batch, et_net **out, et_error *err)
{
    return et_net_create_with(m, max_batch, ET_KERNELS_AUTO, out, err);
}

et_status et_net_create_inference(const et_model *m, int max_batch, const int *keep, int n_keep,
                                  et_net **out, et_error *err)
{
    et_status st = check_create(m, max_batch, out, err);
    if (st < 0)
        return st;
    if (n_keep < 0 || (n_keep > 0 && !keep))
        return et_error_set(err, ET_EINVAL, "et_net_create_inference: bad list of nodes to keep");
    for (int k = 0; k < n_keep; k++)
        if (keep[k] < 0 || keep[k] >= et_model_node_count(m))
            return et_error_set(err, ET_EINVAL, "et_net_create_inference: no node %d to keep",
                                keep[k]);
    et_kernel_set kernels = ET_KERNELS_AUTO;
    if ((st = resolve_kernels(&kernels, err)) < 0)
        return st;
    return net_create(m, max_batch, et_net_ops_for(kernels), true, keep, n_keep, out, err);
}

et_status et_net_create_ops(const et_model *m, int max_batch, const et_net_ops *ops, et_net **out,
                            et_error *err)
{
    et_status st = check_create(m, max_batch, out, err);
    return st < 0 ? st : net_create(m, max_batch, ops, false, NULL, 0, out, err);
}

bool et_net_is_inference(const et_net *n)
{
    return n->inference;
}

const et_model *et_net_model(const et_net *n)
{
    return n->model;
}

int et_net_max_batch(const et_net *n)
{
    return n->max_batch;
}

et_kernel_set et_net_kernels(const et_net *n)
{
    return n->ops->kind;
}

size_t et_net_memory_bytes(const et_net *n)
{
    return n->bytes;
}

float *et_net_params(et_net *n)
{
    return n->params;
}

size_t et_net_param_count(const et_net *n)
{
    return n->n_params;
}

const float *et_net_grads(const et_net *n)
{
    return n->grads;
}

int et_net_batch(const et_net *n)
{
    return n->batch;
}

const float *et_net_probs(const et_net *n)
{
    return n->nodes[n->n_nodes - 1].y;
}

const float *et_net_node_output(const et_net *n, int node)
{
    return node >= 0 && node < n->n_nodes && n->nodes[node].kept ? n->nodes[node].y : NULL;
}

void et_net_set_input_grad(et_net *n, bool on)
{
    if (n->input_grad == on)
        return;
    n->input_grad = on;
    n->input_grad_valid = false;
    et_net_plan_backward(n);
}

const float *et_net_input_grad(const et_net *n)
{
    return n->input_grad && n->input_grad_valid ? n->nodes[0].dy : NULL;
}

/* ------------------------------------------------------------------------
 * Forward
 */

static et_dims batch_dims(et_dims d, int batch)
{
    d.n = batch;
    return d;
}

/* Parameters as the kernels see them: with quantization-aware training on,
 * the copy whose weights are fake-quantized (the optimizer still updates
 * the float parameters: the straight-through estimator). */
static const float *param(const et_net *n, size_t offset)
{
    return offset == ET_NN_NO_PARAM ? NULL : (n->fq ? n->qparams : n->params) + offset;
}

/* Row-wise softmax, computed as the loss kernel computes it (double,
 * log-sum-exp), so that et_net_probs matches the probabilities the loss sees. */
static void softmax_rows(int batch, int classes, const float *z, float *p)
{
    for (int b = 0; b < batch; b++, z += classes, p += classes) {
        double zmax = z[0], sum = 0.0;
        for (int k = 1; k < classes; k++)
            zmax = z[k] > zmax ? z[k] : zmax;
        for (int k = 0; k < classes; k++)
            sum += exp(z[k] - zmax);
        double log_sum = log(sum);
        for (int k = 0; k < classes; k++)
            p[k] = (float)exp(z[k] - zmax - log_sum);
    }
}

/* Inverted dropout's keep mask: element e of node i at step step_seed is
 * kept when its uniform draw is >= rate, as TensorFlow's dropout does. */
static void draw_mask(uint8_t *mask, size_t total, double rate, uint64_t step_seed, int node)
{
    uint64_t key = et_net_key(step_seed, (uint64_t)node, UINT64_C(0x64726F70)); /* "drop" */
#pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t e = 0; e < total; e++)
        mask[e] = et_net_uniform(key, e) >= rate;
}

/* Whether node i's forward pass runs in the node before it: a ReLU in its
 * conv2d, a ReLU or ReLU6 in its batch norm, a max pool in the conv2d
 * before its ReLU (net_internal.h). */
static bool forward_absorbed(et_net *n, int i)
{
    et_node_kind kind = n->nodes[i].node->info.kind;
    if (n->fq || (kind != ET_NODE_RELU && kind != ET_NODE_RELU6 && kind != ET_NODE_MAXPOOL))
        return false;
    const et_net_node *in = input_of(n, i, 0);
    if (in->fwd_act != ET_ACT_NONE)
        return true;
    if (kind != ET_NODE_MAXPOOL)
        return kind == ET_NODE_RELU && in->fwd_relu;
    int relu = n->nodes[i].node->info.inputs[0];
    return relu > 0 && in->node->info.kind == ET_NODE_RELU && input_of(n, relu, 0)->fwd_pool;
}

static void forward_node(et_net *n, int i, const float *x, int b, bool training, uint64_t seed)
{
    et_net_node *r = &n->nodes[i];
    const et_nn_node *nd = r->node;
    const et_net_ops *k = n->ops;
    const float *in = i > 0 ? input_of(n, i, 0)->y : NULL;
    et_dims id = batch_dims(nd->in_dims, b), od = batch_dims(nd->out_dims, b);
    size_t total = (size_t)b * r->count;
    switch (nd->info.kind) {
    case ET_NODE_INPUT: memcpy(r->y, x, total * sizeof *x); break;
    case ET_NODE_CONV2D:
        if (r->fwd_pool && !n->fq) {
            et_net_node *pool = &n->nodes[n->nodes[r->last_consumer].last_consumer];
            et_dims pd = batch_dims(pool->node->out_dims, b);
            pool->arg_valid = training && pool->arg;
            k->conv2d_relu_maxpool_fwd(&nd->win, &id, in, param(n, nd->weight), param(n, nd->bias),
                                       &od, r->y, &pool->node->win, &pd, pool->y,
                                       pool->arg_valid ? pool->arg : NULL, n->scratch);
        } else {
            (r->fwd_relu && !n->fq ? k->conv2d_relu_fwd : k->conv2d_fwd)(
                &nd->win, &id, in, param(n, nd->weight), param(n, nd->bias), &od, r->y, n->scratch);
        }
        break;
    case ET_NODE_DEPTHWISE_CONV2D:
        k->dw_fwd(&nd->win, &id, in, param(n, nd->weight), param(n, nd->bias), &od, r->y,
                  n->scratch);
        break;
    case ET_NODE_DENSE:
        k->dense_fwd(b, (int)input_of(n, i, 0)->count, nd->info.units, in, param(n, nd->weight),
                     param(n, nd->bias), r->y);
        break;
    case ET_NODE_BATCHNORM: {
        size_t rows = (size_t)b * od.h * od.w;
        float *p = n->params;
        /* Moving statistics warm up as a plain average of the batches seen
         * so far (momentum t / (t + 1) at the t-th update) until that is
         * the layer's own momentum: from their start values (mean 0,
         * variance 1), Keras' momentum 0.999 would need thousands of steps
         * before inference mode (evaluation, int8 calibration) sees the
         * data's statistics, more than a short training or a small data
         * set has. */
        et_batchnorm_params bp = nd->bn;
        double warm = (double)n->bn_updates / (double)(n->bn_updates + 1);
        if (warm < bp.momentum)
            bp.momentum = (float)warm;
        if (r->fwd_act != ET_ACT_NONE && !n->fq && training)
            k->bn_act_train(&bp, r->fwd_act, rows, od.c, in, p + nd->gamma, p + nd->beta, r->y,
                            r->save_mean, r->save_invstd, p + nd->moving_mean, p + nd->moving_var);
        else if (r->fwd_act != ET_ACT_NONE && !n->fq)
            k->bn_act_infer(&nd->bn, r->fwd_act, rows, od.c, in, p + nd->gamma, p + nd->beta,
                            p + nd->moving_mean, p + nd->moving_var, r->y);
        else if (training)
            k->bn_train(&bp, rows, od.c, in, p + nd->gamma, p + nd->beta, r->y, r->save_mean,
                        r->save_invstd, p + nd->moving_mean, p + nd->moving_var);
        else
            k->bn_infer(&nd->bn, rows, od.c, in, p + nd->gamma, p + nd->beta, p + nd->moving_mean,
                        p + nd->moving_var, r->y);
        break;
    }
    case ET_NODE_RELU: k->relu_fwd(total, in, r->y); break;
    case ET_NODE_RELU6: k->relu6_fwd(total, in, r->y); break;
    case ET_NODE_MAXPOOL: k->maxpool_fwd(&nd->win, &id, in, &od, r->y); break;
    case ET_NODE_AVGPOOL: k->avgpool_fwd(&nd->win, &id, in, &od, r->y); break;
    case ET_NODE_GLOBAL_AVGPOOL: k->gap_fwd(&id, in, r->y); break;
    case ET_NODE_ADD: k->add_fwd(total, in, input_of(n, i, 1)->y, r->y); break;
    case ET_NODE_FLATTEN: break; /* r->y is its input's buffer */
    case ET_NODE_DROPOUT:
        if (training) {
            double rate = nd->info.dropout_rate;
            draw_mask(r->mask, total, rate, seed, i);
            k->dropout_fwd(total, in, r->mask, (float)(1.0 / (1.0 - rate)), r->y);
        } else {
            memcpy(r->y, in, total * sizeof *in);
        }
        break;
    case ET_NODE_SOFTMAX: softmax_rows(b, n->classes, in, r->y); break;
    }
}

et_status et_net_forward(et_net *n, const float *x, int batch, bool training, uint64_t step_seed,
                         et_error *err)
{
    if (!x)
        return et_error_set(err, ET_EINVAL, "et_net_forward: no input");
    if (batch < 1 || batch > n->max_batch)
        return et_error_set(err, ET_EINVAL, "batch of %d samples: this net takes 1..%d", batch,
                            n->max_batch);
    if (training && n->inference)
        return et_error_set(err, ET_EINVAL, "this net was made for inference only");
    if (n->fq)
        et_net_fq_weights(n);
    for (int i = 0; i < n->n_nodes; i++)
        n->nodes[i].arg_valid = false;
    for (int i = 0; i < n->n_nodes; i++) {
        if (forward_absorbed(n, i))
            continue;
        forward_node(n, i, x, batch, training, step_seed);
        if (n->fq && n->fq_scale[i] > 0)
            et_net_fq_output(n, i, n->nodes[i].y, (size_t)batch * n->nodes[i].count);
    }
    n->batch = batch;
    n->last_training = training;
    if (training)
        n->bn_updates++;
    n->input_grad_valid = false;
    return ET_OK;
}

/* ------------------------------------------------------------------------
 * Loss and backward
 */

static et_status check_loss_args(const et_net *n, const int32_t *labels, double smoothing,
                                 const float *class_weights, et_error *err)
{
    if (n->batch < 1)
        return et_error_set(err, ET_EINVAL, "the loss needs a forward pass first");
    if (!labels)
        return et_error_set(err, ET_EINVAL, "the loss needs labels");
    if (!(smoothing >= 0 && smoothing < 1))
        return et_error_set(err, ET_EINVAL, "label smoothing %g is outside [0, 1)", smoothing);
    for (int b = 0; b < n->batch; b++)
        if (labels[b] < 0 || labels[b] >= n->classes)
            return et_error_set(err, ET_EINVAL,
                                "sample %d of the batch has label %d; the model "
                                "has classes 0..%d",
                                b, (int)labels[b], n->classes - 1);
    for (int c = 0; class_weights && c < n->classes; c++)
        if (!(class_weights[c] >= 0 && isfinite(class_weights[c])))
            return et_error_set(err, ET_EINVAL,
                                "class weight %d is %g; weights must be finite "
                                "and >= 0",
                                c, (double)class_weights[c]);
    return ET_OK;
}

et_status et_net_loss(et_net *n, const int32_t *labels, double label_smoothing,
                      const float *class_weights, double *loss, et_error *err)
{
    et_status st = check_loss_args(n, labels, label_smoothing, class_weights, err);
    if (st < 0)
        return st;
    et_softmax_xent_params p = {(float)label_smoothing, class_weights};
    const float *logits = input_of(n, n->n_nodes - 1, 0)->y;
    double l = et_softmax_xent_forward_ref(&p, n->batch, n->classes, logits, labels, n->loss_probs);
    if (loss)
        *loss = l;
    return ET_OK;
}

/* Where node i's backward pass writes the gradient for its input slot k:
 * the input's own buffer, acc_tmp when another consumer wrote there first,
 * or NULL when nothing upstream needs it. */
static float *grad_out(et_net *n, int i, int k)
{
    const et_net_node *in = input_of(n, i, k);
    if (!in->needs_grad)
        return NULL;
    return n->nodes[i].acc[k] ? n->acc_tmp : in->dy;
}

/* Adds acc_tmp into the input's gradient when grad_out chose it. */
static void grad_done(et_net *n, int i, int k)
{
    et_net_node *in = input_of(n, i, k);
    if (in->needs_grad && n->nodes[i].acc[k])
        n->ops->add_fwd((size_t)n->batch * in->count, in->dy, n->acc_tmp, in->dy);
}

/* The add and flatten gradients are copies of dy: added straight on. */
static void pass_through(et_net *n, int i, int k, const float *dy)
{
    et_net_node *in = input_of(n, i, k);
    size_t total = (size_t)n->batch * in->count;
    if (!in->needs_grad)
        return;
    if (n->nodes[i].acc[k])
        n->ops->add_fwd(total, in->dy, dy, in->dy);
    else
        memcpy(in->dy, dy, total * sizeof *dy);
}

static float *grad_param(et_net *n, size_t offset)
{
    return offset == ET_NN_NO_PARAM ? NULL : n->grads + offset;
}

/* Max pool i's backward pass with those of the ReLU and the conv2d before it
 * (bwd_conv): the conv's gradients from the pool's, through the fused kernel. */
static void backward_conv_relu_pool(et_net *n, int i)
{
    const et_nn_node *pool = n->nodes[i].node;
    int relu = pool->info.inputs[0], c = n->nodes[relu].node->info.inputs[0];
    const et_nn_node *conv = n->nodes[c].node;
    int b = n->batch;
    et_dims id = batch_dims(conv->in_dims, b), od = batch_dims(conv->out_dims, b);
    et_dims pd = batch_dims(pool->out_dims, b);
    float *dx = grad_out(n, c, 0);
    const et_net_node *r = &n->nodes[i];
    n->ops->conv2d_relu_maxpool_bwd(&conv->win, &id, input_of(n, c, 0)->y, param(n, conv->weight),
                                    &od, n->nodes[relu].y, r->arg_valid ? r->arg : NULL, &pool->win,
                                    &pd, r->dy, dx, grad_param(n, conv->weight),
                                    grad_param(n, conv->bias), n->scratch);
    if (dx)
        grad_done(n, c, 0);
}

/* ReLU(6) i's backward pass with that of the batch norm before it (bwd_bn),
 * through the fused kernel. Under fake quantization the batch norm's output
 * was rounded before the activation, so the activation's mask is read from
 * its output rather than recomputed. */
static void backward_bn_act(et_net *n, int i)
{
    const et_net_node *r = &n->nodes[i];
    int bi = r->node->info.inputs[0];
    const et_net_node *bn = &n->nodes[bi];
    const et_nn_node *nd = bn->node;
    et_dims od = batch_dims(nd->out_dims, n->batch);
    float *dx = grad_out(n, bi, 0);
    n->ops->bn_act_bwd(bn->fwd_act, (size_t)n->batch * od.h * od.w, od.c, input_of(n, bi, 0)->y,
                       n->fq ? r->y : NULL, param(n, nd->gamma), param(n, nd->beta), bn->save_mean,
                       bn->save_invstd, r->dy, dx, grad_param(n, nd->gamma),
                       grad_param(n, nd->beta));
    if (dx)
        grad_done(n, bi, 0);
}

static void backward_node(et_net *n, int i)
{
    et_net_node *r = &n->nodes[i];
    const et_nn_node *nd = r->node;
    const et_net_ops *k = n->ops;
    int b = n->batch;
    const float *x = input_of(n, i, 0)->y, *dy = r->dy;
    et_dims id = batch_dims(nd->in_dims, b), od = batch_dims(nd->out_dims, b);
    size_t total = (size_t)b * r->count;
    float *dx = grad_out(n, i, 0);
    switch (nd->info.kind) {
    case ET_NODE_CONV2D:
        k->conv2d_bwd(&nd->win, &id, x, param(n, nd->weight), &od, dy, dx,
                      grad_param(n, nd->weight), grad_param(n, nd->bias), n->scratch);
        break;
    case ET_NODE_DEPTHWISE_CONV2D:
        k->dw_bwd(&nd->win, &id, x, param(n, nd->weight), &od, dy, dx, grad_param(n, nd->weight),
                  grad_param(n, nd->bias), n->scratch);
        break;
    case ET_NODE_DENSE:
        k->dense_bwd(b, (int)input_of(n, i, 0)->count, nd->info.units, x, param(n, nd->weight), dy,
                     dx, grad_param(n, nd->weight), grad_param(n, nd->bias));
        break;
    case ET_NODE_BATCHNORM:
        k->bn_bwd((size_t)b * od.h * od.w, od.c, x, param(n, nd->gamma), r->save_mean,
                  r->save_invstd, dy, dx, grad_param(n, nd->gamma), grad_param(n, nd->beta));
        break;
    case ET_NODE_RELU:
    case ET_NODE_RELU6:
        if (r->bwd_bn) {
            backward_bn_act(n, i);
            return;
        }
        (nd->info.kind == ET_NODE_RELU ? k->relu_bwd : k->relu6_bwd)(total, r->y, dy, dx);
        break;
    case ET_NODE_MAXPOOL:
        if (r->bwd_conv) {
            backward_conv_relu_pool(n, i);
            return;
        }
        if (r->bwd_relu) {
            /* Straight to the gradient of the ReLU's input, as the ReLU's own
             * backward pass would write it. */
            int relu = nd->info.inputs[0];
            float *dr = grad_out(n, relu, 0);
            k->maxpool_relu_bwd(&nd->win, &id, x, &od, dy, dr);
            if (dr)
                grad_done(n, relu, 0);
            return;
        }
        k->maxpool_bwd(&nd->win, &id, x, &od, dy, dx);
        break;
    case ET_NODE_AVGPOOL: k->avgpool_bwd(&nd->win, &id, &od, dy, dx); break;
    case ET_NODE_GLOBAL_AVGPOOL: k->gap_bwd(&id, dy, dx); break;
    case ET_NODE_DROPOUT:
        k->dropout_bwd(total, dy, r->mask, (float)(1.0 / (1.0 - nd->info.dropout_rate)), dx);
        break;
    case ET_NODE_ADD:
        pass_through(n, i, 0, dy);
        pass_through(n, i, 1, dy);
        return;
    case ET_NODE_FLATTEN: pass_through(n, i, 0, dy); return;
    case ET_NODE_INPUT:
    case ET_NODE_SOFTMAX: return; /* not reached: the input has no backward, the loss is apart */
    }
    /* A kernel asked for no dx skips it; the pooling and activation kernels
     * always write one, and they only run when it is wanted (runs_back). */
    if (dx)
        grad_done(n, i, 0);
}

et_status et_net_backward(et_net *n, const int32_t *labels, double label_smoothing,
                          const float *class_weights, double *loss, et_error *err)
{
    et_status st = check_loss_args(n, labels, label_smoothing, class_weights, err);
    if (st < 0)
        return st;
    if (n->inference)
        return et_error_set(err, ET_EINVAL, "this net was made for inference only");
    if (!n->last_training)
        return et_error_set(err, ET_EINVAL, "backward needs a training forward pass before it");
    int last = n->n_nodes - 1;
    et_softmax_xent_params p = {(float)label_smoothing, class_weights};
    const float *logits = input_of(n, last, 0)->y;
    /* The loss kernel's probabilities go where the logits' gradient goes,
     * and its backward pass turns them into that gradient in place. */
    float *dlogits = grad_out(n, last, 0);
    float *probs = dlogits ? dlogits : n->loss_probs;
    double l = et_softmax_xent_forward_ref(&p, n->batch, n->classes, logits, labels, probs);
    if (dlogits) {
        et_softmax_xent_backward_ref(&p, n->batch, n->classes, probs, labels, dlogits);
        grad_done(n, last, 0);
    }
    for (int i = last - 1; i > 0; i--)
        if (n->nodes[i].runs_back && n->nodes[i].bwd_by < 0)
            backward_node(n, i);
    n->input_grad_valid = n->input_grad;
    if (loss)
        *loss = l;
    return ET_OK;
}
