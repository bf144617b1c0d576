/* The model loader (every check, once) and the interpreter (no checks). */
#include "etrt.h"

#include <string.h>

const char *etrt_strerror(int code)
{
    switch (code) {
    case ETRT_OK: return "ok";
    case ETRT_EMAGIC: return "not an .etrt model (bad magic)";
    case ETRT_EVERSION: return "the model's format version is newer than this runtime";
    case ETRT_ETRUNC: return "the model is truncated";
    case ETRT_EALIGN: return "the model bytes are not 4-byte aligned";
    case ETRT_ERANGE: return "an offset or size lies outside the model or the arena";
    case ETRT_ESHAPE: return "an op's tensor shapes do not fit together";
    case ETRT_EPARAM: return "an op has a bad parameter";
    case ETRT_EOP: return "unknown op kind or tensor type";
    default: return "unknown error";
    }
}

static size_t elem_size(uint32_t type)
{
    return type == ETRT_INT8 ? 1 : 4;
}

static uint64_t tensor_count(const etrt_tensor_rec *t)
{
    return (uint64_t)t->h * (uint64_t)t->w * (uint64_t)t->c;
}

static etrt_dims dims_of(const etrt_tensor_rec *t)
{
    etrt_dims d;
    d.n = 1;
    d.h = t->h;
    d.w = t->w;
    d.c = t->c;
    return d;
}

/* Whether [off, off + bytes) lies in the constant data of a model of total
 * bytes, 4-byte aligned. off 0 means absent and is accepted only when
 * optional. */
static int data_ok(const etrt_header *h, uint32_t off, uint64_t bytes, int optional)
{
    if (off == 0)
        return optional;
    if (off % 4 != 0 || off < sizeof(etrt_header))
        return 0;
    return (uint64_t)off + bytes <= h->total_size;
}

static int zero_point_ok(int32_t zp)
{
    return zp >= -128 && zp <= 127;
}

static int scale_ok(float s)
{
    /* Rejects 0, negatives, NaN and infinities without libm. */
    return s > 0.0f && s <= 3.4e38f;
}

static int shifts_ok(const uint8_t *base, uint32_t mult_off, uint32_t shift_off, int32_t n)
{
    const int32_t *m = (const int32_t *)(const void *)(base + mult_off);
    const int32_t *s = (const int32_t *)(const void *)(base + shift_off);
    for (int32_t i = 0; i < n; i++)
        if (m[i] < 0 || s[i] < -31 || s[i] > 30)
            return 0;
    return 1;
}

/* The output window (oy, ox) = (out_h - 1, out_w - 1) must start inside the
 * padded input, and the padding before the input must be smaller than the
 * window, so that every output reads at least one input value. */
static int window_fits(const etrt_window *w, int32_t in_h, int32_t in_w, int32_t out_h,
                       int32_t out_w)
{
    if (w->k_h < 1 || w->k_w < 1 || w->stride_h < 1 || w->stride_w < 1 || w->pad_top < 0 ||
        w->pad_left < 0 || w->pad_top >= w->k_h || w->pad_left >= w->k_w)
        return 0;
    return (int64_t)(out_h - 1) * w->stride_h - w->pad_top < in_h &&
           (int64_t)(out_w - 1) * w->stride_w - w->pad_left < in_w;
}

static etrt_window window_of(const etrt_op_rec *op)
{
    etrt_window w;
    w.k_h = op->k_h;
    w.k_w = op->k_w;
    w.stride_h = op->stride_h;
    w.stride_w = op->stride_w;
    w.pad_top = op->pad_top;
    w.pad_left = op->pad_left;
    return w;
}

/* The window of a fused conv2d_maxpool's pool (op->q[0..5]). */
static etrt_window pool_window_of(const etrt_op_rec *op)
{
    etrt_window w;
    w.k_h = op->q[0];
    w.k_w = op->q[1];
    w.stride_h = op->q[2];
    w.stride_w = op->q[3];
    w.pad_top = op->q[4];
    w.pad_left = op->q[5];
    return w;
}

static int window_ok(const etrt_op_rec *op, const etrt_tensor_rec *in, const etrt_tensor_rec *out)
{
    etrt_window w = window_of(op);
    return window_fits(&w, in->h, in->w, out->h, out->w);
}

