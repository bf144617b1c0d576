/* t-SNE (van der Maaten & Hinton 2008) for large maps: exact neighbours by
 * matrix products, affinities in linear time, repulsion by FFT-accelerated
 * interpolation (Linderman et al. 2019, "FIt-SNE").
 *
 * 1. The K = floor(3 * perplexity) nearest neighbours of every point, exact
 *    (tsne_knn.c: blocks of sgemm).
 * 2. Per point, the Gaussian precision whose conditional distribution over
 *    those K neighbours has the requested perplexity (Newton's method in a
 *    bisection bracket); P = (P_j|i + P_i|j) normalised to sum 1, sparse,
 *    symmetrised by two counting-sort transposes.
 * 3. The points renumbered breadth-first along P, so that neighbours sit
 *    close in memory (the attraction reads every neighbour every step).
 * 4. Gradient descent on KL(P || Q) in 2-D: attraction over the sparse P;
 *    repulsion and the normalisation Z by interpolation on a grid and FFT
 *    convolution (tsne_repulsion.c), or exactly for small n or theta = 0.
 *    Early exaggeration, momentum and gains as in the reference
 *    implementation (bhtsne).
 *
 * theta: 0 = exact repulsion, O(n^2) per step; otherwise the grid's node
 * spacing is at most theta map units (see tsne_repulsion.c for the accuracy).
 *
 * Reproducibility: every per-point quantity (neighbours, precision, forces)
 * is computed by one thread from data that do not depend on the thread count;
 * every sum over points is taken in a fixed order; work is cut into pieces
 * fixed by the sizes. So the same input and seed give bit-identical maps with
 * 1 or 64 threads.
 */
#include "edgetrain/explore.h"

#include "core/rng.h"
#include "explore/explore_internal.h"
#include "explore/tsne_internal.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define EXAGGERATION 12.0
#define EXAGGERATION_ITERS 250 /* early exaggeration and momentum 0.5 until here */
#define MOMENTUM_EARLY 0.5
#define MOMENTUM_LATE 0.8
#define MIN_GAIN 0.01
#define EXACT_MAX_N 512      /* fewer points: exact repulsion, cheaper than the grid */
#define PERPLEXITY_TOL 1e-5  /* |entropy - log(perplexity)| accepted */
#define PERPLEXITY_STEPS 200 /* Newton or bisection steps at most */
#define PARALLEL_MIN 256     /* fewer points: a step is too short to share out */
#define PACE_STEPS 4         /* steps timed per thread count (see pace) */
#define PACE_EVERY 50        /* steps between probes, at first */

et_tsne_options et_tsne_defaults(void)
{
    et_tsne_options o = {
        .perplexity = 30, .theta = 0.5, .iterations = 1000, .learning_rate = 0, .seed = 1};
    return o;
}

/* ------------------------------------------------------------------------
 * Input affinities.
 */

/* p[0..k-1] = P_j|i for the squared distances dist: the Gaussian whose
 * entropy is log(perplexity). Its precision beta is found by Newton's method
 * on the entropy H(beta) (dH/dbeta = -beta Var(d)), kept inside a bracket
 * that bisection narrows whenever a Newton step would leave it: 4-6 steps
 * where plain bisection takes 20-40. */
static void calibrate(const double *dist, size_t k, double perplexity, double *p)
{
    double target = log(perplexity);
    double d0 = dist[0], mean = 0;
    for (size_t m = 1; m < k; m++)
        d0 = fmin(d0, dist[m]);
    for (size_t m = 0; m < k; m++)
        mean += dist[m] - d0;
    mean /= (double)k;
    if (!(mean > 0)) { /* all neighbours equally far: uniform */
        for (size_t m = 0; m < k; m++)
            p[m] = 1.0 / (double)k;
        return;
    }
    double beta = 1.0 / mean, lo = 0, hi = INFINITY;
    for (int step = 0; step < PERPLEXITY_STEPS; step++) {
        double sum = 0, wsum = 0, w2sum = 0;
        for (size_t m = 0; m < k; m++) {
            /* Shifted by the nearest distance: the same distribution, no underflow. */
            double dm = dist[m] - d0;
            p[m] = exp(-beta * dm);
            sum += p[m];
            wsum += p[m] * dm;
            w2sum += p[m] * dm * dm;
        }
        double md = wsum / sum, var = w2sum / sum - md * md;
        double h = log(sum) + beta * md;
        for (size_t m = 0; m < k; m++)
            p[m] /= sum;
        double diff = h - target;
        if (fabs(diff) < PERPLEXITY_TOL)
            break;
        if (diff > 0) /* too flat: sharpen */
            lo = beta;
        else
            hi = beta;
        double next = var > 0 ? beta + diff / (beta * var) : NAN;
        if (!(next > lo && next < hi)) /* also when NaN */
            next = isinf(hi) ? beta * 2 : (lo + hi) / 2;
        beta = next;
        if (!(beta < DBL_MAX / 4) || beta <= 0)
            break;
    }
}

