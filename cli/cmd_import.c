/* edgetrain import PATH... [--label L] [--category C] [--split 80/20]
 *                  [--label-names A,B,...] [--strict] */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct problems_out {
    cli *c;
    json_t *list;     /* under --json */
    size_t printed;
    size_t total;
} problems_out;

static void on_problem(void *ctx, const et_problem *pr)
{
    problems_out *o = ctx;
    o->total++;
    if (o->list)
        json_array_append_new(o->list, json_pack("{s:s,s:s,s:s}", "file", pr->file, "kind",
                                                 pr->kind, "message", pr->message));
    if (o->printed < CLI_MAX_PRINTED_PROBLEMS) {
        /* Messages that already start with the file name are printed as they are. */
        if (!strncmp(pr->message, pr->file, strlen(pr->file)))
            fprintf(stderr, "skipped [%s] %s\n", pr->kind, pr->message);
        else
            fprintf(stderr, "skipped [%s] %s: %s\n", pr->kind, pr->file, pr->message);
        o->printed++;
    }
}

/* "80/20" (training/testing, summing to 100) -> testing fraction 0.2. */
static bool parse_split(const char *s, double *test_fraction)
{
    char *end = NULL;
    double train = strtod(s, &end);
    if (end == s || *end != '/')
        return false;
    const char *t = end + 1;
    double test = strtod(t, &end);
    if (end == t || *end || train < 0 || test < 0 || train + test < 99.999 || train + test > 100.001)
        return false;
    *test_fraction = test / 100.0;
    return true;
}

/* Splits "A,B,C" into a malloc'ed array of pointers into the (modified) string. */
static const char **split_names(char *s, size_t *n)
{
    size_t cap = 1;
    for (const char *q = s; *q; q++)
        cap += *q == ',';
    const char **names = malloc(cap * sizeof *names);
    if (!names)
        return NULL;
    *n = 0;
    for (char *tok = s;;) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        names[(*n)++] = tok;
        if (!comma)
            break;
        tok = comma + 1;
    }
    return names;
}

int cmd_import(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"label", required_argument, NULL, 'l'},
        {"category", required_argument, NULL, 'c'},
        {"split", required_argument, NULL, 's'},
        {"label-names", required_argument, NULL, 'n'},
        {"strict", no_argument, NULL, 'S'},
        {0},
    };
    et_import_options opt = et_import_defaults();
    opt.arguments = c->command_line;
    char *names_arg = NULL;
    bool help = false;
    int o;
    while ((o = getopt_long(argc, argv, "hl:c:s:", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        switch (o) {
        case 'l': opt.label = optarg; break;
        case 'c':
            if (et_category_parse(optarg, &opt.category) < 0)
                return cli_usage_error(c, "import", "--category '%s': use training or testing",
                                       optarg);
            break;
        case 's':
            if (!parse_split(optarg, &opt.test_fraction))
                return cli_usage_error(c, "import",
                                       "--split '%s': use TRAIN/TEST percentages summing to 100, "
                                       "e.g. 80/20",
                                       optarg);
            break;
        case 'n': names_arg = optarg; break;
        case 'S': opt.strict = true; break;
        default: return cli_usage_error(c, "import", "unknown option");
        }
    }
    if (help)
        return cli_help("import");
    if (optind >= argc)
        return cli_usage_error(c, "import", "give at least one file or folder to import");
    const char **names = NULL;
    char *names_copy = NULL;
    if (names_arg) {
        names_copy = strdup(names_arg);
        names = names_copy ? split_names(names_copy, &opt.n_label_names) : NULL;
        if (!names) {
            free(names_copy);
            et_error e = {.code = ET_ENOMEM, .msg = "out of memory"};
            return cli_fail(c, &e);
        }
        opt.label_names = names;
        for (size_t i = 0; i < opt.n_label_names; i++) {
            et_error e = {0};
            if (et_label_check(names[i], &e) < 0) {
                int rc = cli_usage_error(c, "import", "--label-names, name %zu: %s", i + 1, e.msg);
                free(names);
                free(names_copy);
                return rc;
            }
        }
    }
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0) {
        free(names);
        free(names_copy);
        return cli_fail(c, &err);
    }
    problems_out out = {.c = c, .list = c->json ? json_array() : NULL};
    et_import_result res;
    double t0 = et_now_s();
    et_status rc = et_import(p, (const char *const *)argv + optind, (size_t)(argc - optind), &opt,
                             on_problem, &out, &res, &err);
    double seconds = et_now_s() - t0;
    et_project_close(p);
    free(names);
    free(names_copy);
    if (out.printed < out.total)
        fprintf(stderr, "... and %zu more problems (all listed by 'edgetrain data')\n",
                out.total - out.printed);
    if (rc < 0 && rc != ET_EPROBLEMS) {
        json_decref(out.list);
        return cli_fail(c, &err);
    }
    if (c->json) {
        cli_print_json(json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:b,s:o}", "files",
                                 (json_int_t)res.files, "imported", (json_int_t)res.imported,
                                 "training", (json_int_t)res.training, "testing",
                                 (json_int_t)res.testing, "duplicates",
                                 (json_int_t)res.duplicates, "skipped", (json_int_t)res.skipped,
                                 "seconds", seconds, "committed", res.imported > 0, "problems",
                                 out.list));
    } else {
        printf("Imported %lld sample%s (%lld training, %lld testing) in %.1fs",
               (long long)res.imported, res.imported == 1 ? "" : "s", (long long)res.training,
               (long long)res.testing, seconds);
        if (res.duplicates)
            printf("; %lld already in the project", (long long)res.duplicates);
        if (res.skipped)
            printf("; %lld skipped", (long long)res.skipped);
        printf("\n");
        if (rc == ET_EPROBLEMS)
            fprintf(stderr, "edgetrain: %s\n", err.msg);
    }
    return rc == ET_EPROBLEMS ? 1 : 0;
}
