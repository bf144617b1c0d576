/* Training-time estimates: this machine's speed per op kind (measured on the
 * fast training kernels, cached), summed over a model's layers. */
#include "edgetrain/estimate.h"

#include "edgetrain/net.h"
#include "edgetrain/quant.h"

#include "core/fsutil.h"
#include "core/rng.h"
#include "etrt.h"
#include "etrt_kernels.h"
#include "kernels/kernels.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* What identifies "this machine and build" for the cache. */
static void machine_key(char key[17], int threads)
{
    char cpu[600] = "unknown";
    FILE *fp = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (fp && fgets(line, sizeof line, fp))
        if (!strncmp(line, "model name", 10)) {
            const char *c = strchr(line, ':');
            snprintf(cpu, sizeof cpu, "%s", c ? c + 1 : line);
            break;
        }
    if (fp)
        fclose(fp);
    char text[700];
    /* __DATE__/__TIME__ of this file stand for the build: a rebuilt binary
     * may have other kernels, so it measures again. */
    snprintf(text, sizeof text, "%s|%d|%s %s", cpu, threads, __DATE__, __TIME__);
    uint64_t h = fnv1a(1469598103934665603ull, text, strlen(text));
    snprintf(key, 17, "%016llx", (unsigned long long)h);
}

/* Seconds per call of fn(ctx), the best of a few runs after a warm-up. */
typedef void (*bench_fn)(void *ctx);
static double best_time(bench_fn fn, void *ctx, int runs)
{
    fn(ctx);
    double best = INFINITY;
    for (int r = 0; r < runs; r++) {
        double t0 = et_now_s();
        fn(ctx);
        double t = et_now_s() - t0;
        best = t < best ? t : best;
    }
    return best;
}

typedef struct conv_case {
    et_window win;
    et_dims in, out;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
    void *scratch;
    bool backward, depthwise;
} conv_case;

static void run_conv(void *ctx)
{
    conv_case *c = ctx;
    if (c->depthwise) {
        et_depthwise_conv2d_forward_fast(&c->win, &c->in, c->x, c->w, c->b, &c->out, c->y,
                                         c->scratch);
        if (c->backward)
            et_depthwise_conv2d_backward_fast(&c->win, &c->in, c->x, c->w, &c->out, c->dy, c->dx,
                                              c->dw, c->db, c->scratch);
        return;
    }
    et_conv2d_forward_fast(&c->win, &c->in, c->x, c->w, c->b, &c->out, c->y, c->scratch);
    if (c->backward)
        et_conv2d_backward_fast(&c->win, &c->in, c->x, c->w, &c->out, c->dy, c->dx, c->dw, c->db,
                                c->scratch);
}

static float *filled(size_t n, uint64_t *s)
{
    float *p = malloc((n + 1) * sizeof *p);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)(et_rng_unit(s) - 0.5);
    return p;
}

/* Times one conv2d or depthwise shape; writes forward and forward+backward
 * seconds. false when out of memory. */
static bool time_conv(int n, int hw, int in_c, int out_c, int k, bool depthwise, double *fwd,
                      double *train)
{
    conv_case c = {.depthwise = depthwise};
    c.win = (et_window){.k_h = k, .k_w = k, .stride_h = 1, .stride_w = 1};
    c.in = (et_dims){n, hw, hw, in_c};
    c.out = c.in;
    c.out.c = out_c;
    et_window_plan(&c.win, ET_PADDING_SAME, &c.in, &c.out, NULL);
    uint64_t s = 42;
    size_t nx = (size_t)n * hw * hw * in_c, ny = (size_t)n * c.out.h * c.out.w * out_c;
    size_t nw = depthwise ? (size_t)k * k * out_c : (size_t)k * k * in_c * out_c;
    size_t scratch = depthwise ? et_depthwise_conv2d_scratch_size_fast(&c.win, &c.in, &c.out)
                               : et_conv2d_scratch_size_fast(&c.win, &c.in, &c.out);
    c.x = filled(nx, &s);
    c.dx = filled(nx, &s);
    c.w = filled(nw, &s);
    c.dw = filled(nw, &s);
    c.b = filled((size_t)out_c, &s);
    c.db = filled((size_t)out_c, &s);
    c.y = filled(ny, &s);
    c.dy = filled(ny, &s);
    c.scratch = malloc(scratch + 16);
    bool ok = c.x && c.dx && c.w && c.dw && c.b && c.db && c.y && c.dy && c.scratch;
    if (ok) {
        *fwd = best_time(run_conv, &c, 3);
        c.backward = true;
        *train = best_time(run_conv, &c, 3);
    }
    free(c.x);
    free(c.dx);
    free(c.w);
    free(c.dw);
    free(c.b);
    free(c.db);
    free(c.y);
    free(c.dy);
    free(c.scratch);
    return ok;
}

