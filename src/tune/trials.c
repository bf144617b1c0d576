/* Tuner runs and trials in the project database: reading them back, the
 * Pareto front, and selecting a trial's impulse. */
#include "tune/tune_internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

et_status tune_exec(et_project *p, et_error *err, int *changes, const char *sql, const char *types,
                    ...)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "preparing a tuner statement");
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types && types[i]; i++) {
        switch (types[i]) {
        case 'i': sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
        case 'd': sqlite3_bind_double(st, i + 1, va_arg(ap, double)); break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s)
                sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, i + 1);
            break;
        }
        default: sqlite3_bind_null(st, i + 1); break;
        }
    }
    va_end(ap);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        return et_db_error(p, err, "writing the tuner's records");
    if (changes)
        *changes = sqlite3_changes(p->db);
    return ET_OK;
}

#define TRIAL_COLUMNS                                                                              \
    "id, run_id, bracket, draw, rung, status, impulse, seed, full_epochs, rung_epochs, epochs, "   \
    "attempts, val_f32_accuracy, val_f32_loss, val_int8_accuracy, val_int8_loss, "                 \
    "f32_latency_ms, f32_ram_bytes, f32_rom_bytes, int8_latency_ms, int8_ram_bytes, "              \
    "int8_rom_bytes, params, macs, estimated_seconds, train_seconds, error, history, "             \
    "created_at, finished_at, rungs"

static void text_col(sqlite3_stmt *st, int col, char *out, size_t n)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    snprintf(out, n, "%s", s ? (const char *)s : "");
}

static void trial_from_row(sqlite3_stmt *st, et_tune_trial *t)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(st, 0);
    t->run_id = sqlite3_column_int64(st, 1);
    t->bracket = sqlite3_column_int(st, 2);
    t->draw = sqlite3_column_int(st, 3);
    t->rung = sqlite3_column_int(st, 4);
    char status[16];
    text_col(st, 5, status, sizeof status);
    for (int s = 0; s < ET_TRIAL_STATUS_COUNT; s++)
        if (!strcmp(status, et_trial_status_name((et_trial_status)s)))
            t->status = (et_trial_status)s;
    text_col(st, 6, t->impulse_json, sizeof t->impulse_json);
    et_error ignore = {0};
    if (et_impulse_from_json(t->impulse_json, strlen(t->impulse_json), "trial", &t->impulse,
                             &ignore) < 0)
        t->impulse = et_impulse_defaults();
    t->seed = sqlite3_column_int64(st, 7);
    t->full_epochs = sqlite3_column_int(st, 8);
    t->rung_epochs = sqlite3_column_int(st, 9);
    t->epochs = sqlite3_column_int(st, 10);
    t->attempts = sqlite3_column_int(st, 11);
    t->trained = sqlite3_column_type(st, 12) != SQLITE_NULL;
    t->val_accuracy[ET_PRECISION_FLOAT32] = sqlite3_column_double(st, 12);
    t->val_loss[ET_PRECISION_FLOAT32] = sqlite3_column_double(st, 13);
    t->has_int8 = sqlite3_column_type(st, 14) != SQLITE_NULL;
    t->val_accuracy[ET_PRECISION_INT8] = sqlite3_column_double(st, 14);
    t->val_loss[ET_PRECISION_INT8] = sqlite3_column_double(st, 15);
    t->profiled = sqlite3_column_type(st, 19) != SQLITE_NULL;
    t->latency_ms[ET_PRECISION_FLOAT32] = sqlite3_column_double(st, 16);
    t->ram_bytes[ET_PRECISION_FLOAT32] = sqlite3_column_int64(st, 17);
    t->rom_bytes[ET_PRECISION_FLOAT32] = sqlite3_column_int64(st, 18);
    t->latency_ms[ET_PRECISION_INT8] = sqlite3_column_double(st, 19);
    t->ram_bytes[ET_PRECISION_INT8] = sqlite3_column_int64(st, 20);
    t->rom_bytes[ET_PRECISION_INT8] = sqlite3_column_int64(st, 21);
    t->params = sqlite3_column_int64(st, 22);
    t->macs = sqlite3_column_int64(st, 23);
    t->estimated_seconds = sqlite3_column_double(st, 24);
    t->train_seconds = sqlite3_column_double(st, 25);
    text_col(st, 26, t->error, sizeof t->error);
    text_col(st, 27, t->history, sizeof t->history);
    text_col(st, 28, t->created_at, sizeof t->created_at);
    text_col(st, 29, t->finished_at, sizeof t->finished_at);
    t->rungs = sqlite3_column_int(st, 30);
    /* The trial's impulse is the one it trains: with the epochs its run spans,
     * fewer than drawn when its bracket was fitted to the time left (the
     * column keeps the drawn one, which later draws are compared with). Then
     * 'tune select' gives the impulse whose training the trial measured. */
    t->drawn_epochs = t->impulse.epochs;
    if (t->full_epochs > 0 && t->impulse.epochs != t->full_epochs) {
        t->impulse.epochs = t->full_epochs;
        char *j = et_impulse_to_json(&t->impulse, false);
        if (j && strlen(j) < sizeof t->impulse_json)
            memcpy(t->impulse_json, j, strlen(j) + 1);
        free(j);
    }
    json_t *h = json_loads(t->history, 0, NULL);
    size_t nh = json_array_size(h);
    json_t *last = nh > 0 ? json_array_get(h, nh - 1) : NULL;
    t->from_epoch = (int)json_integer_value(json_object_get(last, "from_epoch"));
    /* Only the current rung's: a trial moved up without training has none. */
    json_t *average = json_object_get(last, "average");
    t->average = json_is_number(average) &&
                         json_integer_value(json_object_get(last, "rung")) == (json_int_t)t->rung
                     ? json_number_value(average)
                     : -1;
    json_decref(h);
}

