/* edgetrain tune: search impulses within a device's budgets; tune list, show,
 * select and plot; and the hidden worker mode that runs one trial. */
#include "cli.h"

#include "edgetrain/estimate.h"
#include "edgetrain/tune.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Describing trials.
 */
void cli_describe_model(const et_impulse *imp, char *out, size_t n)
{
    size_t used = 0;
    if (imp->model == ET_MODEL_CONV) {
        used += (size_t)snprintf(out, n, "conv ");
        bool one_kernel = true;
        for (int i = 0; i < imp->n_conv; i++) {
            used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s%d", i ? "," : "",
                                     imp->conv[i].filters);
            one_kernel = one_kernel && imp->conv[i].kernel == imp->conv[0].kernel;
        }
        if (one_kernel)
            used +=
                (size_t)snprintf(out + used, used < n ? n - used : 0, " k%d", imp->conv[0].kernel);
        else
            used += (size_t)snprintf(out + used, used < n ? n - used : 0, " k*");
        for (int i = 0; i < imp->n_dense; i++)
            used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s%d", i ? "," : " d",
                                     imp->dense[i]);
        if (imp->batch_norm)
            used += (size_t)snprintf(out + used, used < n ? n - used : 0, " bn");
    } else {
        used += (size_t)snprintf(out, n, "%s a%g h%d", et_model_name(imp->model), imp->alpha,
                                 imp->head_neurons);
    }
    snprintf(out + used, used < n ? n - used : 0, " lr%g%s", imp->learning_rate,
             imp->augment ? " aug" : "");
}

void cli_describe_input(const et_impulse *imp, char *out, size_t n)
{
    snprintf(out, n, "%dx%d %s%s", imp->width, imp->height,
             imp->processing == ET_PROCESSING_RAW ? "raw"
             : imp->color == ET_COLOR_RGB         ? "rgb"
                                                  : "gray",
             imp->resize == ET_RESIZE_SQUASH         ? ""
             : imp->resize == ET_RESIZE_FIT_SHORTEST ? " fs"
                                                     : " fl");
}

static void pct(const et_tune_trial *t, et_precision p, char *out, size_t n)
{
    bool have = t->trained && (p == ET_PRECISION_FLOAT32 || t->has_int8);
    if (have)
        snprintf(out, n, "%.2f%%", 100 * t->val_accuracy[p]);
    else
        snprintf(out, n, "-");
}

static json_t *impulse_json(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    return j ? j : json_null();
}

static json_t *trial_json(const et_tune_trial *t)
{
    json_t *val = json_object();
    json_object_set_new(val, "float32",
                        t->trained ? json_pack("{s:f,s:f}", "accuracy",
                                               t->val_accuracy[ET_PRECISION_FLOAT32], "loss",
                                               t->val_loss[ET_PRECISION_FLOAT32])
                                   : json_null());
    json_object_set_new(val, "int8",
                        t->trained && t->has_int8
                            ? json_pack("{s:f,s:f}", "accuracy", t->val_accuracy[ET_PRECISION_INT8],
                                        "loss", t->val_loss[ET_PRECISION_INT8])
                            : json_null());
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(t->id));
    json_object_set_new(o, "run", json_integer(t->run_id));
    json_object_set_new(o, "status", json_string(et_trial_status_name(t->status)));
    json_object_set_new(o, "bracket", json_integer(t->bracket));
    json_object_set_new(o, "rung", json_integer(t->rung));
    json_object_set_new(o, "rungs", json_integer(t->rungs));
    json_object_set_new(o, "impulse", impulse_json(t->impulse_json));
    json_object_set_new(o, "seed", json_integer(t->seed));
    json_object_set_new(o, "epochs", json_integer(t->epochs));
    json_object_set_new(o, "warm_start_epochs", json_integer(t->from_epoch));
    json_object_set_new(o, "full_epochs", json_integer(t->full_epochs));
    json_object_set_new(o, "drawn_epochs", json_integer(t->drawn_epochs));
    json_object_set_new(o, "attempts", json_integer(t->attempts));
    json_object_set_new(o, "validation", val);
    for (int p = 0; p < ET_PRECISION_COUNT; p++)
        json_object_set_new(o, et_precision_name((et_precision)p),
                            t->profiled ? json_pack("{s:f,s:I,s:I}", "latency_ms", t->latency_ms[p],
                                                    "ram_bytes", (json_int_t)t->ram_bytes[p],
                                                    "rom_bytes", (json_int_t)t->rom_bytes[p])
                                        : json_null());
    json_object_set_new(o, "params", t->profiled ? json_integer(t->params) : json_null());
    json_object_set_new(o, "macs", t->profiled ? json_integer(t->macs) : json_null());
    json_object_set_new(o, "train_seconds", json_real(t->train_seconds));
    json_object_set_new(o, "estimated_seconds", json_real(t->estimated_seconds));
    json_object_set_new(o, "error", t->error[0] ? json_string(t->error) : json_null());
    json_object_set_new(o, "pareto", json_boolean(t->pareto));
    json_t *h = json_loads(t->history, 0, NULL);
    json_object_set_new(o, "history", h ? h : json_array());
    json_object_set_new(o, "created_at", json_string(t->created_at));
    json_object_set_new(o, "finished_at",
                        t->finished_at[0] ? json_string(t->finished_at) : json_null());
    return o;
}

