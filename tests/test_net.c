/* net: the execution engine and the optimizers, apart from the gradient
 * checks (test_net_grad.c).
 *
 * - Training learns an easy problem; same seed, 1 or 2 threads: the same bits.
 * - Inference mode: deterministic, moving statistics, per-sample results;
 *   dropout masks follow the step seed.
 * - Adam and SGD against their formulas, initializers, schedules, the memory
 *   planner, errors.
 */
#include "net_testutil.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Training
 */

/* 12x12 grey images of three classes: bright, dark, horizontal stripes. */
static void make_dataset(int count, float *x, int32_t *y, uint32_t seed)
{
    for (int i = 0; i < count; i++) {
        int c = i % 3;
        y[i] = c;
        for (int p = 0; p < 144; p++) {
            float noise = rng_uniform(&seed, -0.15f, 0.15f);
            float v = c == 0 ? 0.8f : c == 1 ? 0.2f : (p / 12) % 2 ? 0.9f : 0.1f;
            x[i * 144 + p] = v + noise;
        }
    }
}

/* Trains `steps` batches of 32 drawn in a fixed order; returns the mean loss
 * of the last five steps and writes the first step's to *first. */
static double train(et_net *n, const float *x, const int32_t *y, int count, int steps, double lr,
                    double *first)
{
    float bx[32 * 144];
    int32_t by[32];
    et_optimizer adam = et_optimizer_adam();
    et_error err = {0};
    double tail = 0;
    uint32_t rng = 77;
    for (int step = 0; step < steps; step++) {
        for (int b = 0; b < 32; b++) {
            int i = (int)(rng_next(&rng) % (uint32_t)count);
            memcpy(bx + b * 144, x + i * 144, 144 * sizeof *x);
            by[b] = y[i];
        }
        double loss;
        forward(n, bx, 32, true, 1000 + (uint64_t)step);
        cr_assert_eq(et_net_backward(n, by, 0.0, NULL, &loss, &err), ET_OK, "%s", err.msg);
        et_net_step(n, &adam, lr);
        if (step == 0)
            *first = loss;
        if (step >= steps - 5)
            tail += loss / 5;
    }
    return tail;
}

static double accuracy(et_net *n, const float *x, const int32_t *y, int count)
{
    int right = 0;
    for (int start = 0; start < count; start += 32) {
        int b = count - start < 32 ? count - start : 32;
        forward(n, x + (size_t)start * 144, b, false, 0);
        const float *p = et_net_probs(n);
        for (int i = 0; i < b; i++) {
            int best = 0;
            for (int c = 1; c < 3; c++)
                best = p[i * 3 + c] > p[i * 3 + best] ? c : best;
            right += best == y[start + i];
        }
    }
    return (double)right / count;
}

Test(net, default_conv_net_learns)
{
    enum { N = 200 };
    static float x[N * 144];
    static int32_t y[N];
    make_dataset(N, x, y, 99);
    et_impulse imp = et_impulse_defaults(); /* conv 32, conv 16, dropout 0.25 */
    imp.width = imp.height = 12;
    et_model *m = build(&imp, 3, 1);
    et_net *n = make_net(m, 32, ET_KERNELS_FAST);
    et_net_init(n, 1);
    double before = accuracy(n, x, y, N), first;
    double loss = train(n, x, y, N, 30, 0.005, &first);
    double acc = accuracy(n, x, y, N);
    cr_log_info("accuracy %.3f -> %.3f, loss %.4f -> %.4f (last five steps, dropout on)", before,
                acc, first, loss);
    /* From ln 3 = 1.10; with dropout the training loss stays noisy. */
    cr_assert_lt(loss, 0.3, "loss %g", loss);
    cr_assert_gt(acc, 0.9, "accuracy %g", acc);
    cr_assert_eq(et_net_steps(n), 30);
    et_net_destroy(n);
    et_model_destroy(m);
}

/* ------------------------------------------------------------------------
 * Determinism
 */

