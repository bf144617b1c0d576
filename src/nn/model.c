/* The model graph: appending nodes (shapes, windows, parameter blocks, MACs),
 * the public accessors and et_model_create_from_impulse. */
#include "nn/nn_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps a model's parameter buffer addressable with 32-bit counts on the
 * training side and far above any model this tool is for (MobileNetV2 1.0
 * has 3.5 M parameters). */
#define ET_NN_MAX_PARAMS ((int64_t)1 << 30)

static const char *const kind_names[ET_NODE_KIND_COUNT] = {
    "input",   "conv2d",  "depthwise_conv2d", "dense", "batchnorm", "relu",    "relu6",
    "maxpool", "avgpool", "global_avgpool",   "add",   "flatten",   "dropout", "softmax",
};

const char *et_node_kind_name(et_node_kind kind)
{
    return (unsigned)kind < ET_NODE_KIND_COUNT ? kind_names[kind] : "?";
}

et_model *et_nn_begin(et_model_kind arch, int classes, et_error *err)
{
    et_model *m = calloc(1, sizeof *m);
    if (!m) {
        et_error_set(err, ET_ENOMEM, "out of memory building the model");
        return NULL;
    }
    m->arch = arch;
    m->classes = classes;
    m->err = err;
    et_arena_init(&m->arena, 4096);
    return m;
}