static json_t *counts_json(const int *counts)
{
    json_t *o = json_object();
    for (int s = 0; s < ET_TRIAL_STATUS_COUNT; s++)
        json_object_set_new(o, et_trial_status_name((et_trial_status)s), json_integer(counts[s]));
    return o;
}

/* A run's strategy: its --strategy value, or in words for the list's header
 * (with the sampler when it is the model). */
static const char *strategy_name(const et_tune_run_info *r, bool words)
{
    bool model = r->sampler == ET_TUNE_SAMPLER_MODEL;
    if (r->rungs == 1)
        return words ? "random search" : "random";
    if (r->hyperband)
        return !words ? "hyperband" : model ? "Hyperband, model-based sampling" : "Hyperband";
    return !words  ? "halving"
           : model ? "successive halving, model-based sampling"
                   : "successive halving";
}

static json_t *run_json(const et_tune_run_info *r)
{
    json_t *space = json_loads(r->space_json, 0, NULL);
    return json_pack(
        "{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:o?,s:o?,s:o?},s:o?,s:o?,s:I,s:i,"
        "s:{s:i,s:i,s:i},s:f,s:s,s:s,s:o,s:o}",
        "id", (json_int_t)r->id, "status", r->status, "strategy", strategy_name(r, false),
        "sampler", et_tune_sampler_name(r->sampler), "target", r->target, "engine", r->engine,
        "objective", et_tune_objective_name(r->objective), "budgets", "latency_ms",
        r->max_latency_ms > 0 ? json_real(r->max_latency_ms) : NULL, "ram_bytes",
        r->max_ram_bytes > 0 ? json_integer(r->max_ram_bytes) : NULL, "rom_bytes",
        r->max_rom_bytes > 0 ? json_integer(r->max_rom_bytes) : NULL, "max_trials",
        r->max_trials > 0 ? json_integer(r->max_trials) : NULL, "time_budget_s",
        r->time_budget_s > 0 ? json_real(r->time_budget_s) : NULL, "seed", (json_int_t)r->seed,
        "jobs", r->jobs, "scheduler", "eta", r->eta, "rungs", r->rungs, "bracket_size",
        r->bracket_size, "seconds", r->seconds, "stop_reason", r->stop_reason, "created_at",
        r->created_at, "counts", counts_json(r->counts), "space", space ? space : json_null());
}

/* ------------------------------------------------------------------------
 * tune (the run).
 */
void cli_tune_event(void *ctx, const et_tune_event *e)
{
    (void)ctx;
    if (et_log_get_level() > ET_LOG_INFO)
        return;
    if (e->kind == ET_TUNE_EVENT_NOTE) {
        fprintf(stderr, "%s\n", e->message);
        return;
    }
    const et_tune_trial *t = e->trial;
    char model[160], input[64], f32[16], i8[16], when[96] = "", spent[32], budget[32];
    cli_describe_model(&t->impulse, model, sizeof model);
    cli_describe_input(&t->impulse, input, sizeof input);
    pct(t, ET_PRECISION_FLOAT32, f32, sizeof f32);
    pct(t, ET_PRECISION_INT8, i8, sizeof i8);
    et_format_duration(e->elapsed_s, spent, sizeof spent);
    if (e->budget_s > 0) {
        et_format_duration(e->budget_s, budget, sizeof budget);
        snprintf(when, sizeof when, "%s of %s", spent, budget);
    } else {
        snprintf(when, sizeof when, "%s", spent);
    }
    switch (e->kind) {
    case ET_TUNE_EVENT_DRAWN:
        if (t->status == ET_TRIAL_SKIPPED || t->status == ET_TRIAL_FAILED)
            fprintf(stderr, "trial %-4lld %-7s %s, %s: %s\n", (long long)t->id,
                    et_trial_status_name(t->status), input, model, t->error);
        break;
    case ET_TUNE_EVENT_STARTED: {
        char est[32];
        et_format_duration(t->estimated_seconds, est, sizeof est);
        fprintf(stderr, "trial %-4lld rung %d/%d  %3d epochs  %s, %s  (about %s)\n",
                (long long)t->id, t->rung + 1, t->rungs, t->rung_epochs, input, model, est);
        break;
    }
    case ET_TUNE_EVENT_FINISHED:
        if (t->status == ET_TRIAL_FAILED)
            fprintf(stderr, "trial %-4lld failed: %s\n", (long long)t->id, t->error);
        else {
            char took[32];
            et_format_duration(t->train_seconds, took, sizeof took);
            char trials[48] = "";
            if (e->max_trials > 0)
                snprintf(trials, sizeof trials, "%d/%d trials, ", e->admitted, e->max_trials);
            fprintf(stderr, "trial %-4lld rung %d/%d  int8 %s  float32 %s  %.1f ms  (%s%s)\n",
                    (long long)t->id, t->rung + 1, t->rungs, i8, f32,
                    t->latency_ms[ET_PRECISION_INT8], trials, when);
        }
        break;
    case ET_TUNE_EVENT_PROMOTED:
        fprintf(stderr, "trial %-4lld promoted to rung %d/%d (%d epochs)\n", (long long)t->id,
                t->rung + 1, t->rungs, t->rung_epochs);
        break;
    case ET_TUNE_EVENT_PRUNED:
        fprintf(stderr, "trial %-4lld %s: %s\n", (long long)t->id, et_trial_status_name(t->status),
                e->message ? e->message : t->error);
        break;
    default: break;
    }
}

