/* Writing a lowered graph as an .etrt plan: quantized weights and
 * requantization parameters (int8) or the float weights, the memory plan,
 * and the records of runtime/etrt.h. */
#include "quant/quant_internal.h"

#include "etrt_requant.h"
#include "profile/memplan.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_ALIGN 16

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} bytes;

/* Appends n bytes (16-byte aligned, zero padded); returns their offset. */
static uint32_t put(bytes *b, const void *src, size_t n)
{
    size_t at = (b->len + PLAN_ALIGN - 1) & ~(size_t)(PLAN_ALIGN - 1);
    if (at + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < at + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return 0;
        }
        b->p = p;
        b->cap = cap;
    }
    memset(b->p + b->len, 0, at - b->len);
    if (src)
        memcpy(b->p + at, src, n);
    else
        memset(b->p + at, 0, n);
    b->len = at + n;
    return (uint32_t)at;
}

static int32_t clamp_i32(double v)
{
    return v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN : (int32_t)lround(v);
}

/* The clamp of a fused activation in the output's int8 domain
 * (TFLite's CalculateActivationRangeQuantized). */
static void act_range_s8(et_qact act, const et_qtensor *out, int32_t *lo, int32_t *hi)
{
    *lo = -128;
    *hi = 127;
    if (act == ET_QACT_NONE)
        return;
    if (out->zero_point > *lo)
        *lo = out->zero_point;
    if (act == ET_QACT_RELU6) {
        long six = out->zero_point + lround(6.0 / out->scale);
        if (six < *hi)
            *hi = (int32_t)six;
    }
}

/* Mean of the op's input per channel over the calibration data (0 without
 * calibration). */
static double input_mean(const et_qtensor *t, int ch)
{
    return t->ch_sum && t->count > 0 ? t->ch_sum[ch] / t->count : 0.0;
}

/* int8 weights, int32 bias and per-channel multiplier/shift of a conv,
 * depthwise or fully connected op; offsets into the plan in rec. */
static void quantize_weights(const et_qgraph *g, const et_qop *op, bool bias_correction, bytes *b,
                             etrt_op_rec *rec)
{
    const et_qtensor *in = &g->t[op->in[0]], *out = &g->t[op->out];
    int oc_n = op->out_c;
    size_t per = op->w_n / (size_t)oc_n;
    bool dw = op->kind == ETRT_OP_DEPTHWISE_CONV2D;
    int8_t *q = malloc(op->w_n ? op->w_n : 1);
    int32_t *bias = malloc((size_t)oc_n * sizeof *bias),
            *mult = malloc((size_t)oc_n * sizeof *mult),
            *shift = malloc((size_t)oc_n * sizeof *shift);
    if (!q || !bias || !mult || !shift) {
        b->oom = true;
        goto out;
    }
    for (int oc = 0; oc < oc_n; oc++) {
        /* Weight k of output channel oc: [oc][k] for conv and dense, [k][oc] for depthwise. */
#define W_AT(k) (dw ? (size_t)(k) * (size_t)oc_n + (size_t)oc : (size_t)oc * per + (size_t)(k))
        double maxabs = 0;
        for (size_t k = 0; k < per; k++)
            maxabs = fmax(maxabs, fabs(op->w[W_AT(k)]));
        float ws = maxabs > 0 ? (float)(maxabs / 127.0) : 1.0f / 127.0f;
        double shift_mean = 0; /* mean of (dequantized - float) weights times the input */
        for (size_t k = 0; k < per; k++) {
            float w = op->w[W_AT(k)];
            long v = lround(w / ws);
            v = v > 127 ? 127 : v < -127 ? -127 : v;
            q[W_AT(k)] = (int8_t)v;
            int ch = dw                           ? oc / op->depth_multiplier
                     : op->kind == ETRT_OP_CONV2D ? (int)(k % (size_t)in->c)
                                                  : (int)k;
            shift_mean += ((double)v * ws - w) * input_mean(in, ch);
        }
#undef W_AT
        double bias_f = op->b[oc] - (bias_correction ? shift_mean : 0.0);
        double acc_scale = (double)in->scale * (double)ws;
        bias[oc] = clamp_i32(bias_f / acc_scale);
        int s;
        etrt_quantize_multiplier(acc_scale / (double)out->scale, &mult[oc], &s);
        shift[oc] = s;
    }
    rec->weights = put(b, q, op->w_n);
    rec->bias = put(b, bias, (size_t)oc_n * sizeof *bias);
    rec->multiplier = put(b, mult, (size_t)oc_n * sizeof *mult);
    rec->shift = put(b, shift, (size_t)oc_n * sizeof *shift);
    rec->per_channel = 1;
out:
    free(q);
    free(bias);
    free(mult);
    free(shift);
}

