/* edgetrain: the command-line front end. Parses the global options, picks the
 * command, and turns its result into an exit status. The only file that exits. */
#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_command commands[] = {
    {"init", cmd_init, "create a project folder", "edgetrain init DIR"},
    {"import", cmd_import, "import labelled images (folders, files, CSV, IDX)",
     "edgetrain import PATH... [--label L] [--category training|testing] [--split 80/20]\n"
     "                 [--label-names A,B,...] [--strict] [--json]"},
    {"data", cmd_data, "counts per label and category, sizes, problems",
     "edgetrain data [--validate] [--forget-problems] [--json]\n"
     "       edgetrain data list [--label L] [--category training|testing] [--json]"},
    {"relabel", cmd_relabel, "change a sample's label", "edgetrain relabel ID LABEL [--json]"},
    {"remove", cmd_remove, "remove a sample from the project", "edgetrain remove ID [--json]"},
    {"move", cmd_move, "move a sample to training or testing",
     "edgetrain move ID training|testing [--json]"},
    {"impulse", cmd_impulse, "show, change, version and preview the impulse",
     "edgetrain impulse [show] [--json]\n"
     "       edgetrain impulse set KEY=VALUE... (e.g. input.width=96 processing.color=grayscale\n"
     "                             learning.model=mobilenetv2 learning.alpha=0.35)\n"
     "       edgetrain impulse load FILE | save FILE | history | revert VERSION\n"
     "       edgetrain impulse preview SAMPLE_ID --out DIR"},
    {"features", cmd_features, "generate the processed features of every sample (cached)",
     "edgetrain features [--json]"},
    {"explore", cmd_explore, "map every sample to 2-D by similarity (SVG, PNG, CSV)",
     "edgetrain explore [--method tsne|pca] [--category training|testing|all] [--limit N]\n"
     "                  [--out map.svg] [--png map.png] [--csv coords.csv] [--seed N]\n"
     "                  [--perplexity P] [--iterations N] [--embedding features|model] [--json]"},
    {"model", cmd_model, "the layers, shapes, parameters and MACs of the impulse's model",
     "edgetrain model [summary] [--json]"},
    {"train", cmd_train, "train the impulse's model; stores a model version",
     "edgetrain train [--model conv|mobilenetv1|mobilenetv2] [--alpha A] [--epochs N]\n"
     "                [--batch-size N] [--learning-rate X] [--early-stopping N]\n"
     "                [--optimizer adam|sgd] [--schedule constant|cosine]\n"
     "                [--label-smoothing X] [--no-int8] [--calibration minmax|mse]\n"
     "                [--int8-max-drop X] [--qat] [--qat-epochs N] [--time-limit DURATION]\n"
     "                [--estimate] [--json]"},
    {"test", cmd_test, "evaluate a model version on the testing samples",
     "edgetrain test [--model ID] [--float32|--int8] [--json]"},
    {"targets", cmd_targets, "the device catalog: clocks, memories, cost figures and sources",
     "edgetrain targets [NAME] [--targets FILE] [--json]"},
    {"profile", cmd_profile, "latency, peak RAM and flash of the model on a device",
     "edgetrain profile [--target NAME] [--model ID | --impulse | --variants] [--engine NAME]\n"
     "                  [--targets FILE] [--verbose] [--json]"},
    {"tune", cmd_tune, "search impulses that fit a device's budgets; list, show, select, plot",
     "edgetrain tune [--target NAME] [--max-latency 100ms] [--max-ram 128k|none]\n"
     "               [--max-rom 512k|none] [--trials N] [--time-budget 1h]\n"
     "               [--space FILE|current|default] [--objective int8-accuracy|float32-accuracy]\n"
     "               [--strategy halving|hyperband|random] [--sampler model|random]\n"
     "               [--jobs N] [--seed S] [--engine NAME] [--targets FILE] [--json]\n"
     "       edgetrain tune --resume [--jobs N] [--trials N] [--time-budget 1h] [--json]\n"
     "       edgetrain tune list [--sort objective|int8-accuracy|float32-accuracy|latency|ram|rom|\n"
     "                            time|id] [--run N] [--json]\n"
     "       edgetrain tune show ID [--json]\n"
     "       edgetrain tune select ID [--json]\n"
     "       edgetrain tune plot [--out tuner.svg|tuner.png] [--png FILE] [--run N] [--json]"},
    {"settings", cmd_settings, "the project's settings: show, or set KEY=VALUE",
     "edgetrain settings [time_limit=20m|none] [--json]"},
    {"demo", cmd_demo, "the workflow on Fashion-MNIST (Debian dataset-fashion-mnist)",
     "edgetrain [-C DIR] demo [--dir DIR] [--source DIR] [--epochs N] [--no-tune]\n"
     "                        [--tune-time 3m] [--tune-trials N] [--json]"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f)
{
    fprintf(f, "usage: edgetrain [-C DIR] [--json] [-q] COMMAND [ARGS]\n\n"
               "Train image classifiers for microcontrollers on your own machine.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nOptions:\n"
               "  -C DIR     run in the project at DIR (default: this folder or a parent)\n"
               "  --json     print exactly one JSON object on stdout\n"
               "  -q         print no progress bars or notes on stderr (problems still are)\n"
               "  --version  print the version\n\n"
               "'edgetrain COMMAND --help' shows a command's options.\n");
}

