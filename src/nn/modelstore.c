/* Model versions: models/<id>/{model.json, weights.npy, model_float32.etrt,
 * model_int8.etrt} plus a models row.
 * The folder is written under a temporary name and renamed into place
 * before the row is committed, so a row always has its files. */
#include "edgetrain/train.h"

#include "core/fsutil.h"
#include "dsp/npy.h"
#include "store/store_internal.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* dir/name as a 1-D .npy of n elements of elt bytes, numpy type descr. */
static et_status write_npy(const char *dir, const char *name, const char *descr, const void *data,
                           size_t n, size_t elt, et_error *err)
{
    char header[128], path[PATH_MAX + 32];
    uint64_t shape[1] = {n};
    size_t h = et_npy_header(header, sizeof header, descr, shape, 1);
    uint8_t *buf = malloc(h + n * elt + 1);
    if (!buf)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    memcpy(buf, header, h);
    memcpy(buf + h, data, n * elt);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    et_status rc = et_write_file_atomic(path, buf, h + n * elt, err);
    free(buf);
    return rc;
}

static json_t *labels_json(const char *const *labels, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(labels[i]));
    return a;
}

et_status et_model_store_save(et_project *p, const et_model_save_args *a, int64_t *id,
                              et_error *err)
{
    et_model_totals t = et_model_totals_all(a->model);
    et_shape in = et_model_input_shape(a->model);
    char *imp_text = et_impulse_to_json(a->imp, false);
    json_t *labels = labels_json(a->labels, a->n_labels);
    char *labels_text = json_dumps(labels, JSON_COMPACT);
    if (!imp_text || !labels_text) {
        free(imp_text);
        free(labels_text);
        json_decref(labels);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    /* The row first (inside a transaction) to learn the id, then the files,
     * then the commit: a crash before the commit leaves at most an orphan folder. */
    et_status rc = et_db_exec(p, "BEGIN IMMEDIATE", err);
    sqlite3_stmt *st = NULL;
    if (rc == ET_OK &&
        sqlite3_prepare_v2(p->db,
                           "INSERT INTO models(impulse_version, impulse, precision, labels, status,"
                           " epochs_run, best_epoch, seconds, validation, history, channels,"
                           " validation_int8, quantization)"
                           " VALUES(?, ?, 'float32', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        rc = et_db_error(p, err, "recording the model");
    if (rc == ET_OK) {
        sqlite3_bind_int64(st, 1, a->impulse_version);
        sqlite3_bind_text(st, 2, imp_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, labels_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, a->interrupted ? "interrupted" : "ready", -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, a->epochs_run);
        sqlite3_bind_int(st, 6, a->best_epoch);
        sqlite3_bind_double(st, 7, a->seconds);
        sqlite3_bind_text(st, 8, a->validation_json, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, a->history_json, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 10, in.c);
        sqlite3_bind_text(st, 11, a->plan_int8 ? a->validation_int8_json : NULL, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 12, a->quantization_json, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = et_db_error(p, err, "recording the model");
        else
            *id = sqlite3_last_insert_rowid(p->db);
    }
    sqlite3_finalize(st);
    char dir[3300], tmp[3400];
    snprintf(dir, sizeof dir, "%s/models/%lld", p->root, (long long)*id);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    if (rc == ET_OK)
        rc = et_mkdir_p(tmp, err);
    if (rc == ET_OK)
        rc = write_npy(tmp, "weights.npy", "<f4", a->params, (size_t)t.params, sizeof(float), err);
    if (rc == ET_OK && a->calibration_ids)
        rc = write_npy(tmp, "calibration_ids.npy", "<i8", a->calibration_ids, a->n_calibration,
                       sizeof(int64_t), err);
    const et_plan *plans[2] = {a->plan_float32, a->plan_int8};
    static const char *const plan_names[2] = {"model_float32.etrt", "model_int8.etrt"};
    for (int k = 0; k < 2 && rc == ET_OK; k++) {
        if (!plans[k])
            continue;
        char path[3500];
        snprintf(path, sizeof path, "%s/%s", tmp, plan_names[k]);
        rc = et_write_file_atomic(path, plans[k]->bytes, plans[k]->size, err);
    }
    if (rc == ET_OK) {
        json_t *meta = json_pack(
            "{s:I,s:s,s:I,s:o,s:o,s:[i,i,i],s:i,s:I,s:I,s:I}", "id", (json_int_t)*id, "precision",
            "float32", "impulse_version", (json_int_t)a->impulse_version, "impulse",
            json_loads(imp_text, 0, NULL), "labels", json_incref(labels), "input", in.h, in.w, in.c,
            "classes", et_model_classes(a->model), "params", (json_int_t)t.params,
            "trainable_params", (json_int_t)t.trainable_params, "macs", (json_int_t)t.macs);
        char *text = meta ? json_dumps(meta, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(meta);
        char path[3500];
        snprintf(path, sizeof path, "%s/model.json", tmp);
        rc = text ? et_write_file_atomic(path, text, strlen(text), err)
                  : et_error_set(err, ET_ENOMEM, "out of memory");
        free(text);
    }
    if (rc == ET_OK && rename(tmp, dir) < 0)
        rc = et_error_set(err, ET_EIO, "%s: %s", dir, strerror(errno));
    if (rc == ET_OK) {
        char models[3300];
        snprintf(models, sizeof models, "%s/models", p->root);
        rc = et_fsync_dir(models, err);
    }
    if (rc == ET_OK)
        rc = et_db_exec(p, "COMMIT", err);
    if (rc < 0)
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
    free(imp_text);
    free(labels_text);
    json_decref(labels);
    return rc;
}

/* The accuracy in a metrics JSON text column; false when the column is NULL. */
static bool column_accuracy(sqlite3_stmt *st, int col, double *accuracy)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    *accuracy = json_real_value(json_object_get(v, "accuracy"));
    json_decref(v);
    return text != NULL;
}

static void row_info(sqlite3_stmt *st, et_model_info *m)
{
    memset(m, 0, sizeof *m);
    m->id = sqlite3_column_int64(st, 0);
    m->impulse_version = sqlite3_column_int64(st, 1);
    snprintf(m->precision, sizeof m->precision, "%s", sqlite3_column_text(st, 2));
    snprintf(m->status, sizeof m->status, "%s", sqlite3_column_text(st, 3));
    m->epochs_run = sqlite3_column_int(st, 4);
    m->best_epoch = sqlite3_column_int(st, 5);
    m->seconds = sqlite3_column_double(st, 6);
    json_t *v = sqlite3_column_text(st, 7)
                    ? json_loads((const char *)sqlite3_column_text(st, 7), 0, NULL)
                    : NULL;
    m->val_accuracy = json_real_value(json_object_get(v, "accuracy"));
    m->val_loss = json_real_value(json_object_get(v, "loss"));
    json_decref(v);
    json_t *t = sqlite3_column_text(st, 8)
                    ? json_loads((const char *)sqlite3_column_text(st, 8), 0, NULL)
                    : NULL;
    m->tested = t != NULL;
    m->test_accuracy = json_real_value(json_object_get(t, "accuracy"));
    json_decref(t);
    snprintf(m->created_at, sizeof m->created_at, "%s", sqlite3_column_text(st, 9));
    m->has_int8 = column_accuracy(st, 10, &m->val_accuracy_int8);
    m->tested_int8 = column_accuracy(st, 11, &m->test_accuracy_int8);
}

#define INFO_COLUMNS                                                                               \
    "id, impulse_version, precision, status, epochs_run, best_epoch, seconds, validation, "        \
    "test, created_at, validation_int8, test_int8"

et_status et_model_store_list(et_project *p, et_model_info_fn fn, void *ctx, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT " INFO_COLUMNS " FROM models ORDER BY id DESC", -1, &st,
                           NULL) != SQLITE_OK)
        return et_db_error(p, err, "listing models");
    et_model_info m;
    while (sqlite3_step(st) == SQLITE_ROW) {
        row_info(st, &m);
        if (fn(ctx, &m))
            break;
    }
    sqlite3_finalize(st);
    return ET_OK;
}

et_status et_model_store_set_test(et_project *p, int64_t id, const char *test_json,
                                  const char *test_int8_json, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db,
                           "UPDATE models SET test = coalesce(?, test),"
                           " test_int8 = coalesce(?, test_int8) WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "recording test results");
    sqlite3_bind_text(st, 1, test_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, test_int8_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? ET_OK : et_db_error(p, err, "recording test results");
}

void et_loaded_model_free(et_loaded_model *m)
{
    if (!m)
        return;
    et_model_destroy(m->model);
    free(m->params);
    for (size_t i = 0; i < m->n_labels; i++)
        free(m->labels[i]);
    free(m->labels);
    et_plan_free(&m->int8);
    memset(m, 0, sizeof *m);
}

et_status et_model_store_load(et_project *p, int64_t id, et_loaded_model *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    const char *sql = id ? "SELECT " INFO_COLUMNS ", impulse, labels, channels FROM models"
                           " WHERE id = ?"
                         : "SELECT " INFO_COLUMNS ", impulse, labels, channels FROM models"
                           " WHERE precision = 'float32' AND status != 'stale'"
                           " ORDER BY id DESC LIMIT 1";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading the model");
    if (id)
        sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (id)
            return et_error_set(err, ET_ENOTFOUND, "no model %lld (see 'edgetrain models')",
                                (long long)id);
        return et_error_set(err, ET_ENOTFOUND,
                            "no trained model for the current impulse (run 'edgetrain train')");
    }
    row_info(st, &out->info);
    const char *imp_text = (const char *)sqlite3_column_text(st, 12);
    et_status rc =
        et_impulse_from_json(imp_text, strlen(imp_text), "stored model", &out->impulse, err);
    json_t *labels = json_loads((const char *)sqlite3_column_text(st, 13), 0, NULL);
    int channels = sqlite3_column_int(st, 14);
    sqlite3_finalize(st);
    out->n_labels = json_array_size(labels);
    out->labels = calloc(out->n_labels + 1, sizeof *out->labels);
    for (size_t i = 0; out->labels && i < out->n_labels; i++)
        out->labels[i] = strdup(json_string_value(json_array_get(labels, i)));
    json_decref(labels);
    if (rc == ET_OK && (!out->labels || out->n_labels == 0))
        rc = et_error_set(err, ET_ECORRUPT, "model %lld: no labels recorded",
                          (long long)out->info.id);
    if (rc == ET_OK)
        rc = et_model_create_from_impulse(&out->impulse, (int)out->n_labels, channels, &out->model,
                                          err);
    char path[3400];
    snprintf(path, sizeof path, "%s/models/%lld/weights.npy", p->root, (long long)out->info.id);
    unsigned char *data = NULL;
    size_t n = 0;
    if (rc == ET_OK)
        rc = et_read_file(path, (size_t)1 << 31, &data, &n, err);
    uint64_t shape[8];
    int ndim = 0;
    size_t off = 0;
    if (rc == ET_OK)
        rc = et_npy_parse(data, n, "<f4", shape, &ndim, &off, path, err);
    size_t want = rc == ET_OK ? (size_t)et_model_totals_all(out->model).params : 0;
    if (rc == ET_OK && (ndim != 1 || shape[0] != want || off + want * 4 > n))
        rc = et_error_set(err, ET_ECORRUPT, "%s: holds %llu weights, the model needs %zu", path,
                          ndim == 1 ? (unsigned long long)shape[0] : 0ull, want);
    if (rc == ET_OK) {
        out->params = malloc(want * sizeof(float) + 1);
        if (!out->params)
            rc = et_error_set(err, ET_ENOMEM, "out of memory");
        else
            memcpy(out->params, data + off, want * sizeof(float));
        out->n_params = want;
    }
    free(data);
    if (rc == ET_OK && out->info.has_int8) {
        snprintf(path, sizeof path, "%s/models/%lld/model_int8.etrt", p->root,
                 (long long)out->info.id);
        rc = et_plan_load(path, &out->int8, err);
    }
    if (rc < 0)
        et_loaded_model_free(out);
    return rc;
}
