/*
 * edgetrain nn: the model graph. A model is a list of nodes in topological
 * order (every node's inputs come before it): node 0 is the input image, the
 * last node is the softmax over the classes. Each node knows its kind, a
 * Keras-like name ("block_3_depthwise"), its output shape per sample, its
 * layer settings, how many parameters it has, where they sit in the model's
 * one flat float32 parameter buffer, and how many multiply-accumulates it
 * costs per sample. This module describes models; running them (forward,
 * backward, training) is built on top of it.
 *
 * Print what an impulse's learning block builds:
 *
 *     et_impulse imp = et_impulse_defaults();
 *     et_error err = {0};
 *     et_model *m = NULL;
 *     if (et_model_create_from_impulse(&imp, 10, 1, &m, &err) < 0)
 *         return fprintf(stderr, "edgetrain: %s\n", err.msg), 1;
 *     for (int i = 0; i < et_model_node_count(m); i++) {
 *         const et_layer_info *l = et_model_layer(m, i);
 *         printf("%-20s %dx%dx%d %lld params\n", l->name, l->out.h, l->out.w, l->out.c,
 *                (long long)(l->trainable_params + l->non_trainable_params));
 *     }
 *     char *text = et_model_summary_text(m);        // or et_model_summary_json(m)
 *     fputs(text, stdout);
 *     free(text);
 *     et_model_destroy(m);
 *
 * The architectures:
 * - conv: for each conv layer of the impulse Conv2D(filters, kernel, same,
 *   bias) + ReLU + MaxPool(2, stride 2, same); Flatten; hidden Dense + ReLU
 *   layers; Dropout; Dense(classes) + Softmax. The default impulse gives the
 *   Keras/Edge Impulse default conv net.
 * - mobilenetv1 / mobilenetv2: the Keras applications' include_top=False
 *   backbones (keras/applications/mobilenet.py, mobilenet_v2.py; same layer
 *   names, channel rounding, padding, batch-norm settings, residual adds),
 *   then GlobalAveragePooling, Dense(head_neurons) + ReLU (none when
 *   head_neurons is 0), Dropout, Dense(classes) + Softmax.
 * A Dropout of rate 0 is left out (it would be the identity).
 *
 * Parameter buffer. The model's parameters are one array of
 * et_model_totals_all(m).params floats. Node by node, in graph order:
 *   conv2d            weights [out_c][k_h][k_w][in_c], then bias [out_c] if any
 *   depthwise_conv2d  weights [k_h][k_w][in_c * multiplier], then bias if any
 *   dense             weights [out][in], then bias [out] if any
 *   batchnorm         gamma [c], beta [c], moving mean [c], moving variance [c]
 * (the weight layouts of the training kernels and of TensorFlow Lite). A
 * node's block starts at param_offset and is trainable_params +
 * non_trainable_params floats long; blocks are contiguous and do not overlap.
 * Moving mean and variance are non-trainable, as Keras counts them.
 *
 * MACs count only the multiply-accumulates of conv2d, depthwise_conv2d and
 * dense, per sample: conv2d out_h*out_w*out_c*k_h*k_w*in_c; depthwise
 * out_h*out_w*out_c*k_h*k_w; dense in*out. Bias adds, batch norm, pooling,
 * activations and adds are not counted.
 */
#ifndef EDGETRAIN_NN_H
#define EDGETRAIN_NN_H

#include "edgetrain/core.h"
#include "edgetrain/impulse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct et_model et_model;

typedef enum et_node_kind {
    ET_NODE_INPUT = 0,
    ET_NODE_CONV2D,
    ET_NODE_DEPTHWISE_CONV2D,
    ET_NODE_DENSE,
    ET_NODE_BATCHNORM,
    ET_NODE_RELU,
    ET_NODE_RELU6,
    ET_NODE_MAXPOOL,
    ET_NODE_AVGPOOL,
    ET_NODE_GLOBAL_AVGPOOL,
    ET_NODE_ADD,     /* residual: out = input 0 + input 1, same shapes */
    ET_NODE_FLATTEN, /* h x w x c -> 1 x 1 x (h*w*c), NHWC order kept */
    ET_NODE_DROPOUT,
    ET_NODE_SOFTMAX,
} et_node_kind;
#define ET_NODE_KIND_COUNT 14

/* How a windowed node (conv2d, depthwise, pooling) pads its input. */
typedef enum et_pad_mode {
    ET_PAD_NONE = 0,     /* not a windowed node */
    ET_PAD_SAME = 1,     /* TensorFlow "same": out = ceil(in / stride) */
    ET_PAD_VALID = 2,    /* TensorFlow "valid": no padding */
    ET_PAD_EXPLICIT = 3, /* Keras ZeroPadding2D + a valid window: pad_* give the zeros */
} et_pad_mode;

/* Shape of one sample's activation, NHWC without the batch: h rows, w columns,
 * c channels. Vectors (flatten, dense, softmax, ...) are 1 x 1 x n. */
typedef struct et_shape {
    int h, w, c;
} et_shape;