static int print_list(cli *c, et_project *p, int64_t run_id, const char *sort, int limit,
                      bool header);

const char *cli_self_exe(cli *c, char *buf, size_t size)
{
    ssize_t len = readlink("/proc/self/exe", buf, size - 1);
    if (len > 0) {
        buf[len] = '\0';
        return buf;
    }
    return strchr(c->argv0, '/') ? c->argv0 : NULL;
}

static int parse_count(cli *c, const char *opt, const char *v, int lo, int hi, int *out)
{
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        cli_usage_error(c, "tune", "%s '%s': a whole number in %d..%d", opt, v, lo, hi);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int worker(cli *c, const char *id_text, int threads, double deadline)
{
    int64_t id = 0;
    if (!cli_parse_id(id_text, &id))
        return cli_usage_error(c, "tune", "--worker '%s' is not a trial id", id_text);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_progress_set_enabled(false);
    et_status rc = et_tune_worker(p, id, threads, deadline, &err);
    et_project_close(p);
    if (rc == ET_EINTR)
        return 130;
    return rc < 0 ? cli_fail(c, &err) : 0;
}

static int run(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"target", required_argument, NULL, 't'},
        {"engine", required_argument, NULL, 'E'},
        {"targets", required_argument, NULL, 'F'},
        {"max-latency", required_argument, NULL, 'L'},
        {"max-ram", required_argument, NULL, 'R'},
        {"max-rom", required_argument, NULL, 'O'},
        {"trials", required_argument, NULL, 'n'},
        {"time-budget", required_argument, NULL, 'B'},
        {"space", required_argument, NULL, 'S'},
        {"objective", required_argument, NULL, 'o'},
        {"jobs", required_argument, NULL, 'j'},
        {"resume", no_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},
        {"worker", required_argument, NULL, 'W'},
        {"threads", required_argument, NULL, 'T'},
        {"strategy", required_argument, NULL, 'G'},
        {"sampler", required_argument, NULL, 'P'},
        {"deadline", required_argument, NULL, 'D'},
        {0},
    };
    et_tune_options o = et_tune_defaults();
    const char *target = NULL, *targets_file = NULL, *space_arg = NULL, *worker_id = NULL;
    const char *ram_arg = NULL, *rom_arg = NULL, *strategy = NULL, *sampler = NULL;
    int threads = 0;
    double deadline = 0;
    bool help = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_option(c, opt, &help))
            continue;
        et_error e = {0};
        switch (opt) {
        case 't': target = optarg; break;
        case 'E': o.engine = optarg; break;
        case 'F': targets_file = optarg; break;
        case 'L':
            if (et_parse_latency(optarg, &o.max_latency_ms, &e) < 0)
                return cli_usage_error(c, "tune", "--max-latency: %s", e.msg);
            break;
        case 'R': ram_arg = optarg; break;
        case 'O': rom_arg = optarg; break;
        case 'n':
            if (parse_count(c, "--trials", optarg, 1, 100000, &o.max_trials) < 0)
                return 2;
            break;
        case 'B':
            if (et_parse_duration(optarg, &o.time_budget_s, &e) < 0)
                return cli_usage_error(c, "tune", "--time-budget: %s", e.msg);
            break;
        case 'S': space_arg = optarg; break;
        case 'o':
            if (et_tune_objective_parse(optarg, &o.objective, &e) < 0)
                return cli_usage_error(c, "tune", "--%s", e.msg);
            break;
        case 'j':
            if (parse_count(c, "--jobs", optarg, 1, 64, &o.jobs) < 0)
                return 2;
            break;
        case 'r': o.resume = true; break;
        case 's': {
            int seed = 0;
            if (parse_count(c, "--seed", optarg, 0, 2147483647, &seed) < 0)
                return 2;
            o.seed = seed;
            break;
        }
        case 'G':
            /* Plain random search: brackets of one candidate, one rung, its full epochs. */
            if (!strcmp(optarg, "random"))
                o.rungs = 1;
            else if (!strcmp(optarg, "hyperband"))
                o.hyperband = true;
            else if (strcmp(optarg, "halving"))
                return cli_usage_error(c, "tune",
                                       "--strategy '%s': allowed values are halving, "
                                       "hyperband, random",
                                       optarg);
            strategy = optarg;
            break;
        case 'P':
            if (et_tune_sampler_parse(optarg, &o.sampler, &e) < 0)
                return cli_usage_error(c, "tune", "--%s", e.msg);
            sampler = optarg;
            break;
        case 'W': worker_id = optarg; break;
        case 'D': {
            char *end = NULL;
            deadline = strtod(optarg, &end);
            if (!*optarg || *end || !(deadline >= 0))
                return cli_usage_error(c, "tune", "--deadline '%s': Unix seconds", optarg);
            break;
        }
        case 'T':
            if (parse_count(c, "--threads", optarg, 1, 1024, &threads) < 0)
                return 2;
            break;
        default: return cli_usage_error(c, "tune", "unknown option");
        }
    }
    if (help)
        return cli_help("tune");
    if (optind < argc)
        return cli_usage_error(c, "tune",
                               "unexpected argument '%s' (sub-commands: list, show, "
                               "select, plot)",
                               argv[optind]);
    if (worker_id)
        return worker(c, worker_id, threads, deadline);
    if (o.resume && (target || space_arg || o.engine || ram_arg || rom_arg ||
                     o.max_latency_ms > 0 || o.seed >= 0 || strategy || sampler))
        return cli_usage_error(c, "tune",
                               "--resume continues a run with its own target, budgets, space, "
                               "strategy, sampler and seed; give only --jobs, --trials or "
                               "--time-budget with it");
    if (o.rungs == 1 && o.sampler == ET_TUNE_SAMPLER_MODEL && sampler)
        return cli_usage_error(c, "tune",
                               "--sampler model: random search (--strategy random) prunes "
                               "nothing, so there is nothing for a model to learn from; use "
                               "--strategy halving");
    et_error err = {0};
    et_target_catalog *cat = NULL;
    if (cli_load_targets(c, targets_file, &cat, &err) < 0)
        return cli_fail(c, &err);
    if (!o.resume) {
        if (!target) {
            target = ET_PROFILE_DEFAULT_TARGET;
            et_log_info("No --target given: tuning for %s ('edgetrain targets' lists the others)",
                        target);
        }
        if (et_targets_lookup(cat, target, &o.target, &err) < 0) {
            et_targets_destroy(cat);
            return cli_usage_error(c, "tune", "--target: %s", err.msg);
        }
        /* Memory budgets: the target's own unless given ("none" lifts them). */
        const char *args[2] = {ram_arg, rom_arg};
        int64_t *dst[2] = {&o.max_ram_bytes, &o.max_rom_bytes};
        int64_t dflt[2] = {o.target->ram_bytes, o.target->flash_bytes};
        const char *names[2] = {"--max-ram", "--max-rom"};
        for (int k = 0; k < 2; k++) {
            if (!args[k])
                *dst[k] = dflt[k] > 0 ? dflt[k] : 0;
            else if (!strcmp(args[k], "none"))
                *dst[k] = 0;
            else if (et_parse_size(args[k], dst[k], &err) < 0) {
                et_targets_destroy(cat);
                return cli_usage_error(c, "tune", "%s: %s (or 'none')", names[k], err.msg);
            }
        }
        if (o.max_trials == 0 && o.time_budget_s == 0) {
            o.time_budget_s = 30 * 60;
            et_log_info("No --trials or --time-budget given: tuning for 30m (Ctrl-C stops; "
                        "'edgetrain tune --resume' continues)");
        }
    }
    o.catalog = cat;
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0) {
        et_targets_destroy(cat);
        return cli_fail(c, &err);
    }
    et_tune_space *space = NULL;
    et_status rc = ET_OK;
    if (space_arg && !strcmp(space_arg, "current")) {
        et_impulse imp;
        int64_t version = 0;
        rc = et_impulse_current(p, &imp, &version, &err);
        if (rc == ET_OK)
            rc = et_tune_space_around(&imp, &space, &err);
    } else if (space_arg && strcmp(space_arg, "default")) {
        rc = et_tune_space_load(space_arg, &space, &err);
    }
    o.space = space;
    char exe[PATH_MAX];
    o.worker_exe = cli_self_exe(c, exe, sizeof exe);
    et_tune_summary s;
    memset(&s, 0, sizeof s);
    if (rc == ET_OK)
        rc = et_tune_run(p, &o, cli_tune_event, NULL, &s, &err);
    et_tune_space_destroy(space);
    et_targets_destroy(cat);
    if (rc < 0 && s.run_id == 0) {
        et_project_close(p);
        return cli_fail(c, &err);
    }
    int status = rc == ET_EINTR ? 130 : rc < 0 ? cli_exit_code(rc) : 0;
    if (rc < 0)
        fprintf(stderr, "edgetrain: %s\n", err.msg);
    et_tune_run_info info;
    et_error e2 = {0};
    if (et_tune_run_get(p, s.run_id, &info, &e2) < 0) {
        et_project_close(p);
        return cli_fail(c, &e2);
    }
    if (c->json) {
        json_t *best = json_null();
        et_tune_trial *bt = malloc(sizeof *bt);
        if (bt && s.best_trial && et_tune_trial_get(p, s.best_trial, bt, &e2) == ET_OK)
            best = trial_json(bt);
        free(bt);
        json_t *out = json_pack("{s:I,s:b,s:s,s:s,s:f,s:o,s:o,s:o}", "run", (json_int_t)s.run_id,
                                "resumed", s.resumed, "status", info.status, "stop_reason",
                                s.stop_reason, "seconds", s.seconds, "counts",
                                counts_json(s.counts), "best", best, "settings", run_json(&info));
        if (rc < 0)
            json_object_set_new(
                out, "error",
                json_pack("{s:s,s:s}", "code", et_status_str(rc), "message", err.msg));
        cli_print_json(out);
    } else {
        char took[32];
        et_format_duration(s.seconds, took, sizeof took);
        printf("Tuner run %lld %s after %s: %s.\n\n", (long long)s.run_id,
               rc == ET_EINTR ? "interrupted"
               : rc < 0       ? "failed"
                              : "finished",
               took, s.stop_reason);
        print_list(c, p, s.run_id, "objective", 10, true);
        if (rc == ET_EINTR)
            printf("\nContinue with: edgetrain tune --resume\n");
    }
    et_tune_run_info_free(&info);
    et_project_close(p);
    return status;
}