/* A conv2d or depthwise conv2d from in to out; pool: the window of a max
 * pool fused after a conv2d (out is then the conv's output shape, before
 * the pool), NULL otherwise. */
static int check_conv(const etrt_model *m, const etrt_op_rec *op, const etrt_tensor_rec *in,
                      const etrt_tensor_rec *out, int depthwise, const etrt_window *pool)
{
    const etrt_header *h = m->header;
    uint64_t esz = elem_size(h->type);
    if (!window_ok(op, in, out))
        return ETRT_EPARAM;
    uint64_t nw;
    if (depthwise) {
        if (op->depth_multiplier < 1 || (int64_t)in->c * op->depth_multiplier != out->c)
            return ETRT_ESHAPE;
        nw = (uint64_t)op->k_h * (uint64_t)op->k_w * (uint64_t)out->c;
    } else {
        nw = (uint64_t)out->c * (uint64_t)op->k_h * (uint64_t)op->k_w * (uint64_t)in->c;
    }
    if (!data_ok(h, op->weights, nw * esz, 0) || !data_ok(h, op->bias, (uint64_t)out->c * 4, 1))
        return ETRT_ERANGE;
    size_t need = 0;
    if (h->type == ETRT_INT8) {
        if (!data_ok(h, op->multiplier, (uint64_t)out->c * 4, 0) ||
            !data_ok(h, op->shift, (uint64_t)out->c * 4, 0))
            return ETRT_ERANGE;
        if (!shifts_ok(m->base, op->multiplier, op->shift, out->c))
            return ETRT_EPARAM;
        etrt_conv_s8_params p;
        memset(&p, 0, sizeof p);
        p.win = window_of(op);
        p.depth_multiplier = op->depth_multiplier;
        if (pool)
            need = etrt_conv2d_maxpool_s8_scratch_size(&p, pool, dims_of(in), dims_of(out));
        else if (depthwise)
            need = etrt_depthwise_conv2d_s8_scratch_size(&p, dims_of(in), dims_of(out));
        else
            need = etrt_conv2d_s8_scratch_size(&p, dims_of(in), dims_of(out));
    } else if (!depthwise) {
        etrt_conv_f32_params p;
        memset(&p, 0, sizeof p);
        p.win = window_of(op);
        need = pool ? etrt_conv2d_maxpool_f32_scratch_size(&p, pool, dims_of(in), dims_of(out))
                    : etrt_conv2d_f32_scratch_size(&p, dims_of(in), dims_of(out));
    }
    return op->scratch_size < need ? ETRT_ERANGE : ETRT_OK;
}

/* A conv2d_maxpool: the conv into a tensor of q[6] x q[7] x out->c, pooled
 * into out by the window in q[0..5]. */
static int check_conv_maxpool(const etrt_model *m, const etrt_op_rec *op,
                              const etrt_tensor_rec *in, const etrt_tensor_rec *out)
{
    etrt_tensor_rec conv = *out;
    etrt_window pool = pool_window_of(op);
    if (op->q[6] < 1 || op->q[7] < 1 || op->q[6] > 65535 || op->q[7] > 65535)
        return ETRT_ESHAPE;
    conv.h = op->q[6];
    conv.w = op->q[7];
    if (!window_fits(&pool, conv.h, conv.w, out->h, out->w))
        return ETRT_EPARAM;
    return check_conv(m, op, in, &conv, 0, &pool);
}

