/*
 * The model graph's internals, for the nn module and the training engine
 * built on it. A model is an array of nodes in topological order; each node
 * carries its public et_layer_info plus what the kernels take directly: the
 * planned et_window, et_dims of its output (n = 1: shapes are per sample,
 * the engine sets the batch), batch-norm parameters and the offsets of each
 * parameter tensor in the flat buffer.
 *
 * Builders append nodes through the et_nn_* functions below. They keep the
 * first error (sticky): once one call fails, every later call returns -1 and
 * does nothing, so an architecture reads as a straight list of layers and
 * checks the status once at the end (et_nn_finish).
 */
#ifndef ET_NN_INTERNAL_H
#define ET_NN_INTERNAL_H

#include "edgetrain/nn.h"
#include "kernels/kernels.h"

/* Where one parameter tensor of a node lives; SIZE_MAX for none. */
#define ET_NN_NO_PARAM ((size_t)-1)

typedef struct et_nn_node {
    et_layer_info info;
    et_dims in_dims;  /* shape of input 0 (n = 1); zero for the input node */
    et_dims out_dims; /* = info.out with n = 1 */
    et_window win;    /* windowed nodes: kernel, stride, pad_top, pad_left */
    et_batchnorm_params bn;
    /* Absolute offsets (floats) into the parameter buffer. */
    size_t weight, bias;                         /* conv2d, depthwise, dense */
    size_t gamma, beta, moving_mean, moving_var; /* batchnorm */
} et_nn_node;

struct et_model {
    et_model_kind arch;
    double alpha; /* MobileNet width multiplier; 0 for a conv net */
    int classes;
    int n_nodes, cap_nodes;
    et_nn_node *nodes;
    int backbone_nodes;
    size_t n_params; /* floats in the parameter buffer so far */
    et_arena arena;  /* node names */
    /* Building state. */
    et_status status;
    et_error *err;
};

/* How a windowed node pads: TensorFlow's same/valid, or explicit zeros
 * (Keras ZeroPadding2D followed by a valid window). */
typedef struct et_nn_pad {
    et_pad_mode mode;
    int top, bottom, left, right; /* ET_PAD_EXPLICIT only */
} et_nn_pad;

#define ET_NN_SAME ((et_nn_pad){.mode = ET_PAD_SAME})
#define ET_NN_VALID ((et_nn_pad){.mode = ET_PAD_VALID})
static inline et_nn_pad et_nn_pad_explicit(int top, int bottom, int left, int right)
{
    return (et_nn_pad){ET_PAD_EXPLICIT, top, bottom, left, right};
}

/* An empty model of architecture arch; NULL when out of memory (then err is set). */
et_model *et_nn_begin(et_model_kind arch, int classes, et_error *err);

/* Each returns the new node's index, or -1 (the model's status says why).
 * name is a printf format for the node's name. */
int et_nn_input(et_model *m, int h, int w, int c, const char *name);
int et_nn_conv2d(et_model *m, int in, int filters, int k, int stride, et_nn_pad pad, bool bias,
                 const char *fmt, ...) __attribute__((format(printf, 8, 9)));
int et_nn_depthwise(et_model *m, int in, int multiplier, int k, int stride, et_nn_pad pad,
                    bool bias, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
int et_nn_pool(et_model *m, et_node_kind kind, int in, int k, int stride, et_nn_pad pad,
               const char *fmt, ...) __attribute__((format(printf, 7, 8)));
int et_nn_dense(et_model *m, int in, int units, bool bias, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int et_nn_batchnorm(et_model *m, int in, double epsilon, double momentum, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int et_nn_dropout(et_model *m, int in, double rate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* shortcut + branch: a batch norm as the branch starts with gamma 0 (et_net_init). */
int et_nn_add(et_model *m, int shortcut, int branch, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* relu, relu6, global_avgpool, flatten, softmax: one input, no settings. */
int et_nn_unary(et_model *m, et_node_kind kind, int in, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the first error (sticky) and returns -1. */
int et_nn_fail(et_model *m, et_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends building: on success hands the model to *out, else destroys it.
 * Returns the model's status. */
et_status et_nn_finish(et_model *m, et_model **out);

/* Architectures (arch_conv.c, arch_mobilenet.c). classes and channels are
 * already checked. */
et_status et_nn_build_conv(const et_impulse *imp, int classes, int channels, et_model **out,
                           et_error *err);
et_status et_nn_build_mobilenet(const et_impulse *imp, int classes, int channels, et_model **out,
                                et_error *err);

/* The model's nodes, for the training engine. */
static inline const et_nn_node *et_nn_node_at(const et_model *m, int i)
{
    return &m->nodes[i];
}

#endif
