/* Model-based sampling for successive halving: which candidates a new
 * bracket draws, learnt from how the run's earlier candidates fared.
 *
 * Successive halving judges every candidate it trains: at each rung it keeps
 * the best 1/eta and prunes the rest. Those judgements are the model's data.
 * At the highest rung where enough candidates were judged (MIN_JUDGED), the
 * promoted ones are "good" and the pruned ones "bad"; each candidate is
 * described by one categorical value per dimension (architecture, input
 * size, layers, kernel, batch norm, learning rate, augmentation, ...), and
 * the model counts each value among the good and the bad. A candidate's
 * score is the sum over dimensions of log(l(v) / g(v)), where l and g are
 * those counts with add-one smoothing: the ratio that the tree-structured
 * Parzen estimator maximises (Bergstra et al. 2011; with successive halving,
 * BOHB: Falkner, Klein & Hutter 2018), here over independent categorical
 * dimensions, which is all a space of alternatives holds.
 *
 * The scheduler (draw_bracket) draws several candidates from the space at
 * random and keeps the best scored; a share of each bracket is still drawn
 * at random, so that no region is shut out by a few early judgements.
 *
 * The first rung's judgements are not used: they are made after a ninth of
 * a candidate's run, and favour what starts fast over what ends best. In
 * the 30-minute Fashion-MNIST benchmark a model of them drew the third
 * bracket towards learning rate 0.0005 and no augmentation, and the run
 * ended below the random sampler's (docs/BENCHMARKS.md). So the sampler is
 * not the default (--sampler model).
 *
 * Why the judgements and not the accuracies: brackets differ in their
 * epochs (each is fitted to the time left), so accuracies at one rung are not
 * comparable across brackets; a judgement is made within one bracket's rung,
 * among candidates trained alike. */
#include "tune/tune_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    DIM_MODEL,
    DIM_SIZE,
    DIM_RESIZE,
    DIM_COLOR,
    DIM_LAYERS,
    DIM_KERNEL,
    DIM_DENSE,
    DIM_BATCH_NORM,
    DIM_ALPHA,
    DIM_HEAD,
    DIM_LEARNING_RATE,
    DIM_AUGMENT,
    DIM_DROPOUT,
    N_DIMS
};

#define MAX_VALUES 64 /* distinct values counted per dimension; more are unseen */

typedef struct dim_counts {
    int n;
    int64_t value[MAX_VALUES];
    int good[MAX_VALUES], bad[MAX_VALUES];
} dim_counts;

struct tune_model {
    int level, n_good, n_bad;
    dim_counts dim[N_DIMS];
};

/* FNV-1a over a list of ints: one value for a list of filters or kernels. */
static int64_t hash_ints(const int *v, int n)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)(uint32_t)v[i];
        h *= 1099511628211ull;
    }
    return (int64_t)(h >> 1);
}

/* One categorical value per dimension; -1 where the dimension does not apply
 * (a MobileNet has no kernel, a conv net no alpha). Epochs and batch size are
 * left out: a bracket fitted to the time left changes the epochs. */
static void describe(const et_impulse *imp, int64_t out[N_DIMS])
{
    bool conv = imp->model == ET_MODEL_CONV;
    int filters[ET_MAX_CONV_LAYERS], kernels[ET_MAX_CONV_LAYERS];
    for (int i = 0; i < imp->n_conv; i++) {
        filters[i] = imp->conv[i].filters;
        kernels[i] = imp->conv[i].kernel;
    }
    out[DIM_MODEL] = imp->model;
    out[DIM_SIZE] = (int64_t)imp->width * 100000 + imp->height;
    out[DIM_RESIZE] = imp->resize;
    out[DIM_COLOR] = imp->processing == ET_PROCESSING_IMAGE ? (int64_t)imp->color : -1;
    out[DIM_LAYERS] = conv ? hash_ints(filters, imp->n_conv) : -1;
    out[DIM_KERNEL] = conv ? hash_ints(kernels, imp->n_conv) : -1;
    out[DIM_DENSE] = conv ? hash_ints(imp->dense, imp->n_dense) : -1;
    out[DIM_BATCH_NORM] = conv ? imp->batch_norm : -1;
    out[DIM_ALPHA] = conv ? -1 : llround(imp->alpha * 1000);
    out[DIM_HEAD] = conv ? -1 : imp->head_neurons;
    out[DIM_LEARNING_RATE] = llround(imp->learning_rate * 1e7);
    out[DIM_AUGMENT] = imp->augment;
    out[DIM_DROPOUT] = llround(imp->dropout * 1000);
}

static void count(tune_model *m, const et_impulse *imp, bool good)
{
    int64_t v[N_DIMS];
    describe(imp, v);
    for (int d = 0; d < N_DIMS; d++) {
        dim_counts *c = &m->dim[d];
        int i = 0;
        while (i < c->n && c->value[i] != v[d])
            i++;
        if (i == c->n) {
            if (c->n == MAX_VALUES)
                continue;
            c->value[c->n++] = v[d];
        }
        if (good)
            c->good[i]++;
        else
            c->bad[i]++;
    }
    if (good)
        m->n_good++;
    else
        m->n_bad++;
}

/* Whether trial x was judged at rung level, and how: promoted past it
 * (good), or pruned there (bad). */
static bool judged(const et_tune_trial *x, int level, bool *good)
{
    if (x->status == ET_TRIAL_SKIPPED || x->status == ET_TRIAL_FAILED)
        return false;
    if (x->rung > level) {
        *good = true;
        return true;
    }
    if (x->rung == level && x->status == ET_TRIAL_PRUNED) {
        *good = false;
        return true;
    }
    return false;
}

tune_model *tune_model_fit(const et_tune_trial *trials, size_t n, int min_judged, int min_level)
{
    int top = -1;
    for (size_t i = 0; i < n; i++)
        top = trials[i].rung > top ? trials[i].rung : top;
    for (int level = top; level >= min_level; level--) {
        int good = 0, bad = 0;
        for (size_t i = 0; i < n; i++) {
            bool g;
            if (judged(&trials[i], level, &g)) {
                good += g;
                bad += !g;
            }
        }
        if (good == 0 || bad == 0 || good + bad < min_judged)
            continue;
        tune_model *m = calloc(1, sizeof *m);
        if (!m)
            return NULL;
        m->level = level;
        for (size_t i = 0; i < n; i++) {
            bool g;
            if (judged(&trials[i], level, &g))
                count(m, &trials[i].impulse, g);
        }
        return m;
    }
    return NULL;
}

double tune_model_score(const tune_model *m, const et_impulse *imp)
{
    int64_t v[N_DIMS];
    describe(imp, v);
    double score = 0;
    for (int d = 0; d < N_DIMS; d++) {
        const dim_counts *c = &m->dim[d];
        int good = 0, bad = 0;
        for (int i = 0; i < c->n; i++)
            if (c->value[i] == v[d]) {
                good = c->good[i];
                bad = c->bad[i];
            }
        /* Add-one smoothing over the values seen and one unseen. */
        double l = (good + 1.0) / (m->n_good + c->n + 1.0);
        double g = (bad + 1.0) / (m->n_bad + c->n + 1.0);
        score += log(l / g);
    }
    return score;
}

void tune_model_describe(const tune_model *m, int *level, int *good, int *bad)
{
    *level = m->level;
    *good = m->n_good;
    *bad = m->n_bad;
}

void tune_model_free(tune_model *m)
{
    free(m);
}