typedef struct elt_case {
    size_t rows;
    int c;
    float *x, *y, *dy, *dx, *g, *b, *m, *v, *sm, *si;
    et_window win;
    et_dims in, out;
    int kind; /* 0 relu, 1 batch norm, 2 max pool */
    bool backward;
} elt_case;

static void run_elt(void *ctx)
{
    elt_case *e = ctx;
    size_t n = e->rows * (size_t)e->c;
    et_batchnorm_params bp = {1e-3f, 0.99f};
    switch (e->kind) {
    case 0:
        et_relu_forward_fast(n, e->x, e->y);
        if (e->backward)
            et_relu_backward_fast(n, e->y, e->dy, e->dx);
        break;
    case 1:
        et_batchnorm_forward_train_fast(&bp, e->rows, e->c, e->x, e->g, e->b, e->y, e->sm, e->si,
                                        e->m, e->v);
        if (e->backward)
            et_batchnorm_backward_fast(e->rows, e->c, e->x, e->g, e->sm, e->si, e->dy, e->dx, e->g,
                                       e->b);
        break;
    default:
        et_maxpool_forward_fast(&e->win, &e->in, e->x, &e->out, e->y);
        if (e->backward)
            et_maxpool_backward_fast(&e->win, &e->in, e->x, &e->out, e->dy, e->dx);
    }
}

static bool time_elt(int kind, double *fwd, double *train)
{
    elt_case e = {.kind = kind, .rows = 32 * 28 * 28, .c = 32};
    size_t n = e.rows * (size_t)e.c;
    uint64_t s = 7;
    e.x = filled(n, &s);
    e.y = filled(n, &s);
    e.dy = filled(n, &s);
    e.dx = filled(n, &s);
    e.g = filled(64, &s);
    e.b = filled(64, &s);
    e.m = filled(64, &s);
    e.v = filled(64, &s);
    e.sm = filled(64, &s);
    e.si = filled(64, &s);
    e.in = (et_dims){32, 28, 28, 32};
    e.win = (et_window){.k_h = 2, .k_w = 2, .stride_h = 2, .stride_w = 2};
    e.out = e.in;
    et_window_plan(&e.win, ET_PADDING_VALID, &e.in, &e.out, NULL);
    for (int i = 0; e.v && i < 64; i++)
        e.v[i] = 1.0f;
    bool ok = e.x && e.y && e.dy && e.dx && e.g && e.b && e.m && e.v && e.sm && e.si;
    if (ok) {
        *fwd = best_time(run_elt, &e, 3) / (double)n;
        e.backward = true;
        *train = best_time(run_elt, &e, 3) / (double)n;
    }
    float *all[] = {e.x, e.y, e.dy, e.dx, e.g, e.b, e.m, e.v, e.sm, e.si};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    return ok;
}

typedef struct dense_case {
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
    bool backward;
} dense_case;

static void run_dense(void *ctx)
{
    dense_case *d = ctx;
    et_dense_forward_fast(32, 784, 128, d->x, d->w, d->b, d->y);
    if (d->backward)
        et_dense_backward_fast(32, 784, 128, d->x, d->w, d->dy, d->dx, d->dw, d->db);
}

typedef struct int8_case {
    etrt_conv_s8_params p;
    etrt_dims in, out;
    int8_t *x, *w, *y;
    int32_t *bias, *mult, *shift;
    void *scratch;
} int8_case;

static void run_int8(void *ctx)
{
    int8_case *c = ctx;
    etrt_conv2d_s8(&c->p, c->in, c->x, c->w, c->bias, c->out, c->y, c->scratch);
}

static bool time_int8(double *per_mac)
{
    int8_case c;
    memset(&c, 0, sizeof c);
    c.in = (etrt_dims){1, 14, 14, 32};
    c.out = (etrt_dims){1, 14, 14, 32};
    c.p.win = (etrt_window){3, 3, 1, 1, 1, 1};
    c.p.input_offset = 128;
    c.p.act_min = -128;
    c.p.act_max = 127;
    c.x = calloc(14 * 14 * 32, 1);
    c.y = calloc(14 * 14 * 32, 1);
    c.w = calloc(32 * 9 * 32, 1);
    c.bias = calloc(32, sizeof *c.bias);
    c.mult = calloc(32, sizeof *c.mult);
    c.shift = calloc(32, sizeof *c.shift);
    c.scratch = malloc(etrt_conv2d_s8_scratch_size(&c.p, c.in, c.out) + 16);
    bool ok = c.x && c.y && c.w && c.bias && c.mult && c.shift && c.scratch;
    for (int i = 0; ok && i < 32; i++)
        c.mult[i] = 1 << 30;
    c.p.multiplier = c.mult;
    c.p.shift = c.shift;
    if (ok)
        *per_mac = best_time(run_int8, &c, 5) / (14.0 * 14 * 32 * 9 * 32);
    free(c.x);
    free(c.y);
    free(c.w);
    free(c.bias);
    free(c.mult);
    free(c.shift);
    free(c.scratch);
    return ok;
}