/* Parameters after `steps` training steps with `threads` OpenMP threads. */
static float *params_after(const et_impulse *imp, int steps, int threads, et_kernel_set k)
{
    omp_set_num_threads(threads);
    et_model *m = build(imp, 3, 1);
    et_net *n = make_net(m, 8, k);
    et_net_init(n, 42);
    et_shape s = et_model_input_shape(m);
    size_t per = (size_t)s.h * s.w * s.c;
    et_optimizer opt[2] = {et_optimizer_adam(), et_optimizer_sgd(0.9)};
    et_error err = {0};
    for (int step = 0; step < steps; step++) {
        float *x = random_input(m, 8, 100 + (uint32_t)step);
        int32_t y[8];
        for (int i = 0; i < 8; i++)
            y[i] = (int32_t)((x[i * per] > 0) + (x[i * per + 1] > 0));
        forward(n, x, 8, true, (uint64_t)step);
        cr_assert_eq(et_net_backward(n, y, 0.1, NULL, NULL, &err), ET_OK, "%s", err.msg);
        et_net_step(n, &opt[step >= steps / 2], 0.01);
        free(x);
    }
    size_t np = et_net_param_count(n);
    float *p = malloc(np * sizeof *p);
    memcpy(p, et_net_params(n), np * sizeof *p);
    et_net_destroy(n);
    et_model_destroy(m);
    return p;
}

static void same_bits_with_1_and_2_threads(const et_impulse *imp, et_kernel_set k, int steps)
{
    et_model *m = build(imp, 3, 1);
    size_t np = (size_t)et_model_totals_all(m).params;
    et_model_destroy(m);
    float *one = params_after(imp, steps, 1, k), *two = params_after(imp, steps, 2, k);
    float *again = params_after(imp, steps, 2, k);
    size_t diff = 0;
    for (size_t i = 0; i < np; i++)
        diff += memcmp(&one[i], &two[i], sizeof(float)) != 0;
    cr_assert_eq(diff, 0, "%zu of %zu parameters differ between 1 and 2 threads", diff, np);
    cr_assert_eq(memcmp(two, again, np * sizeof(float)), 0);
    free(one);
    free(two);
    free(again);
}

Test(net, same_bits_any_thread_count_conv_net)
{
    et_impulse imp = et_impulse_defaults(); /* with dropout 0.25 */
    imp.width = imp.height = 28;
    same_bits_with_1_and_2_threads(&imp, ET_KERNELS_FAST, 10);
}

Test(net, same_bits_any_thread_count_mobilenetv2, .timeout = 120)
{
    et_impulse imp = tiny_v2();
    imp.dropout = 0.2;
    same_bits_with_1_and_2_threads(&imp, ET_KERNELS_FAST, 10);
}

/* ------------------------------------------------------------------------
 * Inference mode
 */