et_status tune_trial_read(et_project *p, int64_t id, et_tune_trial *out, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT " TRIAL_COLUMNS " FROM tuner_trials WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading a trial");
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        trial_from_row(st, out);
    sqlite3_finalize(st);
    if (step == SQLITE_ROW)
        return ET_OK;
    if (step != SQLITE_DONE)
        return et_db_error(p, err, "reading a trial");
    return et_error_set(err, ET_ENOTFOUND, "no tuner trial %lld (see 'edgetrain tune list')",
                        (long long)id);
}

et_status tune_trials_read(et_project *p, int64_t run_id, et_tune_trial **out, size_t *n,
                           et_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            p->db, "SELECT " TRIAL_COLUMNS " FROM tuner_trials WHERE run_id = ? ORDER BY id", -1,
            &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading the trials");
    sqlite3_bind_int64(st, 1, run_id);
    size_t cap = 0;
    et_tune_trial *list = NULL;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            et_tune_trial *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                sqlite3_finalize(st);
                free(list);
                *n = 0;
                return et_error_set(err, ET_ENOMEM, "out of memory");
            }
            list = grown;
        }
        trial_from_row(st, &list[(*n)++]);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) {
        free(list);
        *n = 0;
        return et_db_error(p, err, "reading the trials");
    }
    *out = list;
    return ET_OK;
}

void tune_mark_pareto(et_tune_trial *trials, size_t n, et_tune_objective o)
{
    if (n == 0)
        return;
    et_precision pr = et_tune_objective_precision(o);
    double *acc = malloc(n * sizeof *acc), *lat = malloc(n * sizeof *lat),
           *ram = malloc(n * sizeof *ram);
    bool *valid = malloc(n * sizeof *valid), *front = malloc(n * sizeof *front);
    if (acc && lat && ram && valid && front) {
        for (size_t i = 0; i < n; i++) {
            acc[i] = et_tune_trial_objective(&trials[i], o);
            lat[i] = trials[i].latency_ms[pr];
            ram[i] = (double)trials[i].ram_bytes[pr];
            valid[i] = acc[i] >= 0 && trials[i].profiled &&
                       (trials[i].status == ET_TRIAL_DONE || trials[i].status == ET_TRIAL_PRUNED ||
                        trials[i].status == ET_TRIAL_WAITING);
        }
        et_pareto_front(acc, lat, ram, valid, n, front);
        for (size_t i = 0; i < n; i++)
            trials[i].pareto = front[i];
    }
    free(acc);
    free(lat);
    free(ram);
    free(valid);
    free(front);
}

void et_tune_run_info_free(et_tune_run_info *r)
{
    if (!r)
        return;
    free(r->space_json);
    r->space_json = NULL;
}