/* ------------------------------------------------------------------------
 * tune list / show / select / plot.
 */
static const char *sort_field;
static et_tune_objective sort_objective;

static double sort_key(const et_tune_trial *t, bool *has)
{
    et_precision pr = et_tune_objective_precision(sort_objective);
    *has = true;
    if (!strcmp(sort_field, "objective"))
        return -et_tune_trial_objective(t, sort_objective);
    if (!strcmp(sort_field, "int8-accuracy"))
        return t->trained && t->has_int8 ? -t->val_accuracy[ET_PRECISION_INT8] : (*has = false);
    if (!strcmp(sort_field, "float32-accuracy"))
        return t->trained ? -t->val_accuracy[ET_PRECISION_FLOAT32] : (*has = false);
    if (!strcmp(sort_field, "latency"))
        return t->profiled ? t->latency_ms[pr] : (*has = false);
    if (!strcmp(sort_field, "ram"))
        return t->profiled ? (double)t->ram_bytes[pr] : (*has = false);
    if (!strcmp(sort_field, "rom"))
        return t->profiled ? (double)t->rom_bytes[pr] : (*has = false);
    if (!strcmp(sort_field, "time"))
        return t->train_seconds;
    return (double)t->id;
}

static int by_sort(const void *a, const void *b)
{
    const et_tune_trial *x = a, *y = b;
    bool hx, hy;
    double kx = sort_key(x, &hx), ky = sort_key(y, &hy);
    if (!strcmp(sort_field, "objective")) {
        hx = kx <= 0 && et_tune_trial_objective(x, sort_objective) >= 0;
        hy = ky <= 0 && et_tune_trial_objective(y, sort_objective) >= 0;
    }
    if (hx != hy)
        return hx ? -1 : 1;
    if (hx && kx != ky)
        return kx < ky ? -1 : 1;
    if (hx && !strcmp(sort_field, "objective")) {
        /* Equally accurate: the faster first, then the smaller (as tune's "best"). */
        et_precision pr = et_tune_objective_precision(sort_objective);
        if (x->latency_ms[pr] != y->latency_ms[pr])
            return x->latency_ms[pr] < y->latency_ms[pr] ? -1 : 1;
        if (x->ram_bytes[pr] != y->ram_bytes[pr])
            return x->ram_bytes[pr] < y->ram_bytes[pr] ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

static const char *const sort_fields[] = {
    "objective", "int8-accuracy", "float32-accuracy", "latency", "ram", "rom", "time", "id", NULL};

static int print_list(cli *c, et_project *p, int64_t run_id, const char *sort, int limit,
                      bool header)
{
    et_error err = {0};
    et_tune_run_info run;
    if (et_tune_run_get(p, run_id, &run, &err) < 0)
        return cli_fail(c, &err);
    et_tune_trial *trials = NULL;
    size_t n = 0;
    if (et_tune_trials_list(p, run.id, &trials, &n, &err) < 0) {
        et_tune_run_info_free(&run);
        return cli_fail(c, &err);
    }
    sort_field = sort;
    sort_objective = run.objective;
    qsort(trials, n, sizeof *trials, by_sort);
    et_precision pr = et_tune_objective_precision(run.objective);
    if (c->json && !header) {
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, trial_json(&trials[i]));
        cli_print_json(
            json_pack("{s:o,s:o,s:s}", "run", run_json(&run), "trials", list, "sort", sort));
    } else {
        char lat[32] = "no limit", ram[32], rom[32], took[32];
        if (run.max_latency_ms > 0)
            snprintf(lat, sizeof lat, "%.4g ms", run.max_latency_ms);
        cli_format_bytes(run.max_ram_bytes, ram, sizeof ram);
        cli_format_bytes(run.max_rom_bytes, rom, sizeof rom);
        et_format_duration(run.seconds, took, sizeof took);
        if (!header)
            printf("Tuner run %lld (%s%s%s): ", (long long)run.id, run.status,
                   run.stop_reason[0] ? ", " : "", run.stop_reason);
        printf("target %s (%s), objective %s, %s;\nbudgets: latency %s, RAM %s, flash %s (%s "
               "model).\n",
               run.target, run.engine, et_tune_objective_name(run.objective),
               strategy_name(&run, true), lat, ram, rom, et_precision_name(pr));
        printf("%zu trials in %s: %d done, %d pruned (stopped early), %d skipped (over a "
               "budget or the time left), %d failed",
               n, took, run.counts[ET_TRIAL_DONE], run.counts[ET_TRIAL_PRUNED],
               run.counts[ET_TRIAL_SKIPPED], run.counts[ET_TRIAL_FAILED]);
        int open = run.counts[ET_TRIAL_PENDING] + run.counts[ET_TRIAL_RUNNING] +
                   run.counts[ET_TRIAL_WAITING];
        if (open)
            printf(", %d unfinished", open);
        printf(".\n\n");
        printf("  %5s %-8s %-6s %8s %8s %10s %10s %10s  %-15s %s\n", "ID", "STATUS", "EPOCHS",
               "INT8", "FLOAT32", "LATENCY", "RAM", "FLASH", "INPUT", "MODEL");
        size_t shown = 0;
        for (size_t i = 0; i < n && (limit <= 0 || (int)shown < limit); i++) {
            const et_tune_trial *t = &trials[i];
            if (header && !t->trained)
                continue; /* the summary after a run shows what was trained */
            char f32[16], i8[16], l[24] = "-", r[24] = "-", f[24] = "-", input[64], model[160],
                                  rung[16];
            pct(t, ET_PRECISION_FLOAT32, f32, sizeof f32);
            pct(t, ET_PRECISION_INT8, i8, sizeof i8);
            if (t->profiled) {
                snprintf(l, sizeof l, "%.1f ms", t->latency_ms[pr]);
                cli_format_bytes(t->ram_bytes[pr], r, sizeof r);
                cli_format_bytes(t->rom_bytes[pr], f, sizeof f);
            }
            cli_describe_input(&t->impulse, input, sizeof input);
            cli_describe_model(&t->impulse, model, sizeof model);
            if (t->trained)
                snprintf(rung, sizeof rung, "%d/%d", t->epochs, t->impulse.epochs);
            else
                snprintf(rung, sizeof rung, "-");
            printf("%s %5lld %-8s %-6s %8s %8s %10s %10s %10s  %-15s %s", t->pareto ? "*" : " ",
                   (long long)t->id, et_trial_status_name(t->status), rung, i8, f32, l, r, f, input,
                   model);
            if (!t->trained && t->error[0])
                printf("  (%.60s%s)", t->error, strlen(t->error) > 60 ? "..." : "");
            printf("\n");
            shown++;
        }
        if (shown < n && limit > 0)
            printf("  ... 'edgetrain tune list' shows all %zu\n", n);
        printf("\n* on the Pareto front: no other trial is at least as accurate with at most its "
               "latency and RAM.\nAccuracy is on the validation split; latency, RAM and flash are "
               "those of the %s model on %s.\n",
               et_precision_name(pr), run.target);
        printf("Next: 'edgetrain tune show ID' shows a trial; 'edgetrain tune select ID' makes it "
               "the project's impulse, then 'edgetrain train'.\n");
    }
    free(trials);
    et_tune_run_info_free(&run);
    return 0;
}

static int list(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONG_OPTIONS,
                                             {"sort", required_argument, NULL, 's'},
                                             {"run", required_argument, NULL, 'r'},
                                             {0}};
    const char *sort = "objective";
    int64_t run_id = 0;
    bool help = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_option(c, opt, &help))
            continue;
        if (opt == 's') {
            sort = NULL;
            for (int i = 0; sort_fields[i]; i++)
                if (!strcmp(optarg, sort_fields[i]))
                    sort = sort_fields[i];
            if (!sort)
                return cli_usage_error(c, "tune",
                                       "--sort '%s': allowed values are objective, int8-accuracy, "
                                       "float32-accuracy, latency, ram, rom, time, id",
                                       optarg);
        } else if (opt == 'r') {
            if (!cli_parse_id(optarg, &run_id))
                return cli_usage_error(c, "tune", "--run '%s' is not a run id", optarg);
        } else {
            return cli_usage_error(c, "tune", "unknown option");
        }
    }
    if (help)
        return cli_help("tune");
    if (optind < argc)
        return cli_usage_error(c, "tune", "unexpected argument '%s'", argv[optind]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    int status = print_list(c, p, run_id, sort, 0, false);
    et_project_close(p);
    return status;
}