Test(net, inference_uses_moving_statistics)
{
    et_impulse imp = tiny_v2();
    imp.dropout = 0.5;
    et_model *m = build(&imp, 3, 1);
    et_net *n = make_net(m, 4, ET_KERNELS_REF);
    et_net_init(n, 3);
    float *x = random_input(m, 4, 31);
    size_t np = et_net_param_count(n), per = 32 * 32, nc = 3;

    /* The first training pass after et_net_init sets the moving mean to the
     * batch mean (warm-up: a plain average of the batches so far); once past
     * the warm-up, a pass moves it by (1 - momentum) of the way. */
    int conv = et_model_find(m, "Conv1"), bn = et_model_find(m, "bn_Conv1");
    const et_nn_node *bnn = et_nn_node_at(m, bn);
    size_t rows = 4 * (size_t)bnn->out_dims.h * bnn->out_dims.w;
    double *mean = malloc((size_t)bnn->out_dims.c * sizeof *mean);
    for (int pass = 0; pass < 2; pass++) {
        float *moving = et_net_params(n) + bnn->moving_mean;
        float old = moving[0];
        if (pass == 1) {
            n->bn_updates = 5000; /* long past the warm-up of momentum 0.999 */
            moving[0] = 1.0f;
            old = 1.0f;
        }
        forward(n, x, 4, true, 1);
        const float *cy = et_net_node_output(n, conv);
        for (int c = 0; c < bnn->out_dims.c; c++) {
            mean[c] = 0;
            for (size_t r = 0; r < rows; r++)
                mean[c] += cy[r * bnn->out_dims.c + c];
            mean[c] /= (double)rows;
        }
        if (pass == 0)
            for (int c = 0; c < bnn->out_dims.c; c++)
                cr_assert_float_eq(moving[c], mean[c], 1e-6 + 1e-4 * fabs(mean[c]));
        else {
            double want = 0.999 * old + (1 - 0.999) * mean[0];
            cr_assert_float_eq(moving[0], want, 1e-6 + 1e-4 * fabs(want));
        }
    }
    free(mean);
    for (int s = 2; s < 6; s++)
        forward(n, x, 4, true, (uint64_t)s);

    /* Inference changes no parameter and gives the same bits twice. */
    float *before = malloc(np * sizeof *before), *probs = malloc(4 * nc * sizeof *probs);
    memcpy(before, et_net_params(n), np * sizeof *before);
    forward(n, x, 4, false, 0);
    memcpy(probs, et_net_probs(n), 4 * nc * sizeof *probs);
    cr_assert_eq(memcmp(before, et_net_params(n), np * sizeof *before), 0);
    forward(n, x, 4, false, 12345);
    cr_assert_eq(memcmp(probs, et_net_probs(n), 4 * nc * sizeof *probs), 0,
                 "no dropout, no batch statistics: the step seed does not matter");

    /* Each sample alone gives what it gave in the batch: no batch statistics. */
    for (int i = 0; i < 4; i++) {
        forward(n, x + i * per, 1, false, 0);
        cr_assert_eq(memcmp(et_net_probs(n), probs + i * nc, nc * sizeof *probs), 0, "sample %d",
                     i);
    }

    /* The moving statistics are what inference normalises with: changing
     * one changes inference, not a training pass. */
    forward(n, x, 4, true, 9);
    float *train_probs = malloc(4 * nc * sizeof *train_probs);
    memcpy(train_probs, et_net_probs(n), 4 * nc * sizeof *train_probs);
    memcpy(et_net_params(n), before, np * sizeof *before);
    int last_bn = et_model_find(m, "Conv_1_bn");
    float *mv = et_net_params(n) + et_nn_node_at(m, last_bn)->moving_var;
    for (int c = 0; c < 1280; c++)
        mv[c] *= 4.0f;
    forward(n, x, 4, false, 0);
    cr_assert_neq(memcmp(probs, et_net_probs(n), 4 * nc * sizeof *probs), 0);
    forward(n, x, 4, true, 9);
    cr_assert_eq(memcmp(train_probs, et_net_probs(n), 4 * nc * sizeof *probs), 0);

    free(train_probs);
    free(before);
    free(probs);
    free(x);
    et_net_destroy(n);
    et_model_destroy(m);
}

/* ------------------------------------------------------------------------
 * Fused batch norm + ReLU6 and inference nets
 */

/* Parameters after 3 training steps on the tiny MobileNetV2 with kernels k
 * (NULL: the fast set), fake quantization of every ReLU6 output when fq. */
static float *v2_params_after(const et_net_ops *k, bool fq, float **input_grad)
{
    et_impulse imp = tiny_v2();
    et_model *m = build(&imp, 3, 1);
    et_net *n = NULL;
    et_error err = {0};
    cr_assert_eq(k ? et_net_create_ops(m, 4, k, &n, &err)
                   : et_net_create_with(m, 4, ET_KERNELS_FAST, &n, &err),
                 ET_OK, "%s", err.msg);
    et_net_init(n, 7);
    et_net_set_input_grad(n, true);
    if (fq) {
        et_fake_quant acts[64];
        size_t na = 0;
        for (int i = 0; i < et_model_node_count(m) && na < 64; i++)
            if (et_model_layer(m, i)->kind == ET_NODE_RELU6)
                acts[na++] = (et_fake_quant){i, 6.0f / 255.0f, -128};
        cr_assert_eq(et_net_set_fake_quant(n, acts, na, &err), ET_OK, "%s", err.msg);
    }
    et_optimizer adam = et_optimizer_adam();
    const int32_t y[4] = {0, 1, 2, 1};
    for (int step = 0; step < 3; step++) {
        float *x = random_input(m, 4, 200 + (uint32_t)step);
        forward(n, x, 4, true, (uint64_t)step);
        cr_assert_eq(et_net_backward(n, y, 0, NULL, NULL, &err), ET_OK, "%s", err.msg);
        et_net_step(n, &adam, 0.01);
        free(x);
    }
    size_t np = et_net_param_count(n), nx = 4 * 32 * 32;
    float *p = malloc(np * sizeof *p);
    *input_grad = malloc(nx * sizeof **input_grad);
    memcpy(p, et_net_params(n), np * sizeof *p);
    memcpy(*input_grad, et_net_input_grad(n), nx * sizeof **input_grad);
    et_net_destroy(n);
    et_model_destroy(m);
    return p;
}

