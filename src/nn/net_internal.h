/*
 * The training engine's internals (net.c, net_ops.c, optim.c): the kernel
 * table a net dispatches through, the per-node run state, the net itself and
 * the counter-based random numbers behind initialization and dropout.
 */
#ifndef ET_NET_INTERNAL_H
#define ET_NET_INTERNAL_H

#include "edgetrain/net.h"
#include "kernels/kernels.h"
#include "nn/nn_internal.h"

/* One set of training kernels (kernels.h), all with the ref/fast signatures.
 * Softmax cross-entropy has only a reference version: it runs on
 * batch x classes floats, nothing worth speeding up. */
typedef struct et_net_ops {
    et_kernel_set kind;
    size_t (*conv2d_scratch)(const et_window *, const et_dims *, const et_dims *);
    void (*conv2d_fwd)(const et_window *, const et_dims *, const float *, const float *,
                       const float *, const et_dims *, float *, void *);
    void (*conv2d_bwd)(const et_window *, const et_dims *, const float *, const float *,
                       const et_dims *, const float *, float *, float *, float *, void *);
    size_t (*dw_scratch)(const et_window *, const et_dims *, const et_dims *);
    void (*dw_fwd)(const et_window *, const et_dims *, const float *, const float *, const float *,
                   const et_dims *, float *, void *);
    void (*dw_bwd)(const et_window *, const et_dims *, const float *, const float *,
                   const et_dims *, const float *, float *, float *, float *, void *);
    void (*dense_fwd)(int, int, int, const float *, const float *, const float *, float *);
    void (*dense_bwd)(int, int, int, const float *, const float *, const float *, float *, float *,
                      float *);
    void (*bn_train)(const et_batchnorm_params *, size_t, int, const float *, const float *,
                     const float *, float *, float *, float *, float *, float *);
    void (*bn_infer)(const et_batchnorm_params *, size_t, int, const float *, const float *,
                     const float *, const float *, const float *, float *);
    void (*bn_bwd)(size_t, int, const float *, const float *, const float *, const float *,
                   const float *, float *, float *, float *);
    void (*relu_fwd)(size_t, const float *, float *);
    void (*relu_bwd)(size_t, const float *, const float *, float *);
    void (*relu6_fwd)(size_t, const float *, float *);
    void (*relu6_bwd)(size_t, const float *, const float *, float *);
    void (*maxpool_fwd)(const et_window *, const et_dims *, const float *, const et_dims *,
                        float *);
    void (*maxpool_bwd)(const et_window *, const et_dims *, const float *, const et_dims *,
                        const float *, float *);
    void (*avgpool_fwd)(const et_window *, const et_dims *, const float *, const et_dims *,
                        float *);
    void (*avgpool_bwd)(const et_window *, const et_dims *, const et_dims *, const float *,
                        float *);
    void (*gap_fwd)(const et_dims *, const float *, float *);
    void (*gap_bwd)(const et_dims *, const float *, float *);
    void (*add_fwd)(size_t, const float *, const float *, float *);
    void (*dropout_fwd)(size_t, const float *, const uint8_t *, float, float *);
    void (*dropout_bwd)(size_t, const float *, const uint8_t *, float, float *);
    /* Fused kernels (fast set only; NULL in the reference set): conv2d +
     * ReLU (+ max pool) forward, max pool + ReLU (+ conv2d) backward, batch
     * norm + ReLU(6) both ways. */
    void (*conv2d_relu_fwd)(const et_window *, const et_dims *, const float *, const float *,
                            const float *, const et_dims *, float *, void *);
    void (*conv2d_relu_maxpool_fwd)(const et_window *, const et_dims *, const float *,
                                    const float *, const float *, const et_dims *, float *,
                                    const et_window *, const et_dims *, float *, uint8_t *, void *);
    void (*maxpool_relu_bwd)(const et_window *, const et_dims *, const float *, const et_dims *,
                             const float *, float *);
    /* Batch norm with the ReLU or ReLU6 after it (et_act), training and
     * inference forward, training backward. */
    void (*bn_act_train)(const et_batchnorm_params *, et_act, size_t, int, const float *,
                         const float *, const float *, float *, float *, float *, float *, float *);
    void (*bn_act_infer)(const et_batchnorm_params *, et_act, size_t, int, const float *,
                         const float *, const float *, const float *, const float *, float *);
    void (*bn_act_bwd)(et_act, size_t, int, const float *, const float *, const float *,
                       const float *, const float *, const float *, const float *, float *, float *,
                       float *);
    size_t (*conv2d_relu_maxpool_scratch)(const et_window *, const et_dims *, const et_dims *);
    void (*conv2d_relu_maxpool_bwd)(const et_window *, const et_dims *, const float *,
                                    const float *, const et_dims *, const float *, const uint8_t *,
                                    const et_window *, const et_dims *, const float *, float *,
                                    float *, float *, void *);
} et_net_ops;

