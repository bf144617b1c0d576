/* The conv net learning block. For each conv layer of the impulse:
 * Conv2D(filters, kernel, padding same, bias) + ReLU, then MaxPool 2x2,
 * stride 2, padding same; then Flatten, the hidden Dense + ReLU layers,
 * Dropout and Dense(classes) + Softmax. The default impulse (Conv 32 3x3,
 * Conv 16 3x3, Dropout 0.25) gives the Keras model
 *
 *     Conv2D(32, 3, padding="same", activation="relu"), MaxPooling2D(2, 2, padding="same"),
 *     Conv2D(16, 3, padding="same", activation="relu"), MaxPooling2D(2, 2, padding="same"),
 *     Flatten(), Dropout(0.25), Dense(classes, activation="softmax")
 *
 * With learning.batch_norm, each conv has no bias and is followed by
 * BatchNormalization() (Keras' defaults: epsilon 1e-3, momentum 0.99) before
 * its ReLU; the lowering folds it into the conv, so the device runs the same
 * ops. Layer names are Keras' automatic ones (conv2d, conv2d_1, max_pooling2d,
 * batch_normalization, ...);
 * the activations Keras fuses into a layer are nodes of their own here,
 * named after it ("conv2d_relu", "dense_1_softmax"). */
#include "nn/nn_internal.h"

#include <stdio.h>

#define KERAS_BN_EPS 1e-3
#define KERAS_BN_MOMENTUM 0.99

/* Keras' automatic names: "dense", then "dense_1", "dense_2", ... */
static const char *auto_name(char *buf, size_t n, const char *base, int index)
{
    if (index == 0)
        snprintf(buf, n, "%s", base);
    else
        snprintf(buf, n, "%s_%d", base, index);
    return buf;
}

et_status et_nn_build_conv(const et_impulse *imp, int classes, int channels, et_model **out,
                           et_error *err)
{
    if (imp->width < 1 || imp->height < 1 || imp->width > ET_INPUT_MAX ||
        imp->height > ET_INPUT_MAX)
        return et_error_set(err, ET_EINVAL, "input %dx%d: the conv net takes 1..%d px", imp->width,
                            imp->height, ET_INPUT_MAX);
    if (imp->n_conv < 0 || imp->n_conv > ET_MAX_CONV_LAYERS)
        return et_error_set(err, ET_EINVAL, "learning.conv_layers: %d layers, allowed 0..%d",
                            imp->n_conv, ET_MAX_CONV_LAYERS);
    if (imp->n_dense < 0 || imp->n_dense > ET_MAX_DENSE_LAYERS)
        return et_error_set(err, ET_EINVAL, "learning.dense_layers: %d layers, allowed 0..%d",
                            imp->n_dense, ET_MAX_DENSE_LAYERS);
    for (int i = 0; i < imp->n_conv; i++) {
        const et_conv_layer *c = &imp->conv[i];
        if (c->filters < 1 || c->filters > 1024 || c->kernel < 1 || c->kernel > 7)
            return et_error_set(err, ET_EINVAL,
                                "learning.conv_layers[%d]: %d filters of %dx%d; allowed "
                                "1..1024 filters, kernel 1..7",
                                i, c->filters, c->kernel, c->kernel);
    }
    for (int i = 0; i < imp->n_dense; i++)
        if (imp->dense[i] < 1 || imp->dense[i] > 4096)
            return et_error_set(err, ET_EINVAL,
                                "learning.dense_layers[%d]: %d neurons is outside 1..4096", i,
                                imp->dense[i]);

    et_model *m = et_nn_begin(ET_MODEL_CONV, classes, err);
    if (!m)
        return ET_ENOMEM;
    char name[64], bn[16];
    int x = et_nn_input(m, imp->height, imp->width, channels, "input");
    for (int i = 0; i < imp->n_conv; i++) {
        auto_name(name, sizeof name, "conv2d", i);
        x = et_nn_conv2d(m, x, imp->conv[i].filters, imp->conv[i].kernel, 1, ET_NN_SAME,
                         !imp->batch_norm, "%s", name);
        if (imp->batch_norm)
            x = et_nn_batchnorm(m, x, KERAS_BN_EPS, KERAS_BN_MOMENTUM, "batch_normalization%s",
                                auto_name(bn, sizeof bn, "", i));
        x = et_nn_unary(m, ET_NODE_RELU, x, "%s_relu", name);
        x = et_nn_pool(m, ET_NODE_MAXPOOL, x, 2, 2, ET_NN_SAME, "%s",
                       auto_name(name, sizeof name, "max_pooling2d", i));
    }
    x = et_nn_unary(m, ET_NODE_FLATTEN, x, "flatten");
    int dense = 0;
    for (int i = 0; i < imp->n_dense; i++, dense++) {
        auto_name(name, sizeof name, "dense", dense);
        x = et_nn_dense(m, x, imp->dense[i], true, "%s", name);
        x = et_nn_unary(m, ET_NODE_RELU, x, "%s_relu", name);
    }
    if (imp->dropout > 0)
        x = et_nn_dropout(m, x, imp->dropout, "dropout");
    auto_name(name, sizeof name, "dense", dense);
    x = et_nn_dense(m, x, classes, true, "%s", name);
    et_nn_unary(m, ET_NODE_SOFTMAX, x, "%s_softmax", name);
    m->backbone_nodes = 0;
    return et_nn_finish(m, out);
}
