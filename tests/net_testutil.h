/* Helpers shared by the net tests (test_net.c, test_net_grad.c): seeded
 * inputs, small models, nets. */
#ifndef ET_NET_TESTUTIL_H
#define ET_NET_TESTUTIL_H

#include "testutil.h"

#include "edgetrain/net.h"
#include "nn/net_internal.h"

#include <criterion/criterion.h>
#include <stdlib.h>

/* xorshift32: the same inputs on every machine. */
static inline uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static inline float rng_uniform(uint32_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)(rng_next(s) >> 8) / 16777216.0f;
}

static inline et_model *build(const et_impulse *imp, int classes, int channels)
{
    et_model *m = NULL;
    et_error err = {0};
    cr_assert_eq(et_model_create_from_impulse(imp, classes, channels, &m, &err), ET_OK, "%s",
                 err.msg);
    return m;
}

static inline et_net *make_net(const et_model *m, int max_batch, et_kernel_set k)
{
    et_net *n = NULL;
    et_error err = {0};
    cr_assert_eq(et_net_create_with(m, max_batch, k, &n, &err), ET_OK, "%s", err.msg);
    cr_assert_eq(et_net_kernels(n), k);
    return n;
}

/* 9x7x2 input, conv 4 3x3, conv 3 3x3, dense 5, 3 classes, no dropout. */
static inline et_impulse tiny_conv(void)
{
    et_impulse imp = et_impulse_defaults();
    imp.height = 9;
    imp.width = 7;
    imp.n_conv = 2;
    imp.conv[0] = (et_conv_layer){4, 3};
    imp.conv[1] = (et_conv_layer){3, 3};
    imp.n_dense = 1;
    imp.dense[0] = 5;
    imp.dropout = 0;
    return imp;
}

/* The smallest MobileNetV2: alpha 0.35 at 32x32x1, head 8, no dropout. */
static inline et_impulse tiny_v2(void)
{
    et_impulse imp = et_impulse_defaults();
    imp.model = ET_MODEL_MOBILENETV2;
    imp.alpha = 0.35;
    imp.width = imp.height = 32;
    imp.head_neurons = 8;
    imp.dropout = 0;
    return imp;
}

static inline float *random_input(const et_model *m, int batch, uint32_t seed)
{
    et_shape s = et_model_input_shape(m);
    size_t n = (size_t)batch * s.h * s.w * s.c;
    float *x = malloc(n * sizeof *x);
    cr_assert_not_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = rng_uniform(&seed, -1.0f, 1.0f);
    return x;
}

static inline void forward(et_net *n, const float *x, int batch, bool training, uint64_t seed)
{
    et_error err = {0};
    cr_assert_eq(et_net_forward(n, x, batch, training, seed, &err), ET_OK, "%s", err.msg);
}

/* Sets every batch norm gamma to Keras' 1, including those that end a
 * residual branch, which et_net_init starts at 0 (zero-gamma): with them at
 * 0 no gradient flows into a branch, and a check of the branch's gradients
 * would compare zeros. */
static inline void keras_gammas(et_net *n)
{
    const et_model *m = et_net_model(n);
    float *p = et_net_params(n);
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_nn_node *nd = et_nn_node_at(m, i);
        for (int c = 0; nd->info.kind == ET_NODE_BATCHNORM && c < nd->out_dims.c; c++)
            p[nd->gamma + c] = 1.0f;
    }
}

#endif
