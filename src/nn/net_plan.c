/* Planning a net's backward pass: which nodes run backward, which gradients
 * add up, and where the gradients of activations live.
 *
 * Activations must all be kept for the backward pass, but the gradient of a
 * node's output is alive only from the backward step of its last consumer to
 * its own backward step. Placing those buffers by lifetime (as TensorFlow Lite
 * Micro's greedy planner places activations) lets a chain of layers reuse a
 * few buffers: for MobileNetV2 the gradients then take a fraction of what the
 * activations take instead of as much again. */
#include "nn/net_internal.h"

#include <stdlib.h>

void et_net_plan_backward(et_net *n)
{
    int last = n->n_nodes - 1;
    for (int i = 0; i < n->n_nodes; i++) {
        et_net_node *r = &n->nodes[i];
        const et_layer_info *l = &r->node->info;
        r->needs_grad = i == 0 ? n->input_grad : l->trainable_params > 0;
        for (int k = 0; k < l->n_inputs; k++)
            r->needs_grad = r->needs_grad || n->nodes[l->inputs[k]].needs_grad;
        r->reaches_loss = i == last;
        r->grad_written = false;
    }
    for (int i = last; i > 0; i--) {
        const et_layer_info *l = &n->nodes[i].node->info;
        for (int k = 0; n->nodes[i].reaches_loss && k < l->n_inputs; k++)
            n->nodes[l->inputs[k]].reaches_loss = true;
    }
    /* Backward runs from the last node down: the first consumer to send a
     * node its gradient overwrites the buffer, the others add to it. */
    for (int i = last; i > 0; i--) {
        et_net_node *r = &n->nodes[i];
        const et_layer_info *l = &r->node->info;
        r->runs_back = r->needs_grad && r->reaches_loss;
        r->acc[0] = r->acc[1] = false;
        for (int k = 0; r->runs_back && k < l->n_inputs; k++) {
            et_net_node *in = &n->nodes[l->inputs[k]];
            if (!in->needs_grad)
                continue;
            r->acc[k] = in->grad_written;
            in->grad_written = true;
        }
    }
    n->nodes[0].runs_back = false;
}

typedef struct placed {
    size_t offset, size;
} placed;

static int by_offset(const void *a, const void *b)
{
    const placed *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

size_t et_net_plan_lifetimes(int count, const size_t *size, const int *first, const int *last,
                             size_t *offset)
{
    int *order = malloc((size_t)(count ? count : 1) * sizeof *order);
    bool *done = calloc((size_t)(count ? count : 1), sizeof *done);
    placed *live = malloc((size_t)(count ? count : 1) * sizeof *live);
    if (!order || !done || !live) {
        free(order);
        free(done);
        free(live);
        return (size_t)-1;
    }
    /* Largest first, ties by index (a stable, machine-independent order);
     * insertion sort is plenty for a few hundred nodes. */
    for (int i = 0; i < count; i++) {
        int j = i;
        while (j > 0 && size[order[j - 1]] < size[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    size_t total = 0;
    for (int oi = 0; oi < count; oi++) {
        int t = order[oi];
        offset[t] = 0;
        if (size[t] == 0)
            continue;
        /* Buffers already placed whose lifetimes overlap t's, by offset;
         * t goes into the first gap that holds it. */
        int nl = 0;
        for (int j = 0; j < count; j++)
            if (done[j] && first[j] <= last[t] && first[t] <= last[j])
                live[nl++] = (placed){offset[j], size[j]};
        qsort(live, (size_t)nl, sizeof *live, by_offset);
        size_t at = 0;
        for (int j = 0; j < nl; j++) {
            if (live[j].offset >= at + size[t])
                break;
            if (live[j].offset + live[j].size > at)
                at = live[j].offset + live[j].size;
        }
        offset[t] = at;
        done[t] = true;
        if (at + size[t] > total)
            total = at + size[t];
    }
    free(order);
    free(done);
    free(live);
    return total;
}
