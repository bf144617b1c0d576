/* Project folders: creation, discovery, the database and its migrations. */
#include "store/store_internal.h"

#include "core/fsutil.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DB_NAME "edgetrain.db"

/* Migration N takes a database from user_version N to N + 1. Append only:
 * a released migration is never edited. */
static const char *const migrations[] = {
    /* 0 -> 1: samples, imports and the problems they reported. */
    "CREATE TABLE imports ("
    "  id INTEGER PRIMARY KEY,"
    "  started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),"
    "  arguments TEXT NOT NULL,"
    "  imported INTEGER NOT NULL DEFAULT 0,"
    "  skipped INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE blobs ("
    "  hash TEXT PRIMARY KEY,"
    "  format TEXT NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  original TEXT NOT NULL);"
    "CREATE TABLE samples ("
    "  id INTEGER PRIMARY KEY,"
    "  pixel_hash TEXT NOT NULL UNIQUE,"
    "  blob TEXT NOT NULL REFERENCES blobs(hash),"
    "  member INTEGER NOT NULL DEFAULT -1,"
    "  source TEXT NOT NULL,"
    "  label TEXT NOT NULL,"
    "  category TEXT NOT NULL CHECK (category IN ('training', 'testing')),"
    "  width INTEGER NOT NULL,"
    "  height INTEGER NOT NULL,"
    "  channels INTEGER NOT NULL,"
    "  format TEXT NOT NULL,"
    "  import_id INTEGER REFERENCES imports(id),"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));"
    "CREATE INDEX samples_by_label ON samples(label, category);"
    "CREATE TABLE problems ("
    "  file TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  import_id INTEGER REFERENCES imports(id));",
    /* 1 -> 2: impulse versions and the feature sets made from them. */
    "CREATE TABLE impulses ("
    "  version INTEGER PRIMARY KEY,"
    "  json TEXT NOT NULL,"
    "  note TEXT NOT NULL DEFAULT '',"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));"
    "CREATE TABLE feature_sets ("
    "  key TEXT PRIMARY KEY,"
    "  impulse_version INTEGER NOT NULL,"
    "  samples INTEGER NOT NULL,"
    "  stale INTEGER NOT NULL DEFAULT 0,"
    "  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));",
    /* 2 -> 3: trained model versions. */
    "CREATE TABLE models ("
    "  id INTEGER PRIMARY KEY,"
    "  impulse_version INTEGER NOT NULL,"
    "  impulse TEXT NOT NULL,"
    "  precision TEXT NOT NULL CHECK (precision IN ('float32', 'int8')),"
    "  parent INTEGER REFERENCES models(id),"
    "  labels TEXT NOT NULL,"
    "  channels INTEGER NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'ready',"
    "  epochs_run INTEGER NOT NULL DEFAULT 0,"
    "  best_epoch INTEGER NOT NULL DEFAULT 0,"
    "  seconds REAL NOT NULL DEFAULT 0,"
    "  validation TEXT,"
    "  history TEXT,"
    "  test TEXT,"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));",
    /* 3 -> 4: the int8 model of each version (models/<id>/model_int8.etrt):
     * its validation and test metrics, and how it was quantized. */
    "ALTER TABLE models ADD COLUMN validation_int8 TEXT;"
    "ALTER TABLE models ADD COLUMN test_int8 TEXT;"
    "ALTER TABLE models ADD COLUMN quantization TEXT;",
    /* 4 -> 5: tuner runs and their trials (src/tune/). */
    "CREATE TABLE tuner_runs ("
    "  id INTEGER PRIMARY KEY,"
    "  status TEXT NOT NULL DEFAULT 'running'"
    "    CHECK (status IN ('running', 'interrupted', 'done', 'failed')),"
    "  target TEXT NOT NULL,"
    "  engine TEXT NOT NULL,"
    "  objective TEXT NOT NULL,"
    "  max_latency_ms REAL NOT NULL DEFAULT 0,"
    "  max_ram_bytes INTEGER NOT NULL DEFAULT 0,"
    "  max_rom_bytes INTEGER NOT NULL DEFAULT 0,"
    "  max_trials INTEGER NOT NULL DEFAULT 0,"
    "  time_budget_s REAL NOT NULL DEFAULT 0,"
    "  seed INTEGER NOT NULL,"
    "  jobs INTEGER NOT NULL,"
    "  eta INTEGER NOT NULL,"
    "  rungs INTEGER NOT NULL,"
    "  min_steps INTEGER NOT NULL,"
    "  space TEXT NOT NULL,"
    "  base_impulse TEXT NOT NULL,"
    "  base_impulse_version INTEGER NOT NULL DEFAULT 0,"
    "  seconds REAL NOT NULL DEFAULT 0,"
    "  stop_reason TEXT NOT NULL DEFAULT '',"
    "  pid INTEGER NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')));"
    "CREATE TABLE tuner_trials ("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER NOT NULL REFERENCES tuner_runs(id),"
    "  bracket INTEGER NOT NULL,"
    "  draw INTEGER NOT NULL,"
    "  rung INTEGER NOT NULL DEFAULT 0,"
    "  rungs INTEGER NOT NULL DEFAULT 1,"
    "  status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'waiting', 'done',"
    "    'failed', 'pruned', 'skipped')),"
    "  impulse TEXT NOT NULL,"
    "  seed INTEGER NOT NULL,"
    "  full_epochs INTEGER NOT NULL,"
    "  rung_epochs INTEGER NOT NULL DEFAULT 0,"
    "  epochs INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  val_f32_accuracy REAL, val_f32_loss REAL,"
    "  val_int8_accuracy REAL, val_int8_loss REAL,"
    "  f32_latency_ms REAL, f32_ram_bytes INTEGER, f32_rom_bytes INTEGER,"
    "  int8_latency_ms REAL, int8_ram_bytes INTEGER, int8_rom_bytes INTEGER,"
    "  params INTEGER, macs INTEGER,"
    "  estimated_seconds REAL NOT NULL DEFAULT 0,"
    "  train_seconds REAL NOT NULL DEFAULT 0,"
    "  error TEXT NOT NULL DEFAULT '',"
    "  history TEXT NOT NULL DEFAULT '[]',"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),"
    "  finished_at TEXT NOT NULL DEFAULT '',"
    "  UNIQUE (run_id, draw));"
    "CREATE INDEX tuner_trials_by_run ON tuner_trials(run_id, status);",
    /* 5 -> 6: project settings (edgetrain settings). */
    "CREATE TABLE settings ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);",
    /* 6 -> 7: how a tuner run draws its candidates; runs before drew at random. */
    "ALTER TABLE tuner_runs ADD COLUMN sampler TEXT NOT NULL DEFAULT 'random'"
    "  CHECK (sampler IN ('model', 'random'));",
    /* 7 -> 8: Hyperband's cycling bracket sizes (--strategy hyperband). */
    "ALTER TABLE tuner_runs ADD COLUMN hyperband INTEGER NOT NULL DEFAULT 0;",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

