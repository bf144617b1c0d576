/*
 * edgetrain net: a model ready to run and train. An et_net takes a model
 * graph (edgetrain/nn.h) and plans, once, everything a training step needs:
 * the parameter buffer, its gradients, the optimizer's state, the
 * activations of up to max_batch samples, the kernels' scratch memory.
 * Forward, backward and optimizer steps then allocate nothing.
 *
 * A training loop:
 *
 *     et_net *net = NULL;
 *     et_error err = {0};
 *     if (et_net_create(model, 32, &net, &err) < 0)
 *         return fprintf(stderr, "edgetrain: %s\n", err.msg), 1;
 *     et_net_init(net, seed);                       // Keras' initializers
 *     et_optimizer adam = et_optimizer_adam();      // Keras' defaults
 *     for (int step = 0; step < total; step++) {
 *         ... x = 32 samples NHWC, y = their labels ...
 *         double loss;
 *         et_net_forward(net, x, 32, true, step, &err);       // dropout, batch statistics
 *         et_net_backward(net, y, 0.0, NULL, &loss, &err);    // loss and gradients
 *         et_net_step(net, &adam, et_lr_cosine(0.0005, step, total));
 *     }
 *     et_net_forward(net, x_val, n_val, false, 0, &err);      // inference mode
 *     const float *p = et_net_probs(net);                     // [n_val][classes]
 *     memcpy(best, et_net_params(net), et_net_param_count(net) * sizeof(float));
 *     et_net_destroy(net);
 *
 * Kernels. A net runs either the reference kernels (src/kernels/ref: plain
 * loops, double accumulators, one thread) or the fast ones (src/kernels/fast:
 * OpenBLAS and OpenMP). Both give results that do not depend on the number of
 * OpenMP threads; they differ from each other in rounding (about 1e-5
 * relative). The environment variable ET_KERNELS=ref|fast picks them for
 * et_net_create; the default is fast.
 *
 * Reproducibility. The same model, seed, data, batch order and step seeds
 * give bit-identical parameters on the same machine, with 1 or many threads:
 * initial values and dropout masks come from a counter-based generator keyed
 * by (seed, node, tensor or step) and indexed by the element, and every sum
 * is taken in an order fixed by the shapes alone.
 *
 * Threads: one net is used by one thread at a time (its kernels may use
 * OpenMP inside). Different nets are independent.
 */
#ifndef EDGETRAIN_NET_H
#define EDGETRAIN_NET_H

#include "edgetrain/core.h"
#include "edgetrain/nn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct et_net et_net;

/* Which kernels a net runs. */
typedef enum et_kernel_set {
    ET_KERNELS_AUTO = 0, /* $ET_KERNELS ("ref" or "fast") when set, else fast */
    ET_KERNELS_REF = 1,
    ET_KERNELS_FAST = 2,
} et_kernel_set;

/* "auto", "ref" or "fast"; "?" when unknown. */
const char *et_kernel_set_name(et_kernel_set k);

/* Plans a net for model m with $ET_KERNELS's kernels (see above).
 *   m          the model graph, borrowed: it must outlive the net.
 *   max_batch  the most samples one forward pass takes, 1..65536.
 *   out        receives the net; the caller destroys it.
 * The parameters start at zero: call et_net_init or fill et_net_params.
 * Returns ET_OK, ET_EINVAL (bad max_batch, a graph the engine cannot run, a
 * bad $ET_KERNELS) or ET_ENOMEM (err says how many bytes were asked for). */
et_status et_net_create(const et_model *m, int max_batch, et_net **out, et_error *err);

/* The same with the kernels named by the caller (ET_KERNELS_AUTO reads
 * $ET_KERNELS as et_net_create does). */
et_status et_net_create_with(const et_model *m, int max_batch, et_kernel_set kernels, et_net **out,
                             et_error *err);

/* Plans a net for inference only, with $ET_KERNELS's kernels: evaluation,
 * embeddings, calibration. It allocates what forward passes need and no
 * more: no gradients, optimizer state, dropout masks or saved batch-norm
 * statistics, and activation buffers are reused once no later node reads
 * them (placed by lifetime, as the gradients of a training net are).
 *   m, max_batch, out, err  as for et_net_create.
 *   keep, n_keep  the model nodes (et_model_layer's indices) whose outputs
 *                 et_net_node_output must still return after a forward pass;
 *                 keep may be NULL when n_keep is 0. The last node (the
 *                 probabilities) is always kept.
 * Forward passes must have training false; et_net_backward fails with
 * ET_EINVAL, et_net_grads returns NULL and et_net_step does nothing.
 * Returns ET_OK, ET_EINVAL (as et_net_create, or a bad node in keep) or
 * ET_ENOMEM. */
et_status et_net_create_inference(const et_model *m, int max_batch, const int *keep, int n_keep,
                                  et_net **out, et_error *err);