/* show/select: one positional trial id and the common options. */
static int one_trial(cli *c, int argc, char **argv, const char *sub, int64_t *id)
{
    int rc = cli_parse_plain(c, "tune", argc, argv);
    if (rc >= 0)
        return rc;
    if (optind + 1 != argc)
        return cli_usage_error(c, "tune", "tune %s needs one trial id", sub);
    if (!cli_parse_id(argv[optind], id))
        return cli_usage_error(c, "tune", "'%s' is not a trial id", argv[optind]);
    return -1;
}

static int show(cli *c, int argc, char **argv)
{
    int64_t id = 0;
    int rc = one_trial(c, argc, argv, "show", &id);
    if (rc >= 0)
        return rc;
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_tune_trial *t = malloc(sizeof *t);
    et_tune_run_info run;
    memset(&run, 0, sizeof run);
    if (!t)
        err = (et_error){ET_ENOMEM, "out of memory"};
    if (!t || et_tune_trial_get(p, id, t, &err) < 0 ||
        et_tune_run_get(p, t->run_id, &run, &err) < 0) {
        free(t);
        et_project_close(p);
        return cli_fail(c, &err);
    }
    if (c->json) {
        cli_print_json(trial_json(t));
    } else {
        char took[32], est[32];
        et_format_duration(t->train_seconds, took, sizeof took);
        et_format_duration(t->estimated_seconds, est, sizeof est);
        printf("Trial %lld of tuner run %lld: %s%s\n", (long long)t->id, (long long)t->run_id,
               et_trial_status_name(t->status), t->pareto ? " (on the Pareto front)" : "");
        if (t->error[0])
            printf("  %s\n", t->error);
        printf("  bracket %d, rung %d of %d; %d of %d epochs trained; seed %lld; %d attempt%s; "
               "training took %s\n",
               t->bracket, t->rung + 1, t->rungs, t->epochs, t->full_epochs, (long long)t->seed,
               t->attempts, t->attempts == 1 ? "" : "s", took);
        if (t->drawn_epochs > t->full_epochs)
            printf("  its run was fitted to the time budget: %d epochs, where the space drew %d "
                   "(after 'tune select', 'train --epochs %d' trains the longer run)\n",
                   t->full_epochs, t->drawn_epochs, t->drawn_epochs);
        if (t->trained) {
            printf("  validation accuracy: float32 %.2f%% (loss %.4f)",
                   100 * t->val_accuracy[ET_PRECISION_FLOAT32], t->val_loss[ET_PRECISION_FLOAT32]);
            if (t->has_int8)
                printf(", int8 %.2f%% (loss %.4f)", 100 * t->val_accuracy[ET_PRECISION_INT8],
                       t->val_loss[ET_PRECISION_INT8]);
            printf("\n");
        }
        if (t->profiled) {
            printf("  on %s (%s):\n", run.target, run.engine);
            for (int pr = 0; pr < ET_PRECISION_COUNT; pr++) {
                char r[24], f[24];
                cli_format_bytes(t->ram_bytes[pr], r, sizeof r);
                cli_format_bytes(t->rom_bytes[pr], f, sizeof f);
                printf("    %-8s latency %.2f ms, RAM %s, flash %s\n",
                       et_precision_name((et_precision)pr), t->latency_ms[pr], r, f);
            }
            printf("  %lld parameters, %lld MACs\n", (long long)t->params, (long long)t->macs);
        }
        if (t->from_epoch > 0)
            printf("  warm start: its last rung went on from the weights after epoch %d of the "
                   "rung before\n",
                   t->from_epoch);
        printf("  rungs: %s\n", t->history);
        char *pretty = NULL;
        json_t *j = json_loads(t->impulse_json, 0, NULL);
        if (j)
            pretty = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        json_decref(j);
        printf("Impulse:\n%s\n", pretty ? pretty : t->impulse_json);
        free(pretty);
        if (t->trained)
            printf("Next: edgetrain tune select %lld\n", (long long)t->id);
    }
    et_tune_run_info_free(&run);
    free(t);
    et_project_close(p);
    return 0;
}