/* Solves time = MACs * a + patches * b from a 64-filter and an 8-filter run
 * over the same patches. Timing noise can make the difference meaningless;
 * then all of the time is put on the MACs. */
static void fit_conv(double patches, double t64, double t8, double *a, double *b)
{
    double per_mac = (t64 - t8) / (patches * 56);
    double rest = t8 - patches * 8 * per_mac;
    if (per_mac <= 0 || rest < 0) {
        *a = t64 / (patches * 64);
        *b = 0;
        return;
    }
    *a = per_mac;
    *b = rest / patches;
}

et_status et_machine_rates_measure(et_machine_rates *r, et_error *err)
{
    memset(r, 0, sizeof *r);
    double t0 = et_now_s();
    r->threads = omp_get_max_threads();
    machine_key(r->key, r->threads);
    bool ok = true;
    /* conv2d: time = MACs * a + patch elements * b. Two shapes with the same
     * patches and different filter counts separate a from b. */
    double f1 = 0, t1 = 0, f2 = 0, t2 = 0;
    const int n = 16, hw = 14, in_c = 32, k = 3;
    ok = ok && time_conv(n, hw, in_c, 64, k, false, &f1, &t1);
    ok = ok && time_conv(n, hw, in_c, 8, k, false, &f2, &t2);
    double patches = (double)n * hw * hw * k * k * in_c;
    fit_conv(patches, t1, t2, &r->conv_mac_train, &r->conv_patch_train);
    fit_conv(patches, f1, f2, &r->conv_mac_infer, &r->conv_patch_infer);
    double fp = 0, tp = 0;
    ok = ok && time_conv(n, hw, 64, 64, 1, false, &fp, &tp);
    r->pw_mac_train = tp / ((double)n * hw * hw * 64 * 64);
    r->pw_mac_infer = fp / ((double)n * hw * hw * 64 * 64);
    double fd = 0, td = 0;
    ok = ok && time_conv(n, 28, 32, 32, 3, true, &fd, &td);
    r->dw_mac_train = td / ((double)n * 28 * 28 * 32 * 9);
    r->dw_mac_infer = fd / ((double)n * 28 * 28 * 32 * 9);
    dense_case d = {0};
    uint64_t s = 3;
    d.x = filled(32 * 784, &s);
    d.dx = filled(32 * 784, &s);
    d.w = filled(784 * 128, &s);
    d.dw = filled(784 * 128, &s);
    d.b = filled(128, &s);
    d.db = filled(128, &s);
    d.y = filled(32 * 128, &s);
    d.dy = filled(32 * 128, &s);
    ok = ok && d.x && d.dx && d.w && d.dw && d.b && d.db && d.y && d.dy;
    if (ok) {
        double macs = 32.0 * 784 * 128;
        r->dense_mac_infer = best_time(run_dense, &d, 3) / macs;
        d.backward = true;
        r->dense_mac_train = best_time(run_dense, &d, 3) / macs;
    }
    float *dl[] = {d.x, d.dx, d.w, d.dw, d.b, d.db, d.y, d.dy};
    for (size_t i = 0; i < 8; i++)
        free(dl[i]);
    ok = ok && time_elt(0, &r->act_elt_infer, &r->act_elt_train);
    ok = ok && time_elt(1, &r->bn_elt_infer, &r->bn_elt_train);
    ok = ok && time_elt(2, &r->pool_elt_infer, &r->pool_elt_train);
    ok = ok && time_int8(&r->int8_mac);
    r->seconds = et_now_s() - t0;
    r->correction = 1.0;
    return ok ? ET_OK : et_error_set(err, ET_ENOMEM, "out of memory measuring this machine");
}

/* The cache file for this machine's key; false when there is no home. */
static bool cache_path(const char *key, char *path, size_t n, char *dir, size_t dn)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(dir, dn, "%s/edgetrain", xdg);
    else if (home && *home)
        snprintf(dir, dn, "%s/.cache/edgetrain", home);
    else
        return false;
    snprintf(path, n, "%s/machine-%s.json", dir, key);
    return true;
}

/* The cache file of machine key as JSON: a new object when it is missing
 * or unreadable. The file holds the machine's rates and the timings of the
 * models trained on it (et_model_timing). */
static json_t *cache_load(const char *key)
{
    char path[4200], dir[4096];
    json_t *j =
        cache_path(key, path, sizeof path, dir, sizeof dir) ? json_load_file(path, 0, NULL) : NULL;
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j ? j : json_object();
}

/* Best effort: a cache that cannot be written is measured again next time.
 * Takes j. */
static void cache_store(const char *key, json_t *j)
{
    char path[4200], dir[4096];
    char *text = cache_path(key, path, sizeof path, dir, sizeof dir)
                     ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS)
                     : NULL;
    json_decref(j);
    et_error ignore = {0};
    if (text && et_mkdir_p(dir, &ignore) == ET_OK)
        et_write_file_atomic(path, text, strlen(text), &ignore);
    free(text);
}

