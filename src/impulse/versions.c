/* Impulse versions in the project database, and the default impulse that a
 * project's data implies. */
#include "edgetrain/impulse.h"

#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

et_status et_impulse_default_for(et_project *p, et_impulse *out, et_error *err)
{
    et_impulse imp = et_impulse_defaults();
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT width, height FROM samples WHERE category = 'training'"
                      " GROUP BY width, height ORDER BY COUNT(*) DESC, width, height LIMIT 1";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading image sizes");
    if (sqlite3_step(st) == SQLITE_ROW) {
        int w = sqlite3_column_int(st, 0), h = sqlite3_column_int(st, 1);
        if (w <= 96 && h <= 96) {
            imp.width = w < ET_INPUT_MIN ? ET_INPUT_MIN : w;
            imp.height = h < ET_INPUT_MIN ? ET_INPUT_MIN : h;
        }
    }
    sqlite3_finalize(st);
    /* Grey (with or without alpha) everywhere -> grayscale. */
    sql = "SELECT COUNT(*), COALESCE(SUM(channels <= 2), 0) FROM samples";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading channel counts");
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0 &&
        sqlite3_column_int64(st, 0) == sqlite3_column_int64(st, 1))
        imp.color = ET_COLOR_GRAYSCALE;
    sqlite3_finalize(st);
    /* The default conv net must fit the input (two 2x2 pools need 4 px). */
    *out = imp;
    return et_impulse_validate(out, err);
}

et_status et_impulse_get_version(et_project *p, int64_t version, et_impulse *out, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT json FROM impulses WHERE version = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return et_db_error(p, err, "reading the impulse");
    sqlite3_bind_int64(st, 1, version);
    et_status rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *json = (const char *)sqlite3_column_text(st, 0);
        char name[64];
        snprintf(name, sizeof name, "impulse version %lld", (long long)version);
        rc = et_impulse_from_json(json, strlen(json), name, out, err);
    } else {
        rc = et_error_set(err, ET_ENOTFOUND,
                          "no impulse version %lld (see 'edgetrain impulse history')",
                          (long long)version);
    }
    sqlite3_finalize(st);
    return rc;
}

et_status et_impulse_current(et_project *p, et_impulse *out, int64_t *version, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT MAX(version) FROM impulses", -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading the impulse");
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    *version = v;
    if (v > 0)
        return et_impulse_get_version(p, v, out, err);
    return et_impulse_default_for(p, out, err);
}

et_status et_impulse_save_version(et_project *p, const et_impulse *imp, const char *note,
                                  int64_t *version, et_error *err)
{
    et_status rc = et_impulse_validate(imp, err);
    if (rc < 0)
        return rc;
    char *json = et_impulse_to_json(imp, false);
    if (!json)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    char key[65];
    et_impulse_features_key(imp, key);
    sqlite3_stmt *ins = NULL, *stale = NULL, *stale_models = NULL;
    rc = et_db_exec(p, "BEGIN IMMEDIATE", err);
    if (rc == ET_OK &&
        (sqlite3_prepare_v2(p->db, "INSERT INTO impulses(json, note) VALUES(?, ?)", -1, &ins,
                            NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(p->db, "UPDATE feature_sets SET stale = 1 WHERE key != ?", -1, &stale,
                            NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(p->db,
                            "UPDATE models SET status = 'stale' WHERE status != 'stale'"
                            " AND impulse != ?",
                            -1, &stale_models, NULL) != SQLITE_OK))
        rc = et_db_error(p, err, "saving the impulse");
    if (rc == ET_OK) {
        sqlite3_bind_text(ins, 1, json, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, note ? note : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(stale, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(stale_models, 1, json, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE || sqlite3_step(stale) != SQLITE_DONE ||
            sqlite3_step(stale_models) != SQLITE_DONE)
            rc = et_db_error(p, err, "saving the impulse");
        else
            *version = sqlite3_last_insert_rowid(p->db);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(stale);
    sqlite3_finalize(stale_models);
    free(json);
    if (rc < 0) {
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return et_db_exec(p, "COMMIT", err);
}

et_status et_impulse_history(et_project *p, et_impulse_version_fn fn, void *ctx, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db,
                           "SELECT version, created_at, note, json FROM impulses ORDER BY version",
                           -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading the impulse history");
    et_impulse_version v;
    while (sqlite3_step(st) == SQLITE_ROW) {
        v.version = sqlite3_column_int64(st, 0);
        snprintf(v.created_at, sizeof v.created_at, "%s", sqlite3_column_text(st, 1));
        snprintf(v.note, sizeof v.note, "%s", sqlite3_column_text(st, 2));
        snprintf(v.json, sizeof v.json, "%s", sqlite3_column_text(st, 3));
        if (fn(ctx, &v))
            break;
    }
    sqlite3_finalize(st);
    return ET_OK;
}

et_status et_impulse_current_stored(et_project *p, et_impulse *out, int64_t *version,
                                    const char *note, et_error *err)
{
    et_status rc = et_impulse_current(p, out, version, err);
    if (rc < 0 || *version > 0)
        return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT EXISTS (SELECT 1 FROM samples)", -1, &st, NULL) !=
        SQLITE_OK)
        return et_db_error(p, err, "counting samples");
    bool any = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (!any)
        return et_error_set(err, ET_EINVAL,
                            "the project has no samples yet (edgetrain import PATH)");
    return et_impulse_save_version(p, out, note, version, err);
}