static int select_trial(cli *c, int argc, char **argv)
{
    int64_t id = 0;
    int rc = one_trial(c, argc, argv, "select", &id);
    if (rc >= 0)
        return rc;
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    int64_t version = 0;
    et_tune_trial *t = malloc(sizeof *t);
    if (!t || et_tune_select(p, id, &version, t, &err) < 0) {
        free(t);
        et_project_close(p);
        return cli_fail(c, t ? &err : &(et_error){ET_ENOMEM, "out of memory"});
    }
    /* Versions are numbered in order: the one before is what it replaced. */
    int64_t before = version - 1;
    et_impulse imp;
    et_impulse_current(p, &imp, &version, &err);
    if (c->json) {
        char *s = et_impulse_to_json(&imp, false);
        cli_print_json(json_pack("{s:I,s:I,s:I,s:o}", "trial", (json_int_t)id, "version",
                                 (json_int_t)version, "previous_version", (json_int_t)before,
                                 "impulse", impulse_json(s ? s : "null")));
        free(s);
    } else {
        printf("Impulse version %lld is trial %lld's (note \"tune select %lld\").\n",
               (long long)version, (long long)id, (long long)id);
        if (before > 0)
            printf("The previous impulse stays in the history: 'edgetrain impulse revert %lld' "
                   "goes back.\n",
                   (long long)before);
        printf("Next: edgetrain train   (trains it in full, %d epochs, with the int8 "
               "fallbacks)\n",
               imp.epochs);
        if (t->drawn_epochs > t->full_epochs)
            printf("(The tuner fitted its run to the time budget: %d of the %d epochs drawn. The "
                   "%d epochs give its figures again; 'edgetrain train --epochs %d' trains the "
                   "longer run.)\n",
                   t->full_epochs, t->drawn_epochs, t->full_epochs, t->drawn_epochs);
    }
    free(t);
    et_project_close(p);
    return 0;
}

