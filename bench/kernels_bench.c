/* Times the fast training kernels (src/kernels/fast) against their ref/ twins
 * on MobileNet-like shapes at batch 32, forward and backward (every gradient),
 * and prints a table with the ratio. Fast runs are timed on one thread and on
 * all of OpenMP's threads (OMP_NUM_THREADS sets them); ref/ is single-threaded.
 * Each figure is the best of several runs after a warm-up. The last column
 * says whether the fast kernel's outputs on one thread and on all threads are
 * bit-identical, as they must be.
 *
 *     build/bench_kernels            all rows
 *     build/bench_kernels conv       rows whose name contains "conv"
 *
 * These are internal ratios (ref/ is written to be checked, not to be fast),
 * not comparisons with other frameworks. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench {
    const char *name;
    enum { CONV, DEPTHWISE, DENSE, MAXPOOL, BATCHNORM, RELU6, BN_RELU6 } op;
    et_dims in;
    int out_c, k, stride;
    /* set up by prepare() */
    et_window win;
    et_dims out;
    size_t nx, ny, nw;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db, *gamma, *beta, *mean, *invstd;
    void *scratch;
} bench;

static float *randbuf(size_t n, unsigned *seed)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (float)(*seed >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    return p;
}

static void prepare(bench *b)
{
    unsigned seed = 1;
    b->out = (et_dims){.c = b->out_c};
    b->win = (et_window){b->k, b->k, b->stride, b->stride, 0, 0};
    if (b->op == DENSE) {
        b->out = (et_dims){b->in.n, 1, 1, b->out_c};
    } else if (et_window_plan(&b->win, ET_PADDING_SAME, &b->in, &b->out, NULL) < 0) {
        fprintf(stderr, "bench_kernels: bad shape for %s\n", b->name);
        exit(1);
    }
    b->nx = et_dims_count(&b->in), b->ny = et_dims_count(&b->out);
    size_t in_feat = b->nx / b->in.n;
    b->nw = b->op == CONV        ? (size_t)b->out_c * b->k * b->k * b->in.c
            : b->op == DEPTHWISE ? (size_t)b->k * b->k * b->out_c
            : b->op == DENSE     ? (size_t)b->out_c * in_feat
                                 : (size_t)b->in.c;
    b->x = randbuf(b->nx, &seed), b->w = randbuf(b->nw, &seed), b->b = randbuf(b->out_c, &seed);
    b->y = randbuf(b->ny, &seed), b->dy = randbuf(b->ny, &seed), b->dx = randbuf(b->nx, &seed);
    b->dw = randbuf(b->nw, &seed), b->db = randbuf(b->out_c, &seed);
    b->gamma = randbuf(b->in.c, &seed), b->beta = randbuf(b->in.c, &seed);
    b->mean = randbuf(b->in.c, &seed), b->invstd = randbuf(b->in.c, &seed);
    size_t s = b->op == CONV ? et_conv2d_scratch_size_fast(&b->win, &b->in, &b->out)
               : b->op == DEPTHWISE
                   ? et_depthwise_conv2d_scratch_size_fast(&b->win, &b->in, &b->out)
                   : 0;
    b->scratch = malloc(s ? s : 1);
}

