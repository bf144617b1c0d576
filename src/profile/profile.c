/* The per-layer cost of a runtime plan, the latency model, the runtime's
 * code size, and a plan priced on a target. */
#include "edgetrain/profile.h"

#include "etrt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Layer descriptions from shapes.
 */

et_layer_desc et_layer_conv(int out_h, int out_w, int out_c, int k_h, int k_w, int in_c)
{
    et_layer_desc d = {k_h == 1 && k_w == 1 ? ET_COST_POINTWISE : ET_COST_CONV, 0, 0, 0};
    d.macs = (int64_t)out_h * out_w * out_c * k_h * k_w * in_c;
    return d;
}

et_layer_desc et_layer_depthwise(int out_h, int out_w, int out_c, int k_h, int k_w)
{
    et_layer_desc d = {ET_COST_DEPTHWISE, (int64_t)out_h * out_w * out_c * k_h * k_w, 0, 0};
    return d;
}

et_layer_desc et_layer_dense(int in, int out)
{
    et_layer_desc d = {ET_COST_DENSE, (int64_t)in * out, 0, 0};
    return d;
}

et_layer_desc et_layer_pool(int out_h, int out_w, int c, int k_h, int k_w)
{
    et_layer_desc d = {ET_COST_POOL, 0, (int64_t)out_h * out_w * c * k_h * k_w, 0};
    return d;
}

et_layer_desc et_layer_add(int64_t values)
{
    et_layer_desc d = {ET_COST_ADD, 0, values, 0};
    return d;
}

et_layer_desc et_layer_softmax(int64_t values)
{
    et_layer_desc d = {ET_COST_SOFTMAX, 0, values, 0};
    return d;
}

double et_latency_ms(const et_layer_desc *layers, int n, const et_engine_costs *e, et_precision p,
                     double clock_hz, double *cycles)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        const et_layer_desc *l = &layers[i];
        double c = e->op_overhead[p];
        if (l->kind < ET_COST_MAC_KINDS)
            c += (double)l->macs * e->cycles[p][l->kind];
        else if (l->kind < ET_COST_OTHER)
            c += (double)l->elements * e->cycles[p][l->kind];
        c += (double)l->pooled * e->cycles[p][ET_COST_POOL];
        if (cycles)
            cycles[i] = c;
        total += c;
    }
    return total / clock_hz * 1000.0;
}

/* ------------------------------------------------------------------------
 * Walking a plan.
 */

static const char *op_name(uint32_t kind)
{
    switch ((etrt_op_kind)kind) {
    case ETRT_OP_CONV2D: return "conv2d";
    case ETRT_OP_DEPTHWISE_CONV2D: return "depthwise_conv2d";
    case ETRT_OP_FULLY_CONNECTED: return "fully_connected";
    case ETRT_OP_MAX_POOL: return "max_pool";
    case ETRT_OP_AVG_POOL: return "avg_pool";
    case ETRT_OP_ADD: return "add";
    case ETRT_OP_SOFTMAX: return "softmax";
    case ETRT_OP_RESHAPE: return "reshape";
    case ETRT_OP_PAD: return "pad";
    case ETRT_OP_CONV2D_MAXPOOL: return "conv2d_maxpool";
    }
    return "?";
}

static int64_t count(const etrt_tensor_rec *t)
{
    return (int64_t)t->h * t->w * t->c;
}