/* Symmetric P in CSR form (row i: col[rp[i] .. rp[i+1]-1], val likewise). */
typedef struct sparse {
    size_t *rp;
    int32_t *col;
    double *val;
} sparse;

/* P_j|i for each neighbour, from the search's squared distances. They carry
 * float rounding of the norms (about 1e-6 of |x|^2, x centred), far below
 * what the calibration can tell apart; recomputing them in double meant a
 * cache miss per neighbour and took longer than the calibration. Rounding can
 * make a duplicate's distance slightly negative: it is clamped to 0. */
static et_status conditionals(size_t n, size_t k, double perplexity, const et_neighbor *nb,
                              double *cond, et_error *err)
{
    int failed = 0;
#pragma omp parallel
    {
        double *dd = malloc(k * sizeof *dd); /* this thread's distances */
        if (!dd) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 64)
        for (ptrdiff_t i = 0; i < (ptrdiff_t)n; i++) {
            if (!dd)
                continue;
            for (size_t m = 0; m < k; m++) {
                float v = nb[(size_t)i * k + m].dist;
                dd[m] = v > 0 ? v : 0;
            }
            calibrate(dd, k, perplexity, cond + (size_t)i * k);
        }
        free(dd);
    }
    return failed ? et_error_set(err, ET_ENOMEM, "t-SNE: out of memory") : ET_OK;
}

/* P = (C + C^T) / sum, C the n x n matrix with C[i][j] = P_j|i for j among i's
 * k neighbours. Linear time, no sorting: transposing a matrix row by row puts
 * each row of the transpose in column order, so C^T comes out sorted, and
 * transposing it again gives C sorted; row i of P merges the two sorted rows. */
static et_status symmetrize(size_t n, size_t k, const et_neighbor *nb, const double *cond,
                            sparse *P, et_error *err)
{
    size_t *trp = calloc(n + 1, sizeof *trp), *cur = malloc(n * sizeof *cur);
    int32_t *tcol = malloc(n * k * sizeof *tcol), *ccol = malloc(n * k * sizeof *ccol);
    double *tval = malloc(n * k * sizeof *tval), *cval = malloc(n * k * sizeof *cval);
    P->rp = malloc((n + 1) * sizeof *P->rp);
    et_status rc = ET_OK;
    if (!trp || !cur || !tcol || !ccol || !tval || !cval || !P->rp) {
        rc = et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for %zu x %zu affinities", n, k);
        goto done;
    }
    for (size_t e = 0; e < n * k; e++)
        trp[nb[e].j + 1]++;
    for (size_t j = 0; j < n; j++)
        trp[j + 1] += trp[j];
    memcpy(cur, trp, n * sizeof *cur);
    for (size_t i = 0; i < n; i++) /* C^T, rows in column order */
        for (size_t m = 0; m < k; m++) {
            size_t at = cur[nb[i * k + m].j]++;
            tcol[at] = (int32_t)i;
            tval[at] = cond[i * k + m];
        }
    for (size_t i = 0; i < n; i++)
        cur[i] = i * k;
    for (size_t j = 0; j < n; j++) /* (C^T)^T = C, rows in column order */
        for (size_t e = trp[j]; e < trp[j + 1]; e++) {
            size_t at = cur[tcol[e]]++;
            ccol[at] = (int32_t)j;
            cval[at] = tval[e];
        }
    /* Row lengths of the union, then the merged rows. */
    P->rp[0] = 0;
#pragma omp parallel for schedule(dynamic, 256)
    for (ptrdiff_t ii = 0; ii < (ptrdiff_t)n; ii++) {
        size_t i = (size_t)ii, a = i * k, ae = a + k, b = trp[i], be = trp[i + 1], len = 0;
        while (a < ae || b < be) {
            if (b == be || (a < ae && ccol[a] < tcol[b]))
                a++;
            else if (a == ae || tcol[b] < ccol[a])
                b++;
            else
                a++, b++;
            len++;
        }
        P->rp[i + 1] = len;
    }
    for (size_t i = 0; i < n; i++)
        P->rp[i + 1] += P->rp[i];
    P->col = malloc(P->rp[n] * sizeof *P->col);
    P->val = malloc(P->rp[n] * sizeof *P->val);
    if (!P->col || !P->val) {
        rc = et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for the affinities");
        goto done;
    }
#pragma omp parallel for schedule(dynamic, 256)
    for (ptrdiff_t ii = 0; ii < (ptrdiff_t)n; ii++) {
        size_t i = (size_t)ii, a = i * k, ae = a + k, b = trp[i], be = trp[i + 1];
        size_t out = P->rp[i];
        while (a < ae || b < be) {
            if (b == be || (a < ae && ccol[a] < tcol[b])) {
                P->col[out] = ccol[a], P->val[out++] = cval[a++];
            } else if (a == ae || tcol[b] < ccol[a]) {
                P->col[out] = tcol[b], P->val[out++] = tval[b++];
            } else { /* a pair that are each other's neighbours */
                P->col[out] = ccol[a], P->val[out++] = cval[a++] + tval[b++];
            }
        }
    }
    double sum = 0; /* serially, in order: the same for any thread count */
    for (size_t e = 0; e < P->rp[n]; e++)
        sum += P->val[e];
    for (size_t e = 0; e < P->rp[n]; e++)
        P->val[e] /= sum;
done:
    free(trp), free(cur), free(tcol), free(ccol), free(tval), free(cval);
    return rc;
}

