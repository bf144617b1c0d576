/* net: whole-model gradients of the execution engine against central finite
 * differences of the loss (with label smoothing and class weights), for
 * parameters and the input: every one of a tiny conv net and of a
 * MobileNetV2 in miniature (batch norm in training mode, ReLU6, residual
 * adds, explicit padding, dropout), 220 of the real MobileNetV2 alpha 0.35 at
 * 32x32x1, and the whole of the latter against the other kernel set.
 * Reference and fast kernels.
 *
 * A gradient g passes when the central difference q with step h = 2e-3
 * satisfies
 *     |g - q| <= 1e-2 max(|g|, |q|) + 1e-2 RMS(gradient of its tensor)
 *                + noise loss / h
 * i.e. 1% relative, with an absolute floor at 1% of the tensor's typical
 * gradient (entries near 0 carry no relative precision), plus the rounding of
 * the loss over the step (noise: 1e-7 for float32 activations, more where
 * the fast kernels' float sums add up, see v2_case). The h^2 error of a
 * central difference is far below this for smooth functions; kinks are the
 * real enemy, see away_from_kinks. Everything is seeded, so the outcome is
 * deterministic. */
#include "net_testutil.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

static const float class_weights[3] = {1.0f, 2.0f, 0.5f};
#define SMOOTHING 0.1
#define FD_STEP 2e-3
#define FD_SCALE 1e-2 /* absolute floor, relative to the RMS of the tensor's gradient */

static double rms(const float *v, size_t count)
{
    double sq = 0;
    for (size_t i = 0; i < count; i++)
        sq += (double)v[i] * v[i];
    return sqrt(sq / (double)count);
}

/* Keeps every ReLU and ReLU6 away from its kinks. After a batch norm:
 * gamma 0.5 and beta 3 on even channels (inside 0..6, passing gradients) or
 * -3 on odd ones (at 0, blocking them), six batch standard deviations from a
 * kink. After a dense layer: biases that put each unit's pre-activation at
 * least 2 above 0 (even units) or below it (odd ones) for every sample of x.
 * Without this, a perturbation of an early weight of a batch-normalized net
 * moves thousands of units downstream and crosses a kink every ~1e-4 of its
 * size, while below such a step the float32 rounding of the loss swamps the
 * quotient. Both regimes of each activation stay exercised, and batch norm
 * keeps its batch statistics. */
static void away_from_kinks(et_net *n, const float *x, int batch)
{
    const et_model *m = et_net_model(n);
    float *p = et_net_params(n);
    for (int i = 0; i + 1 < et_model_node_count(m); i++) {
        const et_nn_node *nd = et_nn_node_at(m, i);
        if (nd->info.kind == ET_NODE_BATCHNORM &&
            et_nn_node_at(m, i + 1)->info.kind == ET_NODE_RELU6)
            for (int c = 0; c < nd->out_dims.c; c++) {
                p[nd->gamma + c] = 0.5f;
                p[nd->beta + c] = c % 2 ? -3.0f : 3.0f;
            }
    }
    forward(n, x, batch, true, 5);
    for (int i = 0; i + 1 < et_model_node_count(m); i++) {
        const et_nn_node *nd = et_nn_node_at(m, i);
        if (nd->info.kind != ET_NODE_DENSE || et_nn_node_at(m, i + 1)->info.kind != ET_NODE_RELU)
            continue;
        size_t features = n->nodes[nd->info.inputs[0]].count;
        const float *f = et_net_node_output(n, nd->info.inputs[0]);
        for (int u = 0; u < nd->info.units; u++) {
            double lo = INFINITY, hi = -INFINITY;
            for (int b = 0; b < batch; b++) {
                double pre = p[nd->bias + u];
                for (size_t k = 0; k < features; k++)
                    pre += (double)p[nd->weight + u * features + k] * f[b * features + k];
                lo = fmin(lo, pre);
                hi = fmax(hi, pre);
            }
            p[nd->bias + u] += (float)(u % 2 ? -2.0 - hi : 2.0 - lo);
        }
    }
}

/* One check: which model, kernels and values. */
typedef struct fd_case {
    et_model *m; /* destroyed by fd_run */
    et_kernel_set kernels;
    int batch;
    uint64_t seed;           /* et_net_init */
    bool smooth;             /* away_from_kinks */
    const char *from;        /* first node checked; NULL for all */
    const char *const *only; /* NULL, or the names of the nodes to check (NULL-terminated) */
    int per_node;            /* random parameters per node; 0 for all */
    bool inputs;             /* every input value too */
    double noise;            /* rounding of the loss, relative; 0 for float32's 1e-7 */
} fd_case;