/* The table for k (ET_KERNELS_REF or ET_KERNELS_FAST). */
const et_net_ops *et_net_ops_for(et_kernel_set k);

/* The fast kernels without the fused ones: for tests that compare the
 * engine's fused paths with the pieces run one by one. */
const et_net_ops *et_net_ops_unfused(void);

/* et_net_create_with over a given kernel table (a training net). */
et_status et_net_create_ops(const et_model *m, int max_batch, const et_net_ops *ops, et_net **out,
                            et_error *err);

/* Run state of one node. */
typedef struct et_net_node {
    const et_nn_node *node; /* the model's node */
    size_t count;           /* floats of its output per sample */
    float *y;               /* output [max_batch][count]; may be shared (see below) */
    float *dy;              /* d loss / d y, planned; NULL when no backward reaches it */
    int last_consumer;      /* highest index of a node reading y; -1 for none */
    int n_consumers;
    /* y belongs to the node's only consumer too, a ReLU(6) that runs in place. */
    bool shares_with_relu;
    /* Fusions, when the kernel set has the fused kernels (net.c,
     * plan_fusions). Forward: a conv2d whose y is shared with its ReLU
     * applies the ReLU itself (fwd_relu) and, when that ReLU only feeds a max
     * pool, the pool too (fwd_pool); the absorbed nodes' forward passes then
     * do nothing. Not under fake quantization, which rounds every node's
     * output in between. Backward: a max pool whose input is a ReLU that
     * feeds nothing else runs the ReLU's backward pass (bwd_relu), and the
     * conv2d's before it too (bwd_conv) when the ReLU is the conv's only
     * consumer and the conv's input has no other; the absorbed nodes'
     * backward passes then do nothing (bwd_by: the pool that runs them). */
    bool fwd_relu, fwd_pool; /* conv2d */
    bool bwd_relu, bwd_conv; /* max pool */
    int bwd_by;              /* -1, or the node whose backward pass runs this one's */
    /* A batch norm whose y is shared with its ReLU or ReLU6 applies it in
     * its forward pass (fwd_act, not under fake quantization), and that
     * activation runs the batch norm's backward pass in its own (bwd_bn;
     * the batch norm's bwd_by is the activation). */
    et_act fwd_act; /* batch norm */
    bool bwd_bn;    /* ReLU, ReLU6 */
    /* Max pool of a chain fused both ways: the argmax of the last forward
     * pass, [max_batch][count], which the backward pass routes by instead
     * of reading the ReLU's output again; arg_valid when that pass was a
     * fused training one. */
    uint8_t *arg;
    bool arg_valid;
    /* Flags for the backward pass, from et_net_plan_backward. */
    bool needs_grad; /* some trainable parameter (or the wanted input) lies upstream */
    bool runs_back;  /* its backward pass runs: it reaches the loss and needs_grad */
    bool acc[2];     /* per input slot: add its gradient to what is there, not overwrite */
    bool reaches_loss, grad_written; /* planning only */
    /* y holds this node's output after a forward pass (an inference net
     * reuses the buffers of nodes it does not keep; net.c) */
    bool kept;
    uint8_t *mask;                  /* dropout: [max_batch][count] */
    float *save_mean, *save_invstd; /* batch norm: [c] each */
} et_net_node;

/* A trainable block of the parameter buffer. */
typedef struct et_net_range {
    size_t offset, count;
} et_net_range;

