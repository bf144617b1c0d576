/* The data report behind `edgetrain data`, and loading a sample's pixels. */
#include "edgetrain/data.h"

#include "core/fsutil.h"
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

et_status et_sample_load(et_project *p, const et_sample *s, et_image *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    char path[4200];
    et_status prc = et_project_blob_path(p, s->blob, path, sizeof path, err);
    if (prc < 0)
        return prc;
    if (s->member < 0) {
        unsigned char *bytes = NULL;
        size_t n = 0;
        et_status rc = et_read_file(path, ET_IMAGE_MAX_FILE_BYTES, &bytes, &n, err);
        if (rc < 0)
            return rc;
        const char *format = NULL, *kind = NULL;
        rc = et_image_decode(bytes, n, path, out, &format, &kind, err);
        free(bytes);
        return rc;
    }
    et_idx idx;
    et_status rc = et_idx_read(path, &idx, err);
    if (rc < 0)
        return rc;
    size_t sz = (size_t)s->width * (size_t)s->height * (size_t)s->channels;
    if ((uint64_t)idx.dims[0] <= (uint64_t)s->member || sz * ((size_t)s->member + 1) > idx.bytes) {
        et_idx_free(&idx);
        return et_error_set(err, ET_ECORRUPT, "%s: holds no image %lld of %dx%dx%d", path,
                            (long long)s->member, s->width, s->height, s->channels);
    }
    out->pixels = malloc(sz);
    if (!out->pixels) {
        et_idx_free(&idx);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    memcpy(out->pixels, idx.data + sz * (size_t)s->member, sz);
    out->width = s->width;
    out->height = s->height;
    out->channels = s->channels;
    et_idx_free(&idx);
    return ET_OK;
}

/* A growing array of problems in the report's arena. */
typedef struct problem_list {
    et_problem *items;
    size_t n, cap;
} problem_list;

static et_status add(et_data_report *r, problem_list *l, const char *file, const char *label,
                     const char *kind, const char *message)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        et_problem *grown = et_arena_alloc(&r->arena, cap * sizeof *grown);
        if (!grown)
            return ET_ENOMEM;
        if (l->n)
            memcpy(grown, l->items, l->n * sizeof *grown);
        l->items = grown;
        l->cap = cap;
    }
    et_problem *pr = &l->items[l->n++];
    pr->file = file ? et_arena_strdup(&r->arena, file) : NULL;
    pr->label = label ? et_arena_strdup(&r->arena, label) : NULL;
    pr->kind = et_arena_strdup(&r->arena, kind);
    pr->message = et_arena_strdup(&r->arena, message);
    return pr->kind && pr->message ? ET_OK : ET_ENOMEM;
}