/* Whether n was made by et_net_create_inference. */
bool et_net_is_inference(const et_net *n);

/* Releases the net and everything it allocated (not the model). NULL does nothing. */
void et_net_destroy(et_net *n);

/* The model, max_batch and kernels (ET_KERNELS_REF or ET_KERNELS_FAST) it was made with. */
const et_model *et_net_model(const et_net *n);
int et_net_max_batch(const et_net *n);
et_kernel_set et_net_kernels(const et_net *n);

/* Bytes the net allocated: parameters, gradients, optimizer state,
 * activations, gradients of activations and scratch (an inference net: the
 * parameters, activations and scratch). */
size_t et_net_memory_bytes(const et_net *n);

/* ------------------------------------------------------------------------
 * Parameters
 */

/* Sets every parameter to Keras' default initial value and resets the
 * optimizer (as a freshly built Keras model with a new optimizer):
 *   conv2d, depthwise and dense weights: glorot_uniform, i.e. uniform in
 *     [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)), with Keras' fans:
 *     conv2d k_h*k_w*in_c and k_h*k_w*filters; depthwise k_h*k_w*in_c and
 *     k_h*k_w*multiplier; dense inputs and outputs;
 *   biases 0; batch norm gamma 1, beta 0, moving mean 0, moving variance 1.
 * Each value is a function of (seed, node, element) alone: the same seed
 * gives the same parameters whatever the thread count. */
void et_net_init(et_net *n, uint64_t seed);

/* The parameter buffer: et_net_param_count(n) floats in the model's layout
 * (nn.h: node by node, conv weights OHWI, then bias; batch norm gamma, beta,
 * moving mean, moving variance). Owned by the net; the caller may read and
 * write it between calls (load pretrained weights, keep the best epoch with
 * memcpy). */
float *et_net_params(et_net *n);
size_t et_net_param_count(const et_net *n);

/* d loss / d parameter of the last et_net_backward, in the parameter
 * buffer's layout; 0 for non-trainable entries (batch norm moving
 * statistics). Owned by the net. NULL for an inference net. */
const float *et_net_grads(const et_net *n);

/* ------------------------------------------------------------------------
 * Running
 */

/* One forward pass over batch samples.
 *   x          [batch][H][W][C] NHWC floats, the model's input shape; read
 *              only during the call (the net keeps a copy for backward).
 *   batch      1..max_batch.
 *   training   true: dropout is on, with masks drawn from (step_seed, node,
 *              element); batch norm normalizes with the batch's own
 *              statistics and moves the moving mean and variance in the
 *              parameter buffer towards them (momentum from the model).
 *              false (inference): no dropout, batch norm uses the moving
 *              statistics; nothing in the net but its activations changes.
 *   step_seed  any value; use a different one per step (e.g. seed * 1e6 + step)
 *              so that dropout masks differ between steps. Unused in inference.
 * Returns ET_OK, or ET_EINVAL when batch is out of range or x is NULL. */
et_status et_net_forward(et_net *n, const float *x, int batch, bool training, uint64_t step_seed,
                         et_error *err);

/* Batch of the last forward pass (0 before the first). */
int et_net_batch(const et_net *n);

/* The softmax output of the last forward pass: [batch][classes], owned by
 * the net, valid until the next forward pass. */
const float *et_net_probs(const et_net *n);

/* The activations of node `node` (et_model_layer's index) in the last
 * forward pass: [batch][out.h][out.w][out.c] NHWC, owned by the net, valid
 * until the next forward pass. NULL when node is out of range, or for an
 * inference net when the node was not kept (et_net_create_inference).
 * A node whose only consumer is a ReLU or ReLU6 shares its buffer with it
 * (the activation runs in place), so it reads as the activation's output;
 * flatten reads as its input. For an embedding take the node before the
 * classifier's dropout/dense (e.g. "dense_relu", "global_average_pooling2d"
 * or "flatten"). */
const float *et_net_node_output(const et_net *n, int node);

/* Softmax cross-entropy of the last forward pass, Keras' conventions
 * (kernels: mean over the batch of weight[label] * -sum t log p, with
 * t = (1 - s) onehot + s / classes).
 *   labels           [batch] class indices, 0..classes-1.
 *   label_smoothing  s in [0, 1).
 *   class_weights    [classes] finite and >= 0, or NULL for all 1; borrowed.
 *   loss             receives the mean loss.
 * Works after either kind of forward pass (validation loss). Changes only
 * internal scratch. ET_EINVAL for no forward pass yet or bad arguments. */
et_status et_net_loss(et_net *n, const int32_t *labels, double label_smoothing,
                      const float *class_weights, double *loss, et_error *err);

/* The same loss (written to *loss, may be NULL), then the gradients of every
 * trainable parameter (et_net_grads) by back-propagation through the last
 * forward pass, which must have been a training one. A tensor used twice
 * (the input of a residual block) gets the sum of its two gradients.
 * Overwrites the previous gradients. ET_EINVAL for bad arguments or when the
 * last forward pass was not a training pass. */