static et_status affinities(size_t n, size_t k, double perplexity, const et_neighbor *nb, sparse *P,
                            et_error *err)
{
    double *cond = malloc(n * k * sizeof *cond);
    if (!cond)
        return et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for %zu x %zu affinities", n, k);
    et_status rc = conditionals(n, k, perplexity, nb, cond, err);
    if (rc == ET_OK)
        rc = symmetrize(n, k, nb, cond, P, err);
    free(cond);
    return rc;
}

/* The affinities renumbered for memory locality. Each gradient step reads
 * y[j] for every neighbour j of every point i: with the samples in their
 * original (random) order, that is a cache miss per affinity, and the
 * attraction took most of a step at n = 70,000. Numbered breadth-first along
 * the affinity graph, neighbours get nearby numbers. perm[new] = old,
 * inv[old] = new; Q's rows and columns follow the new numbers and its values
 * are float (enough for the forces: the gradient's own noise is larger). */
typedef struct graph {
    size_t *rp;
    int32_t *col;
    float *val;
} graph;

static et_status renumber(const sparse *P, size_t n, int32_t *perm, int32_t *inv, graph *Q)
{
    for (size_t i = 0; i < n; i++)
        inv[i] = -1;
    size_t head = 0, tail = 0;
    for (size_t s0 = 0; s0 < n; s0++) {
        if (inv[s0] >= 0)
            continue;
        inv[s0] = (int32_t)tail, perm[tail++] = (int32_t)s0;
        while (head < tail) {
            size_t i = (size_t)perm[head++];
            for (size_t e = P->rp[i]; e < P->rp[i + 1]; e++) {
                size_t j = (size_t)P->col[e];
                if (inv[j] < 0)
                    inv[j] = (int32_t)tail, perm[tail++] = (int32_t)j;
            }
        }
    }
    size_t nnz = P->rp[n];
    Q->rp = malloc((n + 1) * sizeof *Q->rp);
    Q->col = malloc(nnz * sizeof *Q->col);
    Q->val = malloc(nnz * sizeof *Q->val);
    if (!Q->rp || !Q->col || !Q->val)
        return ET_ENOMEM;
    Q->rp[0] = 0;
    for (size_t r = 0; r < n; r++) {
        size_t i = (size_t)perm[r], at = Q->rp[r];
        for (size_t e = P->rp[i]; e < P->rp[i + 1]; e++, at++) {
            Q->col[at] = inv[P->col[e]];
            Q->val[at] = (float)P->val[e];
        }
        Q->rp[r + 1] = at;
    }
    return ET_OK;
}