et_status et_tune_run_get(et_project *p, int64_t id, et_tune_run_info *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    const char *sql =
        "SELECT id, status, target, engine, objective, max_latency_ms, max_ram_bytes, "
        "max_rom_bytes, max_trials, time_budget_s, seed, jobs, eta, rungs, seconds, stop_reason, "
        "created_at, base_impulse_version, space, sampler, hyperband FROM tuner_runs "
        "WHERE id = ?1 OR (?1 = 0 AND id = (SELECT max(id) FROM tuner_runs))";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading a tuner run");
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        text_col(st, 1, out->status, sizeof out->status);
        text_col(st, 2, out->target, sizeof out->target);
        text_col(st, 3, out->engine, sizeof out->engine);
        char objective[32];
        text_col(st, 4, objective, sizeof objective);
        et_tune_objective_parse(objective, &out->objective, NULL);
        out->max_latency_ms = sqlite3_column_double(st, 5);
        out->max_ram_bytes = sqlite3_column_int64(st, 6);
        out->max_rom_bytes = sqlite3_column_int64(st, 7);
        out->max_trials = sqlite3_column_int(st, 8);
        out->time_budget_s = sqlite3_column_double(st, 9);
        out->seed = sqlite3_column_int64(st, 10);
        out->jobs = sqlite3_column_int(st, 11);
        out->eta = sqlite3_column_int(st, 12);
        out->rungs = sqlite3_column_int(st, 13);
        out->bracket_size = 1;
        for (int k = 1; k < out->rungs; k++)
            out->bracket_size *= out->eta;
        out->seconds = sqlite3_column_double(st, 14);
        text_col(st, 15, out->stop_reason, sizeof out->stop_reason);
        text_col(st, 16, out->created_at, sizeof out->created_at);
        out->base_impulse_version = sqlite3_column_int64(st, 17);
        const unsigned char *space = sqlite3_column_text(st, 18);
        out->space_json = strdup(space ? (const char *)space : "{}");
        et_tune_sampler_parse((const char *)sqlite3_column_text(st, 19), &out->sampler, NULL);
        out->hyperband = sqlite3_column_int(st, 20) != 0;
    }
    sqlite3_finalize(st);
    if (step == SQLITE_DONE)
        return id ? et_error_set(err, ET_ENOTFOUND, "no tuner run %lld", (long long)id)
                  : et_error_set(err, ET_ENOTFOUND,
                                 "no tuner run yet (start one with 'edgetrain tune --target "
                                 "NAME')");
    if (step != SQLITE_ROW)
        return et_db_error(p, err, "reading a tuner run");
    if (!out->space_json)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    if (sqlite3_prepare_v2(p->db,
                           "SELECT status, count(*) FROM tuner_trials WHERE run_id = ? GROUP BY "
                           "status",
                           -1, &st, NULL) != SQLITE_OK) {
        et_tune_run_info_free(out);
        return et_db_error(p, err, "counting trials");
    }
    sqlite3_bind_int64(st, 1, out->id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char status[16];
        text_col(st, 0, status, sizeof status);
        for (int s = 0; s < ET_TRIAL_STATUS_COUNT; s++)
            if (!strcmp(status, et_trial_status_name((et_trial_status)s)))
                out->counts[s] = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return ET_OK;
}

et_status et_tune_trials_list(et_project *p, int64_t run_id, et_tune_trial **out, size_t *n,
                              et_error *err)
{
    *out = NULL;
    *n = 0;
    et_tune_run_info run;
    et_status rc = et_tune_run_get(p, run_id, &run, err);
    if (rc < 0)
        return rc;
    rc = tune_trials_read(p, run.id, out, n, err);
    if (rc == ET_OK)
        tune_mark_pareto(*out, *n, run.objective);
    et_tune_run_info_free(&run);
    return rc;
}

et_status et_tune_trial_get(et_project *p, int64_t id, et_tune_trial *out, et_error *err)
{
    et_status rc = tune_trial_read(p, id, out, err);
    if (rc < 0)
        return rc;
    et_tune_trial *all = NULL;
    size_t n = 0;
    if (et_tune_trials_list(p, out->run_id, &all, &n, err) == ET_OK)
        for (size_t i = 0; i < n; i++)
            if (all[i].id == id)
                out->pareto = all[i].pareto;
    free(all);
    return ET_OK;
}

et_status et_tune_select(et_project *p, int64_t id, int64_t *version, et_tune_trial *trial,
                         et_error *err)
{
    et_tune_trial t;
    et_status rc = tune_trial_read(p, id, &t, err);
    if (rc < 0)
        return rc;
    if (trial)
        *trial = t;
    if (!t.trained)
        return et_error_set(err, ET_EINVAL,
                            "trial %lld is %s and was never trained%s%s; pick a done or pruned "
                            "trial from 'edgetrain tune list'",
                            (long long)id, et_trial_status_name(t.status), t.error[0] ? ": " : "",
                            t.error);
    et_impulse imp;
    rc = et_impulse_from_json(t.impulse_json, strlen(t.impulse_json), "trial", &imp, err);
    if (rc < 0)
        return rc;
    /* The impulse it replaces goes into the history first, so that it can be reverted to. */
    et_impulse cur;
    int64_t cur_version = 0;
    rc = et_impulse_current_stored(p, &cur, &cur_version, "default for the data", err);
    if (rc < 0)
        return rc;
    char note[64];
    snprintf(note, sizeof note, "tune select %lld", (long long)id);
    return et_impulse_save_version(p, &imp, note, version, err);
}