et_status et_net_backward(et_net *n, const int32_t *labels, double label_smoothing,
                          const float *class_weights, double *loss, et_error *err);

/* Whether et_net_backward also computes d loss / d input (off by default:
 * the first layer then skips that work). */
void et_net_set_input_grad(et_net *n, bool on);

/* d loss / d x of the last et_net_backward with the input gradient on:
 * [batch][H][W][C]; NULL when it is off. Owned by the net, valid until the
 * next backward pass. */
const float *et_net_input_grad(const et_net *n);

/* ------------------------------------------------------------------------
 * Quantization-aware training
 */

/* One activation to fake-quantize: the output of model node `node`, with
 * the int8 scale and zero point the converter chose for it. */
typedef struct et_fake_quant {
    int node;
    float scale;
    int32_t zero_point;
} et_fake_quant;

/* Turns quantization-aware training on (n_acts > 0) or off (n_acts 0).
 * While on, every forward pass sees conv2d, depthwise and dense weights
 * rounded to int8 per output channel (scale max|w| / 127, as the converter
 * quantizes them; batch norm's per-channel scale folded in later does not
 * change that grid), and each listed node's output rounded to its int8
 * grid: y = scale * (clamp(round(y / scale) + zp, -128, 127) - zp).
 * Gradients pass through both roundings unchanged (straight-through
 * estimator) and the optimizer updates the float parameters. ET_EINVAL for
 * a bad node or scale; ET_ENOMEM. */
et_status et_net_set_fake_quant(et_net *n, const et_fake_quant *acts, size_t n_acts,
                                et_error *err);

/* ------------------------------------------------------------------------
 * Optimizers and learning rates
 */

typedef enum et_optimizer_kind {
    ET_OPT_ADAM = 0,
    ET_OPT_SGD = 1,
} et_optimizer_kind;

/* Optimizer settings (Keras' names and meaning). */
typedef struct et_optimizer {
    et_optimizer_kind kind;
    double beta1;    /* Adam: decay of the mean of gradients, [0, 1); Keras 0.9 */
    double beta2;    /* Adam: decay of the mean of squared gradients, [0, 1); Keras 0.999 */
    double epsilon;  /* Adam: added to sqrt(v), > 0; Keras 1e-7 */
    double momentum; /* SGD: [0, 1); 0 = plain gradient descent */
    bool nesterov;   /* SGD with Nesterov momentum */
} et_optimizer;

/* Keras' Adam() and SGD(momentum=momentum) defaults. */
et_optimizer et_optimizer_adam(void);
et_optimizer et_optimizer_sgd(double momentum);

/* One update of every trainable parameter (not batch norm's moving
 * statistics) from the gradients of the last backward pass, as Keras 3 and
 * TensorFlow do it:
 *   Adam, step t = 1, 2, ...: m += (g - m) (1 - beta1); v += (g^2 - v) (1 - beta2);
 *     p -= lr sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon)
 *   SGD: u = momentum u - lr g; p += u (Nesterov: p += momentum u - lr g).
 * The optimizer's state (m, v, u, t) lives in the net; switching kinds
 * without et_net_optimizer_reset mixes their states. */
void et_net_step(et_net *n, const et_optimizer *opt, double learning_rate);

/* Forgets the optimizer's state (moments, step count), as compiling a Keras
 * model with a new optimizer does (e.g. before fine-tuning). */
void et_net_optimizer_reset(et_net *n);

/* Optimizer steps taken since the last reset. */
int64_t et_net_steps(const et_net *n);

/* The optimizer's state, for a checkpoint to save and restore: its two
 * per-parameter arrays (et_net_param_count floats each: Adam's m and v; SGD
 * keeps its velocity in the first) and its step count. NULL for an
 * inference net, which has none. */
float *et_net_optimizer_state(et_net *n, int which);
void et_net_set_steps(et_net *n, int64_t steps);

/* Restarts the batch-norm moving statistics' warm-up (net.c): each of the
 * next training-mode forward passes, up to 1 / (1 - momentum) of them, moves
 * the moving mean and variance to the plain average of the batch statistics
 * seen since the restart. Forward passes over a few thousand samples after a
 * restart re-estimate them for the current weights (precise batch norm). */
void et_net_bn_restart(et_net *n);

/* Learning-rate schedules for step 0 .. total_steps - 1.
 * constant: base.
 * cosine: Keras' CosineDecay(base, total_steps) with alpha 0:
 *   base * (1 + cos(pi * min(step, total_steps) / total_steps)) / 2,
 * from base at step 0 down towards 0; base when total_steps < 1. */
double et_lr_constant(double base, int step, int total_steps);
double et_lr_cosine(double base, int step, int total_steps);

#ifdef __cplusplus
}
#endif
#endif