int et_nn_fail(et_model *m, et_status code, const char *fmt, ...)
{
    if (m->status < 0)
        return -1;
    m->status = code;
    if (m->err) {
        va_list ap;
        va_start(ap, fmt);
        m->err->code = code;
        vsnprintf(m->err->msg, sizeof m->err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

et_status et_nn_finish(et_model *m, et_model **out)
{
    et_status st = m->status;
    m->err = NULL;
    if (st < 0) {
        et_model_destroy(m);
        *out = NULL;
        return st;
    }
    *out = m;
    return ET_OK;
}

void et_model_destroy(et_model *m)
{
    if (!m)
        return;
    et_arena_free(&m->arena);
    free(m->nodes);
    free(m);
}

/* Checks that `in` names an existing node (a failed earlier call gives -1). */
static bool input_ok(et_model *m, int in)
{
    if (m->status < 0)
        return false;
    if (in < 0 || in >= m->n_nodes) {
        et_nn_fail(m, ET_EINVAL, "internal: node %d has no such input %d", m->n_nodes, in);
        return false;
    }
    return true;
}

/* Formats a node name from a builder's printf-style arguments. */
#define FORMAT_NAME(buf, fmt)                                                                      \
    do {                                                                                           \
        va_list ap_;                                                                               \
        va_start(ap_, fmt);                                                                        \
        vsnprintf(buf, sizeof buf, fmt, ap_);                                                      \
        va_end(ap_);                                                                               \
    } while (0)

/* Appends a node of kind named name; NULL after an error. Its output shape
 * defaults to input 0's (none when in is -1). */
static et_nn_node *push(et_model *m, et_node_kind kind, int in, const char *name)
{
    if (m->status < 0)
        return NULL;
    if (m->n_nodes == m->cap_nodes) {
        int cap = m->cap_nodes ? 2 * m->cap_nodes : 64;
        et_nn_node *nodes = realloc(m->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            et_nn_fail(m, ET_ENOMEM, "out of memory building the model");
            return NULL;
        }
        m->nodes = nodes;
        m->cap_nodes = cap;
    }
    char *copy = et_arena_strdup(&m->arena, name);
    if (!copy) {
        et_nn_fail(m, ET_ENOMEM, "out of memory building the model");
        return NULL;
    }
    et_nn_node *n = &m->nodes[m->n_nodes];
    memset(n, 0, sizeof *n);
    n->info.kind = kind;
    n->info.name = copy;
    n->info.inputs[0] = n->info.inputs[1] = -1;
    n->weight = n->bias = n->gamma = n->beta = n->moving_mean = n->moving_var = ET_NN_NO_PARAM;
    if (in >= 0) {
        const et_nn_node *src = &m->nodes[in];
        n->info.n_inputs = 1;
        n->info.inputs[0] = in;
        n->in_dims = src->out_dims;
        n->out_dims = src->out_dims;
        n->info.flat = src->info.flat;
    }
    return n;
}

/* Makes node n part of the model: info.out from out_dims, parameter offsets
 * for a node with `weights` + `bias` trainable floats (conv, dense) or a
 * batch norm over bn_c channels. Returns the node's index. */
static int commit(et_model *m, et_nn_node *n, int64_t weights, int64_t bias, int bn_c)
{
    n->info.out = (et_shape){n->out_dims.h, n->out_dims.w, n->out_dims.c};
    int64_t count = weights + bias + 4 * (int64_t)bn_c;
    if ((int64_t)m->n_params + count > ET_NN_MAX_PARAMS)
        return et_nn_fail(m, ET_EINVAL,
                          "layer '%s' takes the model past %lld parameters; use a smaller input, "
                          "fewer filters or a smaller alpha",
                          n->info.name, (long long)ET_NN_MAX_PARAMS);
    size_t at = m->n_params;
    n->info.param_offset = at;
    if (weights > 0) {
        n->weight = at;
        at += (size_t)weights;
    }
    if (bias > 0) {
        n->bias = at;
        at += (size_t)bias;
    }
    if (bn_c > 0) {
        n->gamma = at;
        n->beta = at + (size_t)bn_c;
        n->moving_mean = at + 2 * (size_t)bn_c;
        n->moving_var = at + 3 * (size_t)bn_c;
        at += 4 * (size_t)bn_c;
    }
    n->info.trainable_params = weights + bias + 2 * (int64_t)bn_c;
    n->info.non_trainable_params = 2 * (int64_t)bn_c;
    m->n_params = at;
    return m->n_nodes++;
}

int et_nn_input(et_model *m, int h, int w, int c, const char *name)
{
    if (m->status < 0)
        return -1;
    if (m->n_nodes != 0)
        return et_nn_fail(m, ET_EINVAL, "internal: the input must be node 0");
    if (h < 1 || w < 1 || c < 1)
        return et_nn_fail(m, ET_EINVAL, "input %dx%dx%d: every side must be >= 1", h, w, c);
    et_nn_node *n = push(m, ET_NODE_INPUT, -1, name);
    if (!n)
        return -1;
    n->out_dims = (et_dims){1, h, w, c};
    return commit(m, n, 0, 0, 0);
}

/* Plans the window of node n (k x k, stride) over its input and sets its
 * output height and width. -1 (status set) when the window does not fit. */
static int plan_window(et_model *m, et_nn_node *n, int k, int stride, et_nn_pad pad)
{
    const et_dims *in = &n->in_dims;
    et_layer_info *l = &n->info;
    l->kernel_h = l->kernel_w = k;
    l->stride_h = l->stride_w = stride;
    l->padding = pad.mode;
    n->win = (et_window){.k_h = k, .k_w = k, .stride_h = stride, .stride_w = stride};
    if (pad.mode == ET_PAD_EXPLICIT) {
        int th = in->h + pad.top + pad.bottom, tw = in->w + pad.left + pad.right;
        if (pad.top < 0 || pad.bottom < 0 || pad.left < 0 || pad.right < 0 || th < k || tw < k)
            return et_nn_fail(m, ET_EINVAL,
                              "layer '%s': its %dx%d window does not fit its %dx%d input "
                              "(padded to %dx%d); the input image is too small for this model",
                              l->name, k, k, in->h, in->w, th, tw);
        n->out_dims.h = (th - k) / stride + 1;
        n->out_dims.w = (tw - k) / stride + 1;
        n->win.pad_top = pad.top;
        n->win.pad_left = pad.left;
        l->pad_top = pad.top;
        l->pad_bottom = pad.bottom;
        l->pad_left = pad.left;
        l->pad_right = pad.right;
        return 0;
    }
    et_padding mode = pad.mode == ET_PAD_SAME ? ET_PADDING_SAME : ET_PADDING_VALID;
    et_error why = {0};
    et_dims out = n->out_dims;
    if (et_window_plan(&n->win, mode, in, &out, &why) < 0)
        return et_nn_fail(m, ET_EINVAL,
                          "layer '%s' on a %dx%d input: %s; the input image is too small for "
                          "this model",
                          l->name, in->h, in->w, why.msg);
    et_pad_size(in->h, k, stride, mode, NULL, &l->pad_top, &l->pad_bottom, NULL);
    et_pad_size(in->w, k, stride, mode, NULL, &l->pad_left, &l->pad_right, NULL);
    n->out_dims.h = out.h;
    n->out_dims.w = out.w;
    return 0;
}

static bool window_args_ok(et_model *m, const char *what, int k, int stride, int units)
{
    if (k < 1 || stride < 1 || units < 1) {
        et_nn_fail(m, ET_EINVAL, "%s needs kernel, stride and channels >= 1 (got %d, %d, %d)", what,
                   k, stride, units);
        return false;
    }
    return true;
}

int et_nn_conv2d(et_model *m, int in, int filters, int k, int stride, et_nn_pad pad, bool bias,
                 const char *fmt, ...)
{
    if (!input_ok(m, in) || !window_args_ok(m, "conv2d", k, stride, filters))
        return -1;
    char name[128];
    FORMAT_NAME(name, fmt);
    et_nn_node *n = push(m, ET_NODE_CONV2D, in, name);
    if (!n || plan_window(m, n, k, stride, pad) < 0)
        return -1;
    int in_c = n->in_dims.c;
    n->out_dims.c = filters;
    n->info.flat = false;
    n->info.units = filters;
    n->info.use_bias = bias;
    n->info.macs = (int64_t)n->out_dims.h * n->out_dims.w * filters * k * k * in_c;
    return commit(m, n, (int64_t)filters * k * k * in_c, bias ? filters : 0, 0);
}

int et_nn_depthwise(et_model *m, int in, int multiplier, int k, int stride, et_nn_pad pad,
                    bool bias, const char *fmt, ...)
{
    if (!input_ok(m, in) || !window_args_ok(m, "depthwise_conv2d", k, stride, multiplier))
        return -1;
    char name[128];
    FORMAT_NAME(name, fmt);
    et_nn_node *n = push(m, ET_NODE_DEPTHWISE_CONV2D, in, name);
    if (!n || plan_window(m, n, k, stride, pad) < 0)
        return -1;
    int out_c = n->in_dims.c * multiplier;
    n->out_dims.c = out_c;
    n->info.flat = false;
    n->info.units = out_c;
    n->info.depth_multiplier = multiplier;
    n->info.use_bias = bias;
    n->info.macs = (int64_t)n->out_dims.h * n->out_dims.w * out_c * k * k;
    return commit(m, n, (int64_t)k * k * out_c, bias ? out_c : 0, 0);
}

int et_nn_pool(et_model *m, et_node_kind kind, int in, int k, int stride, et_nn_pad pad,
               const char *fmt, ...)
{
    if (kind != ET_NODE_MAXPOOL && kind != ET_NODE_AVGPOOL)
        return et_nn_fail(m, ET_EINVAL, "internal: %s is not a pooling kind",
                          et_node_kind_name(kind));
    if (!input_ok(m, in) || !window_args_ok(m, et_node_kind_name(kind), k, stride, 1))
        return -1;
    char name[128];
    FORMAT_NAME(name, fmt);
    et_nn_node *n = push(m, kind, in, name);
    if (!n || plan_window(m, n, k, stride, pad) < 0)
        return -1;
    n->info.flat = false;
    return commit(m, n, 0, 0, 0);
}

int et_nn_dense(et_model *m, int in, int units, bool bias, const char *fmt, ...)
{
    if (!input_ok(m, in))
        return -1;
    if (units < 1)
        return et_nn_fail(m, ET_EINVAL, "dense needs at least 1 unit (got %d)", units);
    char name[128];
    FORMAT_NAME(name, fmt);
    et_nn_node *n = push(m, ET_NODE_DENSE, in, name);
    if (!n)
        return -1;
    int64_t in_f = (int64_t)n->in_dims.h * n->in_dims.w * n->in_dims.c;
    n->out_dims = (et_dims){1, 1, 1, units};
    n->info.flat = true;
    n->info.units = units;
    n->info.use_bias = bias;
    n->info.macs = in_f * units;
    return commit(m, n, in_f * units, bias ? units : 0, 0);
}

int et_nn_batchnorm(et_model *m, int in, double epsilon, double momentum, const char *fmt, ...)
{
    if (!input_ok(m, in))
        return -1;
    if (!(epsilon > 0) || !(momentum >= 0 && momentum <= 1))
        return et_nn_fail(m, ET_EINVAL,
                          "batch norm needs epsilon > 0 and momentum in [0, 1] (got %g, %g)",
                          epsilon, momentum);
    char name[128];
    FORMAT_NAME(name, fmt);
    et_nn_node *n = push(m, ET_NODE_BATCHNORM, in, name);
    if (!n)
        return -1;
    n->info.bn_epsilon = epsilon;
    n->info.bn_momentum = momentum;
    n->bn = (et_batchnorm_params){(float)epsilon, (float)momentum};
    return commit(m, n, 0, 0, n->out_dims.c);
}

int et_nn_dropout(et_model *m, int in, double rate, const char *fmt, ...)
{
    if (!input_ok(m, in))
        return -1;
    if (!(rate >= 0 && rate < 1))
        return et_nn_fail(m, ET_EINVAL, "dropout rate %g is outside [0, 1)", rate);
    char name[128];
    FORMAT_NAME(name, fmt);
    et_nn_node *n = push(m, ET_NODE_DROPOUT, in, name);
    if (!n)
        return -1;
    n->info.dropout_rate = rate;
    return commit(m, n, 0, 0, 0);
}

int et_nn_add(et_model *m, int shortcut, int branch, const char *fmt, ...)
{
    int a = shortcut, b = branch;
    if (!input_ok(m, a) || !input_ok(m, b))
        return -1;
    const et_dims *da = &m->nodes[a].out_dims, *db = &m->nodes[b].out_dims;
    if (da->h != db->h || da->w != db->w || da->c != db->c)
        return et_nn_fail(m, ET_EINVAL, "internal: add of %dx%dx%d and %dx%dx%d", da->h, da->w,
                          da->c, db->h, db->w, db->c);
    char name[128];
    FORMAT_NAME(name, fmt);
    et_nn_node *n = push(m, ET_NODE_ADD, a, name);
    if (!n)
        return -1;
    n->info.n_inputs = 2;
    n->info.inputs[1] = b;
    return commit(m, n, 0, 0, 0);
}

int et_nn_unary(et_model *m, et_node_kind kind, int in, const char *fmt, ...)
{
    switch (kind) {
    case ET_NODE_RELU:
    case ET_NODE_RELU6:
    case ET_NODE_GLOBAL_AVGPOOL:
    case ET_NODE_FLATTEN:
    case ET_NODE_SOFTMAX: break;
    default:
        return et_nn_fail(m, ET_EINVAL, "internal: %s is not a unary kind",
                          et_node_kind_name(kind));
    }
    if (!input_ok(m, in))
        return -1;
    char name[128];
    FORMAT_NAME(name, fmt);
    et_nn_node *n = push(m, kind, in, name);
    if (!n)
        return -1;
    const et_dims *src = &n->in_dims;
    if (kind == ET_NODE_GLOBAL_AVGPOOL) {
        n->out_dims = (et_dims){1, 1, 1, src->c};
        n->info.flat = true;
    } else if (kind == ET_NODE_FLATTEN) {
        n->out_dims = (et_dims){1, 1, 1, src->h * src->w * src->c};
        n->info.flat = true;
    }
    return commit(m, n, 0, 0, 0);
}

/* ------------------------------------------------------------------------
 * Public accessors.
 */

et_status et_model_create_from_impulse(const et_impulse *imp, int classes, int channels,
                                       et_model **out, et_error *err)
{
    if (!out)
        return et_error_set(err, ET_EINVAL, "et_model_create_from_impulse: out is NULL");
    *out = NULL;
    if (!imp)
        return et_error_set(err, ET_EINVAL, "et_model_create_from_impulse: no impulse");
    if (classes < 1 || classes > 100000)
        return et_error_set(err, ET_EINVAL, "%d classes: a model needs 1..100000 classes (labels)",
                            classes);
    if (channels < 1 || channels > 4)
        return et_error_set(err, ET_EINVAL,
                            "%d input channels: a model takes 1..4 (grayscale 1, rgb 3)", channels);
    if (!(imp->dropout >= 0 && imp->dropout <= 0.9))
        return et_error_set(err, ET_EINVAL, "learning.dropout=%g is outside 0..0.9", imp->dropout);
    switch (imp->model) {
    case ET_MODEL_CONV: return et_nn_build_conv(imp, classes, channels, out, err);
    case ET_MODEL_MOBILENETV1:
    case ET_MODEL_MOBILENETV2: return et_nn_build_mobilenet(imp, classes, channels, out, err);
    }
    return et_error_set(err, ET_EINVAL, "unknown learning model %d", (int)imp->model);
}

et_model_kind et_model_architecture(const et_model *m)
{
    return m->arch;
}

int et_model_node_count(const et_model *m)
{
    return m->n_nodes;
}

const et_layer_info *et_model_layer(const et_model *m, int i)
{
    return i >= 0 && i < m->n_nodes ? &m->nodes[i].info : NULL;
}

int et_model_find(const et_model *m, const char *name)
{
    for (int i = 0; name && i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].info.name, name))
            return i;
    return -1;
}

int et_model_backbone_nodes(const et_model *m)
{
    return m->backbone_nodes;
}

et_model_totals et_model_totals_range(const et_model *m, int first, int count)
{
    et_model_totals t = {0};
    if (first < 0) {
        count += first;
        first = 0;
    }
    for (int i = first; i < m->n_nodes && i - first < count; i++) {
        const et_layer_info *l = &m->nodes[i].info;
        t.trainable_params += l->trainable_params;
        t.non_trainable_params += l->non_trainable_params;
        t.macs += l->macs;
    }
    t.params = t.trainable_params + t.non_trainable_params;
    return t;
}

bool et_model_has_batchnorm(const et_model *m)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].info.kind == ET_NODE_BATCHNORM)
            return true;
    return false;
}

et_model_totals et_model_totals_all(const et_model *m)
{
    return et_model_totals_range(m, 0, m->n_nodes);
}

et_shape et_model_input_shape(const et_model *m)
{
    return m->nodes[0].info.out;
}

int et_model_classes(const et_model *m)
{
    return m->classes;
}
