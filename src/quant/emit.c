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

/* One op of the plan: an op of g, or a conv2d with the max pool after it. */
typedef struct plan_op {
    const et_qop *op;
    const et_qop *pool; /* the max pool fused into op; NULL */
} plan_op;

static int plan_out(const plan_op *p)
{
    return p->pool ? p->pool->out : p->op->out;
}

/* g's ops in plan order; returns how many. A conv2d fuses with the next op
 * when that is a max pool, the only reader of the conv's output, whose
 * windows do not overlap vertically (so no conv row is computed twice). */
static int plan_ops(const et_qgraph *g, unsigned flags, plan_op *list)
{
    int n = 0;
    for (int o = 0; o < g->n_ops; o++) {
        const et_qop *op = &g->ops[o], *next = o + 1 < g->n_ops ? &g->ops[o + 1] : NULL;
        list[n].op = op;
        list[n].pool = NULL;
        if (!(flags & ET_EMIT_UNFUSED) && op->kind == ETRT_OP_CONV2D && next &&
            next->kind == ETRT_OP_MAX_POOL && next->in[0] == op->out && op->out != g->output &&
            next->stride_h >= next->k_h && next->act == ET_QACT_NONE) {
            int readers = 0;
            for (int k = 0; k < g->n_ops; k++)
                readers += (g->ops[k].in[0] == op->out) + (g->ops[k].in[1] == op->out);
            if (readers == 1) {
                list[n].pool = next;
                o++;
            }
        }
        n++;
    }
    return n;
}

static etrt_window window_of(const et_qop *op)
{
    etrt_window w = {op->k_h, op->k_w, op->stride_h, op->stride_w, op->pad_top, op->pad_left};
    return w;
}

static etrt_dims dims_of(const et_qtensor *t)
{
    etrt_dims d = {1, t->h, t->w, t->c};
    return d;
}

