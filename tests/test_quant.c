/* The converter (src/quant), the memory planner (src/profile/memplan.c) and
 * the runtime's model loader (runtime/etrt_model.c): float32 plans compute
 * what the training engine computes, int8 plans stay close to it, plans are
 * deterministic, and the loader refuses damaged plans instead of reading
 * out of bounds. */
#include "net_testutil.h"

#include "edgetrain/quant.h"
#include "etrt.h"
#include "profile/memplan.h"
#include "quant/quant_internal.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Memory planner
 */

static bool overlap(const et_membuf *a, const et_membuf *b)
{
    bool time = !(a->last < b->first || b->last < a->first);
    bool space =
        a->size && b->size && a->offset < b->offset + b->size && b->offset < a->offset + a->size;
    return time && space;
}

Test(memplan, a_chain_reuses_memory)
{
    /* A chain of ops: buffer i is written by op i and read by op i + 1. */
    et_membuf b[6];
    size_t sizes[6] = {100, 3000, 800, 2000, 64, 10};
    for (int i = 0; i < 6; i++)
        b[i] = (et_membuf){.size = sizes[i], .first = i, .last = i + 1};
    size_t arena = 0;
    et_error err = {0};
    cr_assert_eq(et_memplan(b, 6, 16, &arena, &err), ET_OK);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(b[i].offset % 16, 0);
        for (int j = 0; j < i; j++)
            cr_assert(!overlap(&b[i], &b[j]), "buffers %d and %d overlap", i, j);
    }
    /* The peak is the largest pair alive together: 3000 and 800 (op 2). */
    cr_assert_eq(arena, 3008 + 800, "arena %zu", arena);
}

Test(memplan, random_lifetimes_never_collide)
{
    uint32_t s = 7;
    for (int round = 0; round < 50; round++) {
        et_membuf b[40];
        size_t sum = 0;
        for (int i = 0; i < 40; i++) {
            int first = (int)(rng_next(&s) % 30);
            b[i] = (et_membuf){.size = rng_next(&s) % 5000,
                               .first = first,
                               .last = first + (int)(rng_next(&s) % 6)};
            sum += (b[i].size + 15) & ~(size_t)15;
        }
        size_t arena = 0;
        cr_assert_eq(et_memplan(b, 40, 16, &arena, NULL), ET_OK);
        cr_assert_leq(arena, sum);
        for (int i = 0; i < 40; i++) {
            cr_assert_leq(b[i].offset + b[i].size, arena);
            for (int j = 0; j < i; j++)
                cr_assert(!overlap(&b[i], &b[j]), "round %d: %d and %d overlap", round, i, j);
        }
    }
}

Test(memplan, bad_lifetimes_and_alignment_are_refused)
{
    et_membuf b = {.size = 10, .first = 3, .last = 2};
    size_t arena = 0;
    et_error err = {0};
    cr_assert_eq(et_memplan(&b, 1, 16, &arena, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "ends before it starts"), "%s", err.msg);
    b.last = 3;
    cr_assert_eq(et_memplan(&b, 1, 12, &arena, &err), ET_EINVAL);
}

/* A graph written by hand for the planner: tensors of h x w x c, int8 scale
 * 1/128, ops with zero weights. */
static int hand_tensor(et_qgraph *g, int h, int w, int c)
{
    et_qtensor *t = &g->t[g->n_t];
    memset(t, 0, sizeof *t);
    t->h = h;
    t->w = w;
    t->c = c;
    t->alias = t->same_q_as = -1;
    t->scale = 1.0f / 128.0f;
    return g->n_t++;
}