/* The fast engine runs each batch norm -> ReLU6 through the fused kernels
 * (forward, and backward with the mask recomputed, or read from the ReLU6's
 * output under fake quantization); the unfused fast kernels one by one give
 * the same bits. */
/* et_net_bn_restart (precise batch norm, train.c): after a restart, the
 * moving mean and variance are the plain average of the next passes' batch
 * means and unbiased variances, whatever they held before. */
Test(net, batch_norm_restart_averages_the_next_batches)
{
    et_impulse imp = tiny_v2();
    et_model *m = build(&imp, 3, 1);
    et_net *n = make_net(m, 4, ET_KERNELS_FAST);
    et_net_init(n, 3);
    int conv = et_model_find(m, "Conv1"), bn = et_model_find(m, "bn_Conv1");
    const et_nn_node *bnn = et_nn_node_at(m, bn);
    int nc = bnn->out_dims.c;
    size_t rows = 4 * (size_t)bnn->out_dims.h * bnn->out_dims.w;
    for (int s = 0; s < 3; s++) { /* moving statistics away from any average below */
        float *x = random_input(m, 4, 100 + (uint32_t)s);
        for (size_t i = 0; i < 4 * 32 * 32; i++)
            x[i] = x[i] * 3 + 2;
        forward(n, x, 4, true, (uint64_t)s);
        free(x);
    }
    et_net_bn_restart(n);
    double *mean = calloc((size_t)nc, sizeof *mean), *var = calloc((size_t)nc, sizeof *var);
    const int passes = 3;
    for (int s = 0; s < passes; s++) {
        float *x = random_input(m, 4, 200 + (uint32_t)s);
        forward(n, x, 4, true, (uint64_t)s);
        const float *cy = et_net_node_output(n, conv);
        for (int c = 0; c < nc; c++) {
            double mu = 0, sq = 0;
            for (size_t r = 0; r < rows; r++)
                mu += cy[r * nc + c];
            mu /= (double)rows;
            for (size_t r = 0; r < rows; r++)
                sq += (cy[r * nc + c] - mu) * (cy[r * nc + c] - mu);
            mean[c] += mu / passes;
            var[c] += sq / (double)(rows - 1) / passes;
        }
        free(x);
    }
    const float *p = et_net_params(n);
    for (int c = 0; c < nc; c++) {
        cr_assert_float_eq(p[bnn->moving_mean + c], mean[c], 1e-5 + 1e-4 * fabs(mean[c]), "%d", c);
        cr_assert_float_eq(p[bnn->moving_var + c], var[c], 1e-5 + 1e-4 * var[c], "%d", c);
    }
    free(mean);
    free(var);
    et_net_destroy(n);
    et_model_destroy(m);
}