/* Everything about one node. Owned by the model: valid until et_model_destroy. */
typedef struct et_layer_info {
    et_node_kind kind;
    const char *name; /* Keras-like and unique in the model, e.g. "block_3_depthwise" */
    int n_inputs;     /* 0 (input), 2 (add) or 1 */
    int inputs[2];    /* indices of earlier nodes; -1 where unused */
    et_shape out;     /* output shape per sample */
    bool flat;        /* the output is a vector (1 x 1 x out.c) */

    /* Windowed nodes (conv2d, depthwise_conv2d, maxpool, avgpool); 0 otherwise. */
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    et_pad_mode padding;
    int pad_top, pad_bottom, pad_left, pad_right; /* zeros around the input, pixels */

    int units;            /* conv2d: filters; depthwise: in_c * multiplier; dense: outputs */
    int depth_multiplier; /* depthwise only, else 0 */
    bool use_bias;        /* conv2d, depthwise, dense */
    double dropout_rate;  /* dropout only: fraction of inputs zeroed in training */
    double bn_epsilon;    /* batchnorm only */
    double bn_momentum;   /* batchnorm only: moving = momentum * moving + (1 - momentum) * batch */

    int64_t trainable_params;     /* weights + bias, or gamma + beta */
    int64_t non_trainable_params; /* batchnorm moving mean + variance */
    size_t param_offset;          /* first float of this node's block in the parameter buffer */
    int64_t macs;                 /* multiply-accumulates per sample (see above) */
} et_layer_info;

/* Totals over a range of nodes. */
typedef struct et_model_totals {
    int64_t params; /* trainable + non-trainable, = floats in the buffer */
    int64_t trainable_params;
    int64_t non_trainable_params;
    int64_t macs; /* per sample */
} et_model_totals;

/* Builds the graph of an impulse's learning block.
 *   imp       the impulse: input width/height, model kind, alpha, conv and
 *             dense layers, head_neurons, dropout (borrowed). The builder
 *             checks what it needs itself (ranges below); it does not ask for
 *             the impulse's stricter lists (e.g. the offered alphas).
 *   classes   outputs of the classifier, 1..100000.
 *   channels  input channels, 1..4 (the processing block gives 1 or 3).
 *   out       receives the model; the caller destroys it.
 * Ranges: conv net input 1..ET_INPUT_MAX px, 1..ET_MAX_CONV_LAYERS conv layers
 * of 1..1024 filters and kernel 1..7, hidden dense 1..4096; MobileNetV1 alpha
 * 0.1..1.0, MobileNetV2 alpha 0.05..1.0, input ET_TRANSFER_INPUT_MIN..
 * ET_TRANSFER_INPUT_MAX px (Keras needs >= 32), head_neurons 0..4096;
 * dropout 0..0.9.
 * Returns ET_OK, ET_EINVAL (err names the setting and what is allowed, or the
 * layer whose output would be empty), or ET_ENOMEM. */
et_status et_model_create_from_impulse(const et_impulse *imp, int classes, int channels,
                                       et_model **out, et_error *err);

/* Releases a model and everything it owns. NULL does nothing. */
void et_model_destroy(et_model *m);

/* The architecture it was built as. */
et_model_kind et_model_architecture(const et_model *m);

/* Number of nodes (>= 1). */
int et_model_node_count(const et_model *m);

/* Node i, 0 <= i < et_model_node_count(m); NULL when i is out of range.
 * The pointer is owned by the model. */
const et_layer_info *et_model_layer(const et_model *m, int i);

/* Index of the node named name, or -1. */
int et_model_find(const et_model *m, const char *name);

/* Nodes that belong to the pretrained backbone, counted from node 0 (the
 * input included): 0 for a conv net, else the nodes up to the backbone's last
 * activation ("conv_pw_13_relu", "out_relu"); the head follows. */
int et_model_backbone_nodes(const et_model *m);

/* Sums over nodes first .. first + count - 1 (clipped to the model). */
et_model_totals et_model_totals_range(const et_model *m, int first, int count);
/* Sums over the whole model. */
et_model_totals et_model_totals_all(const et_model *m);

/* Whether some node is a batch norm. */
bool et_model_has_batchnorm(const et_model *m);

/* The most training samples a training run reads again, forward only, after
 * each epoch of a model with batch norm, to re-estimate its moving
 * statistics for the epoch's final weights (src/nn/train.c). */
#define ET_PRECISE_BN_SAMPLES 4096

/* Input shape per sample, and the number of classes (the output is 1 x 1 x classes). */
et_shape et_model_input_shape(const et_model *m);
int et_model_classes(const et_model *m);

/* "conv2d", "depthwise_conv2d", "batchnorm", ..., "softmax"; "?" when unknown. */
const char *et_node_kind_name(et_node_kind kind);

/* Summary table as text: one row per node (name, kind, output shape, params,
 * MACs), then totals (params, trainable / non-trainable, MACs per sample,
 * float32 parameter bytes). malloc'ed, NUL-terminated; the caller frees it.
 * NULL when out of memory. */
char *et_model_summary_text(const et_model *m);

/* The same as one line of compact JSON:
 *   {"architecture": "mobilenetv2",
 *    "layers": [{"name", "kind", "output": [h, w, c], "inputs": [names],
 *                "params", "trainable_params", "macs"}, ...],
 *    "params": N, "trainable_params": N, "non_trainable_params": N,
 *    "param_bytes": N, "macs": N, "input": [h, w, c], "classes": N}
 * malloc'ed; the caller frees it. NULL when out of memory. */
char *et_model_summary_json(const et_model *m);

#ifdef __cplusplus
}
#endif
#endif