typedef struct fd_state {
    et_net *n;
    float *x;
    int32_t labels[8];
    double noise; /* rounding of the loss, relative */
    int checked, failed;
    double worst; /* largest |g - q| over its tolerance */
    char where[160];
} fd_state;

/* Loss of a training forward pass at the current parameters and input. */
static double loss_now(fd_state *s, int batch)
{
    et_error err = {0};
    double loss;
    forward(s->n, s->x, batch, true, 5);
    cr_assert_eq(et_net_loss(s->n, s->labels, SMOOTHING, class_weights, &loss, &err), ET_OK);
    return loss;
}

/* Compares the analytic gradient g of *v (a parameter or an input value)
 * with a central difference; floor is the tensor's absolute tolerance. */
static void fd_check(fd_state *s, int batch, float *v, double g, double floor, const char *what,
                     size_t index)
{
    float orig = *v, up = (float)(orig + FD_STEP), down = (float)(orig - FD_STEP);
    *v = up;
    double lp = loss_now(s, batch);
    *v = down;
    double lm = loss_now(s, batch);
    *v = orig;
    double q = (lp - lm) / ((double)up - (double)down);
    double tol = 1e-2 * fmax(fabs(g), fabs(q)) + floor + s->noise * fmax(1.0, lp) / FD_STEP;
    s->checked++;
    s->failed += fabs(g - q) > tol;
    if (fabs(g - q) / tol > s->worst) {
        s->worst = fabs(g - q) / tol;
        snprintf(s->where, sizeof s->where, "%s[%zu]: analytic %.6g numeric %.6g", what, index, g,
                 q);
    }
}

static bool wanted(const fd_case *c, const char *name)
{
    if (!c->only)
        return true;
    for (const char *const *o = c->only; *o; o++)
        if (!strcmp(*o, name))
            return true;
    return false;
}

static void fd_run(const fd_case *c, const char *what)
{
    /* Thousands of forward passes of tiny tensors: one thread avoids OpenMP's
     * wake-ups (results do not depend on the thread count; test_net checks). */
    omp_set_num_threads(1);
    et_model *m = c->m;
    fd_state s = {.n = make_net(m, c->batch, c->kernels), .noise = c->noise ? c->noise : 1e-7};
    et_net *n = s.n;
    et_net_init(n, c->seed);
    keras_gammas(n);
    s.x = random_input(m, c->batch, 17);
    for (int b = 0; b < c->batch; b++)
        s.labels[b] = (b * 2 + 1) % 3;
    if (c->smooth)
        away_from_kinks(n, s.x, c->batch);
    /* The analytic gradients, copied: the checks run forward passes. */
    et_error err = {0};
    et_net_set_input_grad(n, true);
    forward(n, s.x, c->batch, true, 5);
    cr_assert_eq(et_net_backward(n, s.labels, SMOOTHING, class_weights, NULL, &err), ET_OK);
    size_t np = et_net_param_count(n), nx = (size_t)c->batch * n->nodes[0].count;
    float *g = malloc(np * sizeof *g), *dx = malloc(nx * sizeof *dx);
    memcpy(g, et_net_grads(n), np * sizeof *g);
    memcpy(dx, et_net_input_grad(n), nx * sizeof *dx);

    uint32_t rng = 9;
    for (int i = c->from ? et_model_find(m, c->from) : 0; i < et_model_node_count(m); i++) {
        const et_layer_info *l = et_model_layer(m, i);
        size_t count = (size_t)l->trainable_params, at = l->param_offset;
        if (!count || !wanted(c, l->name))
            continue;
        double floor = FD_SCALE * rms(g + at, count);
        size_t todo = c->per_node && (size_t)c->per_node < count ? (size_t)c->per_node : count;
        for (size_t t = 0; t < todo; t++) {
            size_t j = todo == count ? t : rng_next(&rng) % count;
            fd_check(&s, c->batch, et_net_params(n) + at + j, g[at + j], floor, l->name, j);
        }
    }
    double floor = FD_SCALE * rms(dx, nx);
    for (size_t j = 0; c->inputs && j < nx; j++)
        fd_check(&s, c->batch, s.x + j, dx[j], floor, "input", j);

    cr_log_info("%s: %d checked, worst %.3f of the tolerance at %s", what, s.checked, s.worst,
                s.where);
    cr_assert_eq(s.failed, 0, "%s: %d of %d gradients off; worst %s", what, s.failed, s.checked,
                 s.where);
    cr_assert_geq(s.checked, c->per_node ? 22 * c->per_node : 1);
    free(g);
    free(dx);
    free(s.x);
    et_net_destroy(n);
    et_model_destroy(m);
}