static et_qop *hand_op(et_qgraph *g, etrt_op_kind kind, int in, int out, int k, size_t w_n)
{
    et_qop *op = &g->ops[g->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->in[0] = in;
    op->in[1] = -1;
    op->out = out;
    op->k_h = op->k_w = k;
    op->stride_h = op->stride_w = 1;
    op->pad_top = op->pad_left = k / 2;
    op->depth_multiplier = 1;
    op->out_c = g->t[out].c;
    if (w_n) {
        op->w = calloc(w_n, sizeof *op->w);
        op->b = calloc((size_t)op->out_c, sizeof *op->b);
        op->w_n = w_n;
    }
    return op;
}

Test(memplan, a_residual_block_by_hand)
{
    /* A MobileNetV2-style block on 8x8: t0 (input, 256 B) -> 1x1 conv -> t1
     * (256 B) -> 1x1 conv to 8 channels -> t2 (512 B) -> 3x3 depthwise -> t3
     * (512 B) -> 1x1 conv back to 4 -> t4 (256 B); t5 = t1 + t4, written
     * over t1 (its last reader); flatten (in place), dense 2, softmax. */
    et_qgraph g = {0};
    g.t = calloc(9, sizeof *g.t);
    g.ops = calloc(8, sizeof *g.ops);
    int t0 = hand_tensor(&g, 8, 8, 4), t1 = hand_tensor(&g, 8, 8, 4),
        t2 = hand_tensor(&g, 8, 8, 8), t3 = hand_tensor(&g, 8, 8, 8),
        t4 = hand_tensor(&g, 8, 8, 4), t5 = hand_tensor(&g, 8, 8, 4),
        t6 = hand_tensor(&g, 1, 1, 256), t7 = hand_tensor(&g, 1, 1, 2),
        t8 = hand_tensor(&g, 1, 1, 2);
    g.t[t6].alias = t5;
    g.t[t8].scale = 1.0f / 256.0f;
    g.t[t8].zero_point = -128;
    g.input = t0;
    g.output = t8;
    hand_op(&g, ETRT_OP_CONV2D, t0, t1, 1, 16);
    hand_op(&g, ETRT_OP_CONV2D, t1, t2, 1, 32);
    hand_op(&g, ETRT_OP_DEPTHWISE_CONV2D, t2, t3, 3, 72);
    hand_op(&g, ETRT_OP_CONV2D, t3, t4, 1, 32);
    hand_op(&g, ETRT_OP_ADD, t1, t5, 0, 0)->in[1] = t4;
    hand_op(&g, ETRT_OP_RESHAPE, t5, t6, 0, 0);
    hand_op(&g, ETRT_OP_FULLY_CONNECTED, t6, t7, 0, 512);
    hand_op(&g, ETRT_OP_SOFTMAX, t7, t8, 0, 0);
    et_plan plan;
    et_error err = {0};
    cr_assert_eq(et_qgraph_emit(&g, ETRT_INT8, 0, &plan, &err), ET_OK, "%s", err.msg);
    /* The peak is op 2, the depthwise: the skip connection t1 (256 B), its
     * input t2 and output t3 (512 B each) and its scratch (8 channels of
     * int32 = 32 B) are alive together. Every other op needs less: op 3
     * holds t1 + t3 + t4 + a 16 B patch = 1040. */
    cr_assert_eq(plan.arena_size, 256 + 512 + 512 + 32);
    etrt_model m;
    cr_assert_eq(etrt_model_init(&m, plan.bytes, plan.size), ETRT_OK);
    cr_assert_eq(m.header->n_tensors, 9);
    cr_assert_eq(m.tensors[t5].offset, m.tensors[t1].offset, "the add runs in place over t1");
    cr_assert_eq(m.tensors[t6].offset, m.tensors[t5].offset, "the flatten runs in place");
    cr_assert_neq(m.tensors[t4].offset, m.tensors[t1].offset);
    /* t2 and t4 never live together (t2 dies at op 2, t4 is born at op 3). */
    cr_assert_eq(m.tensors[t4].offset, m.tensors[t2].offset);
    et_plan_free(&plan);
    et_qgraph_free(&g);
}

/* ------------------------------------------------------------------------
 * Conversion
 */

typedef struct array_rows {
    const float *x;
    size_t row;
} array_rows;

static const float *array_row(const void *ctx, size_t i)
{
    const array_rows *a = ctx;
    return a->x + i * a->row;
}

/* A model with Keras-initialised weights and batch-norm statistics made
 * non-trivial, so that folding them is tested. */
static float *params_for(const et_model *m, et_net *net)
{
    et_net_init(net, 5);
    float *p = et_net_params(net);
    uint32_t s = 99;
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_layer_info *l = et_model_layer(m, i);
        if (l->kind != ET_NODE_BATCHNORM)
            continue;
        int c = l->out.c;
        float *g = p + l->param_offset;
        for (int k = 0; k < c; k++) {
            g[k] = rng_uniform(&s, 0.5f, 1.5f);          /* gamma */
            g[c + k] = rng_uniform(&s, -0.2f, 0.2f);     /* beta */
            g[2 * c + k] = rng_uniform(&s, -0.1f, 0.1f); /* moving mean */
            g[3 * c + k] = rng_uniform(&s, 0.5f, 2.0f);  /* moving variance */
        }
    }
    return p;
}