/* ------------------------------------------------------------------------
 * The optimisation.
 */

/* The attraction on point i: sum_j P_ij q_ij (y_i - y_j). Neighbours are
 * taken eight at a time: their coordinates are gathered into a vector, the
 * arithmetic (a division per neighbour) runs in its lanes, each lane keeps its
 * own sums, and the lanes are added in order at the end. GCC's vector type
 * keeps the sums in registers (plain arrays were spilled to the stack at
 * every step). */
typedef float v8f __attribute__((vector_size(32)));

ET_TSNE_CLONES static void attraction(const graph *Q, const float *yf, size_t i, double out[2])
{
    float px = yf[2 * i], py = yf[2 * i + 1];
    v8f ax = {0}, ay = {0};
    size_t e = Q->rp[i], end = Q->rp[i + 1];
    for (; e + 8 <= end; e += 8) {
        float gx[8], gy[8];
        for (int c = 0; c < 8; c++) {
            size_t j = (size_t)Q->col[e + c];
            gx[c] = yf[2 * j], gy[c] = yf[2 * j + 1];
        }
        v8f dx, dy, p;
        memcpy(&dx, gx, sizeof dx), memcpy(&dy, gy, sizeof dy);
        memcpy(&p, Q->val + e, sizeof p);
        dx = px - dx, dy = py - dy;
        v8f w = p / (1 + dx * dx + dy * dy);
        ax += w * dx, ay += w * dy;
    }
    double sx = 0, sy = 0;
    for (int c = 0; c < 8; c++)
        sx += ax[c], sy += ay[c];
    for (; e < end; e++) {
        size_t j = (size_t)Q->col[e];
        float dx = px - yf[2 * j], dy = py - yf[2 * j + 1];
        float w = Q->val[e] / (1 + dx * dx + dy * dy);
        sx += w * dx, sy += w * dy;
    }
    out[0] = sx, out[1] = sy;
}

/* The thread count of the optimisation, chosen by measurement. A step has
 * several parallel loops, each ending at a barrier; on a machine busy with
 * other work, a thread that reaches a barrier first spins (libgomp's default)
 * through its time slice while its partner waits to be scheduled. Measured on
 * a 2-core machine at load 5-7: 1,000 steps for 10,000 points took 55-81 s
 * with 2 threads and 7-14 s with 1. The result does not depend on the thread
 * count, so the loop times PACE_STEPS steps on all threads and PACE_STEPS on
 * one, and keeps the faster until the next probe; while one thread keeps
 * winning, probes get rarer (the probe on all threads is the costly one). */
typedef struct pacer {
    int most;      /* the caller's thread count */
    int stage;     /* 0: steady, 1: timing all threads, 2: timing one */
    int next;      /* the step at which the stage changes */
    int every;     /* steps from a decision to the next probe */
    double since;  /* when the current timing started */
    double t_most; /* the time of PACE_STEPS steps on all threads */
} pacer;

static void pace(pacer *pc, int it)
{
    if (pc->most < 2 || it != pc->next)
        return;
    double now = et_now_s();
    if (pc->stage == 0) {
        omp_set_num_threads(pc->most);
        pc->stage = 1, pc->since = now, pc->next = it + PACE_STEPS;
    } else if (pc->stage == 1) {
        pc->t_most = now - pc->since;
        omp_set_num_threads(1);
        pc->stage = 2, pc->since = now, pc->next = it + PACE_STEPS;
    } else {
        bool one = now - pc->since < pc->t_most;
        omp_set_num_threads(one ? 1 : pc->most);
        pc->every = one ? 2 * pc->every : PACE_EVERY;
        pc->stage = 0, pc->next = it + pc->every;
    }
}

static int sign(double v)
{
    return (v > 0) - (v < 0);
}