/* 9x7x2 input, conv 4 3x3, conv 3 3x3, dense 5, 3 classes, batch 2:
 * every parameter and input value. ReLU and max-pool kinks are sparse enough
 * here to need no care. */
static fd_case conv_case(et_kernel_set k)
{
    et_impulse imp = tiny_conv();
    return (fd_case){.m = build(&imp, 3, 2), .kernels = k, .batch = 2, .seed = 11, .inputs = true};
}

Test(net_grad, gradients_conv_net_ref)
{
    fd_case c = conv_case(ET_KERNELS_REF);
    fd_run(&c, "ref");
}

Test(net_grad, gradients_conv_net_fast)
{
    fd_case c = conv_case(ET_KERNELS_FAST);
    fd_run(&c, "fast");
}

/* A MobileNetV2 in miniature, built with the model builders: every kind of
 * node and connection the real one has (strided conv, batch norm in training
 * mode, ReLU6 run in place, inverted residual blocks with adds, a strided
 * depthwise conv after Keras' explicit correct_pad on an odd side, global
 * average pooling, the dense head) plus dropout (its mask is fixed by the
 * step seed), but a dozen layers deep instead of fifty. */
static int inverted_residual(et_model *m, int x, int expand, int stride, et_nn_pad pad,
                             const char *name)
{
    int in = x;
    x = et_nn_conv2d(m, x, expand, 1, 1, ET_NN_SAME, false, "%s_expand", name);
    x = et_nn_batchnorm(m, x, 1e-3, 0.999, "%s_expand_BN", name);
    x = et_nn_unary(m, ET_NODE_RELU6, x, "%s_expand_relu", name);
    x = et_nn_depthwise(m, x, 1, 3, stride, pad, false, "%s_depthwise", name);
    x = et_nn_batchnorm(m, x, 1e-3, 0.999, "%s_depthwise_BN", name);
    x = et_nn_unary(m, ET_NODE_RELU6, x, "%s_depthwise_relu", name);
    x = et_nn_conv2d(m, x, 8, 1, 1, ET_NN_SAME, false, "%s_project", name);
    x = et_nn_batchnorm(m, x, 1e-3, 0.999, "%s_project_BN", name);
    return stride == 1 ? et_nn_add(m, in, x, "%s_add", name) : x;
}

static et_model *mini_v2(void)
{
    et_error err = {0};
    et_model *m = et_nn_begin(ET_MODEL_MOBILENETV2, 3, &err);
    int x = et_nn_input(m, 9, 8, 2, "input");
    x = et_nn_conv2d(m, x, 8, 3, 2, ET_NN_SAME, false, "Conv1"); /* 5x4x8 */
    x = et_nn_batchnorm(m, x, 1e-3, 0.999, "bn_Conv1");
    x = et_nn_unary(m, ET_NODE_RELU6, x, "Conv1_relu");
    x = inverted_residual(m, x, 16, 1, ET_NN_SAME, "block_1");
    /* correct_pad on 5x4: rows (1, 1), columns (0, 1) -> 3x2. */
    x = inverted_residual(m, x, 16, 2, et_nn_pad_explicit(1, 1, 0, 1), "block_2");
    x = inverted_residual(m, x, 24, 1, ET_NN_SAME, "block_3");
    x = et_nn_conv2d(m, x, 12, 1, 1, ET_NN_SAME, false, "Conv_1");
    x = et_nn_batchnorm(m, x, 1e-3, 0.999, "Conv_1_bn");
    x = et_nn_unary(m, ET_NODE_RELU6, x, "out_relu");
    x = et_nn_unary(m, ET_NODE_GLOBAL_AVGPOOL, x, "global_average_pooling2d");
    x = et_nn_dense(m, x, 6, true, "dense");
    x = et_nn_unary(m, ET_NODE_RELU, x, "dense_relu");
    x = et_nn_dropout(m, x, 0.3, "dropout");
    x = et_nn_dense(m, x, 3, true, "dense_1");
    et_nn_unary(m, ET_NODE_SOFTMAX, x, "dense_1_softmax");
    et_model *out = NULL;
    cr_assert_eq(et_nn_finish(m, &out), ET_OK, "%s", err.msg);
    cr_assert_eq(et_model_layer(out, et_model_find(out, "block_2_depthwise"))->out.h, 3);
    return out;
}