static int check_op(const etrt_model *m, const etrt_op_rec *op)
{
    const etrt_header *h = m->header;
    int32_t nt = (int32_t)h->n_tensors;
    if (op->kind < 1 || op->kind > ETRT_OP_KIND_MAX)
        return ETRT_EOP;
    if (op->input[0] < 0 || op->input[0] >= nt || op->output < 0 || op->output >= nt)
        return ETRT_ERANGE;
    if (op->kind == ETRT_OP_ADD ? (op->input[1] < 0 || op->input[1] >= nt) : op->input[1] != -1)
        return ETRT_ERANGE;
    if ((uint64_t)op->scratch_offset + op->scratch_size > h->arena_size ||
        op->scratch_offset % 4 != 0)
        return ETRT_ERANGE;
    const etrt_tensor_rec *in = &m->tensors[op->input[0]], *out = &m->tensors[op->output];
    int q8 = h->type == ETRT_INT8;
    if (q8 ? !(op->act_min >= -128 && op->act_min <= op->act_max && op->act_max <= 127)
           : !(op->act_min_f <= op->act_max_f))
        return ETRT_EPARAM;
    switch ((etrt_op_kind)op->kind) {
    case ETRT_OP_CONV2D: return check_conv(m, op, in, out, 0, NULL);
    case ETRT_OP_DEPTHWISE_CONV2D: return check_conv(m, op, in, out, 1, NULL);
    case ETRT_OP_CONV2D_MAXPOOL: return check_conv_maxpool(m, op, in, out);
    case ETRT_OP_FULLY_CONNECTED: {
        uint64_t n_in = tensor_count(in), n_out = tensor_count(out);
        if (out->h != 1 || out->w != 1)
            return ETRT_ESHAPE;
        uint64_t n_q = op->per_channel ? n_out : 1;
        if (!data_ok(h, op->weights, n_in * n_out * elem_size(h->type), 0) ||
            !data_ok(h, op->bias, n_out * 4, 1))
            return ETRT_ERANGE;
        if (q8 && (!data_ok(h, op->multiplier, n_q * 4, 0) || !data_ok(h, op->shift, n_q * 4, 0)))
            return ETRT_ERANGE;
        if (q8 && !shifts_ok(m->base, op->multiplier, op->shift, (int32_t)n_q))
            return ETRT_EPARAM;
        return ETRT_OK;
    }
    case ETRT_OP_MAX_POOL:
    case ETRT_OP_AVG_POOL:
        if (in->c != out->c)
            return ETRT_ESHAPE;
        /* TFLite's rule: pooling keeps the quantization of its input. */
        if (q8 && (in->scale != out->scale || in->zero_point != out->zero_point))
            return ETRT_EPARAM;
        return window_ok(op, in, out) ? ETRT_OK : ETRT_EPARAM;
    case ETRT_OP_ADD: {
        const etrt_tensor_rec *in2 = &m->tensors[op->input[1]];
        if (in->h != out->h || in->w != out->w || in->c != out->c || in2->h != out->h ||
            in2->w != out->w || in2->c != out->c)
            return ETRT_ESHAPE;
        if (q8 && (op->q[0] < 0 || op->q[0] > 24 || op->q[1] < 0 || op->q[3] < 0 || op->q[5] < 0 ||
                   op->q[2] < -31 || op->q[2] > 0 || op->q[4] < -31 || op->q[4] > 0 ||
                   op->q[6] < -31 || op->q[6] > 0))
            return ETRT_EPARAM;
        return ETRT_OK;
    }
    case ETRT_OP_SOFTMAX:
        if (in->h != out->h || in->w != out->w || in->c != out->c)
            return ETRT_ESHAPE;
        if (q8 && (out->zero_point != -128 || out->scale != 1.0f / 256.0f || op->q[0] < 0 ||
                   op->q[1] < 0 || op->q[1] > 31 || op->q[2] > 0))
            return ETRT_EPARAM;
        return ETRT_OK;
    case ETRT_OP_RESHAPE:
        if (tensor_count(in) != tensor_count(out))
            return ETRT_ESHAPE;
        if (q8 && (in->scale != out->scale || in->zero_point != out->zero_point))
            return ETRT_EPARAM;
        return ETRT_OK;
    case ETRT_OP_PAD:
        if (op->q[0] < 0 || op->q[1] < 0 || op->q[2] < 0 || op->q[3] < 0)
            return ETRT_EPARAM;
        if ((int64_t)in->h + op->q[0] + op->q[1] != out->h ||
            (int64_t)in->w + op->q[2] + op->q[3] != out->w || in->c != out->c)
            return ETRT_ESHAPE;
        if (q8 && (in->scale != out->scale || in->zero_point != out->zero_point))
            return ETRT_EPARAM;
        return ETRT_OK;
    }
    return ETRT_EOP;
}