int cli_help(const char *cmd)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, cmd)) {
            printf("usage: %s\n\n%s\n", commands[i].usage, commands[i].summary);
            return 0;
        }
    fprintf(stderr, "edgetrain: no command '%s' (see 'edgetrain --help')\n", cmd);
    return 2;
}

/* A usage error found before any command runs. */
static int main_usage_error(cli *c, const char *fmt, const char *arg)
{
    et_error err = {.code = ET_EINVAL};
    snprintf(err.msg, sizeof err.msg, fmt, arg);
    cli_fail(c, &err);
    return 2;
}

int cli_exit_code(et_status rc)
{
    switch (rc) {
    case ET_OK: return 0;
    case ET_EINVAL:
    case ET_ENOTFOUND:
    case ET_EEXIST:
    case ET_EVERSION: return 2;
    case ET_EINTR: return 130;
    default: return 1;
    }
}

int cli_fail(cli *c, const et_error *err)
{
    const char *msg = err->msg[0] ? err->msg : et_status_str(err->code);
    fprintf(stderr, "edgetrain: %s\n", msg);
    if (c->json) {
        json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", et_status_str(err->code),
                              "message", msg);
        cli_print_json(o);
    }
    return cli_exit_code(err->code);
}

int cli_usage_error(cli *c, const char *cmd, const char *fmt, ...)
{
    et_error err = {.code = ET_EINVAL};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    if (c->bad_option[0] && !strcmp(err.msg, "unknown option")) {
        snprintf(err.msg, sizeof err.msg, "unknown option '%s' for %s", c->bad_option, cmd);
        c->bad_option[0] = '\0';
    }
    cli_fail(c, &err);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, cmd))
            fprintf(stderr, "usage: %s\n", commands[i].usage);
    return 2;
}

et_status cli_open(cli *c, et_project **p, et_error *err)
{
    return et_project_open(c->dir, p, err);
}

void cli_print_json(json_t *obj)
{
    if (!obj) {
        fputs("{\"error\": {\"code\": \"out of memory\", \"message\": \"out of memory\"}}\n",
              stdout);
        return;
    }
    json_dumpf(obj, stdout, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(obj);
}

bool cli_common_option(cli *c, int opt, bool *help)
{
    if (opt == 'J') {
        c->json = true;
        et_progress_set_enabled(false);
        return true;
    }
    if (opt == 'h') {
        *help = true;
        return true;
    }
    if (opt == '?') {
        /* getopt is silenced (opterr = 0): name the option here, once. */
        if (optopt)
            snprintf(c->bad_option, sizeof c->bad_option, "-%c", optopt);
        else
            snprintf(c->bad_option, sizeof c->bad_option, "%s", c->argv_for_errors[optind - 1]);
    }
    return false;
}

bool cli_parse_id(const char *s, int64_t *id)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v <= 0)
        return false;
    *id = v;
    return true;
}

int cli_parse_plain(cli *c, const char *cmd, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONG_OPTIONS, {0}};
    bool help = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
        if (!cli_common_option(c, o, &help))
            return cli_usage_error(c, cmd, "unknown option");
    return help ? cli_help(cmd) : -1;
}

