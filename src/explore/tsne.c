/* Barnes-Hut t-SNE (van der Maaten 2014, "Accelerating t-SNE using tree-based
 * algorithms", JMLR 15).
 *
 * 1. Exact K = floor(3 * perplexity) nearest neighbours of every point.
 * 2. Per point, a binary search for the Gaussian precision beta whose
 *    conditional distribution over those K neighbours has the requested
 *    perplexity; P = (P_j|i + P_i|j) normalised to sum 1, sparse (CSR).
 * 3. Gradient descent on KL(P || Q) in 2-D: attraction over the sparse P,
 *    repulsion from a quadtree whose cells are summarised by their centre of
 *    mass when cell width / distance < theta. Early exaggeration, momentum
 *    and gains as in the paper's reference implementation.
 *
 * Reproducibility: every per-point quantity (neighbours, beta, forces, the
 * point's share of the normalisation Z) is computed by one thread from data
 * that do not depend on the thread count; every sum over points is then taken
 * serially in index order. The tree is built serially. So the same input and
 * seed give bit-identical maps with 1 or 64 threads.
 */
#include "edgetrain/explore.h"

#include "core/rng.h"
#include "explore/explore_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EXAGGERATION 12.0
#define EXAGGERATION_ITERS 250 /* early exaggeration and momentum 0.5 until here */
#define MOMENTUM_EARLY 0.5
#define MOMENTUM_LATE 0.8
#define MIN_GAIN 0.01
#define MAX_DEPTH 48         /* deeper cells keep their points in one leaf */
#define QUERY_BLOCK 16       /* queries sharing one pass over a candidate block */
#define CAND_BLOCK 512       /* candidates per block (512 x 50 floats = 100 KiB) */
#define QUERY_STEP 512       /* queries between interruption checks */
#define PERPLEXITY_TOL 1e-5  /* |entropy - log(perplexity)| accepted */
#define PERPLEXITY_STEPS 200 /* binary search steps at most */
#define PARALLEL_MIN 256     /* fewer points: a step is too short to share out */

et_tsne_options et_tsne_defaults(void)
{
    et_tsne_options o = {
        .perplexity = 30, .theta = 0.5, .iterations = 1000, .learning_rate = 0, .seed = 1};
    return o;
}

/* ------------------------------------------------------------------------
 * Exact k nearest neighbours, brute force.
 *
 * Why not a vantage-point tree: the input is typically PCA-reduced to ~50
 * dimensions, where metric trees prune little and their results depend on
 * build choices; brute force is exact, needs no tie rules beyond (distance,
 * index), parallelises with no shared state and costs n^2 d / 2 multiply-adds
 * per direction: about 1 s for n = 10,000 and d = 50 on two cores, less than
 * the optimisation that follows. Blocking queries x candidates keeps a block
 * of candidates in cache while 16 queries use it.
 */
typedef struct neighbor {
    float dist; /* squared Euclidean distance */
    int32_t j;
} neighbor;

static int nb_less(neighbor a, neighbor b)
{
    return a.dist < b.dist || (a.dist == b.dist && a.j < b.j);
}

/* Squared distance with eight independent partial sums (vectorisable without
 * reassociation, and the same order on every run). */