int etrt_model_init(etrt_model *m, const void *blob, size_t size)
{
    memset(m, 0, sizeof *m);
    m->error_op = -1;
    if (((uintptr_t)blob & 3u) != 0)
        return ETRT_EALIGN;
    if (size < sizeof(etrt_header))
        return ETRT_ETRUNC;
    const etrt_header *h = (const etrt_header *)blob;
    if (memcmp(h->magic, ETRT_MAGIC, 4) != 0)
        return ETRT_EMAGIC;
    if (h->version != ETRT_FORMAT_VERSION)
        return ETRT_EVERSION;
    if (h->total_size > size)
        return ETRT_ETRUNC;
    if (h->type != ETRT_INT8 && h->type != ETRT_FLOAT32)
        return ETRT_EOP;
    if (h->n_tensors < 1 || h->n_tensors > 65535 || h->n_ops > 65535 || h->tensors_offset % 4 ||
        h->ops_offset % 4 ||
        (uint64_t)h->tensors_offset + (uint64_t)h->n_tensors * sizeof(etrt_tensor_rec) >
            h->total_size ||
        (uint64_t)h->ops_offset + (uint64_t)h->n_ops * sizeof(etrt_op_rec) > h->total_size ||
        h->tensors_offset < sizeof(etrt_header) || h->ops_offset < sizeof(etrt_header))
        return ETRT_ERANGE;
    if (h->input < 0 || (uint32_t)h->input >= h->n_tensors || h->output < 0 ||
        (uint32_t)h->output >= h->n_tensors)
        return ETRT_ERANGE;
    m->base = (const uint8_t *)blob;
    m->header = h;
    m->tensors = (const etrt_tensor_rec *)(const void *)(m->base + h->tensors_offset);
    m->ops = (const etrt_op_rec *)(const void *)(m->base + h->ops_offset);
    for (uint32_t i = 0; i < h->n_tensors; i++) {
        const etrt_tensor_rec *t = &m->tensors[i];
        if (t->type != h->type)
            return ETRT_EOP;
        /* A flattened tensor is 1 x 1 x (h*w*c): channels may be many. */
        if (t->h < 1 || t->w < 1 || t->c < 1 || t->h > 65535 || t->w > 65535 ||
            tensor_count(t) > 0x7FFFFFFFu)
            return ETRT_ESHAPE;
        if (t->offset % 4 != 0 ||
            (uint64_t)t->offset + tensor_count(t) * elem_size(t->type) > h->arena_size)
            return ETRT_ERANGE;
        if (t->type == ETRT_INT8 && (!scale_ok(t->scale) || !zero_point_ok(t->zero_point)))
            return ETRT_EPARAM;
    }
    for (uint32_t i = 0; i < h->n_ops; i++) {
        int rc = check_op(m, &m->ops[i]);
        if (rc < 0) {
            m->error_op = (int)i;
            m->header = NULL;
            return rc;
        }
    }
    return ETRT_OK;
}

size_t etrt_arena_size(const etrt_model *m)
{
    return m->header->arena_size;
}

static etrt_tensor_info info_of(const etrt_tensor_rec *t)
{
    etrt_tensor_info i;
    i.type = (etrt_type)t->type;
    i.h = t->h;
    i.w = t->w;
    i.c = t->c;
    i.bytes = (size_t)tensor_count(t) * elem_size(t->type);
    i.scale = t->scale;
    i.zero_point = t->zero_point;
    return i;
}

etrt_tensor_info etrt_input_info(const etrt_model *m)
{
    return info_of(&m->tensors[m->header->input]);
}

etrt_tensor_info etrt_output_info(const etrt_model *m)
{
    return info_of(&m->tensors[m->header->output]);
}

void *etrt_input(const etrt_model *m, void *arena)
{
    return (uint8_t *)arena + m->tensors[m->header->input].offset;
}

const void *etrt_output(const etrt_model *m, const void *arena)
{
    return (const uint8_t *)arena + m->tensors[m->header->output].offset;
}

/* The shape a fused conv2d_maxpool's conv output would have. */
static etrt_dims conv_dims_of(const etrt_op_rec *op, const etrt_tensor_rec *out)
{
    etrt_dims d = dims_of(out);
    d.h = op->q[6];
    d.w = op->q[7];
    return d;
}

#define CONST_AT(type, off) ((off) ? (const type *)(const void *)(m->base + (off)) : NULL)