static et_status check(const float *x, size_t n, size_t d, const et_tsne_options *o, float *out,
                       et_error *err)
{
    if (!x || !out)
        return et_error_set(err, ET_EINVAL, "t-SNE: no input or output array given");
    if (n < 2)
        return et_error_set(err, ET_EINVAL, "t-SNE needs at least 2 samples, got %zu", n);
    if (n > INT32_MAX)
        return et_error_set(err, ET_EINVAL, "t-SNE: %zu samples is more than it handles", n);
    if (d < 1)
        return et_error_set(err, ET_EINVAL, "t-SNE needs at least 1 feature per sample");
    if (n > SIZE_MAX / sizeof(float) / d)
        return et_error_set(err, ET_EINVAL, "t-SNE: %zu x %zu values do not fit in memory", n, d);
    if (!(o->perplexity >= 1) || !isfinite(o->perplexity))
        return et_error_set(err, ET_EINVAL, "t-SNE perplexity must be at least 1, got %g",
                            o->perplexity);
    if (!(3 * o->perplexity < (double)(n - 1)))
        return et_error_set(err, ET_EINVAL,
                            "t-SNE perplexity %g is too large for %zu samples: it needs more than "
                            "3 x perplexity + 1 = %g samples; use a perplexity below %.4g or "
                            "add samples",
                            o->perplexity, n, 3 * o->perplexity + 1, (double)(n - 1) / 3);
    if (!(o->theta >= 0 && o->theta <= 1))
        return et_error_set(err, ET_EINVAL, "t-SNE theta must be between 0 and 1, got %g",
                            o->theta);
    if (o->iterations < 1)
        return et_error_set(err, ET_EINVAL, "t-SNE needs at least 1 iteration, got %d",
                            o->iterations);
    if (!(o->learning_rate >= 0) || !isfinite(o->learning_rate))
        return et_error_set(err, ET_EINVAL,
                            "t-SNE learning rate must be positive (or 0 for automatic), got %g",
                            o->learning_rate);
    size_t col;
    size_t bad = et_explore_first_nonfinite(x, n, d, &col);
    if (bad < n)
        return et_error_set(err, ET_EINVAL,
                            "t-SNE: sample %zu (row %zu of the features) holds %s in column %zu; "
                            "recompute or remove that sample",
                            bad, bad, isnan(x[bad * d + col]) ? "NaN" : "an infinite value", col);
    return ET_OK;
}