static void add_params(const et_qgraph *g, const et_qop *op, etrt_op_rec *rec)
{
    etrt_add_s8_params p;
    etrt_add_s8_prepare(g->t[op->in[0]].scale, g->t[op->in[1]].scale, g->t[op->out].scale, &p);
    rec->q[0] = p.left_shift;
    rec->q[1] = p.input1_multiplier;
    rec->q[2] = p.input1_shift;
    rec->q[3] = p.input2_multiplier;
    rec->q[4] = p.input2_shift;
    rec->q[5] = p.output_multiplier;
    rec->q[6] = p.output_shift;
}

static size_t scratch_of(const et_qgraph *g, const et_qop *op, etrt_type type)
{
    const et_qtensor *ti = &g->t[op->in[0]], *to = &g->t[op->out];
    etrt_dims in = {1, ti->h, ti->w, ti->c}, out = {1, to->h, to->w, to->c};
    etrt_window win = {op->k_h, op->k_w, op->stride_h, op->stride_w, op->pad_top, op->pad_left};
    if (type == ETRT_INT8) {
        etrt_conv_s8_params p;
        memset(&p, 0, sizeof p);
        p.win = win;
        p.depth_multiplier = op->depth_multiplier;
        if (op->kind == ETRT_OP_CONV2D)
            return etrt_conv2d_s8_scratch_size(&p, in, out);
        if (op->kind == ETRT_OP_DEPTHWISE_CONV2D)
            return etrt_depthwise_conv2d_s8_scratch_size(&p, in, out);
        return 0;
    }
    if (op->kind != ETRT_OP_CONV2D)
        return 0;
    etrt_conv_f32_params p;
    memset(&p, 0, sizeof p);
    p.win = win;
    return etrt_conv2d_f32_scratch_size(&p, in, out);
}

/* Where every tensor and scratch buffer lives. Tensors that share memory
 * (a reshape and its input; an add written over an input that dies there)
 * form one buffer. Fills tensor_off[n_t], scratch_off[n_ops], *arena. */