static void run_s8(const etrt_model *m, const etrt_op_rec *op, uint8_t *arena)
{
    const etrt_tensor_rec *ti = &m->tensors[op->input[0]], *to = &m->tensors[op->output];
    const int8_t *x = (const int8_t *)(arena + ti->offset);
    int8_t *y = (int8_t *)(arena + to->offset);
    void *scratch = op->scratch_size ? arena + op->scratch_offset : NULL;
    switch ((etrt_op_kind)op->kind) {
    case ETRT_OP_CONV2D:
    case ETRT_OP_CONV2D_MAXPOOL:
    case ETRT_OP_DEPTHWISE_CONV2D: {
        etrt_conv_s8_params p;
        p.win = window_of(op);
        p.depth_multiplier = op->depth_multiplier;
        p.input_offset = -ti->zero_point;
        p.output_offset = to->zero_point;
        p.act_min = op->act_min;
        p.act_max = op->act_max;
        p.multiplier = CONST_AT(int32_t, op->multiplier);
        p.shift = CONST_AT(int32_t, op->shift);
        if (op->kind == ETRT_OP_CONV2D_MAXPOOL) {
            etrt_window pool = pool_window_of(op);
            etrt_dims conv = conv_dims_of(op, to);
            etrt_conv2d_maxpool_s8(&p, &pool, dims_of(ti), x, CONST_AT(int8_t, op->weights),
                                   CONST_AT(int32_t, op->bias), conv, dims_of(to), y, scratch);
        } else if (op->kind == ETRT_OP_CONV2D)
            etrt_conv2d_s8(&p, dims_of(ti), x, CONST_AT(int8_t, op->weights),
                           CONST_AT(int32_t, op->bias), dims_of(to), y, scratch);
        else
            etrt_depthwise_conv2d_s8(&p, dims_of(ti), x, CONST_AT(int8_t, op->weights),
                                     CONST_AT(int32_t, op->bias), dims_of(to), y, scratch);
        break;
    }
    case ETRT_OP_FULLY_CONNECTED: {
        etrt_fc_s8_params p;
        p.input_offset = -ti->zero_point;
        p.output_offset = to->zero_point;
        p.act_min = op->act_min;
        p.act_max = op->act_max;
        p.per_channel = op->per_channel;
        p.multiplier = CONST_AT(int32_t, op->multiplier);
        p.shift = CONST_AT(int32_t, op->shift);
        etrt_fully_connected_s8(&p, 1, ti->h * ti->w * ti->c, x, to->c,
                                CONST_AT(int8_t, op->weights), CONST_AT(int32_t, op->bias), y);
        break;
    }
    case ETRT_OP_MAX_POOL:
    case ETRT_OP_AVG_POOL: {
        etrt_pool_s8_params p;
        p.win = window_of(op);
        p.act_min = op->act_min;
        p.act_max = op->act_max;
        if (op->kind == ETRT_OP_MAX_POOL)
            etrt_max_pool_s8(&p, dims_of(ti), x, dims_of(to), y);
        else
            etrt_avg_pool_s8(&p, dims_of(ti), x, dims_of(to), y);
        break;
    }
    case ETRT_OP_ADD: {
        const etrt_tensor_rec *t2 = &m->tensors[op->input[1]];
        etrt_add_s8_params p;
        p.input1_offset = -ti->zero_point;
        p.input2_offset = -t2->zero_point;
        p.output_offset = to->zero_point;
        p.left_shift = op->q[0];
        p.input1_multiplier = op->q[1];
        p.input1_shift = op->q[2];
        p.input2_multiplier = op->q[3];
        p.input2_shift = op->q[4];
        p.output_multiplier = op->q[5];
        p.output_shift = op->q[6];
        p.act_min = op->act_min;
        p.act_max = op->act_max;
        etrt_add_s8(&p, (size_t)tensor_count(to), x, (const int8_t *)(arena + t2->offset), y);
        break;
    }
    case ETRT_OP_SOFTMAX: {
        etrt_softmax_s8_params p;
        p.input_multiplier = op->q[0];
        p.input_left_shift = op->q[1];
        p.diff_min = op->q[2];
        etrt_softmax_s8(&p, to->h * to->w, to->c, x, y);
        break;
    }
    case ETRT_OP_RESHAPE:
        if (ti->offset != to->offset)
            memmove(y, x, (size_t)tensor_count(to));
        break;
    case ETRT_OP_PAD: {
        etrt_pad_params p;
        p.top = op->q[0];
        p.bottom = op->q[1];
        p.left = op->q[2];
        p.right = op->q[3];
        etrt_pad_s8(&p, dims_of(ti), x, (int8_t)ti->zero_point, dims_of(to), y);
        break;
    }
    }
}