static void write_cache(const et_machine_rates *r);

#define RATE_FIELDS(X)                                                                             \
    X(conv_mac_train)                                                                              \
    X(conv_mac_infer)                                                                              \
    X(conv_patch_train) X(conv_patch_infer) X(pw_mac_train) X(pw_mac_infer) X(dw_mac_train)        \
        X(dw_mac_infer) X(dense_mac_train) X(dense_mac_infer) X(bn_elt_train) X(bn_elt_infer)      \
            X(act_elt_train) X(act_elt_infer) X(pool_elt_train) X(pool_elt_infer) X(int8_mac)      \
                X(correction)

et_status et_machine_rates_get(et_machine_rates *out, et_error *err)
{
    char key[17], path[4200], dir[4096];
    int threads = omp_get_max_threads();
    machine_key(key, threads);
    if (cache_path(key, path, sizeof path, dir, sizeof dir)) {
        json_t *j = json_load_file(path, 0, NULL);
        if (j) {
            memset(out, 0, sizeof *out);
            bool ok = true;
#define READ(f)                                                                                    \
    {                                                                                              \
        json_t *v = json_object_get(j, #f);                                                        \
        ok = ok && json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < 1e6;   \
        out->f = json_number_value(v);                                                             \
    }
            RATE_FIELDS(READ)
#undef READ
            json_decref(j);
            /* A correction learnt up to its bound says the figures are
             * stale (measured under other load, or wrong for the models
             * trained since): they are measured again. */
            ok = ok && out->correction > 0.25 && out->correction < 4.0;
            if (ok) {
                memcpy(out->key, key, sizeof key);
                out->threads = threads;
                out->cached = true;
                return ET_OK;
            }
        }
    }
    et_status rc = et_machine_rates_measure(out, err);
    if (rc == ET_OK)
        write_cache(out);
    return rc;
}

void et_machine_rates_learn(et_machine_rates *r, double measured, double estimated)
{
    /* Short runs are mostly fixed costs (start-up, the first touch of the
     * data): they would teach nothing about the per-sample figures. */
    if (!(measured >= 5.0) || !(estimated > 0) || !isfinite(measured / estimated))
        return;
    /* estimated already includes the old correction: the new one moves half
     * way towards what would have been exact. */
    double exact = r->correction * measured / estimated;
    r->correction = 0.5 * r->correction + 0.5 * exact;
    /* Kernel timings can be off by a few times on a busy machine, not more. */
    r->correction = r->correction < 0.25 ? 0.25 : r->correction > 4.0 ? 4.0 : r->correction;
    write_cache(r);
}

static void write_cache(const et_machine_rates *r)
{
    json_t *j = cache_load(r->key);
    json_object_set_new(j, "key", json_string(r->key));
    json_object_set_new(j, "threads", json_integer(r->threads));
#define WRITE(f) json_object_set_new(j, #f, json_real(r->f));
    RATE_FIELDS(WRITE)
#undef WRITE
    cache_store(r->key, j);
}

/* Forward(+backward) seconds of one sample through node l. */
static double node_seconds(const et_model *m, const et_layer_info *l, const et_machine_rates *r,
                           bool train)
{
    double out = (double)l->out.h * l->out.w * l->out.c, macs = (double)l->macs;
    const et_layer_info *in = l->n_inputs > 0 ? et_model_layer(m, l->inputs[0]) : NULL;
    double in_elts = in ? (double)in->out.h * in->out.w * in->out.c : 0;
    switch (l->kind) {
    case ET_NODE_CONV2D:
        if (l->kernel_h == 1 && l->kernel_w == 1)
            return macs * (train ? r->pw_mac_train : r->pw_mac_infer);
        return macs * (train ? r->conv_mac_train : r->conv_mac_infer) +
               (macs / l->out.c) * (train ? r->conv_patch_train : r->conv_patch_infer);
    case ET_NODE_DEPTHWISE_CONV2D: return macs * (train ? r->dw_mac_train : r->dw_mac_infer);
    case ET_NODE_DENSE: return macs * (train ? r->dense_mac_train : r->dense_mac_infer);
    case ET_NODE_BATCHNORM: return out * (train ? r->bn_elt_train : r->bn_elt_infer);
    case ET_NODE_RELU:
    case ET_NODE_RELU6:
    case ET_NODE_ADD:
    case ET_NODE_DROPOUT: return out * (train ? r->act_elt_train : r->act_elt_infer);
    case ET_NODE_MAXPOOL:
    case ET_NODE_AVGPOOL:
    case ET_NODE_GLOBAL_AVGPOOL: return in_elts * (train ? r->pool_elt_train : r->pool_elt_infer);
    default: return 0;
    }
}

/* ------------------------------------------------------------------------
 * A model's own timing: the real step, at the real batch size.
 */

/* Each phase of a timing stops after this many seconds (at least one timed
 * run after the warm-up). */
#define TIMING_PHASE_S 0.3
/* Calibration (et_quant_convert) runs the float model over the calibration
 * samples, records every tensor's range and, for bias correction, the
 * channel means: about 2.5 inference passes' worth on the development
 * machine (conv net 0.10 s and MobileNetV2 a0.35 96x96 1.1 s for 1,000 and
 * 599 samples, against inference at 40 us and 700 us a sample). MSE
 * calibration builds histograms too: 1.75x the min/max conversion. */
#define CALIBRATION_PASSES 2.5
#define MSE_FACTOR 1.75
#define QAT_DEFAULT_EPOCHS 3 /* as src/nn/train_int8.c */
#define CALIBRATION_MAX 1000 /* et_quant_defaults' max_calibration_samples */

/* The cache key of model m at batch (the machine's file holds it): every
 * node's kind, shape and window. */
static void timing_key(const et_model *m, int batch, char key[17])
{
    uint64_t h = fnv1a(1469598103934665603ull, &batch, sizeof batch);
    et_shape in = et_model_input_shape(m);
    h = fnv1a(h, &in, sizeof in);
    for (int i = 0; i < et_model_node_count(m); i++) {
        const et_layer_info *l = et_model_layer(m, i);
        int v[] = {(int)l->kind, l->n_inputs, l->inputs[0], l->inputs[1],
                   l->out.h,     l->out.w,    l->out.c,     l->kernel_h,
                   l->kernel_w,  l->stride_h, l->stride_w,  l->pad_top,
                   l->pad_left,  l->units,    l->use_bias,  l->depth_multiplier};
        h = fnv1a(h, v, sizeof v);
    }
    snprintf(key, 17, "%016llx", (unsigned long long)h);
}

typedef struct step_case {
    et_net *net;
    const float *x;
    const int32_t *labels;
    int batch;
    bool training;
    et_optimizer opt;
    uint64_t step;
    et_status rc;
    et_error *err;
} step_case;

/* What a training step of et_train does, less the batch copy. */
static void run_step(void *ctx)
{
    step_case *c = ctx;
    if (c->rc < 0)
        return;
    c->rc = et_net_forward(c->net, c->x, c->batch, c->training, c->step++, c->err);
    if (c->rc == ET_OK && c->training)
        c->rc = et_net_backward(c->net, c->labels, 0, NULL, NULL, c->err);
    if (c->rc == ET_OK && c->training)
        et_net_step(c->net, &c->opt, 1e-4);
}

/* The clock of a model's timing. On one thread, the thread's CPU time: the
 * work runs on the calling thread (OpenMP's team of one, OpenBLAS set to
 * one thread), and other processes sharing the cores (the tuner's workers,
 * which train while it prices the next candidates) do not stretch what is
 * measured; a trial then runs on a core of its own. On more threads the
 * wall clock, which is what a parallel step takes. */
static double timing_now(void)
{
    struct timespec ts;
    if (omp_get_max_threads() == 1 && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    return et_now_s();
}

/* Mean seconds per call of fn(ctx), after one warm-up call (first touch of
 * the buffers) when warm: at least one timed call, more while under
 * TIMING_PHASE_S and fewer than max_reps. The mean, not the best: the
 * estimate is of the average step under the load of the moment. */
static double mean_time(bench_fn fn, void *ctx, bool warm, int max_reps)
{
    if (warm)
        fn(ctx);
    double t0 = timing_now(), t = 0;
    int k = 0;
    while (k < 1 || (k < max_reps && t < TIMING_PHASE_S)) {
        fn(ctx);
        k++;
        t = timing_now() - t0;
    }
    return t / k;
}

/* Fake-quantization grids where the converter puts them: on every tensor of
 * the lowered graph, that is the output of each node that is not folded or
 * fused into its only consumer (batch norm, ReLU, ReLU6), not a reshape
 * (flatten), not dropout (dropped) and not the softmax. The scale is a
 * placeholder: rounding costs the same on any grid. NULL when out of
 * memory. */
static et_fake_quant *qat_grids(const et_model *m, size_t *n)
{
    int count = et_model_node_count(m);
    int *consumers = calloc((size_t)count + 1, sizeof *consumers),
        *only = calloc((size_t)count + 1, sizeof *only);
    et_fake_quant *g = calloc((size_t)count + 1, sizeof *g);
    *n = 0;
    if (!consumers || !only || !g) {
        free(g);
        g = NULL;
    }
    for (int i = 0; g && i < count; i++) {
        const et_layer_info *l = et_model_layer(m, i);
        for (int k = 0; k < l->n_inputs; k++)
            if (l->inputs[k] >= 0 && l->inputs[k] < count) {
                consumers[l->inputs[k]]++;
                only[l->inputs[k]] = i;
            }
    }
    for (int i = 0; g && i < count; i++) {
        et_node_kind kind = et_model_layer(m, i)->kind, next = et_model_layer(m, only[i])->kind;
        bool fused = consumers[i] == 1 &&
                     (next == ET_NODE_BATCHNORM || next == ET_NODE_RELU || next == ET_NODE_RELU6);
        if (!fused && kind != ET_NODE_FLATTEN && kind != ET_NODE_DROPOUT && kind != ET_NODE_SOFTMAX)
            g[(*n)++] = (et_fake_quant){.node = i, .scale = 1.0f / 32, .zero_point = 0};
    }
    free(consumers);
    free(only);
    return g;
}

/* Seconds per sample of the int8 plan, samples spread over the threads with
 * one arena each, as et_plan_predict runs them. */
static et_status time_int8_plan(const et_plan *plan, const float *x, double *out, et_error *err)
{
    etrt_model rm;
    int lr = etrt_model_init(&rm, plan->bytes, plan->size);
    if (lr < 0)
        return et_error_set(err, ET_EINVAL, "the model's int8 plan does not load: %s",
                            etrt_strerror(lr));
    etrt_tensor_info in = etrt_input_info(&rm);
    size_t row = (size_t)in.h * in.w * in.c, arena_size = (etrt_arena_size(&rm) + 15) & ~(size_t)15;
    int threads = omp_get_max_threads(), per_round = 4 * threads, rounds = 0;
    volatile int failed = 0;
    double t0 = 0, t = 0;
    for (int warm = 1; !failed && (warm || (rounds < 50 && t < TIMING_PHASE_S)); warm = 0) {
        if (!warm)
            t0 = t0 > 0 ? t0 : timing_now();
#pragma omp parallel
        {
            uint8_t *arena = aligned_alloc(16, arena_size);
            if (!arena)
                failed = 1;
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < (warm ? threads : per_round); i++) {
                if (failed)
                    continue;
                if (in.type == ETRT_INT8)
                    etrt_quantize_s8(row, x, in.scale, in.zero_point, etrt_input(&rm, arena));
                else
                    memcpy(etrt_input(&rm, arena), x, row * sizeof(float));
                etrt_invoke(&rm, arena);
            }
            free(arena);
        }
        if (!warm) {
            rounds++;
            t = timing_now() - t0;
        }
    }
    if (failed)
        return et_error_set(err, ET_ENOMEM, "out of memory for the runtime's arena");
    *out = t / ((double)rounds * per_round);
    return ET_OK;
}

et_status et_model_timing_measure(const et_model *m, int batch, et_model_timing *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    if (batch < 1 || batch > 65536)
        return et_error_set(err, ET_EINVAL, "batch size %d is outside 1..65536", batch);
    double t0 = et_now_s();
    out->batch = batch;
    out->infer_batch = batch > 64 ? batch : 64; /* et_train's net: max(batch, 64) */
    out->threads = omp_get_max_threads();
    et_shape in = et_model_input_shape(m);
    size_t row = (size_t)in.h * in.w * in.c, nb = (size_t)out->infer_batch;
    int classes = et_model_classes(m);
    float *x = malloc(nb * row * sizeof *x + 1);
    int32_t *labels = malloc(nb * sizeof *labels);
    et_net *net = NULL;
    et_quant_result q = {0};
    et_status rc = x && labels ? et_net_create(m, out->infer_batch, &net, err)
                               : et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK) {
        uint64_t s = 11;
        for (size_t i = 0; i < nb * row; i++)
            x[i] = (float)et_rng_unit(&s); /* features are 0..1 */
        for (size_t i = 0; i < nb; i++)
            labels[i] = (int32_t)(i % (size_t)(classes > 0 ? classes : 1));
        et_net_init(net, 1);
        step_case c = {.net = net,
                       .x = x,
                       .labels = labels,
                       .batch = batch,
                       .training = true,
                       .opt = et_optimizer_adam(),
                       .err = err};
        out->step = mean_time(run_step, &c, true, 8);
        c.training = false;
        c.batch = out->infer_batch;
        out->infer = mean_time(run_step, &c, true, 8);
        rc = c.rc;
        /* The plans of the untrained model: what the converter does but
         * calibrate, then the int8 plan on the runtime and fake-quantized
         * steps on its grids. */
        double c0 = timing_now();
        if (rc == ET_OK)
            rc = et_quant_convert_uncalibrated(m, et_net_params(net), &q, err);
        out->convert = timing_now() - c0;
        if (rc == ET_OK)
            rc = time_int8_plan(&q.int8, x, &out->int8_sample, err);
        size_t n_grids = 0;
        et_fake_quant *grids = rc == ET_OK ? qat_grids(m, &n_grids) : NULL;
        if (rc == ET_OK && !grids)
            rc = et_error_set(err, ET_ENOMEM, "out of memory");
        if (rc == ET_OK)
            rc = et_net_set_fake_quant(net, grids, n_grids, err);
        free(grids);
        if (rc == ET_OK) {
            c.training = true;
            c.batch = batch;
            /* A warm-up and one run each: a first fake-quantized pass
             * costs 1.5x the next ones (MobileNetV2). */
            out->qat_step = mean_time(run_step, &c, true, 1);
            c.training = false;
            c.batch = out->infer_batch;
            out->qat_infer = mean_time(run_step, &c, true, 1);
            rc = c.rc;
        }
    }
    et_quant_result_free(&q);
    et_net_destroy(net);
    free(x);
    free(labels);
    out->seconds = et_now_s() - t0;
    return rc;
}