typedef struct converted {
    et_model *m;
    et_net *net;
    float *x;
    size_t n, row, classes;
    et_plan f32, q8;
} converted;

/* Edits the parameters before conversion (edge cases). */
typedef void (*params_edit)(const et_model *m, float *params);

/* Converts a model for inputs uniform in [0, 1), or all equal to `constant`
 * when it is not negative; `edit` (may be NULL) changes the parameters first. */
static void convert_ex(converted *c, et_impulse *imp, int channels, size_t n, float constant,
                       params_edit edit)
{
    c->m = build(imp, 5, channels);
    c->net = make_net(c->m, (int)n, ET_KERNELS_FAST);
    float *params = params_for(c->m, c->net);
    if (edit)
        edit(c->m, params);
    et_shape in = et_model_input_shape(c->m);
    c->row = (size_t)in.h * in.w * in.c;
    c->n = n;
    c->classes = 5;
    c->x = malloc(n * c->row * sizeof *c->x);
    uint32_t s = 3;
    for (size_t i = 0; i < n * c->row; i++)
        c->x[i] = constant >= 0 ? constant : rng_uniform(&s, 0.0f, 1.0f);
    array_rows a = {c->x, c->row};
    et_row_source src = {array_row, &a, n, in.h, in.w, in.c};
    et_qgraph g;
    et_error err = {0};
    cr_assert_eq(et_qgraph_lower(c->m, params, &g, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(et_qgraph_calibrate(&g, c->m, params, &src, ET_CALIBRATION_MINMAX, &err), ET_OK,
                 "%s", err.msg);
    cr_assert_eq(et_qgraph_emit(&g, ETRT_FLOAT32, 0, &c->f32, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(et_qgraph_emit(&g, ETRT_INT8, ET_EMIT_BIAS_CORRECTION, &c->q8, &err), ET_OK, "%s", err.msg);
    et_qgraph_free(&g);
}

static void convert(converted *c, et_impulse *imp, int channels, size_t n)
{
    convert_ex(c, imp, channels, n, -1, NULL);
}

static void converted_free(converted *c)
{
    et_plan_free(&c->f32);
    et_plan_free(&c->q8);
    et_net_destroy(c->net);
    et_model_destroy(c->m);
    free(c->x);
}

/* Runs a plan over the converted model's inputs. */
static float *run_plan(const converted *c, const et_plan *p)
{
    float *probs = malloc(c->n * c->classes * sizeof *probs);
    array_rows a = {c->x, c->row};
    et_shape in = et_model_input_shape(c->m);
    et_row_source src = {array_row, &a, c->n, in.h, in.w, in.c};
    et_error err = {0};
    cr_assert_eq(et_plan_predict_rows(p->bytes, p->size, &src, probs, &err), ET_OK, "%s", err.msg);
    return probs;
}

/* The float32 plan against the training engine; the int8 plan's largest
 * probability error. */
static void check_plans(converted *c, double f32_tol, double q8_tol, double agree_min)
{
    et_error err = {0};
    cr_assert_eq(et_net_forward(c->net, c->x, (int)c->n, false, 0, &err), ET_OK);
    const float *want = et_net_probs(c->net);
    float *pf = run_plan(c, &c->f32), *pq = run_plan(c, &c->q8);
    double max_f = 0, max_q = 0;
    for (size_t i = 0; i < c->n * c->classes; i++) {
        max_f = fmax(max_f, fabs(pf[i] - want[i]));
        max_q = fmax(max_q, fabs(pq[i] - want[i]));
    }
    double agree = et_metrics_agreement(want, pq, c->n, c->classes);
    if (getenv("ET_TEST_VERBOSE"))
        for (size_t i = 0; i < 3; i++)
            for (size_t k = 0; k < c->classes; k++)
                fprintf(stderr, "%zu/%zu: engine %.4f f32 %.4f int8 %.4f\n", i, k,
                        want[i * c->classes + k], pf[i * c->classes + k], pq[i * c->classes + k]);
    cr_assert_leq(max_f, f32_tol, "float32 plan differs from the engine by %g", max_f);
    cr_assert_leq(max_q, q8_tol, "int8 plan differs from the engine by %g", max_q);
    cr_assert_geq(agree, agree_min, "int8 agrees on %.3f only", agree);
    free(pf);
    free(pq);
}

Test(quant, conv_net_plans_match_the_engine)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 20;
    converted c = {0};
    convert(&c, &imp, 1, 64);
    /* Conv 32 + pool and conv 16 + pool, each fused into one op, flatten in
     * place. By hand, 16-byte aligned: op 0 holds the input (400 B), its
     * pooled output 10x10x32 (3200 B) and its scratch, two conv rows
     * (2x20x32 = 1280 B) and the 3x3x1 int16 patch (18 -> 20 B): 1300 ->
     * 1312; 4912 bytes at once, the peak. Op 1 needs 3200 + 5x5x16 = 400 +
     * (2x10x16 = 320 + 3x3x32x2 = 576 B): 4496. Without fusion the 20x20x32
     * conv output (12800 B) alone is larger. */
    cr_assert_eq(c.q8.arena_size, (size_t)400 + 3200 + 1312);
    cr_assert_lt(c.q8.size, c.f32.size / 3, "int8 weights take a quarter of the room");
    check_plans(&c, 2e-5, 0.03, 0.9);
    converted_free(&c);
}

/* learning.batch_norm: each conv's batch norm (random statistics) folds into
 * the conv, so the device runs the plain conv net's ops and arena. */
Test(quant, conv_net_batch_norm_folds_into_the_conv)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 20;
    converted plain = {0}, c = {0};
    convert(&plain, &imp, 1, 64);
    imp.batch_norm = true;
    convert(&c, &imp, 1, 64);
    cr_assert_eq(c.q8.n_ops, plain.q8.n_ops, "no op of its own");
    cr_assert_eq(c.q8.arena_size, plain.q8.arena_size);
    check_plans(&c, 2e-5, 0.03, 0.9);
    converted_free(&plain);
    converted_free(&c);
}

/* Emits the converted model's graph again without fusion. */
static void convert_unfused(converted *c, et_plan *f32, et_plan *q8)
{
    float *params = et_net_params(c->net);
    et_shape in = et_model_input_shape(c->m);
    array_rows a = {c->x, c->row};
    et_row_source src = {array_row, &a, c->n, in.h, in.w, in.c};
    et_qgraph g;
    et_error err = {0};
    cr_assert_eq(et_qgraph_lower(c->m, params, &g, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(et_qgraph_calibrate(&g, c->m, params, &src, ET_CALIBRATION_MINMAX, &err), ET_OK,
                 "%s", err.msg);
    cr_assert_eq(et_qgraph_emit(&g, ETRT_FLOAT32, ET_EMIT_UNFUSED, f32, &err), ET_OK, "%s",
                 err.msg);
    cr_assert_eq(et_qgraph_emit(&g, ETRT_INT8, ET_EMIT_BIAS_CORRECTION | ET_EMIT_UNFUSED, q8, &err),
                 ET_OK, "%s", err.msg);
    et_qgraph_free(&g);
}

/* The fused conv2d_maxpool computes exactly what conv2d then max_pool
 * compute, in both precisions, through the whole converter: odd sizes (a
 * 'same' conv on 13x11x3 whose 2x2 pools drop the last row and column) and
 * a 5x5 conv. Other windows: tests/test_runtime_kernels.c. */
Test(quant, fused_conv_pool_is_bit_exact)
{
    int sizes[][2] = {{13, 11}, {20, 20}};
    int kernels[] = {3, 5};
    for (int v = 0; v < 2; v++) {
        et_impulse imp = et_impulse_defaults();
        imp.height = sizes[v][0];
        imp.width = sizes[v][1];
        imp.conv[0].kernel = kernels[v];
        imp.conv[1].kernel = 3;
        converted c = {0};
        convert(&c, &imp, v == 0 ? 3 : 1, 24);
        et_plan f32, q8;
        convert_unfused(&c, &f32, &q8);
        cr_assert_eq(c.q8.n_ops + 2, q8.n_ops, "two pools fused");
        cr_assert_lt(c.q8.arena_size, q8.arena_size);
        cr_assert_lt(c.f32.arena_size, f32.arena_size);
        float *a8 = run_plan(&c, &c.q8), *b8 = run_plan(&c, &q8);
        float *af = run_plan(&c, &c.f32), *bf = run_plan(&c, &f32);
        cr_assert_arr_eq(a8, b8, c.n * c.classes * sizeof *a8, "int8 differs (case %d)", v);
        cr_assert_arr_eq(af, bf, c.n * c.classes * sizeof *af, "float32 differs (case %d)", v);
        free(a8);
        free(b8);
        free(af);
        free(bf);
        et_plan_free(&f32);
        et_plan_free(&q8);
        converted_free(&c);
    }
}

Test(quant, mobilenetv2_plans_match_the_engine, .timeout = 60)
{
    /* Batch norm folded, ReLU6 clamps, residual adds in place, explicit
     * padding, global average pooling. */
    et_impulse imp = et_impulse_defaults();
    imp.model = ET_MODEL_MOBILENETV2;
    imp.alpha = 0.35;
    imp.width = imp.height = 32;
    imp.color = ET_COLOR_RGB;
    converted c = {0};
    convert(&c, &imp, 3, 32);
    /* Randomly initialised MobileNets give nearly the same probabilities
     * for every input, so agreement on the argmax means little here; the
     * probabilities themselves must stay close. */
    check_plans(&c, 1e-4, 0.02, 0.0);
    converted_free(&c);
}

Test(quant, mobilenetv1_plans_match_the_engine, .timeout = 60)
{
    et_impulse imp = et_impulse_defaults();
    imp.model = ET_MODEL_MOBILENETV1;
    imp.alpha = 0.25;
    imp.width = imp.height = 32;
    converted c = {0};
    convert(&c, &imp, 1, 32);
    check_plans(&c, 1e-4, 0.02, 0.0);
    converted_free(&c);
}

Test(quant, conversion_is_deterministic)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 16;
    converted a = {0}, b = {0};
    convert(&a, &imp, 1, 16);
    convert(&b, &imp, 1, 16);
    cr_assert_eq(a.q8.size, b.q8.size);
    cr_assert_arr_eq(a.q8.bytes, b.q8.bytes, a.q8.size);
    cr_assert_arr_eq(a.f32.bytes, b.f32.bytes, a.f32.size);
    converted_free(&a);
    converted_free(&b);
}

Test(quant, an_untrained_model_has_the_same_plan_shape)
{
    /* What the profiler prices before training is what training produces. */
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 16;
    converted c = {0};
    convert(&c, &imp, 1, 8);
    et_quant_result u;
    et_error err = {0};
    cr_assert_eq(et_quant_convert_uncalibrated(c.m, NULL, &u, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(u.int8.size, c.q8.size);
    cr_assert_eq(u.int8.arena_size, c.q8.arena_size);
    cr_assert_eq(u.float32.size, c.f32.size);
    cr_assert_eq(u.float32.arena_size, c.f32.arena_size);
    cr_assert_eq(u.int8.n_ops, c.q8.n_ops);
    et_quant_result_free(&u);
    converted_free(&c);
}

/* ------------------------------------------------------------------------
 * The loader refuses damaged plans.
 */

Test(quant, loader_names_what_is_wrong)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 16;
    converted c = {0};
    convert(&c, &imp, 1, 8);
    etrt_model m;
    uint8_t *copy = aligned_alloc(16, (c.q8.size + 16) & ~(size_t)15);
    memcpy(copy, c.q8.bytes, c.q8.size);
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_OK);
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size - 1), ETRT_ETRUNC);
    cr_assert_eq(etrt_model_init(&m, copy, 10), ETRT_ETRUNC);
    cr_assert_eq(etrt_model_init(&m, copy + 1, c.q8.size - 1), ETRT_EALIGN);
    etrt_header *h = (etrt_header *)copy;
    h->magic[0] = 'X';
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_EMAGIC);
    h->magic[0] = 'E';
    h->version = 99;
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_EVERSION);
    h->version = ETRT_FORMAT_VERSION;
    etrt_op_rec *ops = (etrt_op_rec *)(copy + h->ops_offset);
    ops[0].stride_h = 0;
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_EPARAM);
    cr_assert_eq(m.error_op, 0);
    cr_assert_str_eq(etrt_strerror(ETRT_EPARAM), "an op has a bad parameter");
    ops[0].stride_h = 1;
    uint32_t weights = ops[0].weights;
    ops[0].weights = (uint32_t)c.q8.size - 4;
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_ERANGE);
    ops[0].weights = weights;
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_OK);
    /* The fused conv2d + max pool (op 0 here): its pool window, the conv
     * shape it records and its scratch are checked too. */
    cr_assert_eq(ops[0].kind, ETRT_OP_CONV2D_MAXPOOL);
    ops[0].q[2] = 0; /* pool stride */
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_EPARAM);
    ops[0].q[2] = 2;
    ops[0].q[6] = 0; /* conv height */
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_ESHAPE);
    ops[0].q[6] = 40; /* a conv taller than its input allows */
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_EPARAM);
    ops[0].q[6] = 16;
    ops[0].scratch_size -= 4;
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_ERANGE);
    ops[0].scratch_size += 4;
    cr_assert_eq(etrt_model_init(&m, copy, c.q8.size), ETRT_OK);
    free(copy);
    converted_free(&c);
}

