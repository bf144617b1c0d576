/* One rung of one trial (et_tune_worker), and the checkpoints that let a
 * promoted trial go on from the weights of its rung before (warm start).
 *
 * A rung that ends writes cache/tune/run<R>/trial<ID>-e<EPOCHS>.ckpt (the
 * state after EPOCHS epochs, et_train's checkpoint_out); the trial's next
 * rung starts from it (init_from) and trains only the epochs beyond. The
 * file is named by its epochs, and the one before is removed only after the
 * new results are in the database: a worker killed in between leaves the
 * row at the old epochs and their checkpoint still there, so the rerun
 * starts from the same state. A trial without its checkpoint (removed, or
 * from an older edgetrain) trains from scratch. */
#include "tune/tune_internal.h"

#include "edgetrain/train.h"

#include <glob.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void tune_checkpoint_path(et_project *p, int64_t run, int64_t trial, int epochs, char *out,
                          size_t n)
{
    if (trial == 0)
        snprintf(out, n, "%s/cache/tune/run%lld", et_project_root(p), (long long)run);
    else
        snprintf(out, n, "%s/cache/tune/run%lld/trial%lld-e%d.ckpt", et_project_root(p),
                 (long long)run, (long long)trial, epochs);
}

int tune_warm_epochs(et_project *p, const et_tune_trial *tr)
{
    if (!tr->trained || tr->epochs <= 0)
        return 0;
    char path[4200];
    tune_checkpoint_path(p, tr->run_id, tr->id, tr->epochs, path, sizeof path);
    return access(path, R_OK) == 0 ? tr->epochs : 0;
}