#define TIMING_FIELDS(X)                                                                           \
    X(step) X(infer) X(qat_step) X(qat_infer) X(int8_sample) X(convert) X(seconds)

/* A timing lives in the machine's cache file, each figure under
 * "model.<model key>.<name>". */
static void timing_name(char *buf, size_t n, const char *tkey, const char *field)
{
    snprintf(buf, n, "model.%s.%s", tkey, field);
}

static void write_timing(const et_model *m, const et_model_timing *t)
{
    char mkey[17], tkey[17], name[64];
    machine_key(mkey, omp_get_max_threads());
    timing_key(m, t->batch, tkey);
    json_t *j = cache_load(mkey);
    timing_name(name, sizeof name, tkey, "infer_batch");
    json_object_set_new(j, name, json_integer(t->infer_batch));
#define WRITE(f)                                                                                   \
    timing_name(name, sizeof name, tkey, #f);                                                      \
    json_object_set_new(j, name, json_real(t->f));
    TIMING_FIELDS(WRITE)
#undef WRITE
    cache_store(mkey, j);
}

/* The cached timing of m at batch, when there is a sound one. */
static bool read_timing(const et_model *m, int batch, et_model_timing *t)
{
    char mkey[17], tkey[17], name[64];
    machine_key(mkey, omp_get_max_threads());
    timing_key(m, batch, tkey);
    json_t *j = cache_load(mkey);
    memset(t, 0, sizeof *t);
    t->batch = batch;
    t->threads = omp_get_max_threads();
    timing_name(name, sizeof name, tkey, "infer_batch");
    json_t *ib = json_object_get(j, name);
    bool ok = json_is_integer(ib) && json_integer_value(ib) >= batch;
    t->infer_batch = ok ? (int)json_integer_value(ib) : 0;
#define READ(f)                                                                                    \
    {                                                                                              \
        timing_name(name, sizeof name, tkey, #f);                                                  \
        json_t *v = json_object_get(j, name);                                                      \
        ok = ok && json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < 1e6;   \
        t->f = ok ? json_number_value(v) : 0;                                                      \
    }
    TIMING_FIELDS(READ)
#undef READ
    json_decref(j);
    return ok;
}

et_status et_model_timing_get(const et_model *m, int batch, et_model_timing *out, et_error *err)
{
    if (et_model_timing_cached(m, batch, out))
        return ET_OK;
    et_status rc = et_model_timing_measure(m, batch, out, err);
    if (rc == ET_OK)
        write_timing(m, out);
    return rc;
}

bool et_model_timing_cached(const et_model *m, int batch, et_model_timing *out)
{
    if (batch < 1 || batch > 65536 || !read_timing(m, batch, out))
        return false;
    out->cached = true;
    return true;
}

void et_model_timing_learn(const et_model *m, et_model_timing *t, double measured, double estimated)
{
    /* measured covers the epochs only (no start-up or int8), so even a
     * short run is many more steps than the timing: under half a second it
     * is left alone, as noise. */
    if (!(measured >= 0.5) || !(estimated > 0) || !isfinite(measured / estimated))
        return;
    /* What the training just measured is the best figure there is for the
     * next one (same model, same batch): taken whole, not half way. */
    double k = measured / estimated;
    k = k < 0.05 ? 0.05 : k > 20 ? 20 : k;
    t->step *= k;
    t->infer *= k;
    t->qat_step *= k;
    t->qat_infer *= k;
    write_timing(m, t);
}

/* ------------------------------------------------------------------------
 * Estimates
 */

/* A timing priced from the per-op-kind rates (batch-proportional: the rates
 * have no per-step term), their correction applied. */
static void timing_from_rates(const et_model *m, const et_machine_rates *r, int batch,
                              et_model_timing *t)
{
    double step = 0, infer = 0;
    for (int i = 0; i < et_model_node_count(m); i++) {
        step += node_seconds(m, et_model_layer(m, i), r, true);
        infer += node_seconds(m, et_model_layer(m, i), r, false);
    }
    double k = r->correction > 0 ? r->correction : 1.0;
    k = k < 0.25 ? 0.25 : k > 4.0 ? 4.0 : k; /* as et_machine_rates_learn bounds it */
    memset(t, 0, sizeof *t);
    t->batch = batch;
    t->infer_batch = batch > 64 ? batch : 64;
    t->threads = r->threads > 0 ? r->threads : 1;
    t->step = k * step * batch;
    t->infer = k * infer * t->infer_batch;
    t->qat_step = t->step;
    t->qat_infer = t->infer;
    t->int8_sample = (double)et_model_totals_all(m).macs * r->int8_mac / t->threads;
}

void et_estimate(const et_model *m, const et_machine_rates *r, const et_estimate_input *in,
                 et_train_estimate *out)
{
    memset(out, 0, sizeof *out);
    int batch = in->batch > 0 ? in->batch : 32;
    et_model_timing own;
    const et_model_timing *t = in->timing;
    if (!t && !r)
        return;
    if (!t) {
        timing_from_rates(m, r, batch, &own);
        t = &own;
    }
    /* Steps scale with the samples: a last, partial batch costs its share
     * of a full one. */
    double steps = (double)in->n_train / (double)t->batch;
    double val_passes = (double)in->n_val / (double)t->infer_batch;
    double epochs = in->epochs > 0 ? in->epochs : 0;
    /* A model with batch norm re-estimates its statistics after each epoch
     * (train.c): forward passes over at most ET_PRECISE_BN_SAMPLES rows,
     * priced as inference. */
    double bn_rows = !et_model_has_batchnorm(m)            ? 0
                     : in->n_train < ET_PRECISE_BN_SAMPLES ? (double)in->n_train
                                                           : ET_PRECISE_BN_SAMPLES;
    double bn_pass = bn_rows * t->infer / t->infer_batch;
    out->step_seconds = t->step / t->batch;
    out->train_seconds = (steps * t->step + bn_pass) * epochs;
    out->validation_seconds = val_passes * t->infer * (epochs + 1); /* + the final measure */
    if (in->int8) {
        double cal = (double)(in->n_val < CALIBRATION_MAX ? in->n_val : CALIBRATION_MAX);
        double calibrate = CALIBRATION_PASSES * cal * t->infer / t->infer_batch;
        double run_int8 = (double)in->n_val * t->int8_sample;
        double minmax = t->convert + calibrate + run_int8;
        double mse = t->convert + MSE_FACTOR * calibrate + run_int8;
        int qe = in->qat_epochs > 0 ? in->qat_epochs : QAT_DEFAULT_EPOCHS;
        double qat = qe * (steps * t->qat_step + val_passes * t->qat_infer + bn_pass) + minmax;
        out->int8_qat_seconds = qat;
        out->int8_seconds = minmax + (in->qat ? qat : 0);
        out->int8_fallback_seconds = mse + (in->qat ? 0 : qat);
    }
    out->seconds = out->train_seconds + out->validation_seconds + out->int8_seconds;
}

void et_estimate_training(const et_model *m, const et_machine_rates *r, size_t n_train,
                          size_t n_val, int epochs, bool int8, et_train_estimate *out)
{
    et_estimate_input in = {
        .n_train = n_train, .n_val = n_val, .epochs = epochs, .batch = 32, .int8 = int8};
    et_estimate(m, r, &in, out);
}

void et_format_duration(double seconds, char *buf, size_t n)
{
    if (!(seconds >= 0))
        seconds = 0;
    /* Under 10 s one decimal, so a 0.4 s estimate does not read "0s". */
    if (seconds < 9.95) {
        snprintf(buf, n, "%.1fs", seconds);
        return;
    }
    long s = lround(seconds);
    if (s < 60)
        snprintf(buf, n, "%lds", s);
    else if (s < 3600)
        snprintf(buf, n, "%ldm %lds", s / 60, s % 60);
    else
        snprintf(buf, n, "%ldh %02ldm", s / 3600, (s % 3600) / 60);
}

void et_format_duration_ms(double seconds, char *buf, size_t n)
{
    long s = lround(seconds >= 0 ? seconds : 0);
    if (s < 3600)
        snprintf(buf, n, "%ldm %lds", s / 60, s % 60);
    else
        snprintf(buf, n, "%ldh %ldm %lds", s / 3600, (s % 3600) / 60, s % 60);
}

et_status et_parse_duration(const char *text, double *seconds, et_error *err)
{
    const char *p = text;
    double total = 0;
    bool any = false;
    while (p && *p) {
        char *end = NULL;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v >= 0) || !isfinite(v))
            break;
        double unit = 1;
        if (*end == 'h')
            unit = 3600, end++;
        else if (*end == 'm')
            unit = 60, end++;
        else if (*end == 's')
            end++;
        else if (*end)
            break;
        total += v * unit;
        any = true;
        p = end;
    }
    if (!any || (p && *p) || !(total > 0))
        return et_error_set(err, ET_EINVAL,
                            "'%s' is not a duration (examples: 90s, 20m, 1h30m, 2.5h)",
                            text ? text : "");
    *seconds = total;
    return ET_OK;
}