static float sqdist(const float *a, const float *b, size_t d)
{
    float acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= d; j += 8)
        for (int t = 0; t < 8; t++) {
            float diff = a[j + t] - b[j + t];
            acc[t] += diff * diff;
        }
    for (; j < d; j++) {
        float diff = a[j] - b[j];
        acc[0] += diff * diff;
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* Max-heap on (dist, j): h[0] is the worst of the k kept. */
static void heap_push(neighbor *h, size_t *size, size_t k, neighbor v)
{
    size_t i;
    if (*size < k) {
        i = (*size)++;
        while (i > 0 && nb_less(h[(i - 1) / 2], v)) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = v;
        return;
    }
    if (!nb_less(v, h[0]))
        return;
    i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= k)
            break;
        if (c + 1 < k && nb_less(h[c], h[c + 1]))
            c++;
        if (!nb_less(v, h[c]))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static int nb_cmp(const void *a, const void *b)
{
    neighbor x = *(const neighbor *)a, y = *(const neighbor *)b;
    return nb_less(x, y) ? -1 : nb_less(y, x) ? 1 : 0;
}

/* nb (n x k): each row's k nearest other points, nearest first. */
static et_status knn(const float *x, size_t n, size_t d, size_t k, neighbor *nb, et_error *err)
{
    et_progress pg;
    et_progress_begin(&pg, "t-SNE neighbours", n);
    for (size_t s0 = 0; s0 < n; s0 += QUERY_STEP) {
        if (et_interrupted()) {
            et_progress_end(&pg);
            return et_error_set(err, ET_EINTR, "t-SNE interrupted");
        }
        size_t s1 = s0 + QUERY_STEP < n ? s0 + QUERY_STEP : n;
        ptrdiff_t blocks = (ptrdiff_t)((s1 - s0 + QUERY_BLOCK - 1) / QUERY_BLOCK);
#pragma omp parallel for schedule(dynamic, 1)
        for (ptrdiff_t b = 0; b < blocks; b++) {
            size_t q0 = s0 + (size_t)b * QUERY_BLOCK;
            size_t q1 = q0 + QUERY_BLOCK < s1 ? q0 + QUERY_BLOCK : s1;
            size_t size[QUERY_BLOCK] = {0};
            for (size_t c0 = 0; c0 < n; c0 += CAND_BLOCK) {
                size_t c1 = c0 + CAND_BLOCK < n ? c0 + CAND_BLOCK : n;
                for (size_t q = q0; q < q1; q++) {
                    const float *xq = x + q * d;
                    neighbor *h = nb + q * k;
                    size_t *sz = &size[q - q0];
                    for (size_t j = c0; j < c1; j++) {
                        if (j == q)
                            continue;
                        neighbor v = {sqdist(xq, x + j * d, d), (int32_t)j};
                        if (*sz < k || v.dist < h[0].dist)
                            heap_push(h, sz, k, v);
                    }
                }
            }
            for (size_t q = q0; q < q1; q++)
                qsort(nb + q * k, k, sizeof *nb, nb_cmp);
        }
        et_progress_update(&pg, s1);
    }
    et_progress_end(&pg);
    return ET_OK;
}

/* ------------------------------------------------------------------------
 * Input affinities.
 */

/* p[0..k-1] = P_j|i for the squared distances dist, with the precision beta
 * found by binary search on the entropy. */
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
        double sum = 0, wsum = 0;
        for (size_t m = 0; m < k; m++) {
            /* Shifted by the nearest distance: the same distribution, no underflow. */
            p[m] = exp(-beta * (dist[m] - d0));
            sum += p[m];
            wsum += p[m] * (dist[m] - d0);
        }
        double h = log(sum) + beta * wsum / sum;
        for (size_t m = 0; m < k; m++)
            p[m] /= sum;
        double diff = h - target;
        if (fabs(diff) < PERPLEXITY_TOL)
            break;
        if (diff > 0) { /* too flat: sharpen */
            lo = beta;
            beta = isinf(hi) ? beta * 2 : (beta + hi) / 2;
        } else {
            hi = beta;
            beta = (beta + lo) / 2;
        }
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

typedef struct entry {
    int32_t col;
    double val;
} entry;

static int entry_cmp(const void *a, const void *b)
{
    int32_t x = ((const entry *)a)->col, y = ((const entry *)b)->col;
    return (x > y) - (x < y);
}

static et_status affinities(const float *x, size_t n, size_t d, size_t k, double perplexity,
                            const neighbor *nb, sparse *P, et_error *err)
{
    double *cond = malloc(n * k * sizeof *cond); /* P_j|i, row i at cond + i * k */
    size_t *rp = calloc(n + 1, sizeof *rp), *fill = malloc(n * sizeof *fill);
    entry *e = malloc(2 * n * k * sizeof *e);
    if (!cond || !rp || !fill || !e) {
        free(cond), free(rp), free(fill), free(e);
        return et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for %zu x %zu affinities", n, k);
    }
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
            const float *xi = x + (size_t)i * d;
            for (size_t m = 0; m < k; m++) {
                /* Recomputed in double: the float search only ranks the neighbours. */
                const float *xj = x + (size_t)nb[(size_t)i * k + m].j * d;
                double s = 0;
                for (size_t t = 0; t < d; t++) {
                    double diff = (double)xi[t] - xj[t];
                    s += diff * diff;
                }
                dd[m] = s;
            }
            calibrate(dd, k, perplexity, cond + (size_t)i * k);
        }
        free(dd);
    }
    if (failed) {
        free(cond), free(rp), free(fill), free(e);
        return et_error_set(err, ET_ENOMEM, "t-SNE: out of memory");
    }

    /* Each edge i -> j goes to row i and, mirrored, to row j; duplicates are merged. */
    for (size_t i = 0; i < n; i++) {
        rp[i + 1] += k;
        for (size_t m = 0; m < k; m++)
            rp[(size_t)nb[i * k + m].j + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        rp[i + 1] += rp[i];
    for (size_t i = 0; i < n; i++)
        fill[i] = rp[i];
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < k; m++) {
            size_t j = (size_t)nb[i * k + m].j;
            double v = cond[i * k + m];
            e[fill[i]++] = (entry){(int32_t)j, v};
            e[fill[j]++] = (entry){(int32_t)i, v};
        }
    free(cond);
    /* Sort each row by column and merge the (at most two) entries of a pair: as
     * a + b == b + a exactly, the unstable qsort does not change the result. */
#pragma omp parallel for schedule(dynamic, 64)
    for (ptrdiff_t i = 0; i < (ptrdiff_t)n; i++) {
        entry *r = e + rp[i];
        size_t len = rp[i + 1] - rp[i], out = 0;
        qsort(r, len, sizeof *r, entry_cmp);
        for (size_t m = 0; m < len; m++) {
            if (out > 0 && r[out - 1].col == r[m].col)
                r[out - 1].val += r[m].val;
            else
                r[out++] = r[m];
        }
        fill[i] = out;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += fill[i];
    P->rp = malloc((n + 1) * sizeof *P->rp);
    P->col = malloc(total * sizeof *P->col);
    P->val = malloc(total * sizeof *P->val);
    if (!P->rp || !P->col || !P->val) {
        free(rp), free(fill), free(e);
        return et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for the affinities");
    }
    double sum = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        P->rp[i] = at;
        for (size_t m = 0; m < fill[i]; m++) {
            P->col[at] = e[rp[i] + m].col;
            P->val[at] = e[rp[i] + m].val;
            sum += P->val[at++];
        }
    }
    P->rp[n] = at;
    for (size_t m = 0; m < at; m++)
        P->val[m] /= sum;
    free(rp), free(fill), free(e);
    return ET_OK;
}