static int plot(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONG_OPTIONS,
                                             {"out", required_argument, NULL, 'o'},
                                             {"png", required_argument, NULL, 'p'},
                                             {"run", required_argument, NULL, 'r'},
                                             {0}};
    const char *out = "tuner.svg", *png = NULL;
    int64_t run_id = 0;
    bool help = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_option(c, opt, &help))
            continue;
        if (opt == 'o')
            out = optarg;
        else if (opt == 'p')
            png = optarg;
        else if (opt == 'r') {
            if (!cli_parse_id(optarg, &run_id))
                return cli_usage_error(c, "tune", "--run '%s' is not a run id", optarg);
        } else
            return cli_usage_error(c, "tune", "unknown option");
    }
    if (help)
        return cli_help("tune");
    if (optind < argc)
        return cli_usage_error(c, "tune", "unexpected argument '%s'", argv[optind]);
    size_t ol = strlen(out);
    bool out_png = ol > 4 && !strcmp(out + ol - 4, ".png");
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_tune_run_info run;
    et_tune_trial *trials = NULL;
    size_t n = 0;
    et_status rc = et_tune_run_get(p, run_id, &run, &err);
    if (rc == ET_OK)
        rc = et_tune_trials_list(p, run.id, &trials, &n, &err);
    if (rc == ET_OK)
        rc = out_png ? et_tune_plot_png(out, &run, trials, n, 1200, 800, &err)
                     : et_tune_plot_svg(out, &run, trials, n, &err);
    if (rc == ET_OK && png)
        rc = et_tune_plot_png(png, &run, trials, n, 1200, 800, &err);
    size_t plotted = 0;
    for (size_t i = 0; i < n; i++)
        plotted += trials[i].trained && trials[i].profiled;
    free(trials);
    if (run.id)
        et_tune_run_info_free(&run);
    et_project_close(p);
    if (rc < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:I,s:s?,s:s?,s:I}", "run", (json_int_t)run.id, "svg",
                                 out_png ? NULL : out, "png", out_png ? out : png, "trials",
                                 (json_int_t)plotted));
    else
        printf("Wrote %s%s%s (%zu trained trials of run %lld)\n", out, png ? " and " : "",
               png ? png : "", plotted, (long long)run.id);
    return 0;
}

int cmd_tune(cli *c, int argc, char **argv)
{
    if (argc > 1 && argv[1][0] != '-') {
        const char *sub = argv[1];
        c->argv_for_errors = argv + 1;
        if (!strcmp(sub, "list"))
            return list(c, argc - 1, argv + 1);
        if (!strcmp(sub, "show"))
            return show(c, argc - 1, argv + 1);
        if (!strcmp(sub, "select"))
            return select_trial(c, argc - 1, argv + 1);
        if (!strcmp(sub, "plot"))
            return plot(c, argc - 1, argv + 1);
        return cli_usage_error(c, "tune", "unknown sub-command '%s' (list, show, select, plot)",
                               sub);
    }
    return run(c, argc, argv);
}