static et_status plan_memory(const et_qgraph *g, etrt_type type, uint32_t *tensor_off,
                             uint32_t *scratch_off, size_t *scratch_size, size_t *arena,
                             et_error *err)
{
    int nt = g->n_t, no = g->n_ops;
    int *root = malloc((size_t)nt * sizeof *root), *first = malloc((size_t)nt * sizeof *first),
        *last = malloc((size_t)nt * sizeof *last);
    et_membuf *bufs = calloc((size_t)(nt + no), sizeof *bufs);
    et_status rc = ET_OK;
    if (!root || !first || !last || !bufs) {
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
        goto out;
    }
    size_t esize = type == ETRT_INT8 ? 1 : 4;
    for (int t = 0; t < nt; t++) {
        root[t] = g->t[t].alias >= 0 ? root[g->t[t].alias] : t;
        first[t] = last[t] = 0;
    }
    for (int o = 0; o < no; o++) {
        first[g->ops[o].out] = o;
        last[g->ops[o].out] = o;
    }
    for (int o = 0; o < no; o++)
        for (int k = 0; k < 2; k++)
            if (g->ops[o].in[k] >= 0 && last[g->ops[o].in[k]] < o)
                last[g->ops[o].in[k]] = o;
    last[g->output] = no - 1;
    /* A buffer lives from its first producer to its last reader over all
     * the tensors that share it. */
    int *bfirst = malloc((size_t)nt * sizeof *bfirst), *blast = malloc((size_t)nt * sizeof *blast);
    if (!bfirst || !blast) {
        free(bfirst);
        free(blast);
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
        goto out;
    }
    for (int t = 0; t < nt; t++) {
        bfirst[t] = no;
        blast[t] = 0;
    }
    for (int t = 0; t < nt; t++) {
        int r = root[t];
        bfirst[r] = first[t] < bfirst[r] ? first[t] : bfirst[r];
        blast[r] = last[t] > blast[r] ? last[t] : blast[r];
    }
    /* Adds run in place over an input whose buffer is read for the last time. */
    for (int o = 0; o < no; o++) {
        const et_qop *op = &g->ops[o];
        if (op->kind != ETRT_OP_ADD)
            continue;
        for (int k = 0; k < 2; k++) {
            int r = root[op->in[k]];
            if (blast[r] == o && r != g->input) {
                int out = op->out;
                root[out] = r;
                blast[r] = blast[out] > o ? blast[out] : o;
                for (int t = 0; t < nt; t++) /* later reshapes of the add's output */
                    if (root[t] == out)
                        root[t] = r;
                break;
            }
        }
    }
    size_t nb = 0;
    int *buf_of = bfirst; /* reuse: root tensor -> buffer index */
    for (int t = 0; t < nt; t++) {
        if (root[t] != t)
            continue;
        bufs[nb].size = (size_t)g->t[t].h * g->t[t].w * g->t[t].c * esize;
        bufs[nb].first = first[t] < 0 ? 0 : first[t];
        bufs[nb].last = blast[t] < bufs[nb].first ? bufs[nb].first : blast[t];
        if (t == g->input)
            bufs[nb].first = 0;
        buf_of[t] = (int)nb++;
    }
    size_t first_scratch = nb;
    for (int o = 0; o < no; o++) {
        scratch_size[o] = scratch_of(g, &g->ops[o], type);
        bufs[nb].size = scratch_size[o];
        bufs[nb].first = bufs[nb].last = o;
        nb++;
    }
    rc = et_memplan(bufs, nb, PLAN_ALIGN, arena, err);
    if (rc == ET_OK) {
        for (int t = 0; t < nt; t++)
            tensor_off[t] = (uint32_t)bufs[buf_of[root[t]]].offset;
        for (int o = 0; o < no; o++)
            scratch_off[o] = scratch_size[o] ? (uint32_t)bufs[first_scratch + (size_t)o].offset : 0;
        if (*arena == 0)
            *arena = PLAN_ALIGN;
        if (*arena > UINT32_MAX)
            rc = et_error_set(err, ET_EINVAL,
                              "the model needs %zu bytes of RAM; the runtime's "
                              "limit is 4 GiB",
                              *arena);
    }
    free(bfirst);
    free(blast);
out:
    free(root);
    free(first);
    free(last);
    free(bufs);
    return rc;
}