/* ------------------------------------------------------------------------
 * Quadtree over the map. Nodes live in one array that grows as needed and is
 * reused every iteration. A leaf holds a list of points (next[]); it has more
 * than one only for coincident points or at MAX_DEPTH.
 */
typedef struct qnode {
    double cx, cy, hw; /* cell centre and half width */
    double mx, my;     /* sum of the points' positions, then their centre of mass */
    int32_t count;     /* points in the cell */
    int32_t child;     /* first of four children (quadrant = 2 * (y >= cy) + (x >= cx)); -1: leaf */
    int32_t head;      /* a leaf's first point, -1 when empty */
} qnode;

typedef struct qtree {
    qnode *nodes;
    size_t used, cap;
    int32_t *next;    /* n: next point in the same leaf */
    int32_t *leaf_of; /* n: the leaf holding each point */
    int32_t *order;   /* n: the points leaf by leaf, depth first (nearby points together) */
} qtree;

static void qnode_init(qnode *q, double cx, double cy, double hw)
{
    *q = (qnode){cx, cy, hw, 0, 0, 0, -1, -1};
}

static int quadrant(const qnode *q, double x, double y)
{
    return 2 * (y >= q->cy) + (x >= q->cx);
}

static et_status qtree_build(qtree *t, const double *y, size_t n)
{
    double xmin = y[0], xmax = y[0], ymin = y[1], ymax = y[1];
    for (size_t i = 1; i < n; i++) {
        xmin = fmin(xmin, y[2 * i]), xmax = fmax(xmax, y[2 * i]);
        ymin = fmin(ymin, y[2 * i + 1]), ymax = fmax(ymax, y[2 * i + 1]);
    }
    double hw = fmax(xmax - xmin, ymax - ymin) * 0.5 * (1 + 1e-6) + 1e-12;
    t->used = 1;
    qnode_init(&t->nodes[0], (xmin + xmax) / 2, (ymin + ymax) / 2, hw);
    for (size_t p = 0; p < n; p++) {
        double px = y[2 * p], py = y[2 * p + 1];
        size_t node = 0;
        for (int depth = 0;; depth++) {
            qnode *q = &t->nodes[node];
            if (q->child >= 0) {
                q->mx += px, q->my += py, q->count++;
                node = (size_t)q->child + (size_t)quadrant(q, px, py);
                continue;
            }
            int32_t h = q->head;
            if (h < 0 || (y[2 * h] == px && y[2 * h + 1] == py) || depth >= MAX_DEPTH) {
                q->mx += px, q->my += py, q->count++;
                t->next[p] = h;
                q->head = (int32_t)p;
                t->leaf_of[p] = (int32_t)node;
                break;
            }
            /* Split the leaf: its points (all at one place) move to one child. */
            if (t->used + 4 > t->cap) {
                size_t cap = t->cap * 2;
                qnode *grown = realloc(t->nodes, cap * sizeof *grown);
                if (!grown)
                    return ET_ENOMEM;
                t->nodes = grown, t->cap = cap;
                q = &t->nodes[node];
            }
            int32_t first = (int32_t)t->used;
            t->used += 4;
            double h2 = q->hw / 2;
            for (int c = 0; c < 4; c++)
                qnode_init(&t->nodes[first + c], q->cx + (c & 1 ? h2 : -h2),
                           q->cy + (c & 2 ? h2 : -h2), h2);
            q->child = first;
            qnode *dst = &t->nodes[first + quadrant(q, y[2 * h], y[2 * h + 1])];
            dst->head = h;
            for (int32_t m = h; m >= 0; m = t->next[m]) {
                dst->mx += y[2 * m], dst->my += y[2 * m + 1], dst->count++;
                t->leaf_of[m] = (int32_t)(dst - t->nodes);
            }
            q->head = -1;
            /* Loop again on this node, now internal: p is added and goes down. */
            depth--;
        }
    }
    for (size_t m = 0; m < t->used; m++) {
        qnode *q = &t->nodes[m];
        if (q->count > 0)
            q->mx /= q->count, q->my /= q->count;
    }
    /* Visiting points in this order, neighbours walk the same part of the tree one
     * after another, which keeps it in cache: the walk is memory-bound. */
    int32_t stack[4 * (MAX_DEPTH + 2)];
    int sp = 0;
    size_t at = 0;
    stack[sp++] = 0;
    while (sp > 0) {
        const qnode *q = &t->nodes[stack[--sp]];
        if (q->child >= 0)
            for (int c = 3; c >= 0; c--)
                stack[sp++] = q->child + c;
        else
            for (int32_t m = q->head; m >= 0; m = t->next[m])
                t->order[at++] = m;
    }
    return ET_OK;
}

