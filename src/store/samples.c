/* Sample records: listing, relabelling, moving and removing. */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *et_category_name(et_category c)
{
    switch (c) {
    case ET_TRAINING: return "training";
    case ET_TESTING: return "testing";
    default: return "";
    }
}

et_status et_category_parse(const char *s, et_category *out)
{
    if (s && (!strcasecmp(s, "training") || !strcasecmp(s, "train"))) {
        *out = ET_TRAINING;
        return ET_OK;
    }
    if (s && (!strcasecmp(s, "testing") || !strcasecmp(s, "test"))) {
        *out = ET_TESTING;
        return ET_OK;
    }
    return ET_EINVAL;
}

/* Length of the UTF-8 sequence starting at s, 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        min = 0x80;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        min = 0x800;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

et_status et_label_check(const char *label, et_error *err)
{
    size_t n = label ? strlen(label) : 0;
    if (n == 0)
        return et_error_set(err, ET_EINVAL, "empty label");
    if (n > ET_LABEL_MAX)
        return et_error_set(err, ET_EINVAL, "label '%.40s...' is %zu bytes; at most %d allowed",
                            label, n, ET_LABEL_MAX);
    const unsigned char *s = (const unsigned char *)label;
    if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
        return et_error_set(err, ET_EINVAL, "label '%s' starts or ends with white space", label);
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 || s[i] == 0x7F)
            return et_error_set(err, ET_EINVAL, "label holds a control character (byte %zu)",
                                i + 1);
        size_t k = utf8_len(s + i);
        if (k == 0)
            return et_error_set(err, ET_EINVAL, "label is not valid UTF-8 (byte %zu)", i + 1);
        i += k;
    }
    return ET_OK;
}

#define SAMPLE_COLUMNS                                                                   \
    "id, pixel_hash, blob, member, source, label, category, width, height, channels, " \
    "format"

static void copy_text(char *dst, size_t n, const unsigned char *src)
{
    snprintf(dst, n, "%s", src ? (const char *)src : "");
}

static void row_to_sample(sqlite3_stmt *st, et_sample *s)
{
    s->id = sqlite3_column_int64(st, 0);
    copy_text(s->pixel_hash, sizeof s->pixel_hash, sqlite3_column_text(st, 1));
    copy_text(s->blob, sizeof s->blob, sqlite3_column_text(st, 2));
    s->member = sqlite3_column_int64(st, 3);
    copy_text(s->source, sizeof s->source, sqlite3_column_text(st, 4));
    copy_text(s->label, sizeof s->label, sqlite3_column_text(st, 5));
    const char *cat = (const char *)sqlite3_column_text(st, 6);
    s->category = cat && !strcmp(cat, "testing") ? ET_TESTING : ET_TRAINING;
    s->width = sqlite3_column_int(st, 7);
    s->height = sqlite3_column_int(st, 8);
    s->channels = sqlite3_column_int(st, 9);
    copy_text(s->format, sizeof s->format, sqlite3_column_text(st, 10));
}

et_status et_samples_each(et_project *p, const et_sample_filter *filter, et_sample_fn fn,
                          void *ctx, et_error *err)
{
    const char *sql = "SELECT " SAMPLE_COLUMNS " FROM samples"
                      " WHERE (?1 IS NULL OR label = ?1) AND (?2 IS NULL OR category = ?2)"
                      " ORDER BY id";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "listing samples");
    if (filter && filter->label)
        sqlite3_bind_text(st, 1, filter->label, -1, SQLITE_TRANSIENT);
    if (filter && filter->category != ET_CATEGORY_NONE)
        sqlite3_bind_text(st, 2, et_category_name(filter->category), -1, SQLITE_STATIC);
    et_sample s;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_to_sample(st, &s);
        if (fn(ctx, &s))
            break;
    }
    et_status out = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? ET_OK
                                                              : et_db_error(p, err, "listing samples");
    sqlite3_finalize(st);
    return out;
}

et_status et_sample_get(et_project *p, int64_t id, et_sample *out, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT " SAMPLE_COLUMNS " FROM samples WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading a sample");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    et_status out_rc = ET_OK;
    if (rc == SQLITE_ROW)
        row_to_sample(st, out);
    else if (rc == SQLITE_DONE)
        out_rc = et_error_set(err, ET_ENOTFOUND, "no sample with id %lld (see 'edgetrain data list')",
                              (long long)id);
    else
        out_rc = et_db_error(p, err, "reading a sample");
    sqlite3_finalize(st);
    return out_rc;
}

/* Runs one UPDATE/DELETE on a sample id; ET_ENOTFOUND when no row changed. */
static et_status change_sample(et_project *p, int64_t id, const char *sql, const char *text,
                               const char *what, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, what);
    sqlite3_bind_int64(st, 1, id);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return et_db_error(p, err, what);
    if (sqlite3_changes(p->db) == 0)
        return et_error_set(err, ET_ENOTFOUND, "no sample with id %lld (see 'edgetrain data list')",
                            (long long)id);
    return ET_OK;
}

et_status et_sample_relabel(et_project *p, int64_t id, const char *label, et_error *err)
{
    et_status rc = et_label_check(label, err);
    if (rc < 0)
        return rc;
    return change_sample(p, id, "UPDATE samples SET label = ?2 WHERE id = ?1", label,
                         "relabelling a sample", err);
}

et_status et_sample_move(et_project *p, int64_t id, et_category category, et_error *err)
{
    if (category != ET_TRAINING && category != ET_TESTING)
        return et_error_set(err, ET_EINVAL, "category must be training or testing");
    return change_sample(p, id, "UPDATE samples SET category = ?2 WHERE id = ?1",
                         et_category_name(category), "moving a sample", err);
}

et_status et_sample_remove(et_project *p, int64_t id, et_error *err)
{
    return change_sample(p, id, "DELETE FROM samples WHERE id = ?1", NULL, "removing a sample",
                         err);
}