static void release(bench *b)
{
    float *bufs[] = {b->x,  b->w,  b->b,     b->y,    b->dy,   b->dx,
                     b->dw, b->db, b->gamma, b->beta, b->mean, b->invstd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(b->scratch);
}

static void run(bench *b, int fast, int backward)
{
    const et_batchnorm_params bnp = {1e-3f, 0.99f};
    const size_t rows = b->nx / b->in.c;
    switch (b->op) {
    case CONV:
        if (!backward)
            (fast ? et_conv2d_forward_fast : et_conv2d_forward_ref)(
                &b->win, &b->in, b->x, b->w, b->b, &b->out, b->y, b->scratch);
        else
            (fast ? et_conv2d_backward_fast : et_conv2d_backward_ref)(
                &b->win, &b->in, b->x, b->w, &b->out, b->dy, b->dx, b->dw, b->db, b->scratch);
        break;
    case DEPTHWISE:
        if (!backward)
            (fast ? et_depthwise_conv2d_forward_fast : et_depthwise_conv2d_forward_ref)(
                &b->win, &b->in, b->x, b->w, b->b, &b->out, b->y, b->scratch);
        else
            (fast ? et_depthwise_conv2d_backward_fast : et_depthwise_conv2d_backward_ref)(
                &b->win, &b->in, b->x, b->w, &b->out, b->dy, b->dx, b->dw, b->db, b->scratch);
        break;
    case DENSE: {
        int in_feat = (int)(b->nx / b->in.n);
        if (!backward)
            (fast ? et_dense_forward_fast : et_dense_forward_ref)(b->in.n, in_feat, b->out_c, b->x,
                                                                  b->w, b->b, b->y);
        else
            (fast ? et_dense_backward_fast : et_dense_backward_ref)(
                b->in.n, in_feat, b->out_c, b->x, b->w, b->dy, b->dx, b->dw, b->db);
        break;
    }
    case MAXPOOL:
        if (!backward)
            (fast ? et_maxpool_forward_fast : et_maxpool_forward_ref)(&b->win, &b->in, b->x,
                                                                      &b->out, b->y);
        else
            (fast ? et_maxpool_backward_fast : et_maxpool_backward_ref)(&b->win, &b->in, b->x,
                                                                        &b->out, b->dy, b->dx);
        break;
    case BATCHNORM:
        if (!backward)
            (fast ? et_batchnorm_forward_train_fast : et_batchnorm_forward_train_ref)(
                &bnp, rows, b->in.c, b->x, b->gamma, b->beta, b->y, b->mean, b->invstd, NULL, NULL);
        else
            (fast ? et_batchnorm_backward_fast : et_batchnorm_backward_ref)(
                rows, b->in.c, b->x, b->gamma, b->mean, b->invstd, b->y, b->dx, b->dw, b->db);
        break;
    case BN_RELU6: /* fast: the fused kernels; ref: batch norm, then ReLU6 in place */
        if (!backward && fast) {
            et_batchnorm_act_forward_train_fast(&bnp, ET_ACT_RELU6, rows, b->in.c, b->x, b->gamma,
                                                b->beta, b->y, b->mean, b->invstd, NULL, NULL);
        } else if (!backward) {
            et_batchnorm_forward_train_ref(&bnp, rows, b->in.c, b->x, b->gamma, b->beta, b->y,
                                           b->mean, b->invstd, NULL, NULL);
            et_relu6_forward_ref(b->ny, b->y, b->y);
        } else if (fast) {
            et_batchnorm_act_backward_fast(ET_ACT_RELU6, rows, b->in.c, b->x, NULL, b->gamma,
                                           b->beta, b->mean, b->invstd, b->dy, b->dx, b->dw, b->db);
        } else {
            et_relu6_backward_ref(b->ny, b->y, b->dy, b->dx);
            et_batchnorm_backward_ref(rows, b->in.c, b->x, b->gamma, b->mean, b->invstd, b->dx,
                                      b->dx, b->dw, b->db);
        }
        break;
    case RELU6:
        if (!backward)
            (fast ? et_relu6_forward_fast : et_relu6_forward_ref)(b->nx, b->x, b->y);
        else
            (fast ? et_relu6_backward_fast : et_relu6_backward_ref)(b->nx, b->x, b->dy, b->dx);
        break;
    }
}

/* FNV-1a over every buffer a kernel may write: equal after a run on one
 * thread and a run on all threads when the results are bit-identical. */
static uint64_t outputs_hash(const bench *b)
{
    const float *bufs[] = {b->y, b->dx, b->dw, b->db, b->mean, b->invstd};
    const size_t lens[] = {b->ny, b->nx, b->nw, (size_t)b->out_c, (size_t)b->in.c, (size_t)b->in.c};
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        const unsigned char *p = (const unsigned char *)bufs[i];
        for (size_t j = 0; j < lens[i] * sizeof(float); j++)
            h = (h ^ p[j]) * 1099511628211u;
    }
    return h;
}