/* Repulsion on point i: f += sum_j q_ij^2 (y_i - y_j) and returns sum_j q_ij,
 * q_ij = 1 / (1 + |y_i - y_j|^2) unnormalised, over all j != i. */
static double repulsion(const qtree *t, const double *y, size_t i, double theta2, double f[2])
{
    int32_t stack[4 * (MAX_DEPTH + 2)];
    int sp = 0;
    stack[sp++] = 0;
    double px = y[2 * i], py = y[2 * i + 1], z = 0, fx = 0, fy = 0;
    while (sp > 0) {
        const qnode *q = &t->nodes[stack[--sp]];
        if (q->count == 0)
            continue;
        double dx = px - q->mx, dy = py - q->my, dist2 = dx * dx + dy * dy;
        double m = q->count;
        if (q->child < 0) {
            if (t->leaf_of[i] == (int32_t)(q - t->nodes))
                m -= 1;
        } else {
            /* A cell holding i is never summarised: its centre of mass includes i. */
            bool holds_i = fabs(px - q->cx) <= q->hw && fabs(py - q->cy) <= q->hw;
            double width = 2 * q->hw;
            if (holds_i || !(width * width < theta2 * dist2)) {
                for (int c = 3; c >= 0; c--)
                    if (t->nodes[q->child + c].count > 0)
                        stack[sp++] = q->child + c;
                continue;
            }
        }
        if (m <= 0)
            continue;
        double qij = 1 / (1 + dist2);
        z += m * qij;
        double mq2 = m * qij * qij;
        fx += mq2 * dx, fy += mq2 * dy;
    }
    f[0] = fx, f[1] = fy;
    return z;
}