et_status et_qgraph_emit(const et_qgraph *g, etrt_type type, bool bias_correction, et_plan *out,
                         et_error *err)
{
    memset(out, 0, sizeof *out);
    int nt = g->n_t, no = g->n_ops;
    uint32_t *toff = calloc((size_t)nt, sizeof *toff), *soff = calloc((size_t)no + 1, sizeof *soff);
    size_t *ssize = calloc((size_t)no + 1, sizeof *ssize);
    etrt_op_rec *ops = calloc((size_t)no + 1, sizeof *ops);
    bytes b = {0};
    size_t arena = 0;
    et_status rc =
        toff && soff && ssize && ops ? ET_OK : et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK)
        rc = plan_memory(g, type, toff, soff, ssize, &arena, err);
    if (rc < 0)
        goto done;
    bool q8 = type == ETRT_INT8;
    etrt_header h;
    memset(&h, 0, sizeof h);
    put(&b, &h, sizeof h);
    uint32_t tensors_at = put(&b, NULL, (size_t)nt * sizeof(etrt_tensor_rec));
    uint32_t ops_at = put(&b, NULL, (size_t)no * sizeof(etrt_op_rec));
    for (int o = 0; o < no && !b.oom; o++) {
        const et_qop *op = &g->ops[o];
        etrt_op_rec *r = &ops[o];
        r->kind = op->kind;
        r->input[0] = op->in[0];
        r->input[1] = op->in[1];
        r->output = op->out;
        r->scratch_offset = soff[o];
        r->scratch_size = (uint32_t)ssize[o];
        r->k_h = op->k_h;
        r->k_w = op->k_w;
        r->stride_h = op->stride_h;
        r->stride_w = op->stride_w;
        r->pad_top = op->pad_top;
        r->pad_left = op->pad_left;
        r->depth_multiplier = op->depth_multiplier;
        r->act_min_f = op->act == ET_QACT_NONE ? -FLT_MAX : 0.0f;
        r->act_max_f = op->act == ET_QACT_RELU6 ? 6.0f : FLT_MAX;
        if (q8)
            act_range_s8(op->act, &g->t[op->out], &r->act_min, &r->act_max);
        else {
            r->act_min = -128;
            r->act_max = 127;
        }
        if (op->w) {
            if (q8) {
                quantize_weights(g, op, bias_correction, &b, r);
            } else {
                r->weights = put(&b, op->w, op->w_n * sizeof(float));
                r->bias = put(&b, op->b, (size_t)op->out_c * sizeof(float));
            }
        }
        if (q8 && op->kind == ETRT_OP_ADD)
            add_params(g, op, r);
        if (q8 && op->kind == ETRT_OP_SOFTMAX) {
            etrt_softmax_s8_params sp;
            etrt_softmax_s8_prepare(g->t[op->in[0]].scale, 1.0, &sp);
            r->q[0] = sp.input_multiplier;
            r->q[1] = sp.input_left_shift;
            r->q[2] = sp.diff_min;
        }
    }
    if (b.oom) {
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(h.magic, ETRT_MAGIC, 4);
    h.version = ETRT_FORMAT_VERSION;
    h.total_size = (uint32_t)b.len;
    h.type = type;
    h.arena_size = (uint32_t)arena;
    h.n_tensors = (uint32_t)nt;
    h.tensors_offset = tensors_at;
    h.n_ops = (uint32_t)no;
    h.ops_offset = ops_at;
    h.input = g->input;
    h.output = g->output;
    memcpy(b.p, &h, sizeof h);
    for (int t = 0; t < nt; t++) {
        etrt_tensor_rec tr;
        memset(&tr, 0, sizeof tr);
        tr.type = type;
        tr.h = g->t[t].h;
        tr.w = g->t[t].w;
        tr.c = g->t[t].c;
        tr.offset = toff[t];
        tr.scale = q8 ? g->t[t].scale : 0.0f;
        tr.zero_point = q8 ? g->t[t].zero_point : 0;
        memcpy(b.p + tensors_at + (size_t)t * sizeof tr, &tr, sizeof tr);
    }
    memcpy(b.p + ops_at, ops, (size_t)no * sizeof *ops);
    etrt_model check;
    int lr = etrt_model_init(&check, b.p, b.len);
    if (lr < 0) {
        rc = et_error_set(err, ET_EINVAL,
                          "internal error: the plan written does not load (%s, op %d)",
                          etrt_strerror(lr), check.error_op);
        goto done;
    }
    out->bytes = b.p;
    out->size = b.len;
    out->arena_size = arena;
    out->n_ops = no;
    etrt_tensor_info ii = etrt_input_info(&check), oi = etrt_output_info(&check);
    out->input_bytes = ii.bytes;
    out->output_bytes = oi.bytes;
    b.p = NULL;
done:
    free(b.p);
    free(toff);
    free(soff);
    free(ssize);
    free(ops);
    return rc;
}