static et_status counts(et_project *p, et_data_report *r, et_error *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT label, SUM(category = 'training'), SUM(category = 'testing')"
                      " FROM samples GROUP BY label ORDER BY label";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "counting samples");
    size_t cap = 16;
    r->labels = et_arena_alloc(&r->arena, cap * sizeof *r->labels);
    while (r->labels && sqlite3_step(st) == SQLITE_ROW) {
        if (r->n_labels == cap) {
            et_label_count *grown = et_arena_alloc(&r->arena, 2 * cap * sizeof *grown);
            if (grown)
                memcpy(grown, r->labels, cap * sizeof *grown);
            r->labels = grown;
            cap *= 2;
            if (!grown)
                break;
        }
        et_label_count *c = &r->labels[r->n_labels++];
        c->label = et_arena_strdup(&r->arena, (const char *)sqlite3_column_text(st, 0));
        c->training = sqlite3_column_int64(st, 1);
        c->testing = sqlite3_column_int64(st, 2);
        r->training += c->training;
        r->testing += c->testing;
    }
    sqlite3_finalize(st);
    if (!r->labels)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    r->samples = r->training + r->testing;

    sql = "SELECT width, height, COUNT(*) FROM samples GROUP BY width, height"
          " ORDER BY COUNT(*) DESC, width, height";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "counting image sizes");
    cap = 16;
    r->sizes = et_arena_alloc(&r->arena, cap * sizeof *r->sizes);
    while (r->sizes && sqlite3_step(st) == SQLITE_ROW) {
        if (r->n_sizes == cap) {
            et_size_count *grown = et_arena_alloc(&r->arena, 2 * cap * sizeof *grown);
            if (grown)
                memcpy(grown, r->sizes, cap * sizeof *grown);
            r->sizes = grown;
            cap *= 2;
            if (!grown)
                break;
        }
        r->sizes[r->n_sizes++] = (et_size_count){sqlite3_column_int(st, 0),
                                                 sqlite3_column_int(st, 1),
                                                 sqlite3_column_int64(st, 2)};
    }
    sqlite3_finalize(st);
    if (!r->sizes)
        return et_error_set(err, ET_ENOMEM, "out of memory");

    if (sqlite3_prepare_v2(p->db, "SELECT channels, COUNT(*) FROM samples GROUP BY channels", -1,
                           &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "counting channels");
    while (sqlite3_step(st) == SQLITE_ROW) {
        int c = sqlite3_column_int(st, 0);
        if (c >= 1 && c <= 4)
            r->channels[c] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return ET_OK;
}

static et_status stored_problems(et_project *p, et_data_report *r, problem_list *l, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT file, kind, message FROM problems ORDER BY rowid", -1,
                           &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading problems");
    et_status rc = ET_OK;
    while (rc == ET_OK && sqlite3_step(st) == SQLITE_ROW)
        rc = add(r, l, (const char *)sqlite3_column_text(st, 0), NULL,
                 (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2));
    sqlite3_finalize(st);
    return rc == ET_OK ? ET_OK : et_error_set(err, rc, "out of memory");
}

static et_status label_checks(et_data_report *r, problem_list *l)
{
    char msg[256];
    et_status rc = ET_OK;
    int64_t largest = 0, smallest = INT64_MAX;
    const char *largest_label = NULL, *smallest_label = NULL;
    if (r->n_labels == 1)
        rc = add(r, l, NULL, r->labels[0].label, "one-label",
                 "only one label: a classifier needs at least two");
    for (size_t i = 0; i < r->n_labels && rc == ET_OK; i++) {
        const et_label_count *c = &r->labels[i];
        int64_t total = c->training + c->testing;
        if (total < ET_MIN_SAMPLES_PER_LABEL) {
            snprintf(msg, sizeof msg, "only %lld sample%s (at least %d are needed to learn it)",
                     (long long)total, total == 1 ? "" : "s", ET_MIN_SAMPLES_PER_LABEL);
            rc = add(r, l, NULL, c->label, "few-samples", msg);
        }
        if (rc == ET_OK && c->testing == 0)
            rc = add(r, l, NULL, c->label, "no-testing",
                     "no testing samples: its accuracy cannot be measured (edgetrain move ID testing)");
        if (total > largest) {
            largest = total;
            largest_label = c->label;
        }
        if (total < smallest) {
            smallest = total;
            smallest_label = c->label;
        }
    }
    if (r->n_labels >= 2 && smallest > 0) {
        r->imbalance = (double)largest / (double)smallest;
        if (rc == ET_OK && r->imbalance > ET_MAX_IMBALANCE) {
            snprintf(msg, sizeof msg,
                     "class imbalance %.1f: '%s' has %lld samples, '%s' only %lld",
                     r->imbalance, largest_label, (long long)largest, smallest_label,
                     (long long)smallest);
            rc = add(r, l, NULL, NULL, "imbalance", msg);
        }
    }
    return rc;
}

/* Re-reads every stored file and checks it against its recorded hash. */
static et_status verify_files(et_project *p, et_data_report *r, problem_list *l, et_error *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT b.hash, b.original FROM blobs b"
                      " WHERE EXISTS (SELECT 1 FROM samples s WHERE s.blob = b.hash)"
                      " ORDER BY b.rowid";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "listing stored files");
    et_progress bar;
    et_progress_begin(&bar, "validating", 0);
    et_status rc = ET_OK;
    uint64_t done = 0;
    while (rc == ET_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *hash = (const char *)sqlite3_column_text(st, 0);
        const char *original = (const char *)sqlite3_column_text(st, 1);
        char path[4200], msg[4400];
        if (et_project_blob_path(p, hash, path, sizeof path, err) < 0) {
            rc = err->code;
            break;
        }
        unsigned char *data = NULL;
        size_t n = 0;
        et_error e = {0};
        if (et_read_file(path, ET_IDX_MAX_BYTES, &data, &n, &e) < 0) {
            snprintf(msg, sizeof msg, "stored copy of %s is missing or unreadable: %s", original,
                     e.msg);
            rc = add(r, l, path, NULL, "missing-file", msg);
        } else {
            char check[65];
            et_sha256_hex(data, n, check);
            if (strcmp(check, hash)) {
                snprintf(msg, sizeof msg, "stored copy of %s was altered (hash %.12s, expected %.12s)",
                         original, check, hash);
                rc = add(r, l, path, NULL, "corrupt-file", msg);
            }
        }
        free(data);
        et_progress_update(&bar, ++done);
        if (et_interrupted())
            rc = ET_EINTR;
    }
    et_progress_end(&bar);
    sqlite3_finalize(st);
    if (rc == ET_EINTR)
        return et_error_set(err, ET_EINTR, "validation interrupted");
    return rc == ET_OK ? ET_OK : et_error_set(err, rc, "out of memory");
}

et_status et_data_report_create(et_project *p, bool validate, et_data_report **out,
                                et_error *err)
{
    *out = NULL;
    et_data_report *r = calloc(1, sizeof *r);
    if (!r)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    et_arena_init(&r->arena, 0);
    problem_list l = {0};
    et_status rc = counts(p, r, err);
    if (rc == ET_OK)
        rc = stored_problems(p, r, &l, err);
    if (rc == ET_OK && label_checks(r, &l) < 0)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK && validate) {
        rc = verify_files(p, r, &l, err);
        r->validated = rc == ET_OK;
    }
    if (rc < 0) {
        et_data_report_destroy(r);
        return rc;
    }
    r->problems = l.items;
    r->n_problems = l.n;
    *out = r;
    return ET_OK;
}

void et_data_report_destroy(et_data_report *r)
{
    if (!r)
        return;
    et_arena_free(&r->arena);
    free(r);
}

et_status et_data_forget_problems(et_project *p, et_error *err)
{
    return et_db_exec(p, "DELETE FROM problems", err);
}
