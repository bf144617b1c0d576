/* The feature explorer: picks the samples to map, reduces their features
 * (PCA, then t-SNE) and returns labelled points. Used by `edgetrain explore`. */
#include "edgetrain/explore.h"

#include "edgetrain/dsp.h"

#include "core/rng.h"
#include "store/store_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

et_explore_options et_explore_defaults(void)
{
    return (et_explore_options){.method = ET_EXPLORE_TSNE,
                                .category = ET_CATEGORY_NONE,
                                .limit = 5000,
                                .seed = 1,
                                .perplexity = 30.0,
                                .iterations = 1000};
}

void et_explore_result_free(et_explore_result *r)
{
    if (!r)
        return;
    free(r->points);
    r->points = NULL;
    et_arena_free(&r->arena);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Rows of f in the category; when more than limit, a seeded random subset
 * of each label in proportion to its size (at least one per label). */
static size_t *select_rows(const et_features *f, const et_explore_options *opt, size_t *n_out)
{
    size_t rows = et_features_rows(f), n = 0;
    size_t *all = malloc((rows + 1) * sizeof *all);
    if (!all)
        return NULL;
    for (size_t i = 0; i < rows; i++)
        if (opt->category == ET_CATEGORY_NONE || et_features_category(f, i) == opt->category)
            all[n++] = i;
    if (opt->limit == 0 || n <= opt->limit) {
        *n_out = n;
        return all;
    }
    size_t labels = et_features_n_labels(f);
    size_t *keep = malloc((opt->limit + labels + 1) * sizeof *keep);
    size_t *group = malloc((n + 1) * sizeof *group);
    if (!keep || !group) {
        free(all);
        free(keep);
        free(group);
        return NULL;
    }
    /* Each label's share of limit by largest remainder, so the shares add up
     * to exactly limit. */
    size_t *count = calloc(labels + 1, sizeof *count), *quota = calloc(labels + 1, sizeof *quota);
    double *rest = calloc(labels + 1, sizeof *rest);
    if (!count || !quota || !rest) {
        free(count);
        free(quota);
        free(rest);
        free(all);
        free(keep);
        free(group);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        count[et_features_label(f, all[i])]++;
    size_t given = 0;
    for (size_t l = 0; l < labels; l++) {
        double exact = (double)opt->limit * (double)count[l] / (double)n;
        quota[l] = (size_t)exact;
        rest[l] = exact - (double)quota[l];
        given += quota[l];
    }
    while (given < opt->limit) {
        size_t best = 0;
        for (size_t l = 1; l < labels; l++)
            if (rest[l] > rest[best])
                best = l;
        quota[best]++;
        rest[best] = -1;
        given++;
    }
    free(count);
    free(rest);
    size_t kept = 0;
    uint64_t state = (uint64_t)opt->seed;
    for (size_t l = 0; l < labels; l++) {
        size_t g = 0;
        for (size_t i = 0; i < n; i++)
            if ((size_t)et_features_label(f, all[i]) == l)
                group[g++] = all[i];
        if (!g)
            continue;
        size_t want = quota[l];
        for (size_t i = 0; i < want; i++) { /* partial Fisher-Yates */
            size_t j = i + (size_t)(et_splitmix64(&state) % (g - i));
            size_t t = group[i];
            group[i] = group[j];
            group[j] = t;
            keep[kept++] = group[i];
        }
    }
    qsort(keep, kept, sizeof *keep, cmp_size);
    free(quota);
    free(all);
    free(group);
    *n_out = kept;
    return keep;
}

et_status et_explore_run(et_project *p, const et_features *f, const et_explore_options *opt,
                         et_explore_result *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    et_arena_init(&out->arena, 0);
    et_explore_options defaults = et_explore_defaults();
    if (!opt)
        opt = &defaults;
    size_t n = 0;
    size_t *rows = select_rows(f, opt, &n);
    if (!rows)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    if (n < 5) {
        free(rows);
        return et_error_set(err, ET_EINVAL,
                            "%zu sample%s to map; the explorer needs at least 5 (check --category)",
                            n, n == 1 ? "" : "s");
    }
    int h, w, c;
    et_features_shape(f, &h, &w, &c);
    size_t d = (size_t)h * w * c;
    float *x = NULL;
    et_status rc = ET_OK;
    if (opt->embed)
        rc = opt->embed(opt->embed_ctx, f, rows, n, &x, &d, err);
    else if ((x = malloc(n * d * sizeof *x)))
        for (size_t i = 0; i < n; i++)
            memcpy(x + i * d, et_features_row(f, rows[i]), d * sizeof *x);
    if (rc < 0) {
        free(rows);
        return rc;
    }
    size_t k = d < ET_PCA_MAX_COMPONENTS ? d : ET_PCA_MAX_COMPONENTS;
    if (opt->method == ET_EXPLORE_PCA)
        k = d < 2 ? d : 2;
    float *reduced = malloc(n * (k < 2 ? 2 : k) * sizeof *reduced);
    float *xy = malloc(n * 2 * sizeof *xy);
    out->points = calloc(n, sizeof *out->points);
    if (!x || !reduced || !xy || !out->points)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    et_pca_options po = {.components = k, .seed = (uint64_t)opt->seed};
    if (rc == ET_OK)
        rc = et_pca(x, n, d, &po, reduced, NULL, NULL, err);
    if (rc == ET_OK && opt->method == ET_EXPLORE_PCA) {
        for (size_t i = 0; i < n; i++) {
            xy[2 * i] = reduced[i * k];
            xy[2 * i + 1] = k > 1 ? reduced[i * k + 1] : 0.0f;
        }
    } else if (rc == ET_OK) {
        et_tsne_options to = et_tsne_defaults();
        /* t-SNE needs 3 * perplexity < n - 1: small sets get a smaller one. */
        to.perplexity = fmin(opt->perplexity, ((double)n - 1.0) / 3.0 - 1e-3);
        to.iterations = opt->iterations;
        to.seed = (uint64_t)opt->seed;
        out->perplexity = to.perplexity;
        rc = et_tsne(reduced, n, k, &to, xy, err);
    }
    sqlite3_stmt *st = NULL;
    if (rc == ET_OK &&
        sqlite3_prepare_v2(p->db, "SELECT source FROM samples WHERE id = ?", -1, &st, NULL) !=
            SQLITE_OK)
        rc = et_db_error(p, err, "reading sample sources");
    for (size_t i = 0; rc == ET_OK && i < n; i++) {
        et_map_point *pt = &out->points[i];
        pt->x = xy[2 * i];
        pt->y = xy[2 * i + 1];
        pt->label = et_features_label(f, rows[i]);
        pt->id = et_features_id(f, rows[i]);
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, pt->id);
        pt->source = sqlite3_step(st) == SQLITE_ROW
                         ? et_arena_strdup(&out->arena, (const char *)sqlite3_column_text(st, 0))
                         : NULL;
    }
    sqlite3_finalize(st);
    free(rows);
    free(x);
    free(reduced);
    free(xy);
    if (rc < 0) {
        et_explore_result_free(out);
        return rc;
    }
    out->n = n;
    out->dimensions = d;
    return ET_OK;
}