struct et_net {
    const et_model *model;
    const et_net_ops *ops;
    int n_nodes, max_batch, classes;
    et_net_node *nodes;
    /* Made by et_net_create_inference: no gradients, optimizer state, masks
     * or saved statistics, and activations placed by lifetime. */
    bool inference;

    size_t n_params;
    float *params, *grads;
    float *opt_m, *opt_v; /* Adam moments; SGD keeps its velocity in opt_m */
    int64_t opt_steps;
    int64_t bn_updates; /* training forward passes since et_net_init (batch-norm warm-up) */
    et_net_range *ranges; /* trainable blocks, in buffer order */
    int n_ranges;

    float *acts;       /* activations of every node that owns a buffer */
    float *grad_pool;  /* activation gradients, planned by lifetime */
    float *acc_tmp;    /* a backward pass's dx before it is added to a shared gradient */
    float *loss_probs; /* [max_batch][classes] for et_net_loss */
    void *scratch;     /* the conv / depthwise kernels' scratch */
    uint8_t *masks;    /* dropout masks and max pools' argmax bytes */
    float *bn_saved;
    size_t bytes; /* allocated so far */
    bool oom;     /* an allocation failed while planning */

    /* Quantization-aware training (net_qat.c): forward and backward read
     * qparams, the parameters with int8 fake-quantized weights, and the
     * outputs of nodes with fq_scale > 0 are fake-quantized to int8. */
    bool fq;
    float *qparams;
    float *fq_scale;  /* [n_nodes], 0 = not quantized */
    int32_t *fq_zero; /* [n_nodes] */

    int batch;             /* of the last forward pass; 0 before the first */
    bool last_training;    /* the last forward pass was a training one */
    bool input_grad;       /* backward computes d loss / d x too */
    bool input_grad_valid; /* ... and the last backward pass did */
};

/* Quantization-aware training: refreshes qparams from params (weights of
 * conv2d, depthwise and dense fake-quantized per output channel), and
 * fake-quantizes node i's output in place. */
void et_net_fq_weights(et_net *n);
void et_net_fq_output(et_net *n, int i, float *y, size_t total);

/* Sets needs_grad, runs_back and acc for every node from the graph and
 * n->input_grad. */
void et_net_plan_backward(et_net *n);

/* Offsets (floats) for `count` buffers of sizes size[i] alive during backward
 * steps [first[i], last[i]] (inclusive), such that two buffers alive at the
 * same step never overlap. Greedy by size (TensorFlow Lite Micro's planner).
 * Writes offset[i] and returns the total floats; (size_t)-1 when out of
 * memory. Sizes of 0 get offset 0. */
size_t et_net_plan_lifetimes(int count, const size_t *size, const int *first, const int *last,
                             size_t *offset);

/* ------------------------------------------------------------------------
 * Counter-based random numbers: a value is a pure function of a key and an
 * index, so any thread may compute any element and results do not depend on
 * the thread count or on the order of computation. SplitMix64's finalizer
 * (Stafford's Mix13) as the mixing function.
 */
static inline uint64_t et_net_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* A key for stream (a, b) of seed: e.g. (node, tensor) for initialization,
 * (node, 0) for a dropout mask of one step seed. */
static inline uint64_t et_net_key(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t k = et_net_mix64(seed + UINT64_C(0x9E3779B97F4A7C15));
    k = et_net_mix64(k ^ (a * UINT64_C(0xD1B54A32D192ED03) + UINT64_C(0x632BE59BD9B4E019)));
    return et_net_mix64(k ^ (b * UINT64_C(0x8CB92BA72F3D8DD7) + UINT64_C(0x9E3779B97F4A7C15)));
}

/* Element i of stream key, 64 random bits. */
static inline uint64_t et_net_bits(uint64_t key, uint64_t i)
{
    return et_net_mix64(key + (i + 1) * UINT64_C(0x9E3779B97F4A7C15));
}

/* Element i of stream key as a double in [0, 1), 53 bits. */
static inline double et_net_uniform(uint64_t key, uint64_t i)
{
    return (double)(et_net_bits(key, i) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