Test(net, fused_batchnorm_relu6_gives_the_unfused_bits, .timeout = 120)
{
    et_impulse imp = tiny_v2();
    et_model *m = build(&imp, 3, 1);
    size_t np = (size_t)et_model_totals_all(m).params, nx = 4 * 32 * 32;
    et_net *n = make_net(m, 4, ET_KERNELS_FAST);
    int fused = 0;
    for (int i = 0; i < et_model_node_count(m); i++)
        fused += n->nodes[i].fwd_act == ET_ACT_RELU6 && n->nodes[i].bwd_by >= 0;
    cr_assert_gt(fused, 10, "only %d batch norms fused", fused);
    et_net_destroy(n);
    et_model_destroy(m);
    for (int fq = 0; fq < 2; fq++) {
        float *g0, *g1;
        float *p0 = v2_params_after(NULL, fq, &g0),
              *p1 = v2_params_after(et_net_ops_unfused(), fq, &g1);
        size_t diff = 0;
        for (size_t i = 0; i < np; i++)
            diff += memcmp(&p0[i], &p1[i], sizeof(float)) != 0;
        cr_assert_eq(diff, 0, "fq %d: %zu of %zu parameters differ", fq, diff, np);
        cr_assert_eq(memcmp(g0, g1, nx * sizeof *g0), 0, "fq %d: input gradients differ", fq);
        free(p0);
        free(p1);
        free(g0);
        free(g1);
    }
}

/* An inference net gives a training net's inference bits, keeps the nodes
 * asked for, takes less memory and refuses training. */