Test(quant, loader_survives_random_damage, .timeout = 60)
{
    /* Flip bytes in the header, tensor and op tables: the loader either
     * refuses the plan or the plan runs inside its arena (ASan checks). */
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 12;
    converted c = {0};
    convert(&c, &imp, 1, 4);
    const etrt_header *h0 = (const etrt_header *)c.q8.bytes;
    size_t tables = h0->ops_offset + h0->n_ops * sizeof(etrt_op_rec);
    uint8_t *copy = aligned_alloc(16, (c.q8.size + 16) & ~(size_t)15);
    uint32_t s = 11;
    int refused = 0, ran = 0;
    for (int round = 0; round < 3000; round++) {
        memcpy(copy, c.q8.bytes, c.q8.size);
        int flips = 1 + (int)(rng_next(&s) % 3);
        for (int k = 0; k < flips; k++)
            copy[rng_next(&s) % tables] ^= (uint8_t)(1u << (rng_next(&s) % 8));
        etrt_model m;
        if (etrt_model_init(&m, copy, c.q8.size) < 0) {
            refused++;
            continue;
        }
        uint8_t *arena = malloc(etrt_arena_size(&m));
        memset(etrt_input(&m, arena), 0, etrt_input_info(&m).bytes);
        etrt_invoke(&m, arena);
        free(arena);
        ran++;
    }
    cr_assert_gt(refused, 100, "refused %d", refused);
    cr_assert_gt(ran, 0);
    free(copy);
    converted_free(&c);
}