/* ------------------------------------------------------------------------
 * The optimisation.
 */
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
    double theta2 = o.theta * o.theta;

    sparse P = {0};
    qtree t = {0};
    neighbor *nb = malloc(n * k * sizeof *nb);
    double *y = malloc(2 * n * sizeof *y), *upd = calloc(2 * n, sizeof *upd);
    double *gains = malloc(2 * n * sizeof *gains), *grad = malloc(2 * n * sizeof *grad);
    double *zpart = malloc(n * sizeof *zpart), *rep = malloc(2 * n * sizeof *rep);
    t.cap = 4 * n + 16;
    t.nodes = malloc(t.cap * sizeof *t.nodes);
    t.next = malloc(n * sizeof *t.next);
    t.leaf_of = malloc(n * sizeof *t.leaf_of);
    t.order = malloc(n * sizeof *t.order);
    et_progress pg = {0};
    if (!nb || !y || !upd || !gains || !grad || !zpart || !rep || !t.nodes || !t.next ||
        !t.leaf_of || !t.order) {
        rc = et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for %zu samples", n);
        goto done;
    }
    rc = knn(x, n, d, k, nb, err);
    if (rc < 0)
        goto done;
    rc = affinities(x, n, d, k, o.perplexity, nb, &P, err);
    free(nb);
    nb = NULL;
    if (rc < 0)
        goto done;

    uint64_t s = o.seed;
    for (size_t i = 0; i < 2 * n; i++) {
        y[i] = 1e-4 * et_rng_gauss(&s);
        gains[i] = 1;
    }
    /* For small maps a step takes microseconds and three thread synchronisations per
     * step would cost more than they save (much more on an oversubscribed machine). */
    bool parallel = n >= PARALLEL_MIN;
    et_progress_begin(&pg, "t-SNE", (uint64_t)o.iterations);
    for (int it = 0; it < o.iterations; it++) {
        if (et_interrupted()) {
            rc = et_error_set(err, ET_EINTR, "t-SNE interrupted");
            goto done;
        }
        bool early = it < EXAGGERATION_ITERS;
        double exaggeration = early ? EXAGGERATION : 1.0;
        double momentum = early ? MOMENTUM_EARLY : MOMENTUM_LATE;
        if (qtree_build(&t, y, n) < 0) {
            rc = et_error_set(err, ET_ENOMEM, "t-SNE: out of memory for the quadtree");
            goto done;
        }
        /* Repulsion in tree order (see qtree_build), attraction in index order, which
         * walks P's rows in memory order. */
#pragma omp parallel for schedule(dynamic, 64) if (parallel)
        for (ptrdiff_t r = 0; r < (ptrdiff_t)n; r++) {
            size_t i = (size_t)t.order[r];
            zpart[i] = repulsion(&t, y, i, theta2, rep + 2 * i);
        }
#pragma omp parallel for schedule(dynamic, 256) if (parallel)
        for (ptrdiff_t ii = 0; ii < (ptrdiff_t)n; ii++) {
            size_t i = (size_t)ii;
            double ax = 0, ay = 0, px = y[2 * i], py = y[2 * i + 1];
            for (size_t e = P.rp[i]; e < P.rp[i + 1]; e++) {
                size_t j = (size_t)P.col[e];
                double dx = px - y[2 * j], dy = py - y[2 * j + 1];
                double w = P.val[e] / (1 + dx * dx + dy * dy);
                ax += w * dx, ay += w * dy;
            }
            grad[2 * i] = exaggeration * ax;
            grad[2 * i + 1] = exaggeration * ay;
        }
        double z = 0; /* serially, in index order: the same sum for any thread count */
        for (size_t i = 0; i < n; i++)
            z += zpart[i];
        double inv_z = 1 / z;
#pragma omp parallel for schedule(static) if (parallel)
        for (ptrdiff_t c = 0; c < (ptrdiff_t)(2 * n); c++) {
            double g = grad[c] - rep[c] * inv_z;
            /* Gains grow while the step keeps going downhill (delta-bar-delta). */
            gains[c] = sign(g) != sign(upd[c]) ? gains[c] + 0.2 : gains[c] * 0.8;
            if (gains[c] < MIN_GAIN)
                gains[c] = MIN_GAIN;
            upd[c] = momentum * upd[c] - eta * gains[c] * g;
            y[c] += upd[c];
        }
        double mx = 0, my = 0;
        for (size_t i = 0; i < n; i++)
            mx += y[2 * i], my += y[2 * i + 1];
        mx /= (double)n, my /= (double)n;
        for (size_t i = 0; i < n; i++)
            y[2 * i] -= mx, y[2 * i + 1] -= my;
        et_progress_update(&pg, (uint64_t)it + 1);
    }
    for (size_t i = 0; i < 2 * n; i++) {
        if (!isfinite(y[i])) {
            rc = et_error_set(err, ET_EINVAL,
                              "t-SNE diverged (sample %zu has no finite position); use a "
                              "smaller learning rate",
                              i / 2);
            goto done;
        }
        out[i] = (float)y[i];
    }
done:
    et_progress_end(&pg);
    free(nb), free(y), free(upd), free(gains), free(grad), free(zpart), free(rep);
    free(t.nodes), free(t.next), free(t.leaf_of), free(t.order);
    free(P.rp), free(P.col), free(P.val);
    return rc;
}
