/* Parameter initialization (Keras' defaults), the optimizers (Adam, SGD)
 * and learning-rate schedules.
 *
 * Every loop here is element-wise: each parameter's new value depends on its
 * own gradient and state only, so splitting the loops across OpenMP threads
 * cannot change a bit of the result. */
#include "nn/net_internal.h"

#include <math.h>
#include <string.h>

/* Element-wise loops go parallel above this many floats. */
#define ET_OPTIM_PAR_MIN 32768

/* Tensor tags for the initialization streams of a node. */
enum { INIT_WEIGHTS = 1 };

/* glorot_uniform over count floats: uniform in [-limit, limit). */
static void glorot_uniform(float *w, size_t count, double fan_in, double fan_out, uint64_t key)
{
    double limit = sqrt(6.0 / (fan_in + fan_out));
#pragma omp parallel for schedule(static) if (count > ET_OPTIM_PAR_MIN)
    for (size_t i = 0; i < count; i++)
        w[i] = (float)((2.0 * et_net_uniform(key, i) - 1.0) * limit);
}

static void fill(float *p, size_t count, float value)
{
    for (size_t i = 0; i < count; i++)
        p[i] = value;
}

/* Whether node i is the batch norm that ends a residual branch: the second
 * input of an add (et_nn_add(m, shortcut, branch)). Its gamma starts at 0,
 * not Keras' 1, so that every residual block starts as the identity (the
 * "zero-gamma" initialization of Goyal et al. 2017, section 5.1). A
 * MobileNetV2 trained from scratch learns several times faster with it: on
 * Fashion-MNIST at 32x32, alpha 0.35, Adam 0.0005, the first epoch ends at
 * 79 % validation accuracy instead of 59 % (docs/BENCHMARKS.md). */
static bool ends_residual_branch(const et_net *n, int i)
{
    if (n->nodes[i].node->info.kind != ET_NODE_BATCHNORM)
        return false;
    for (int j = i + 1; j < n->n_nodes; j++) {
        const et_layer_info *l = &n->nodes[j].node->info;
        if (l->kind == ET_NODE_ADD && l->inputs[1] == i)
            return true;
    }
    return false;
}

void et_net_init(et_net *n, uint64_t seed)
{
    n->bn_updates = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        const et_nn_node *nd = n->nodes[i].node;
        const et_layer_info *l = &nd->info;
        float *p = n->params;
        double in_c = nd->in_dims.c, rf = (double)l->kernel_h * l->kernel_w;
        uint64_t key = et_net_key(seed, (uint64_t)i, INIT_WEIGHTS);
        int units = l->units;
        switch (l->kind) {
        case ET_NODE_CONV2D:
            /* Keras: kernel (k_h, k_w, in_c, filters), receptive field k_h*k_w. */
            glorot_uniform(p + nd->weight, (size_t)(rf * in_c * units), rf * in_c, rf * units, key);
            break;
        case ET_NODE_DEPTHWISE_CONV2D:
            /* Keras: kernel (k_h, k_w, in_c, multiplier). */
            glorot_uniform(p + nd->weight, (size_t)(rf * units), rf * in_c,
                           rf * l->depth_multiplier, key);
            break;
        case ET_NODE_DENSE: {
            double in_f = (double)n->nodes[l->inputs[0]].count;
            glorot_uniform(p + nd->weight, (size_t)(in_f * units), in_f, units, key);
            break;
        }
        case ET_NODE_BATCHNORM: {
            size_t c = (size_t)nd->out_dims.c;
            fill(p + nd->gamma, c, ends_residual_branch(n, i) ? 0.0f : 1.0f);
            fill(p + nd->beta, c, 0.0f);
            fill(p + nd->moving_mean, c, 0.0f);
            fill(p + nd->moving_var, c, 1.0f);
            break;
        }
        default: break;
        }
        if (nd->bias != ET_NN_NO_PARAM)
            fill(p + nd->bias, (size_t)units, 0.0f);
    }
    et_net_optimizer_reset(n);
}