et_status et_plan_profile_create(const uint8_t *plan, size_t size, et_plan_profile *out,
                                 et_error *err)
{
    memset(out, 0, sizeof *out);
    etrt_model m;
    int lr = etrt_model_init(&m, plan, size);
    if (lr < 0)
        return et_error_set(err, ET_EINVAL, "the model plan does not load: %s (op %d)",
                            etrt_strerror(lr), m.error_op);
    const etrt_header *h = m.header;
    bool q8 = h->type == ETRT_INT8;
    int64_t esz = q8 ? 1 : 4;
    out->precision = q8 ? ET_PRECISION_INT8 : ET_PRECISION_FLOAT32;
    out->n_layers = (int)h->n_ops;
    out->layers = calloc(h->n_ops ? h->n_ops : 1, sizeof *out->layers);
    if (!out->layers)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < h->n_ops; i++) {
        const etrt_op_rec *op = &m.ops[i];
        const etrt_tensor_rec *in = &m.tensors[op->input[0]], *o = &m.tensors[op->output];
        et_layer_profile *l = &out->layers[i];
        l->op = (int)i;
        l->op_name = op_name(op->kind);
        l->out_h = o->h;
        l->out_w = o->w;
        l->out_c = o->c;
        int64_t weights = 0, biases = 0, n_q = 0;
        switch ((etrt_op_kind)op->kind) {
        case ETRT_OP_CONV2D_MAXPOOL: /* the conv's MACs at its own output size, then the pool */
            l->cost = et_layer_conv(op->q[6], op->q[7], o->c, op->k_h, op->k_w, in->c);
            l->cost.pooled = count(o) * op->q[0] * op->q[1];
            l->pointwise = l->cost.kind == ET_COST_POINTWISE;
            weights = (int64_t)o->c * op->k_h * op->k_w * in->c;
            biases = op->bias ? o->c : 0;
            n_q = q8 ? o->c : 0;
            break;
        case ETRT_OP_CONV2D:
            l->cost = et_layer_conv(o->h, o->w, o->c, op->k_h, op->k_w, in->c);
            l->pointwise = l->cost.kind == ET_COST_POINTWISE;
            weights = (int64_t)o->c * op->k_h * op->k_w * in->c;
            biases = op->bias ? o->c : 0;
            n_q = q8 ? o->c : 0;
            break;
        case ETRT_OP_DEPTHWISE_CONV2D:
            l->cost = et_layer_depthwise(o->h, o->w, o->c, op->k_h, op->k_w);
            weights = (int64_t)op->k_h * op->k_w * o->c;
            biases = op->bias ? o->c : 0;
            n_q = q8 ? o->c : 0;
            break;
        case ETRT_OP_FULLY_CONNECTED:
            l->cost = et_layer_dense((int)count(in), (int)count(o));
            weights = count(in) * count(o);
            biases = op->bias ? count(o) : 0;
            n_q = q8 ? (op->per_channel ? count(o) : 1) : 0;
            break;
        case ETRT_OP_MAX_POOL:
        case ETRT_OP_AVG_POOL: l->cost = et_layer_pool(o->h, o->w, o->c, op->k_h, op->k_w); break;
        case ETRT_OP_ADD: l->cost = et_layer_add(count(o)); break;
        case ETRT_OP_SOFTMAX: l->cost = et_layer_softmax(count(o)); break;
        case ETRT_OP_RESHAPE:
        case ETRT_OP_PAD: l->cost.kind = ET_COST_OTHER; break;
        }
        if (op->kind == ETRT_OP_CONV2D || op->kind == ETRT_OP_DEPTHWISE_CONV2D ||
            op->kind == ETRT_OP_CONV2D_MAXPOOL || op->kind == ETRT_OP_MAX_POOL || op->kind == ETRT_OP_AVG_POOL) {
            l->k_h = op->k_h;
            l->k_w = op->k_w;
            l->stride = op->stride_h;
        }
        l->params = weights + biases;
        l->weight_bytes = weights * esz + biases * 4; /* biases: int32 or float32 */
        l->quant_bytes = n_q * 8;                     /* one int32 multiplier + one shift */
        out->macs += l->cost.macs;
        out->params += l->params;
        out->weight_bytes += (size_t)l->weight_bytes;
        out->quant_bytes += (size_t)l->quant_bytes;
        out->kernels |= 1u << op->kind;
    }
    out->plan_bytes = h->total_size;
    out->table_bytes = sizeof(etrt_header) + (size_t)h->n_tensors * sizeof(etrt_tensor_rec) +
                       (size_t)h->n_ops * sizeof(etrt_op_rec);
    out->arena_bytes = etrt_arena_size(&m);
    out->input_bytes = etrt_input_info(&m).bytes;
    out->output_bytes = etrt_output_info(&m).bytes;
    return ET_OK;
}

void et_plan_profile_free(et_plan_profile *p)
{
    if (!p)
        return;
    free(p->layers);
    memset(p, 0, sizeof *p);
}

et_layer_desc *et_plan_profile_layers(const et_plan_profile *p)
{
    et_layer_desc *d = malloc((p->n_layers ? p->n_layers : 1) * sizeof *d);
    for (int i = 0; d && i < p->n_layers; i++)
        d[i] = p->layers[i].cost;
    return d;
}