int cli_open_sample(cli *c, const char *cmd, const char *id_arg, et_project **p, et_sample *s)
{
    int64_t id = 0;
    if (!cli_parse_id(id_arg, &id))
        return cli_usage_error(c, cmd, "'%s' is not a sample id", id_arg);
    et_error err = {0};
    if (cli_open(c, p, &err) < 0)
        return cli_fail(c, &err);
    if (et_sample_get(*p, id, s, &err) < 0) {
        et_project_close(*p);
        *p = NULL;
        return cli_fail(c, &err);
    }
    return -1;
}

/* Whether other processes are running now: /proc/stat's procs_running
 * counts this one too. Unknown counts as busy. */
static bool machine_busy(void)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    long running = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "procs_running %ld", &running) == 1)
            break;
    if (f)
        fclose(f);
    return running < 0 || running > 1;
}

/* OpenMP threads that sleep rather than spin while they wait when the
 * machine is busy, unless the user chose (OMP_WAIT_POLICY set, to anything).
 * Spinning threads steal cores from other work and from each other; sleeping
 * ones wake up later. Measured with build/bench_train_throughput at batch 32
 * on the 2-core development machine (2026-12-04, best of several runs):
 *   with another training process running: conv net 3,221 samples/s spinning
 *   (libgomp's default), 9,034 passive; MobileNetV2 a0.35 24 and 215;
 *   with `yes > /dev/null` running: MobileNetV2 184-227 and 317-335;
 *   idle: MobileNetV2 about 690 and 545, conv net 18,000 and 15,700.
 * So: passive when other processes are running as the command starts,
 * libgomp's default when the machine is idle. libgomp reads the variable
 * once, when it is loaded, before main: so the program runs itself again
 * with it set (the variable, now set, ends the loop). When that cannot be
 * done, it goes on as it is. The tuner sets passive for its workers. */
static void omp_wait_policy(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || !machine_busy() ||
        setenv("OMP_WAIT_POLICY", "passive", 0) != 0)
        return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
    omp_wait_policy(argv);
    cli c = {.dir = ".", .argv0 = argv[0]};
    size_t used = 0;
    for (int i = 0; i < argc && used + 2 < sizeof c.command_line; i++) {
        int w = snprintf(c.command_line + used, sizeof c.command_line - used, "%s%s",
                         i ? " " : "", i ? argv[i] : "edgetrain");
        if (w < 0)
            break;
        used += (size_t)w;
    }
    int i = 1;
    /* --json anywhere before the command applies to errors found here too. */
    for (int k = 1; k < argc && argv[k][0] == '-'; k++)
        if (!strcmp(argv[k], "--json"))
            c.json = true;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-C")) {
            if (i + 1 >= argc)
                return main_usage_error(&c, "%s needs a folder", "-C");
            c.dir = argv[++i];
        } else if (!strncmp(a, "-C", 2)) {
            c.dir = a + 2;
        } else if (!strcmp(a, "--json")) {
            c.json = true;
            et_progress_set_enabled(false);
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            et_log_set_level(ET_LOG_WARN);
        } else if (!strcmp(a, "--version")) {
            printf("edgetrain %s\n", ET_VERSION_STRING);
            return 0;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_usage(stdout);
            return 0;
        } else {
            print_usage(stderr);
            return main_usage_error(&c, "unknown option '%s'", a);
        }
    }
    if (i >= argc) {
        print_usage(stderr);
        return main_usage_error(&c, "%s", "no command given");
    }
    const char *name = argv[i];
    if (!strcmp(name, "help")) {
        if (i + 1 < argc)
            return cli_help(argv[i + 1]);
        print_usage(stdout);
        return 0;
    }
    for (size_t k = 0; k < N_COMMANDS; k++) {
        if (!strcmp(commands[k].name, name)) {
            et_interrupt_install();
            optind = 0; /* glibc: reinitialise getopt for the command's own options */
            opterr = 0; /* bad options are reported by cli_usage_error */
            c.argv_for_errors = argv + i;
            return commands[k].run(&c, argc - i, argv + i);
        }
    }
    return main_usage_error(&c, "unknown command '%s' (see 'edgetrain --help')", name);
}
