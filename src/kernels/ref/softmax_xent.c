/* Reference softmax cross-entropy with label smoothing and class weights
 * (Keras' CategoricalCrossentropy(from_logits=True, label_smoothing=s) with
 * class_weight, reduced over the batch by its size).
 *
 * The loss is computed from log-softmax, log p_k = z_k - max - log sum exp(z_j - max),
 * rather than from log(p): a confident wrong answer has p_k that underflows
 * to 0 in float, while its log is finite. */
#include "kernels/kernels.h"

#include <math.h>

/* Target probability of class k for a sample labelled `label`. */
static double target(const et_softmax_xent_params *p, int classes, int label, int k)
{
    double s = p->label_smoothing;
    return (k == label ? 1.0 - s : 0.0) + s / classes;
}

static double class_weight(const et_softmax_xent_params *p, int label)
{
    return p->class_weights ? p->class_weights[label] : 1.0;
}

double et_softmax_xent_forward_ref(const et_softmax_xent_params *p, int batch, int classes,
                                   const float *logits, const int32_t *labels, float *probs)
{
    double total = 0.0;
    for (int n = 0; n < batch; n++) {
        const float *z = logits + (size_t)n * classes;
        double zmax = z[0];
        for (int k = 1; k < classes; k++)
            if (z[k] > zmax)
                zmax = z[k];
        double sum = 0.0;
        for (int k = 0; k < classes; k++)
            sum += exp(z[k] - zmax);
        double log_sum = log(sum);
        double loss = 0.0;
        for (int k = 0; k < classes; k++) {
            double log_p = z[k] - zmax - log_sum;
            probs[(size_t)n * classes + k] = (float)exp(log_p);
            loss -= target(p, classes, labels[n], k) * log_p;
        }
        total += class_weight(p, labels[n]) * loss;
    }
    return total / batch;
}

/* d loss_i / d z_k = p_k - t_k because the targets sum to 1. */
void et_softmax_xent_backward_ref(const et_softmax_xent_params *p, int batch, int classes,
                                  const float *probs, const int32_t *labels, float *dlogits)
{
    for (int n = 0; n < batch; n++) {
        double scale = class_weight(p, labels[n]) / batch;
        for (int k = 0; k < classes; k++) {
            size_t i = (size_t)n * classes + k;
            dlogits[i] = (float)(scale * (probs[i] - target(p, classes, labels[n], k)));
        }
    }
}