et_optimizer et_optimizer_adam(void)
{
    return (et_optimizer){.kind = ET_OPT_ADAM, .beta1 = 0.9, .beta2 = 0.999, .epsilon = 1e-7};
}

et_optimizer et_optimizer_sgd(double momentum)
{
    return (et_optimizer){.kind = ET_OPT_SGD, .momentum = momentum};
}

void et_net_optimizer_reset(et_net *n)
{
    if (n->inference)
        return; /* no optimizer state */
    memset(n->opt_m, 0, n->n_params * sizeof *n->opt_m);
    memset(n->opt_v, 0, n->n_params * sizeof *n->opt_v);
    n->opt_steps = 0;
}

int64_t et_net_steps(const et_net *n)
{
    return n->opt_steps;
}

float *et_net_optimizer_state(et_net *n, int which)
{
    return n->inference ? NULL : which == 0 ? n->opt_m : n->opt_v;
}

void et_net_bn_restart(et_net *n)
{
    n->bn_updates = 0;
}

void et_net_set_steps(et_net *n, int64_t steps)
{
    n->opt_steps = steps;
}

/* Keras 3's Adam.update_step (TensorFlow's ResourceApplyAdam is the same):
 * the bias corrections fold into the step size, epsilon is not corrected. */
static void adam(float *p, const float *g, float *m, float *v, size_t count, float alpha,
                 float beta1, float beta2, float epsilon)
{
    float one_b1 = 1.0f - beta1, one_b2 = 1.0f - beta2;
#pragma omp parallel for simd schedule(static) if (count > ET_OPTIM_PAR_MIN)
    for (size_t i = 0; i < count; i++) {
        float gi = g[i];
        float mi = m[i] + (gi - m[i]) * one_b1;
        float vi = v[i] + (gi * gi - v[i]) * one_b2;
        m[i] = mi;
        v[i] = vi;
        p[i] -= alpha * mi / (sqrtf(vi) + epsilon);
    }
}

/* Keras 3's SGD.update_step: u = momentum u - lr g; p += u, or with Nesterov
 * p += momentum u - lr g. Without momentum, p -= lr g. */
static void sgd(float *p, const float *g, float *u, size_t count, float lr, float momentum,
                bool nesterov)
{
    if (momentum == 0.0f) {
#pragma omp parallel for simd schedule(static) if (count > ET_OPTIM_PAR_MIN)
        for (size_t i = 0; i < count; i++)
            p[i] -= lr * g[i];
        return;
    }
#pragma omp parallel for simd schedule(static) if (count > ET_OPTIM_PAR_MIN)
    for (size_t i = 0; i < count; i++) {
        float ui = momentum * u[i] - lr * g[i];
        u[i] = ui;
        p[i] += nesterov ? momentum * ui - lr * g[i] : ui;
    }
}

void et_net_step(et_net *n, const et_optimizer *opt, double learning_rate)
{
    n->opt_steps++;
    float alpha = 0.0f;
    if (opt->kind == ET_OPT_ADAM) {
        double t = (double)n->opt_steps;
        alpha =
            (float)(learning_rate * sqrt(1.0 - pow(opt->beta2, t)) / (1.0 - pow(opt->beta1, t)));
    }
    for (int r = 0; r < n->n_ranges; r++) {
        size_t o = n->ranges[r].offset, c = n->ranges[r].count;
        if (opt->kind == ET_OPT_ADAM)
            adam(n->params + o, n->grads + o, n->opt_m + o, n->opt_v + o, c, alpha,
                 (float)opt->beta1, (float)opt->beta2, (float)opt->epsilon);
        else
            sgd(n->params + o, n->grads + o, n->opt_m + o, c, (float)learning_rate,
                (float)opt->momentum, opt->nesterov);
    }
}

double et_lr_constant(double base, int step, int total_steps)
{
    (void)step;
    (void)total_steps;
    return base;
}

double et_lr_cosine(double base, int step, int total_steps)
{
    if (total_steps < 1)
        return base;
    double t = step < 0 ? 0.0 : step > total_steps ? 1.0 : (double)step / total_steps;
    return base * 0.5 * (1.0 + cos(M_PI * t));
}