void tune_checkpoints_remove(et_project *p, int64_t run, int64_t trial)
{
    char dir[4200], pattern[4300];
    tune_checkpoint_path(p, run, 0, 0, dir, sizeof dir);
    if (trial)
        snprintf(pattern, sizeof pattern, "%s/trial%lld-e*.ckpt*", dir, (long long)trial);
    else
        snprintf(pattern, sizeof pattern, "%s/trial*-e*.ckpt*", dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
    globfree(&g);
    if (!trial)
        rmdir(dir);
}

et_status et_tune_worker(et_project *p, int64_t id, int threads, double deadline, et_error *err)
{
    et_tune_trial *tr = malloc(sizeof *tr);
    if (!tr)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    et_status rc = tune_trial_read(p, id, tr, err);
    if (rc == ET_OK && tr->status != ET_TRIAL_RUNNING)
        rc = et_error_set(err, ET_EINVAL, "trial %lld is %s, not running", (long long)id,
                          et_trial_status_name(tr->status));
    if (rc < 0) {
        free(tr);
        return rc;
    }
    if (threads > 0)
        omp_set_num_threads(threads);
    char from[4200], to[4200], dir[4200];
    int warm = tune_warm_epochs(p, tr);
    tune_checkpoint_path(p, tr->run_id, tr->id, warm, from, sizeof from);
    tune_checkpoint_path(p, tr->run_id, tr->id, tr->rung_epochs, to, sizeof to);
    tune_checkpoint_path(p, tr->run_id, 0, 0, dir, sizeof dir);
    et_train_options o = et_train_defaults();
    o.impulse = &tr->impulse;
    o.epochs = tr->rung_epochs;
    /* Every rung is a part of one run of the trial's full epochs: the
     * learning rate decays over all of them, and the rung after goes on where
     * this one stops (optimizer state included), so the last rung ends where
     * training the impulse for full epochs ends. */
    o.schedule_epochs = tr->full_epochs > tr->rung_epochs ? tr->full_epochs : 0;
    o.no_save = true;
    o.quant_auto = false; /* the fallbacks run when the chosen impulse is trained in full */
    o.init_from = warm > 0 ? from : NULL;
    o.deadline = deadline;
    /* A rung before the last is judged on where its weights are heading, not
     * on their state at a learning rate that has barely begun to decay
     * (promote() in scheduler.c). */
    o.weight_average = tr->rung < tr->rungs - 1;
    /* Every rung's weights, the last one's too: the scheduler's endgame may
     * train the best trial on; a folder that cannot be made means no warm
     * start. A finished run removes them. */
    et_error ignore = {0};
    if (et_mkdir_p(dir, &ignore) == ET_OK)
        o.checkpoint_out = to;
    et_train_result res;
    et_error te = {0};
    et_log_level level = et_log_get_level();
    if (level < ET_LOG_WARN)
        et_log_set_level(ET_LOG_WARN); /* the tuner reports trials its own way */
    rc = et_train(p, &o, NULL, NULL, &res, &te);
    if (rc < 0 && rc != ET_EINTR && o.init_from && strstr(te.msg, from)) {
        /* A checkpoint that does not fit (e.g. the data changed): from scratch. */
        et_log_warn("trial %lld: %s", (long long)id, te.msg);
        o.init_from = NULL;
        memset(&te, 0, sizeof te);
        rc = et_train(p, &o, NULL, NULL, &res, &te);
    }
    et_log_set_level(level);
    int64_t attempts = tr->attempts;
    if (rc == ET_EINTR || (rc == ET_OK && res.interrupted)) {
        if (rc == ET_OK)
            et_train_result_free(&res);
        tune_exec(p, NULL, NULL,
                  "UPDATE tuner_trials SET status = 'pending' WHERE id = ? AND attempts = ? AND "
                  "status = 'running'",
                  "ii", id, attempts);
        free(tr);
        return et_error_set(err, ET_EINTR, "interrupted");
    }
    if (rc < 0) {
        rc = tune_exec(p, err, NULL,
                       "UPDATE tuner_trials SET status = 'failed', error = ?, finished_at = "
                       "strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ? AND attempts = ? AND "
                       "status = 'running'",
                       "sii", te.msg, id, attempts);
        tune_checkpoints_remove(p, tr->run_id, id);
        free(tr);
        return rc;
    }
    /* A rung stopped by the deadline at an epoch's end holds fewer epochs
     * than its name says: named by what it holds (the trial's epochs). */
    if (o.checkpoint_out && res.epochs_run != tr->rung_epochs) {
        char held[4200];
        tune_checkpoint_path(p, tr->run_id, tr->id, res.epochs_run, held, sizeof held);
        if (res.epochs_run == warm || rename(to, held) != 0)
            unlink(to);
        else
            snprintf(to, sizeof to, "%s", held);
    }
    /* Each rung's figures; from_epoch: the epochs it took over (warm start);
     * at: when it ended (Unix seconds), for best-so-far curves. */
    json_t *history = json_loads(tr->history, 0, NULL);
    if (!json_is_array(history)) {
        json_decref(history);
        history = json_array();
    }
    json_t *entry =
        json_pack("{s:i,s:i,s:i,s:f,s:o,s:f,s:I}", "rung", tr->rung, "epochs", res.epochs_run,
                  "from_epoch", res.start_epoch, "float32", res.validation.accuracy, "int8",
                  res.has_int8 ? json_real(res.validation_int8.accuracy) : json_null(), "seconds",
                  res.seconds, "at", (json_int_t)time(NULL));
    if (entry && res.has_average)
        json_object_set_new(entry, "average", json_real(res.average_accuracy));
    json_array_append_new(history, entry);
    char *history_text = json_dumps(history, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(history);
    char note_text[1100] = "";
    if (!res.has_int8)
        snprintf(note_text, sizeof note_text, "no int8 model: %.1000s", res.quant_error);
    else if (res.deadline_reached)
        snprintf(note_text, sizeof note_text,
                 "time budget: rung %d of %d stopped at its end after %d of its %d epochs",
                 tr->rung + 1, tr->rungs, res.epochs_run, tr->rung_epochs);
    sqlite3_stmt *st = NULL;
    const char *sql =
        "UPDATE tuner_trials SET status = 'waiting', epochs = ?, val_f32_accuracy = "
        "?, val_f32_loss = ?, val_int8_accuracy = ?, val_int8_loss = ?, "
        "train_seconds = train_seconds + ?, history = ?, error = CASE WHEN ?8 = '' THEN error "
        "WHEN error LIKE '" TUNE_ENDGAME_MARK
        "%' THEN error || '; ' || ?8 ELSE ?8 END, finished_at = "
        "strftime('%Y-%m-%dT%H:%M:%SZ','now') "
        "WHERE id = ? AND attempts = ? AND status = 'running'";
    int changed = 0;
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = et_db_error(p, err, "recording a trial's results");
    } else {
        sqlite3_bind_int(st, 1, res.epochs_run);
        sqlite3_bind_double(st, 2, res.validation.accuracy);
        sqlite3_bind_double(st, 3, res.validation.loss);
        if (res.has_int8) {
            sqlite3_bind_double(st, 4, res.validation_int8.accuracy);
            sqlite3_bind_double(st, 5, res.validation_int8.loss);
        }
        sqlite3_bind_double(st, 6, res.seconds);
        sqlite3_bind_text(st, 7, history_text ? history_text : "[]", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, note_text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, id);
        sqlite3_bind_int64(st, 10, attempts);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = et_db_error(p, err, "recording a trial's results");
        changed = sqlite3_changes(p->db);
        sqlite3_finalize(st);
    }
    /* The rung before's checkpoint is no longer needed once this one's
     * results are in; when they are not (a newer attempt owns the row), the
     * new checkpoint is not ours to keep. */
    if (rc == ET_OK && changed && warm > 0 && warm != res.epochs_run)
        unlink(from);
    else if (rc == ET_OK && !changed && o.checkpoint_out && warm != res.epochs_run)
        unlink(to);
    free(history_text);
    et_train_result_free(&res);
    free(tr);
    return rc;
}
