/* What every command of the edgetrain CLI shares. */
#ifndef ET_CLI_H
#define ET_CLI_H

#include "edgetrain/edgetrain.h"
#include "edgetrain/profile.h"

#include <jansson.h>

typedef struct cli {
    const char *dir;   /* -C DIR, or "." */
    bool json;         /* --json: exactly one JSON object on stdout */
    const char *argv0;
    char command_line[2048]; /* recorded with imports */
    char **argv_for_errors;  /* the command's argv, to name a bad option */
    char bad_option[128];    /* set by cli_common_option when getopt saw one */
} cli;

typedef struct cli_command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
    const char *summary;
    const char *usage;
} cli_command;

int cmd_init(cli *c, int argc, char **argv);
int cmd_import(cli *c, int argc, char **argv);
int cmd_data(cli *c, int argc, char **argv);
int cmd_relabel(cli *c, int argc, char **argv);
int cmd_remove(cli *c, int argc, char **argv);
int cmd_move(cli *c, int argc, char **argv);
int cmd_demo(cli *c, int argc, char **argv);
int cmd_impulse(cli *c, int argc, char **argv);
int cmd_features(cli *c, int argc, char **argv);
int cmd_explore(cli *c, int argc, char **argv);
int cmd_model(cli *c, int argc, char **argv);
int cmd_train(cli *c, int argc, char **argv);
int cmd_test(cli *c, int argc, char **argv);
int cmd_targets(cli *c, int argc, char **argv);
int cmd_profile(cli *c, int argc, char **argv);
int cmd_tune(cli *c, int argc, char **argv);
int cmd_settings(cli *c, int argc, char **argv);

/* The project's time_limit setting in seconds (0: none). ET_ECORRUPT when it
 * is not a duration. */
et_status cli_time_limit_setting(et_project *p, double *seconds, et_error *err);

/* Exit status for a library status: 0 ok, 1 the job failed, 2 bad usage or
 * bad input, 130 interrupted. */
int cli_exit_code(et_status rc);

/* Reports err (on stderr, and as {"error": ...} on stdout under --json) and
 * returns the exit status for it. */
int cli_fail(cli *c, const et_error *err);

/* A usage error for command cmd: prints the message and the usage line. Returns 2. */
int cli_usage_error(cli *c, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints the usage of a command on stdout. Returns 0. */
int cli_help(const char *cmd);

/* Opens the project at -C DIR (or the current folder) or a parent of it. */
et_status cli_open(cli *c, et_project **p, et_error *err);

/* Prints obj as one line of JSON on stdout and releases it. */
void cli_print_json(json_t *obj);

/* Handles the options every command takes (--json, -h/--help) inside a
 * command's getopt loop: returns true when opt was one of them. Sets *help. */
bool cli_common_option(cli *c, int opt, bool *help);

/* Parses a positive sample id. */
bool cli_parse_id(const char *s, int64_t *id);

/* For commands that take only the common options: parses them (leaving
 * optind at the first argument) and returns -1 to go on, or the exit status
 * to return (after --help or a usage error). */
int cli_parse_plain(cli *c, const char *cmd, int argc, char **argv);

/* For commands about one sample: parses ID, opens the project and reads the
 * sample. Returns -1 to go on (then *p is open and the caller closes it), or
 * the exit status to return. */
int cli_open_sample(cli *c, const char *cmd, const char *id_arg, et_project **p, et_sample *s);

/* getopt_long entries shared by every command. */
#define CLI_COMMON_LONG_OPTIONS {"json", no_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'}

/* Sizes and clocks for people: "640 KiB", "2 MiB", "no limit" (0); "120 MHz", "1.2 GHz". */
void cli_format_bytes(int64_t n, char *out, size_t size);
void cli_format_clock(double hz, char *out, size_t size);

/* The device catalog: built in, the project's targets.json when run in a
 * project, then file (--targets) when given. */
et_status cli_load_targets(cli *c, const char *file, et_target_catalog **cat, et_error *err);

/* Problems printed on stderr, at most this many, then a count. */
#define CLI_MAX_PRINTED_PROBLEMS 50

/* One line per training epoch on stderr (an et_epoch_fn; ctx unused). */
void cli_print_epoch(void *ctx, const et_epoch_stats *s);

/* The tuner's progress lines on stderr (an et_tune_event_fn; ctx unused;
 * cmd_tune.c). */
void cli_tune_event(void *ctx, const et_tune_event *e);
/* This program's path, for the tuner's worker processes (/proc/self/exe,
 * else argv[0] when it has a '/'), in buf; NULL when neither is known. */
const char *cli_self_exe(cli *c, char *buf, size_t size);
/* An impulse in a few words, as 'tune list' shows it: the learning block
 * ("conv 16,32 k3 d32 lr0.001 aug") and the input ("28x28 gray"). */
void cli_describe_model(const et_impulse *imp, char *out, size_t n);
void cli_describe_input(const et_impulse *imp, char *out, size_t n);

/* Metrics (accuracy, confusion matrix, per-class figures) as text on stdout. */
/* float32 vs int8 accuracy and agreement, one line. */
void cli_print_precision_summary(const et_metrics *f32, const et_metrics *q8, double agreement);
void cli_print_metrics(const et_metrics *m, const char *const *labels);

/* JSON for the data report (the object `data --json` prints). */
json_t *cli_report_json(const et_data_report *r);
/* The data report as text on stdout. */
void cli_report_print(const et_data_report *r);

#endif