/* Every parameter and input value of the miniature, batch 4. */
Test(net_grad, gradients_inverted_residual_net_ref)
{
    fd_run(&(fd_case){.m = mini_v2(), ET_KERNELS_REF, 4, 5, .smooth = true, .inputs = true}, "ref");
}

Test(net_grad, gradients_inverted_residual_net_fast)
{
    fd_run(&(fd_case){.m = mini_v2(), ET_KERNELS_FAST, 4, 5, .smooth = true, .inputs = true},
           "fast");
}

/* The real MobileNetV2 alpha 0.35 at 32x32x1, batch 4, batch norm in training
 * mode, ReLUs kept off their kinks: 10 random parameters of every node from
 * block_14 on (three blocks at 1x1, two of them residual, Conv_1 and the
 * head: 220 in all; 110 with the reference kernels, which are slow without
 * optimization, as in the sanitizer build).
 *
 * Why not the whole network: at initialization a 50-layer batch-normalized
 * net is chaotic (the gradient explosion of batch norm, Yang et al. 2019):
 * gradients grow about 1000-fold from the head down to Conv1, and so does
 * float32 rounding in the forward pass; the loss computed with the fast and
 * with the reference kernels differs by 1e-4. A difference quotient of an
 * early weight mixes that noise with strong curvature at every step size (it
 * agrees with the analytic gradient to some 10% at h ~ 1e-5 and not at all at
 * 1e-3): here from block 13 down with the fast kernels and from block 10
 * down with the reference ones. The miniature above checks every connection
 * of the early blocks, and fast_and_ref_agree_on_mobilenetv2 below the whole
 * network's gradients against the other kernel set. */
static fd_case v2_case(et_kernel_set k)
{
    et_impulse imp = tiny_v2();
    /* The fast kernels sum in float (kernels.h: ~1e-5 relative to the values
     * summed), over up to 336 products here and amplified by the depth:
     * their loss carries about 1e-6 of rounding. */
    return (fd_case){.m = build(&imp, 3, 1),
                     .kernels = k,
                     .batch = 4,
                     .seed = 5,
                     .smooth = true,
                     .from = "block_14_expand",
                     .per_node = k == ET_KERNELS_FAST ? 10 : 5,
                     .noise = k == ET_KERNELS_FAST ? 1e-6 : 0};
}

Test(net_grad, gradients_mobilenetv2_ref, .timeout = 600)
{
    fd_case c = v2_case(ET_KERNELS_REF);
    fd_run(&c, "ref");
}

Test(net_grad, gradients_mobilenetv2_fast, .timeout = 600)
{
    fd_case c = v2_case(ET_KERNELS_FAST);
    fd_run(&c, "fast");
}

/* The whole tiny MobileNetV2, default initialization: the reference and the
 * fast kernels give the same probabilities and gradients up to rounding
 * (amplified by the depth, see above), node by node. */
Test(net_grad, fast_and_ref_agree_on_mobilenetv2, .timeout = 600)
{
    et_impulse imp = tiny_v2();
    imp.dropout = 0.2;
    et_model *m = build(&imp, 3, 1);
    et_net *nr = make_net(m, 8, ET_KERNELS_REF), *nf = make_net(m, 8, ET_KERNELS_FAST);
    et_net_init(nr, 12);
    et_net_init(nf, 12);
    keras_gammas(nr);
    keras_gammas(nf);
    float *x = random_input(m, 8, 40);
    const int32_t y[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    et_error err = {0};
    double lr, lf;
    forward(nr, x, 8, true, 3);
    forward(nf, x, 8, true, 3);
    for (int i = 0; i < 24; i++)
        cr_assert_float_eq(et_net_probs(nr)[i], et_net_probs(nf)[i], 1e-3);
    cr_assert_eq(et_net_backward(nr, y, 0, NULL, &lr, &err), ET_OK);
    cr_assert_eq(et_net_backward(nf, y, 0, NULL, &lf, &err), ET_OK);
    cr_assert_float_eq(lr, lf, 1e-3 * lr);
    const float *gr = et_net_grads(nr), *gf = et_net_grads(nf);
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_layer_info *l = et_model_layer(m, i);
        size_t count = (size_t)l->trainable_params, at = l->param_offset;
        double worst = 0;
        if (!count)
            continue;
        for (size_t j = at; j < at + count; j++)
            worst = fmax(worst, fabs((double)gr[j] - gf[j]));
        cr_assert_leq(worst, 1e-2 * rms(gr + at, count), "%s: ref and fast differ by %g", l->name,
                      worst);
    }
    free(x);
    et_net_destroy(nr);
    et_net_destroy(nf);
    et_model_destroy(m);
}