/* ------------------------------------------------------------------------
 * Runtime code size.
 *
 * Bytes of .text of each runtime object, built with clang 14 -Os
 * -ffreestanding -ffunction-sections for thumbv7em (Cortex-M4, hard float)
 * and thumbv6m (Cortex-M0+); src/profile/README.md has the command.
 * Remeasure when runtime/ changes.
 */
typedef struct code_sizes {
    size_t core;     /* etrt_model.c: loader, checks, interpreter, reshape */
    size_t quantize; /* etrt_quantize.c: the application quantizes the input (int8) */
    size_t pad;      /* etrt_pad.c, both precisions */
    size_t kernel[ET_PRECISION_COUNT][ETRT_OP_KIND_MAX + 1]; /* by etrt op kind */
} code_sizes;

/* Pooling (max and average) is one file per precision: counted once. The
 * fused conv2d_maxpool is the glue of its precision in etrt_conv2d_maxpool.c;
 * it calls the conv2d and max pool kernels, counted with it. */
static const code_sizes sizes_v7em = {
    5500,
    210,
    544,
    {{0, 2158, 802, 316, 792, 0, 476, 1214, 0, 0, 518},
     {0, 582, 648, 208, 956, 0, 74, 252, 0, 0, 542}}};
static const code_sizes sizes_v6m = {
    5572,
    254,
    502,
    {{0, 2300, 802, 340, 906, 0, 444, 1236, 0, 0, 506},
     {0, 590, 646, 206, 1016, 0, 92, 244, 0, 0, 524}}};

size_t et_runtime_code_bytes(const et_plan_profile *p, const char *isa)
{
    const code_sizes *s = isa && !strcmp(isa, "armv6-m") ? &sizes_v6m : &sizes_v7em;
    size_t total = s->core;
    uint32_t k = p->kernels;
    if (k & (1u << ETRT_OP_CONV2D_MAXPOOL))
        k |= (1u << ETRT_OP_CONV2D) | (1u << ETRT_OP_MAX_POOL);
    if (k & ((1u << ETRT_OP_MAX_POOL) | (1u << ETRT_OP_AVG_POOL)))
        k = (k | (1u << ETRT_OP_MAX_POOL)) & ~(1u << ETRT_OP_AVG_POOL);
    for (int op = 1; op <= ETRT_OP_KIND_MAX; op++)
        if (k & (1u << op))
            total += s->kernel[p->precision][op];
    if (k & (1u << ETRT_OP_PAD))
        total += s->pad;
    if (p->precision == ET_PRECISION_INT8)
        total += s->quantize;
    return total;
}

/* ------------------------------------------------------------------------
 * A plan on a target.
 */

et_status et_profile_cost(const et_plan_profile *p, const et_target *t, const char *engine,
                          et_cost *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    const et_engine_costs *e = NULL;
    et_status rc = et_target_engine(t, engine, &e, err);
    if (rc < 0)
        return rc;
    et_layer_desc *d = et_plan_profile_layers(p);
    double *cycles = malloc((p->n_layers ? p->n_layers : 1) * sizeof *cycles);
    out->layer_ms = malloc((p->n_layers ? p->n_layers : 1) * sizeof *out->layer_ms);
    if (!d || !cycles || !out->layer_ms) {
        free(d);
        free(cycles);
        et_cost_free(out);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    snprintf(out->target, sizeof out->target, "%s", t->name);
    snprintf(out->engine, sizeof out->engine, "%s", e->name);
    out->precision = p->precision;
    out->clock_hz = t->clock_hz;
    out->n_layers = p->n_layers;
    out->latency_ms = et_latency_ms(d, p->n_layers, e, p->precision, t->clock_hz, cycles);
    for (int i = 0; i < p->n_layers; i++)
        out->layer_ms[i] = cycles[i] / t->clock_hz * 1000.0;
    free(d);
    free(cycles);
    out->ram_bytes = p->arena_bytes;
    out->input_bytes = p->input_bytes;
    out->code_bytes = et_runtime_code_bytes(p, t->code_size_isa);
    out->flash_bytes = p->plan_bytes + out->code_bytes;
    out->fits_ram = t->ram_bytes == 0 || (int64_t)out->ram_bytes <= t->ram_bytes;
    out->fits_flash = t->flash_bytes == 0 || (int64_t)out->flash_bytes <= t->flash_bytes;
    return ET_OK;
}

void et_cost_free(et_cost *c)
{
    if (!c)
        return;
    free(c->layer_ms);
    memset(c, 0, sizeof *c);
}
