/*
 * edgetrain store: a project folder and its SQLite database.
 *
 *     shoes/edgetrain.db   SQLite (WAL): samples, labels, categories, imports, problems
 *     shoes/samples/       imported files, content-addressed (SHA-256 of the bytes), never modified
 *     shoes/cache/         derived data (features, ...)
 *     shoes/models/        trained models
 *
 *     et_error err = {0};
 *     et_project *p = NULL;
 *     if (et_project_open(".", &p, &err) < 0) { ...err.msg... }
 *     ...
 *     et_project_close(p);
 *
 * The schema carries a version (PRAGMA user_version); opening a project made
 * by an older edgetrain migrates it in one transaction, opening one made by a
 * newer edgetrain fails with ET_EVERSION.
 */
#ifndef EDGETRAIN_STORE_H
#define EDGETRAIN_STORE_H

#include "edgetrain/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The schema version this build writes. */
#define ET_SCHEMA_VERSION 8
/* Longest label in bytes (UTF-8), and longest recorded source path. */
#define ET_LABEL_MAX 128
#define ET_SOURCE_MAX 1024

typedef struct et_project et_project;

/* Project settings: key -> value text, validated by their users (see
 * et_project_settings_known). Get: *value is a malloc'ed copy, or NULL when
 * the key is not set. Set: value NULL removes the key. ET_EDB. */
et_status et_project_setting_get(et_project *p, const char *key, char **value, et_error *err);
et_status et_project_setting_set(et_project *p, const char *key, const char *value,
                                 et_error *err);

/* Creates a new project in dir (created if missing; it may already exist but
 * must not hold a project). ET_EEXIST when it does. */
et_status et_project_init(const char *dir, et_error *err);

/* Opens the project in start_dir or the nearest parent folder that holds an
 * edgetrain.db, like git. ET_ENOTFOUND when there is none. *out is owned by
 * the caller and released with et_project_close. */
et_status et_project_open(const char *start_dir, et_project **out, et_error *err);

/* Closes the database. NULL is a no-op. */
void et_project_close(et_project *p);

/* The project's root folder (absolute path), owned by p. */
const char *et_project_root(const et_project *p);

/* Path of a stored file: <root>/samples/<first two hex digits>/<hash> (no extension). */
et_status et_project_blob_path(const et_project *p, const char *hash, char *out, size_t n,
                               et_error *err);

/* ------------------------------------------------------------------------
 * Samples.
 */
typedef enum et_category { ET_CATEGORY_NONE = -1, ET_TRAINING = 0, ET_TESTING = 1 } et_category;

/* "training" / "testing" (or "" for ET_CATEGORY_NONE). */
const char *et_category_name(et_category c);
/* Accepts training|train|testing|test (any case). ET_EINVAL otherwise. */
et_status et_category_parse(const char *s, et_category *out);

/* Checks a label: 1..ET_LABEL_MAX bytes of valid UTF-8, no control characters,
 * no leading or trailing white space. On failure err names the label. */
et_status et_label_check(const char *label, et_error *err);

typedef struct et_sample {
    int64_t id;
    char pixel_hash[65];      /* SHA-256 of width, height, channels and decoded pixels */
    char blob[65];            /* SHA-256 of the stored file under samples/ */
    int64_t member;           /* index of the image inside an IDX blob; -1 for image files */
    char source[ET_SOURCE_MAX]; /* path as imported; "path#N" for the N-th image of an IDX file */
    char label[ET_LABEL_MAX + 1];
    et_category category;
    int width, height, channels;
    char format[8];           /* png, jpeg, bmp, gif, tga, pnm, idx */
} et_sample;

typedef struct et_sample_filter {
    const char *label;     /* NULL = every label */
    et_category category;  /* ET_CATEGORY_NONE = both */
} et_sample_filter;

/* Called once per sample in id order; return nonzero to stop early. */
typedef int (*et_sample_fn)(void *ctx, const et_sample *s);

/* Visits the samples that match filter (NULL = all). */
et_status et_samples_each(et_project *p, const et_sample_filter *filter, et_sample_fn fn,
                          void *ctx, et_error *err);
/* One sample by id; ET_ENOTFOUND when there is none. */
et_status et_sample_get(et_project *p, int64_t id, et_sample *out, et_error *err);
/* Changes a sample's label (checked with et_label_check). */
et_status et_sample_relabel(et_project *p, int64_t id, const char *label, et_error *err);
/* Moves a sample to training or testing. */
et_status et_sample_move(et_project *p, int64_t id, et_category category, et_error *err);
/* Removes a sample from the project. Its stored file stays in samples/
 * (the store is append-only; other samples may share it). */
et_status et_sample_remove(et_project *p, int64_t id, et_error *err);

#ifdef __cplusplus
}
#endif
#endif