Test(net, inference_net_matches_and_is_smaller, .timeout = 120)
{
    et_impulse imp = tiny_v2();
    imp.dropout = 0.2;
    et_model *m = build(&imp, 3, 1);
    et_net *t = make_net(m, 8, ET_KERNELS_FAST), *inf = NULL;
    et_net_init(t, 5);
    float *x = random_input(m, 8, 77);
    for (int s = 0; s < 3; s++)
        forward(t, x, 8, true, (uint64_t)s); /* moving statistics away from their start */
    int keep[2] = {et_model_find(m, "block_3_expand_relu"), et_model_embedding_node(m)};
    cr_assert(keep[0] > 0 && keep[1] > 0);
    et_error err = {0};
    cr_assert_eq(et_net_create_inference(m, 8, keep, 2, &inf, &err), ET_OK, "%s", err.msg);
    cr_assert(et_net_is_inference(inf) && !et_net_is_inference(t));
    memcpy(et_net_params(inf), et_net_params(t), et_net_param_count(t) * sizeof(float));
    forward(t, x, 8, false, 0);
    forward(inf, x, 7, false, 0);
    forward(inf, x, 8, false, 0);
    cr_assert_eq(memcmp(et_net_probs(t), et_net_probs(inf), 8 * 3 * sizeof(float)), 0);
    for (int k = 0; k < 2; k++) {
        const et_layer_info *l = et_model_layer(m, keep[k]);
        size_t count = 8 * (size_t)l->out.h * l->out.w * l->out.c;
        cr_assert_not_null(et_net_node_output(inf, keep[k]));
        cr_assert_eq(memcmp(et_net_node_output(t, keep[k]), et_net_node_output(inf, keep[k]),
                            count * sizeof(float)),
                     0, "%s", l->name);
    }
    cr_assert_null(et_net_node_output(inf, et_model_find(m, "block_2_project")));
    cr_assert_null(et_net_grads(inf));
    cr_assert_lt(et_net_memory_bytes(inf) * 2, et_net_memory_bytes(t), "%zu against %zu bytes",
                 et_net_memory_bytes(inf), et_net_memory_bytes(t));
    double loss = 0;
    int32_t y[8] = {0};
    cr_assert_eq(et_net_loss(inf, y, 0, NULL, &loss, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(et_net_forward(inf, x, 8, true, 0, &err), ET_EINVAL);
    cr_assert_eq(et_net_backward(inf, y, 0, NULL, &loss, &err), ET_EINVAL);
    et_net_init(inf, 1); /* no optimizer state to reset: must not crash */
    int bad = 9999;
    et_net *none = NULL;
    cr_assert_eq(et_net_create_inference(m, 8, &bad, 1, &none, &err), ET_EINVAL);
    cr_assert_null(none);
    free(x);
    et_net_destroy(t);
    et_net_destroy(inf);
    et_model_destroy(m);
}

Test(net, dropout_masks_follow_the_step_seed)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 12;
    imp.dropout = 0.5;
    et_model *m = build(&imp, 3, 1);
    et_net *n = make_net(m, 2, ET_KERNELS_FAST);
    et_net_init(n, 3);
    float *x = random_input(m, 2, 5);
    int drop = et_model_find(m, "dropout");
    size_t count = 2 * (size_t)et_model_layer(m, drop)->out.c;
    float *a = malloc(count * sizeof *a);
    forward(n, x, 2, true, 7);
    memcpy(a, et_net_node_output(n, drop), count * sizeof *a);
    size_t zeros = 0;
    for (size_t i = 0; i < count; i++)
        zeros += a[i] == 0.0f;
    cr_assert(zeros > count / 3 && zeros < 2 * count / 3, "%zu of %zu dropped", zeros, count);
    forward(n, x, 2, true, 7);
    cr_assert_eq(memcmp(a, et_net_node_output(n, drop), count * sizeof *a), 0);
    forward(n, x, 2, true, 8);
    cr_assert_neq(memcmp(a, et_net_node_output(n, drop), count * sizeof *a), 0);
    forward(n, x, 2, false, 8);
    const float *in = et_net_node_output(n, drop - 1), *out = et_net_node_output(n, drop);
    cr_assert_eq(memcmp(in, out, count * sizeof *a), 0, "inference: identity");
    free(a);
    free(x);
    et_net_destroy(n);
    et_model_destroy(m);
}

/* ------------------------------------------------------------------------
 * Optimizers, initialization, schedules, planning, errors
 */

/* One backward pass, then three steps on the same gradients checked against
 * the formulas in double. */
static void check_optimizer(const et_optimizer *opt)
{
    et_impulse imp = tiny_conv();
    et_model *m = build(&imp, 3, 2);
    et_net *n = make_net(m, 2, ET_KERNELS_REF);
    et_net_init(n, 2);
    float *x = random_input(m, 2, 8);
    const int32_t y[2] = {0, 1};
    et_error err = {0};
    forward(n, x, 2, true, 0);
    cr_assert_eq(et_net_backward(n, y, 0, NULL, NULL, &err), ET_OK);
    size_t np = et_net_param_count(n);
    const float *g = et_net_grads(n);
    double *p = calloc(np, sizeof *p), *mo = calloc(np, sizeof *mo), *v = calloc(np, sizeof *v);
    for (size_t i = 0; i < np; i++)
        p[i] = et_net_params(n)[i];
    const double lr = 0.01;
    for (int t = 1; t <= 3; t++) {
        et_net_step(n, opt, lr);
        for (size_t i = 0; i < np; i++) {
            if (opt->kind == ET_OPT_ADAM) {
                mo[i] = opt->beta1 * mo[i] + (1 - opt->beta1) * g[i];
                v[i] = opt->beta2 * v[i] + (1 - opt->beta2) * g[i] * g[i];
                double a = lr * sqrt(1 - pow(opt->beta2, t)) / (1 - pow(opt->beta1, t));
                p[i] -= a * mo[i] / (sqrt(v[i]) + opt->epsilon);
            } else {
                mo[i] = opt->momentum * mo[i] - lr * g[i];
                p[i] += opt->nesterov ? opt->momentum * mo[i] - lr * g[i] : mo[i];
            }
        }
    }
    for (size_t i = 0; i < np; i++)
        cr_assert_float_eq(et_net_params(n)[i], p[i], 1e-6 + 1e-5 * fabs(p[i]), "param %zu", i);
    cr_assert_eq(et_net_steps(n), 3);
    et_net_optimizer_reset(n);
    cr_assert_eq(et_net_steps(n), 0);
    free(p);
    free(mo);
    free(v);
    free(x);
    et_net_destroy(n);
    et_model_destroy(m);
}

Test(net, adam_and_sgd_follow_keras)
{
    et_optimizer adam = et_optimizer_adam();
    cr_assert(adam.beta1 == 0.9 && adam.beta2 == 0.999 && adam.epsilon == 1e-7);
    check_optimizer(&adam);
    et_optimizer sgd = et_optimizer_sgd(0.9);
    check_optimizer(&sgd);
    sgd.nesterov = true;
    check_optimizer(&sgd);
    sgd = et_optimizer_sgd(0);
    check_optimizer(&sgd);
}

/* Batch norm starts as Keras' (gamma 1, beta 0, moving mean 0, variance 1),
 * except that the one ending a residual branch (the add's second input)
 * starts with gamma 0; the optimizer trains gamma and beta and leaves the
 * moving statistics alone. */
Test(net, batch_norm_init_and_steps)
{
    et_impulse imp = tiny_v2();
    et_model *m = build(&imp, 3, 1);
    et_net *n = make_net(m, 2, ET_KERNELS_FAST);
    et_net_init(n, 2);
    float *x = random_input(m, 2, 8), *p = et_net_params(n);
    const int32_t y[2] = {0, 1};
    et_error err = {0};
    size_t np = et_net_param_count(n), moved = 0, zero = 0;
    float *before = malloc(np * sizeof *before);
    memcpy(before, p, np * sizeof *before);
    forward(n, x, 2, true, 0);
    cr_assert_eq(et_net_backward(n, y, 0, NULL, NULL, &err), ET_OK);
    float *stats = malloc(np * sizeof *stats);
    memcpy(stats, p, np * sizeof *stats); /* moving statistics after the forward pass */
    et_optimizer adam = et_optimizer_adam();
    et_net_step(n, &adam, 0.1);
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_nn_node *nd = et_nn_node_at(m, i);
        for (int c = 0; nd->info.kind == ET_NODE_BATCHNORM && c < nd->out_dims.c; c++) {
            bool branch = false;
            for (int j = i + 1; j < et_model_node_count(m); j++)
                branch |= et_nn_node_at(m, j)->info.kind == ET_NODE_ADD &&
                          et_nn_node_at(m, j)->info.inputs[1] == i;
            zero += branch;
            cr_assert(before[nd->gamma + c] == (branch ? 0.0f : 1.0f) &&
                      before[nd->beta + c] == 0 && before[nd->moving_mean + c] == 0 &&
                      before[nd->moving_var + c] == 1);
            cr_assert(p[nd->moving_mean + c] == stats[nd->moving_mean + c] &&
                          p[nd->moving_var + c] == stats[nd->moving_var + c],
                      "%s", nd->info.name);
            cr_assert_eq(et_net_grads(n)[nd->moving_var + c], 0.0f);
            moved += p[nd->gamma + c] != before[nd->gamma + c];
        }
    }
    cr_assert_gt(moved, 0, "gamma is trained");
    cr_assert_gt(zero, 0, "the tiny MobileNetV2 has residual branches");
    free(before);
    free(stats);
    free(x);
    et_net_destroy(n);
    et_model_destroy(m);
}