et_status et_tsne(const float *x, size_t n, size_t d, const et_tsne_options *opt, float *out,
                  et_error *err)
{
    et_tsne_options o = opt ? *opt : et_tsne_defaults();
    et_status rc = check(x, n, d, &o, out, err);
    if (rc < 0)
        return rc;
    size_t k = (size_t)(3 * o.perplexity);
    /* max(200, n / 12): n / early exaggeration keeps the early phase stable and fast
     * for large n (Belkina et al. 2019), with bhtsne's gradient (no factor 4). */
    double eta = o.learning_rate > 0 ? o.learning_rate : fmax(200.0, (double)n / 12.0);
    bool exact = o.theta == 0 || n < EXACT_MAX_N;
    sparse P = {0};
    graph Q = {0};
    et_repulsion *rp = NULL;
    et_neighbor *nb = malloc(n * k * sizeof *nb);
    double *y = malloc(2 * n * sizeof *y), *upd = calloc(2 * n, sizeof *upd);
    double *gains = malloc(2 * n * sizeof *gains), *rep = malloc(2 * n * sizeof *rep);
    double *zpart = malloc(n * sizeof *zpart);
    float *yf = malloc(2 * n * sizeof *yf); /* y in float, for the attraction */
    int32_t *perm = malloc(n * sizeof *perm), *inv = malloc(n * sizeof *inv);
    et_progress pg = {0};
    int threads = omp_get_max_threads(); /* the caller's, restored at the end */
    pacer pc = {.most = threads, .next = PACE_STEPS, .every = PACE_EVERY};
    if (!exact && et_repulsion_create(n, o.theta, &rp) < 0)
        rp = NULL;
    if (!nb || !y || !upd || !gains || !rep || !zpart || !yf || !perm || !inv || (!exact && !rp)) {
        rc = et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for %zu samples", n);
        goto done;
    }
    double t0 = et_now_s();
    rc = et_tsne_knn(x, n, d, k, nb, err);
    if (rc < 0)
        goto done;
    double t1 = et_now_s();
    rc = affinities(n, k, o.perplexity, nb, &P, err);
    free(nb);
    nb = NULL;
    if (rc == ET_OK && renumber(&P, n, perm, inv, &Q) < 0)
        rc = et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for the affinities");
    if (rc < 0)
        goto done;
    free(P.rp), free(P.col), free(P.val);
    P = (sparse){0};
    double t2 = et_now_s();
    et_log_debug("t-SNE: %zu neighbours of %zu samples in %.2f s, affinities in %.2f s", k, n,
                 t1 - t0, t2 - t1);

    /* The random start in the original numbering, so that it does not depend on
     * the renumbering. */
    uint64_t s = o.seed;
    for (size_t i = 0; i < n; i++) {
        size_t r = (size_t)inv[i];
        y[2 * r] = 1e-4 * et_rng_gauss(&s);
        y[2 * r + 1] = 1e-4 * et_rng_gauss(&s);
    }
    for (size_t i = 0; i < 2 * n; i++) {
        gains[i] = 1;
        yf[i] = (float)y[i];
    }
    /* For small maps a step takes microseconds and thread synchronisations
     * would cost more than they save (much more on an oversubscribed machine). */
    bool parallel = n >= PARALLEL_MIN;
    if (!parallel)
        pc.most = 1; /* no probing */
    et_progress_begin(&pg, "t-SNE", (uint64_t)o.iterations);
    for (int it = 0; it < o.iterations; it++) {
        pace(&pc, it);
        if (et_interrupted()) {
            rc = et_error_set(err, ET_EINTR, "t-SNE interrupted");
            goto done;
        }
        bool early = it < EXAGGERATION_ITERS;
        double exaggeration = early ? EXAGGERATION : 1.0;
        double momentum = early ? MOMENTUM_EARLY : MOMENTUM_LATE;
        double z;
        if (exact) {
            z = et_repulsion_exact(y, n, rep, zpart);
        } else {
            z = et_repulsion_compute(rp, y, rep, &rc);
            if (rc < 0) {
                rc = et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for the repulsion grid");
                goto done;
            }
        }
        double inv_z = 1 / z;
        /* Attraction and update in one pass: the attraction reads yf, which
         * this pass leaves alone. */
#pragma omp parallel for schedule(dynamic, 256) if (parallel)
        for (ptrdiff_t ii = 0; ii < (ptrdiff_t)n; ii++) {
            size_t i = (size_t)ii;
            double a[2];
            attraction(&Q, yf, i, a);
            for (size_t c = 0; c < 2; c++) {
                size_t at = 2 * i + c;
                double g = exaggeration * a[c] - rep[at] * inv_z;
                /* Gains grow while the step keeps going downhill (delta-bar-delta). */
                gains[at] = sign(g) != sign(upd[at]) ? gains[at] + 0.2 : gains[at] * 0.8;
                if (gains[at] < MIN_GAIN)
                    gains[at] = MIN_GAIN;
                upd[at] = momentum * upd[at] - eta * gains[at] * g;
                y[at] += upd[at];
            }
        }
        double mx = 0, my = 0; /* serially, in order: the same for any thread count */
        for (size_t i = 0; i < n; i++)
            mx += y[2 * i], my += y[2 * i + 1];
        mx /= (double)n, my /= (double)n;
        for (size_t i = 0; i < n; i++) {
            y[2 * i] -= mx, y[2 * i + 1] -= my;
            yf[2 * i] = (float)y[2 * i], yf[2 * i + 1] = (float)y[2 * i + 1];
        }
        et_progress_update(&pg, (uint64_t)it + 1);
        if (it + 1 == EXAGGERATION_ITERS && it + 1 < o.iterations)
            et_log_debug("t-SNE: early exaggeration in %.2f s", et_now_s() - t2);
    }
    et_log_debug("t-SNE: %d iterations in %.2f s", o.iterations, et_now_s() - t2);
    for (size_t i = 0; i < n; i++) {
        size_t r = (size_t)inv[i];
        if (!isfinite(y[2 * r]) || !isfinite(y[2 * r + 1])) {
            rc = et_error_set(err, ET_EINVAL,
                              "t-SNE diverged (sample %zu has no finite position); use a "
                              "smaller learning rate",
                              i);
            goto done;
        }
        out[2 * i] = (float)y[2 * r], out[2 * i + 1] = (float)y[2 * r + 1];
    }
done:
    omp_set_num_threads(threads);
    et_progress_end(&pg);
    free(nb), free(y), free(upd), free(gains), free(rep), free(zpart), free(yf);
    free(perm), free(inv);
    et_repulsion_destroy(rp);
    free(P.rp), free(P.col), free(P.val);
    free(Q.rp), free(Q.col), free(Q.val);
    return rc;
}