/* ------------------------------------------------------------------------
 * Quantization-aware training in the engine.
 */

Test(quant, fake_quantization_rounds_to_the_int8_grid)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 12;
    converted c = {0};
    convert(&c, &imp, 1, 8);
    et_error err = {0};
    /* The conv net's first ReLU output on a grid of scale 0.05, zero point -128. */
    int relu = et_model_find(c.m, "conv2d_relu");
    if (relu < 0)
        for (int i = 0; i < et_model_node_count(c.m) && relu < 0; i++)
            if (et_model_layer(c.m, i)->kind == ET_NODE_RELU)
                relu = i;
    cr_assert_geq(relu, 0);
    et_fake_quant fq = {relu, 0.05f, -128};
    cr_assert_eq(et_net_forward(c.net, c.x, 8, false, 0, &err), ET_OK);
    size_t n_probs = 8 * c.classes;
    float *plain = malloc(n_probs * sizeof *plain);
    memcpy(plain, et_net_probs(c.net), n_probs * sizeof *plain);
    cr_assert_eq(et_net_set_fake_quant(c.net, &fq, 1, &err), ET_OK);
    cr_assert_eq(et_net_forward(c.net, c.x, 8, false, 0, &err), ET_OK);
    const et_layer_info *l = et_model_layer(c.m, relu);
    size_t count = 8 * (size_t)l->out.h * l->out.w * l->out.c;
    const float *y = et_net_node_output(c.net, relu);
    for (size_t e = 0; e < count; e++) {
        float q = y[e] / 0.05f;
        cr_assert_float_eq(q, roundf(q), 1e-3, "value %zu (%g) is off the grid", e, (double)y[e]);
        cr_assert(q >= 0 && q <= 255.001f);
    }
    /* Gradients flow through the rounding, and the float parameters move. */
    int32_t labels[8] = {0, 1, 2, 3, 4, 0, 1, 2};
    cr_assert_eq(et_net_forward(c.net, c.x, 8, true, 1, &err), ET_OK);
    cr_assert_eq(et_net_backward(c.net, labels, 0, NULL, NULL, &err), ET_OK);
    double g = 0;
    for (size_t i = 0; i < et_net_param_count(c.net); i++)
        g += fabs(et_net_grads(c.net)[i]);
    cr_assert_gt(g, 0);
    /* Off again: the float model is back, bit for bit. */
    cr_assert_eq(et_net_set_fake_quant(c.net, NULL, 0, &err), ET_OK);
    cr_assert_eq(et_net_forward(c.net, c.x, 8, false, 0, &err), ET_OK);
    cr_assert_arr_eq(et_net_probs(c.net), plain, n_probs * sizeof *plain);
    fq.scale = 0;
    cr_assert_eq(et_net_set_fake_quant(c.net, &fq, 1, &err), ET_EINVAL);
    free(plain);
    converted_free(&c);
}