static void run_f32(const etrt_model *m, const etrt_op_rec *op, uint8_t *arena)
{
    const etrt_tensor_rec *ti = &m->tensors[op->input[0]], *to = &m->tensors[op->output];
    const float *x = (const float *)(const void *)(arena + ti->offset);
    float *y = (float *)(void *)(arena + to->offset);
    void *scratch = op->scratch_size ? arena + op->scratch_offset : NULL;
    etrt_act_f32 act;
    act.act_min = op->act_min_f;
    act.act_max = op->act_max_f;
    switch ((etrt_op_kind)op->kind) {
    case ETRT_OP_CONV2D:
    case ETRT_OP_CONV2D_MAXPOOL:
    case ETRT_OP_DEPTHWISE_CONV2D: {
        etrt_conv_f32_params p;
        p.win = window_of(op);
        p.depth_multiplier = op->depth_multiplier;
        p.act_min = op->act_min_f;
        p.act_max = op->act_max_f;
        if (op->kind == ETRT_OP_CONV2D_MAXPOOL) {
            etrt_window pool = pool_window_of(op);
            etrt_dims conv = conv_dims_of(op, to);
            etrt_conv2d_maxpool_f32(&p, &pool, dims_of(ti), x, CONST_AT(float, op->weights),
                                    CONST_AT(float, op->bias), conv, dims_of(to), y, scratch);
        } else if (op->kind == ETRT_OP_CONV2D)
            etrt_conv2d_f32(&p, dims_of(ti), x, CONST_AT(float, op->weights),
                            CONST_AT(float, op->bias), dims_of(to), y, scratch);
        else
            etrt_depthwise_conv2d_f32(&p, dims_of(ti), x, CONST_AT(float, op->weights),
                                      CONST_AT(float, op->bias), dims_of(to), y);
        break;
    }
    case ETRT_OP_FULLY_CONNECTED:
        etrt_fully_connected_f32(&act, 1, ti->h * ti->w * ti->c, x, to->c,
                                 CONST_AT(float, op->weights), CONST_AT(float, op->bias), y);
        break;
    case ETRT_OP_MAX_POOL:
    case ETRT_OP_AVG_POOL: {
        etrt_pool_f32_params p;
        p.win = window_of(op);
        p.act_min = op->act_min_f;
        p.act_max = op->act_max_f;
        if (op->kind == ETRT_OP_MAX_POOL)
            etrt_max_pool_f32(&p, dims_of(ti), x, dims_of(to), y);
        else
            etrt_avg_pool_f32(&p, dims_of(ti), x, dims_of(to), y);
        break;
    }
    case ETRT_OP_ADD:
        etrt_add_f32(&act, (size_t)tensor_count(to), x,
                     (const float *)(const void *)(arena + m->tensors[op->input[1]].offset), y);
        break;
    case ETRT_OP_SOFTMAX: etrt_softmax_f32(to->h * to->w, to->c, x, y); break;
    case ETRT_OP_RESHAPE:
        if (ti->offset != to->offset)
            memmove(y, x, (size_t)tensor_count(to) * sizeof(float));
        break;
    case ETRT_OP_PAD: {
        etrt_pad_params p;
        p.top = op->q[0];
        p.bottom = op->q[1];
        p.left = op->q[2];
        p.right = op->q[3];
        etrt_pad_f32(&p, dims_of(ti), x, 0.0f, dims_of(to), y);
        break;
    }
    }
}

void etrt_invoke(const etrt_model *m, void *arena)
{
    uint8_t *a = (uint8_t *)arena;
    for (uint32_t i = 0; i < m->header->n_ops; i++) {
        if (m->header->type == ETRT_INT8)
            run_s8(m, &m->ops[i], a);
        else
            run_f32(m, &m->ops[i], a);
    }
}