/* The default conv net at its real size (28x28, batch 4, dropout on): the
 * fast engine runs each conv -> ReLU -> max pool chain through fused kernels
 * (both passes) and the reference engine runs every node alone; the
 * probabilities, the loss and every gradient, input's included, agree up to
 * rounding. */
Test(net_grad, fast_and_ref_agree_on_default_conv_net)
{
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 28;
    et_model *m = build(&imp, 3, 1);
    et_net *nr = make_net(m, 4, ET_KERNELS_REF), *nf = make_net(m, 4, ET_KERNELS_FAST);
    et_net_init(nr, 13);
    et_net_init(nf, 13);
    et_net_set_input_grad(nr, true);
    et_net_set_input_grad(nf, true);
    float *x = random_input(m, 4, 41);
    const int32_t y[4] = {0, 1, 2, 0};
    et_error err = {0};
    double lr, lf;
    forward(nr, x, 4, true, 3);
    forward(nf, x, 4, true, 3);
    for (int i = 0; i < 12; i++)
        cr_assert_float_eq(et_net_probs(nr)[i], et_net_probs(nf)[i], 1e-4);
    cr_assert_eq(et_net_backward(nr, y, 0, NULL, &lr, &err), ET_OK);
    cr_assert_eq(et_net_backward(nf, y, 0, NULL, &lf, &err), ET_OK);
    cr_assert_float_eq(lr, lf, 1e-4 * lr);
    const float *gr = et_net_grads(nr), *gf = et_net_grads(nf);
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_layer_info *l = et_model_layer(m, i);
        size_t count = (size_t)l->trainable_params, at = l->param_offset;
        double worst = 0;
        if (!count)
            continue;
        for (size_t j = at; j < at + count; j++)
            worst = fmax(worst, fabs((double)gr[j] - gf[j]));
        cr_assert_leq(worst, 1e-3 * rms(gr + at, count), "%s: ref and fast differ by %g", l->name,
                      worst);
    }
    size_t nx = 4 * (size_t)28 * 28;
    const float *dr = et_net_input_grad(nr), *df = et_net_input_grad(nf);
    double worst = 0;
    for (size_t j = 0; j < nx; j++)
        worst = fmax(worst, fabs((double)dr[j] - df[j]));
    cr_assert_leq(worst, 1e-3 * rms(dr, nx), "input: ref and fast differ by %g (rms %g)", worst,
                  rms(dr, nx));
    free(x);
    et_net_destroy(nr);
    et_net_destroy(nf);
    et_model_destroy(m);
}

/* Residual blocks: a block's input feeds both its expand conv and the skip
 * of its add, so its gradient is the sum of two paths (the add writes it, the
 * expand conv adds on). Every parameter around the adds of the miniature,
 * another initialization than above. */
Test(net_grad, gradients_through_residual_adds)
{
    et_model *m = mini_v2();
    et_net *n = make_net(m, 4, ET_KERNELS_REF);
    static const char *const adds[] = {"block_1_add", "block_3_add"};
    for (int a = 0; a < 2; a++) {
        int add = et_model_find(m, adds[a]);
        int skip = et_model_layer(m, add)->inputs[0], expand = skip + 1;
        cr_assert_eq(et_model_layer(m, add)->kind, ET_NODE_ADD);
        cr_assert_eq(n->nodes[skip].n_consumers, 2);
        cr_assert_eq(et_model_layer(m, expand)->inputs[0], skip);
        cr_assert(!n->nodes[add].acc[0] && n->nodes[expand].acc[0]);
    }
    et_net_destroy(n);
    static const char *const around[] = {"Conv1",
                                         "bn_Conv1",
                                         "block_1_expand",
                                         "block_1_project_BN",
                                         "block_2_project",
                                         "block_2_project_BN",
                                         "block_3_expand",
                                         "block_3_project_BN",
                                         NULL};
    fd_run(&(fd_case){.m = m, ET_KERNELS_REF, 4, 8, .smooth = true, .only = around}, "residual");
}