_Static_assert(N_MIGRATIONS == ET_SCHEMA_VERSION, "one migration per schema version");

et_status et_db_error(et_project *p, et_error *err, const char *what)
{
    return et_error_set(err, ET_EDB, "%s/%s: %s: %s", p->root, DB_NAME, what,
                        sqlite3_errmsg(p->db));
}

et_status et_db_exec(et_project *p, const char *sql, et_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(p->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        et_status rc = et_error_set(err, ET_EDB, "%s/%s: %s", p->root, DB_NAME,
                                    msg ? msg : sqlite3_errmsg(p->db));
        sqlite3_free(msg);
        return rc;
    }
    return ET_OK;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static et_status migrate(et_project *p, et_error *err)
{
    int v = user_version(p->db);
    if (v < 0)
        return et_db_error(p, err, "reading the schema version");
    if (v > ET_SCHEMA_VERSION)
        return et_error_set(err, ET_EVERSION,
                            "%s/%s: schema version %d was written by a newer edgetrain "
                            "(this one knows up to %d); upgrade edgetrain",
                            p->root, DB_NAME, v, ET_SCHEMA_VERSION);
    if (v == ET_SCHEMA_VERSION)
        return ET_OK;
    et_status rc = et_db_exec(p, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        return rc;
    /* Re-read under the write lock: another process may have migrated meanwhile. */
    for (v = user_version(p->db); v < ET_SCHEMA_VERSION; v++) {
        char sql[64];
        if ((rc = et_db_exec(p, migrations[v], err)) < 0)
            break;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if ((rc = et_db_exec(p, sql, err)) < 0)
            break;
    }
    if (rc < 0) {
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return et_db_exec(p, "COMMIT", err);
}

static et_status open_db(const char *root, bool create, et_project **out, et_error *err)
{
    if (strlen(root) >= sizeof((et_project *)0)->root)
        return et_error_set(err, ET_EINVAL, "%.200s...: project path too long", root);
    et_project *p = calloc(1, sizeof *p);
    if (!p)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    snprintf(p->root, sizeof p->root, "%s", root);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", root, DB_NAME);
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &p->db, flags, NULL) != SQLITE_OK) {
        et_status rc = et_error_set(err, ET_EDB, "%s: cannot open: %s", path,
                                    p->db ? sqlite3_errmsg(p->db) : "out of memory");
        et_project_close(p);
        return rc;
    }
    sqlite3_busy_timeout(p->db, 10000);
    sqlite3_extended_result_codes(p->db, 1);
    et_status rc = et_db_exec(p,
                              "PRAGMA journal_mode = WAL;"
                              "PRAGMA synchronous = FULL;"
                              "PRAGMA foreign_keys = ON;",
                              err);
    if (rc == ET_OK)
        rc = migrate(p, err);
    if (rc < 0) {
        et_project_close(p);
        return rc;
    }
    *out = p;
    return ET_OK;
}

et_status et_project_init(const char *dir, et_error *err)
{
    et_status rc = et_mkdir_p(dir, err);
    if (rc < 0)
        return rc;
    char root[PATH_MAX];
    if (!realpath(dir, root))
        return et_error_set(err, ET_EIO, "%s: %s", dir, strerror(errno));
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", root, DB_NAME);
    if (et_is_file(path))
        return et_error_set(err, ET_EEXIST, "%s already holds an edgetrain project", root);
    static const char *const subdirs[] = {"samples", "cache", "models"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", root, subdirs[i]);
        if ((rc = et_mkdir_p(path, err)) < 0)
            return rc;
    }
    et_project *p = NULL;
    if ((rc = open_db(root, true, &p, err)) < 0)
        return rc;
    et_project_close(p);
    return et_fsync_dir(root, err);
}

et_status et_project_open(const char *start_dir, et_project **out, et_error *err)
{
    *out = NULL;
    char dir[PATH_MAX];
    if (!realpath(start_dir, dir))
        return et_error_set(err, ET_ENOTFOUND, "%s: %s", start_dir, strerror(errno));
    if (!et_is_dir(dir))
        return et_error_set(err, ET_ENOTFOUND, "%s: not a folder", start_dir);
    for (;;) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", dir, DB_NAME);
        if (et_is_file(path))
            return open_db(dir, false, out, err);
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            break;
        *slash = '\0';
    }
    return et_error_set(err, ET_ENOTFOUND,
                        "no edgetrain project in %s or any parent folder "
                        "(create one with 'edgetrain init DIR', or pass -C DIR)",
                        start_dir);
}