/* The first conv's channel 3 with all-zero weights and a bias: its int8
 * weight scale cannot come from the weights (their max is 0); the plan must
 * stay valid, and that channel must carry the bias alone. */
static void zero_channel(const et_model *m, float *params)
{
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_layer_info *l = et_model_layer(m, i);
        if (l->kind != ET_NODE_CONV2D)
            continue;
        size_t per_out = (size_t)l->kernel_h * l->kernel_w * et_model_layer(m, l->inputs[0])->out.c;
        float *w = params + l->param_offset;
        memset(w + 3 * per_out, 0, per_out * sizeof *w);
        if (l->use_bias)
            w[(size_t)l->units * per_out + 3] = 0.25f;
        return;
    }
}

Test(quant_edges, a_channel_with_all_zero_weights)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 16;
    converted c = {0};
    convert_ex(&c, &imp, 1, 32, -1, zero_channel);
    check_plans(&c, 2e-5, 0.03, 0.9);
    converted_free(&c);
}

/* Every calibration sample the same: the input's range is a single value. */
Test(quant_edges, a_constant_input)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 16;
    for (int k = 0; k < 2; k++) {
        converted c = {0};
        float value = k ? 0.5f : 0.0f; /* 0: the range is the single point 0 */
        convert_ex(&c, &imp, 1, 8, value, NULL);
        check_plans(&c, 2e-5, 0.03, 1.0);
        converted_free(&c);
    }
}