/* Best time of one call in ms: one warm-up (fast/ only: ref/ is slow enough
 * not to need one), then runs until min_s seconds and at least min_runs runs
 * have passed. */
static double best_ms(bench *b, int fast, int backward, double min_s, int min_runs)
{
    if (fast)
        run(b, fast, backward);
    double best = 1e30, start = et_now_s();
    for (int i = 0; i < min_runs || et_now_s() - start < min_s; i++) {
        double t0 = et_now_s();
        run(b, fast, backward);
        double t = et_now_s() - t0;
        best = t < best ? t : best;
    }
    return best * 1e3;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
#define B(nm, o, n, h, w, c, oc, kk, st)                                                           \
    {.name = nm, .op = o, .in = {n, h, w, c}, .out_c = oc, .k = kk, .stride = st}
    bench benches[] = {
        B("conv2d 3x3 32x48x48x16->32", CONV, 32, 48, 48, 16, 32, 3, 1),
        B("conv2d 3x3/2 32x96x96x1->16", CONV, 32, 96, 96, 1, 16, 3, 2),
        B("conv2d 1x1 32x24x24x32->64", CONV, 32, 24, 24, 32, 64, 1, 1),
        B("depthwise 3x3 32x48x48x32", DEPTHWISE, 32, 48, 48, 32, 32, 3, 1),
        B("depthwise 3x3/2 32x48x48x96", DEPTHWISE, 32, 48, 48, 96, 96, 3, 2),
        B("dense 32x1280->16", DENSE, 32, 1, 1, 1280, 16, 1, 1),
        B("maxpool 2x2/2 32x26x26x32", MAXPOOL, 32, 26, 26, 32, 32, 2, 2),
        B("batchnorm train 32x48x48x32", BATCHNORM, 32, 48, 48, 32, 32, 1, 1),
        B("relu6 32x48x48x32", RELU6, 32, 48, 48, 32, 32, 1, 1),
        B("batchnorm+relu6 32x48x48x32", BN_RELU6, 32, 48, 48, 32, 32, 1, 1),
        B("batchnorm train 32x24x24x96", BATCHNORM, 32, 24, 24, 96, 96, 1, 1),
        B("relu6 32x24x24x96", RELU6, 32, 24, 24, 96, 96, 1, 1),
        B("batchnorm+relu6 32x24x24x96", BN_RELU6, 32, 24, 24, 96, 96, 1, 1),
    };
    const int threads = omp_get_max_threads();
    printf("edgetrain kernels: ref/ vs fast/, batch 32, best of several runs, ms per call\n");
    printf("OpenMP threads: %d; OpenBLAS: %s\n\n", threads, openblas_get_config());
    printf("%-30s %-4s %10s %10s %10s %9s %9s %6s\n", "kernel", "pass", "ref", "fast 1T", "fast",
           "ref/1T", "ref/fast", "1T=NT");
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++) {
        bench *b = &benches[i];
        if (filter && !strstr(b->name, filter))
            continue;
        prepare(b);
        for (int backward = 0; backward < 2; backward++) {
            double ref = best_ms(b, 0, backward, 0.5, 1);
            omp_set_num_threads(1);
            double one = best_ms(b, 1, backward, 0.3, 5);
            uint64_t h1 = outputs_hash(b);
            omp_set_num_threads(threads);
            double all = best_ms(b, 1, backward, 0.3, 5);
            const char *same = outputs_hash(b) == h1 ? "yes" : "NO";
            printf("%-30s %-4s %10.3f %10.3f %10.3f %8.1fx %8.1fx %6s\n", b->name,
                   backward ? "bwd" : "fwd", ref, one, all, ref / one, ref / all, same);
            fflush(stdout);
        }
        release(b);
    }
    return 0;
}