void et_project_close(et_project *p)
{
    if (!p)
        return;
    sqlite3_close_v2(p->db);
    free(p);
}

const char *et_project_root(const et_project *p) { return p->root; }

et_status et_project_blob_path(const et_project *p, const char *hash, char *out, size_t n,
                               et_error *err)
{
    int w = snprintf(out, n, "%s/samples/%.2s/%s", p->root, hash, hash);
    if (w < 0 || (size_t)w >= n)
        return et_error_set(err, ET_EINVAL, "%s: project path too long", p->root);
    return ET_OK;
}

et_status et_project_setting_get(et_project *p, const char *key, char **value, et_error *err)
{
    *value = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT value FROM settings WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return et_db_error(p, err, "reading a setting");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        *value = strdup(v ? v : "");
        sqlite3_finalize(st);
        return *value ? ET_OK : et_error_set(err, ET_ENOMEM, "out of memory");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? ET_OK : et_db_error(p, err, "reading a setting");
}

et_status et_project_setting_set(et_project *p, const char *key, const char *value,
                                 et_error *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = value ? "INSERT INTO settings(key, value) VALUES (?1, ?2) "
                              "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
                            : "DELETE FROM settings WHERE key = ?1";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "writing a setting");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (value)
        sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? ET_OK : et_db_error(p, err, "writing a setting");
}