static size_t scratch_of(const et_qgraph *g, const plan_op *po, etrt_type type)
{
    const et_qop *op = po->op;
    etrt_dims in = dims_of(&g->t[op->in[0]]), out = dims_of(&g->t[op->out]);
    etrt_window pool = po->pool ? window_of(po->pool) : window_of(op);
    if (type == ETRT_INT8) {
        etrt_conv_s8_params p;
        memset(&p, 0, sizeof p);
        p.win = window_of(op);
        p.depth_multiplier = op->depth_multiplier;
        if (po->pool)
            return etrt_conv2d_maxpool_s8_scratch_size(&p, &pool, in, out);
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
    p.win = window_of(op);
    return po->pool ? etrt_conv2d_maxpool_f32_scratch_size(&p, &pool, in, out)
                    : etrt_conv2d_f32_scratch_size(&p, in, out);
}

/* Where every tensor and scratch buffer lives, for the no ops of list.
 * Tensors that share memory (a reshape and its input; an add written over
 * an input that dies there) form one buffer; tensors no op of the list
 * touches (a fused conv's output) get none. Fills tensor_off[g->n_t],
 * scratch_off[no], scratch_size[no], *arena. */
static et_status plan_memory(const et_qgraph *g, const plan_op *list, int no, etrt_type type,
                             uint32_t *tensor_off, uint32_t *scratch_off, size_t *scratch_size,
                             size_t *arena, et_error *err)
{
    int nt = g->n_t;
    int *root = malloc((size_t)nt * sizeof *root), *first = malloc((size_t)nt * sizeof *first),
        *last = malloc((size_t)nt * sizeof *last), *used = calloc((size_t)nt, sizeof *used);
    et_membuf *bufs = calloc((size_t)(nt + no), sizeof *bufs);
    et_status rc = ET_OK;
    if (!root || !first || !last || !used || !bufs) {
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
        goto out;
    }
    size_t esize = type == ETRT_INT8 ? 1 : 4;
    for (int t = 0; t < nt; t++) {
        root[t] = g->t[t].alias >= 0 ? root[g->t[t].alias] : t;
        first[t] = last[t] = 0;
    }
    used[g->input] = 1;
    for (int o = 0; o < no; o++) {
        int out = plan_out(&list[o]);
        first[out] = last[out] = o;
        used[out] = 1;
    }
    for (int o = 0; o < no; o++)
        for (int k = 0; k < 2; k++) {
            int in = list[o].op->in[k];
            if (in >= 0 && last[in] < o)
                last[in] = o;
        }
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
        if (!used[t])
            continue;
        bfirst[r] = first[t] < bfirst[r] ? first[t] : bfirst[r];
        blast[r] = last[t] > blast[r] ? last[t] : blast[r];
    }
    /* Adds run in place over an input whose buffer is read for the last time. */
    for (int o = 0; o < no; o++) {
        const et_qop *op = list[o].op;
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
        if (root[t] != t || !used[t])
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
        scratch_size[o] = scratch_of(g, &list[o], type);
        bufs[nb].size = scratch_size[o];
        bufs[nb].first = bufs[nb].last = o;
        nb++;
    }
    rc = et_memplan(bufs, nb, PLAN_ALIGN, arena, err);
    if (rc == ET_OK) {
        for (int t = 0; t < nt; t++)
            tensor_off[t] = used[t] ? (uint32_t)bufs[buf_of[root[t]]].offset : 0;
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
    free(used);
    free(bufs);
    return rc;
}

/* Tensor numbers in the plan: tensors no op of list touches are left out;
 * writes tmap[g->n_t] (-1 for those) and returns how many stay. */
static int number_tensors(const et_qgraph *g, const plan_op *list, int no, int *tmap)
{
    for (int t = 0; t < g->n_t; t++)
        tmap[t] = -1;
    tmap[g->input] = 0;
    for (int o = 0; o < no; o++) {
        tmap[list[o].op->in[0]] = 0;
        if (list[o].op->in[1] >= 0)
            tmap[list[o].op->in[1]] = 0;
        tmap[plan_out(&list[o])] = 0;
    }
    int n = 0;
    for (int t = 0; t < g->n_t; t++)
        if (tmap[t] == 0)
            tmap[t] = n++;
    return n;
}

et_status et_qgraph_emit(const et_qgraph *g, etrt_type type, unsigned flags, et_plan *out,
                         et_error *err)
{
    memset(out, 0, sizeof *out);
    int nt = g->n_t;
    plan_op *list = calloc((size_t)g->n_ops + 1, sizeof *list);
    int no = list ? plan_ops(g, flags, list) : 0;
    uint32_t *toff = calloc((size_t)nt, sizeof *toff), *soff = calloc((size_t)no + 1, sizeof *soff);
    size_t *ssize = calloc((size_t)no + 1, sizeof *ssize);
    int *tmap = calloc((size_t)nt, sizeof *tmap);
    etrt_op_rec *ops = calloc((size_t)no + 1, sizeof *ops);
    bytes b = {0};
    size_t arena = 0;
    et_status rc = list && toff && soff && ssize && tmap && ops
                       ? ET_OK
                       : et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK)
        rc = plan_memory(g, list, no, type, toff, soff, ssize, &arena, err);
    if (rc < 0)
        goto done;
    int n_kept = number_tensors(g, list, no, tmap);
    bool q8 = type == ETRT_INT8;
    etrt_header h;
    memset(&h, 0, sizeof h);
    put(&b, &h, sizeof h);
    uint32_t tensors_at = put(&b, NULL, (size_t)n_kept * sizeof(etrt_tensor_rec));
    uint32_t ops_at = put(&b, NULL, (size_t)no * sizeof(etrt_op_rec));
    for (int o = 0; o < no && !b.oom; o++) {
        const et_qop *op = list[o].op, *pool = list[o].pool;
        etrt_op_rec *r = &ops[o];
        r->kind = pool ? ETRT_OP_CONV2D_MAXPOOL : op->kind;
        r->input[0] = tmap[op->in[0]];
        r->input[1] = op->in[1] >= 0 ? tmap[op->in[1]] : -1;
        r->output = tmap[plan_out(&list[o])];
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
                quantize_weights(g, op, flags & ET_EMIT_BIAS_CORRECTION, &b, r);
            } else {
                r->weights = put(&b, op->w, op->w_n * sizeof(float));
                r->bias = put(&b, op->b, (size_t)op->out_c * sizeof(float));
            }
        }
        if (pool) {
            /* The pool's window, then the conv output's shape (etrt.h). */
            int32_t q[8] = {pool->k_h,        pool->k_w,         pool->stride_h,
                            pool->stride_w,   pool->pad_top,     pool->pad_left,
                            g->t[op->out].h, g->t[op->out].w};
            memcpy(r->q, q, sizeof q);
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
    h.n_tensors = (uint32_t)n_kept;
    h.tensors_offset = tensors_at;
    h.n_ops = (uint32_t)no;
    h.ops_offset = ops_at;
    h.input = tmap[g->input];
    h.output = tmap[g->output];
    memcpy(b.p, &h, sizeof h);
    for (int t = 0; t < nt; t++) {
        if (tmap[t] < 0)
            continue;
        etrt_tensor_rec tr;
        memset(&tr, 0, sizeof tr);
        tr.type = type;
        tr.h = g->t[t].h;
        tr.w = g->t[t].w;
        tr.c = g->t[t].c;
        tr.offset = toff[t];
        tr.scale = q8 ? g->t[t].scale : 0.0f;
        tr.zero_point = q8 ? g->t[t].zero_point : 0;
        memcpy(b.p + tensors_at + (size_t)tmap[t] * sizeof tr, &tr, sizeof tr);
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
    free(list);
    free(toff);
    free(soff);
    free(ssize);
    free(tmap);
    free(ops);
    return rc;
}