/* Conv2D(16, 3x3) over 32 channels: glorot_uniform with fans 288 and 144,
 * zero bias; the same seed gives the same values. */
Test(net, init_is_keras_glorot_uniform)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 28;
    et_model *m = build(&imp, 10, 1);
    et_net *n = make_net(m, 1, ET_KERNELS_FAST);
    et_net_init(n, 7);
    const et_nn_node *c1 = et_nn_node_at(m, et_model_find(m, "conv2d_1"));
    double limit = sqrt(6.0 / (288 + 144)), sum = 0, sq = 0;
    size_t count = 16 * 288;
    const float *w = et_net_params(n) + c1->weight;
    for (size_t i = 0; i < count; i++) {
        cr_assert(fabs(w[i]) <= limit);
        sum += w[i];
        sq += (double)w[i] * w[i];
    }
    cr_assert_lt(fabs(sum / count), 0.05 * limit);
    cr_assert_float_eq(sq / count, limit * limit / 3, 0.05 * limit * limit);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(et_net_params(n)[c1->bias + i], 0.0f);
    float first = w[0];
    et_net_init(n, 7);
    cr_assert_eq(w[0], first);
    et_net_init(n, 8);
    cr_assert_neq(w[0], first);
    et_net_destroy(n);
    et_model_destroy(m);
}

Test(net, learning_rate_schedules)
{
    cr_assert_eq(et_lr_constant(0.5, 3, 10), 0.5);
    cr_assert_float_eq(et_lr_cosine(0.5, 0, 10), 0.5, 1e-12);
    cr_assert_float_eq(et_lr_cosine(0.5, 5, 10), 0.25, 1e-12);
    cr_assert_float_eq(et_lr_cosine(0.5, 10, 10), 0.0, 1e-12);
    cr_assert_float_eq(et_lr_cosine(0.5, 20, 10), 0.0, 1e-12);
    cr_assert_eq(et_lr_cosine(0.5, 3, 0), 0.5);
}

Test(net, lifetime_planner_never_overlaps_live_buffers)
{
    enum { K = 40 };
    size_t size[K], offset[K];
    int first[K], last[K];
    uint32_t rng = 3;
    for (int i = 0; i < K; i++) {
        size[i] = rng_next(&rng) % 100;
        first[i] = (int)(rng_next(&rng) % 30);
        last[i] = first[i] + (int)(rng_next(&rng) % 6);
    }
    size_t total = et_net_plan_lifetimes(K, size, first, last, offset);
    size_t sum = 0;
    for (int i = 0; i < K; i++) {
        sum += size[i];
        cr_assert_leq(offset[i] + size[i], total);
        for (int j = 0; j < i; j++)
            if (size[i] && size[j] && first[i] <= last[j] && first[j] <= last[i])
                cr_assert(offset[i] + size[i] <= offset[j] || offset[j] + size[j] <= offset[i],
                          "%d and %d overlap", i, j);
    }
    cr_assert_lt(total, sum);
}

Test(net, errors_change_nothing)
{
    et_impulse imp = tiny_conv();
    et_model *m = build(&imp, 3, 2);
    et_net *n = NULL;
    et_error err = {0};
    cr_assert_eq(et_net_create(m, 0, &n, &err), ET_EINVAL);
    cr_assert_null(n);
    setenv("ET_KERNELS", "gpu", 1);
    cr_assert_eq(et_net_create(m, 2, &n, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "ET_KERNELS=gpu"), "%s", err.msg);
    setenv("ET_KERNELS", "ref", 1);
    cr_assert_eq(et_net_create(m, 2, &n, &err), ET_OK);
    cr_assert_eq(et_net_kernels(n), ET_KERNELS_REF);
    unsetenv("ET_KERNELS");
    et_net_init(n, 1);
    float *x = random_input(m, 3, 1);
    int32_t y[3] = {0, 1, 2}, bad[2] = {0, 3};
    double loss;
    cr_assert_eq(et_net_backward(n, y, 0, NULL, &loss, &err), ET_EINVAL, "no forward yet");
    cr_assert_eq(et_net_forward(n, x, 3, true, 0, &err), ET_EINVAL, "over max_batch");
    cr_assert_eq(et_net_forward(n, x, 0, true, 0, &err), ET_EINVAL);
    cr_assert_eq(et_net_forward(n, NULL, 1, true, 0, &err), ET_EINVAL);
    cr_assert_eq(et_net_batch(n), 0);
    forward(n, x, 2, false, 0);
    cr_assert_eq(et_net_backward(n, y, 0, NULL, &loss, &err), ET_EINVAL, "after inference");
    cr_assert_eq(et_net_loss(n, y, 0, NULL, &loss, &err), ET_OK);
    forward(n, x, 2, true, 0);
    cr_assert_eq(et_net_backward(n, bad, 0, NULL, &loss, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "label 3"), "%s", err.msg);
    cr_assert_eq(et_net_backward(n, y, 1.0, NULL, &loss, &err), ET_EINVAL);
    const float neg[3] = {1, -1, 1};
    cr_assert_eq(et_net_backward(n, y, 0, neg, &loss, &err), ET_EINVAL);
    cr_assert_null(et_net_input_grad(n));
    cr_assert_null(et_net_node_output(n, 99));
    cr_assert_eq(et_net_backward(n, y, 0, NULL, &loss, &err), ET_OK);
    cr_assert(loss > 0 && isfinite(loss));
    et_net_destroy(n);
    et_net_destroy(NULL);
    free(x);
    et_model_destroy(m);
}
