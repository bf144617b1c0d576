/* edgetrain targets: the device catalog (built in, plus the project's
 * targets.json and --targets FILE), as a table or one target in full with
 * its cost figures and their sources. */
#include "cli.h"

#include "edgetrain/profile.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_format_bytes(int64_t n, char *out, size_t size)
{
    if (n <= 0)
        snprintf(out, size, "no limit");
    else if (n >= ((int64_t)1 << 30) && n % ((int64_t)1 << 20) == 0)
        snprintf(out, size, "%.4g GiB", (double)n / (1 << 30));
    else if (n >= ((int64_t)1 << 20))
        snprintf(out, size, "%.4g MiB", (double)n / (1 << 20));
    else if (n >= 1024)
        snprintf(out, size, "%.4g KiB", (double)n / 1024);
    else
        snprintf(out, size, "%lld B", (long long)n);
}

void cli_format_clock(double hz, char *out, size_t size)
{
    if (hz >= 1e9)
        snprintf(out, size, "%.4g GHz", hz / 1e9);
    else
        snprintf(out, size, "%.4g MHz", hz / 1e6);
}

et_status cli_load_targets(cli *c, const char *file, et_target_catalog **cat, et_error *err)
{
    /* The project's targets.json counts when there is a project here. */
    et_project *p = NULL;
    et_error ignored = {0};
    bool in_project = cli_open(c, &p, &ignored) == ET_OK;
    et_status rc = et_targets_load(file, in_project ? et_project_root(p) : NULL, cat, err);
    if (p)
        et_project_close(p);
    return rc;
}

static void print_list(const et_target_catalog *cat)
{
    printf("%-22s %-10s %-10s %-10s %s\n", "NAME", "CLOCK", "RAM", "FLASH",
           "ENGINES (default first)");
    for (int i = 0; i < et_targets_count(cat); i++) {
        const et_target *t = et_targets_get(cat, i);
        char clock[32], ram[32], flash[32], engines[160];
        cli_format_clock(t->clock_hz, clock, sizeof clock);
        cli_format_bytes(t->ram_bytes, ram, sizeof ram);
        cli_format_bytes(t->flash_bytes, flash, sizeof flash);
        snprintf(engines, sizeof engines, "%s", t->default_engine);
        for (int e = 0; e < t->n_engines; e++)
            if (strcmp(t->engines[e].name, t->default_engine)) {
                size_t used = strlen(engines);
                snprintf(engines + used, sizeof engines - used, ", %s", t->engines[e].name);
            }
        printf("%-22s %-10s %-10s %-10s %s%s%s\n", t->name, clock, ram, flash, engines,
               strcmp(t->origin, "built-in") ? "  from " : "",
               strcmp(t->origin, "built-in") ? t->origin : "");
    }
    printf("\n'profile' uses %s unless --target names another. 'edgetrain targets NAME' shows a "
           "target's figures and their sources.\n",
           ET_PROFILE_DEFAULT_TARGET);
}

static void print_one(const et_target *t)
{
    char clock[32], ram[32], flash[32];
    cli_format_clock(t->clock_hz, clock, sizeof clock);
    cli_format_bytes(t->ram_bytes, ram, sizeof ram);
    cli_format_bytes(t->flash_bytes, flash, sizeof flash);
    printf("%s: %s\n", t->name, t->description);
    printf("  clock %s, RAM %s, flash %s (%s)\n", clock, ram, flash, t->origin);
    for (int i = 0; i < t->n_boards; i++)
        printf("%s%s", i ? ", " : "  boards: ", t->boards[i]);
    printf("%s", t->n_boards ? "\n" : "");
    printf("\nCycles per MAC (conv, depthwise, pointwise, dense) and per element (pool tap, add, "
           "softmax):\n");
    printf("  %-16s %-8s %9s %9s %9s %9s %8s %8s %8s\n", "engine", "", "conv", "depthwise",
           "pointwise", "dense", "pool", "add", "softmax");
    for (int e = 0; e < t->n_engines; e++)
        for (int p = 0; p < ET_PRECISION_COUNT; p++) {
            const double *c = t->engines[e].cycles[p];
            printf("  %-16s %-8s %9.3g %9.3g %9.3g %9.3g %8.3g %8.3g %8.3g%s\n",
                   p ? "" : t->engines[e].name, et_precision_name((et_precision)p), c[0], c[1],
                   c[2], c[3], c[4], c[5], c[6],
                   !p && !strcmp(t->engines[e].name, t->default_engine) ? "  (default)" : "");
        }
    printf("\nSources:\n");
    for (int i = 0; i < t->n_sources; i++)
        printf("  [%d] %s\n      %s\n", i + 1, t->sources[i].url, t->sources[i].note);
}

int cmd_targets(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"targets", required_argument, NULL, 't'},
        {0},
    };
    const char *file = NULL;
    bool help = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        if (o == 't') {
            file = optarg;
            continue;
        }
        return cli_usage_error(c, "targets", "unknown option");
    }
    if (help)
        return cli_help("targets");
    const char *name = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return cli_usage_error(c, "targets", "unexpected argument '%s'", argv[optind]);
    et_error err = {0};
    et_target_catalog *cat = NULL;
    if (cli_load_targets(c, file, &cat, &err) < 0)
        return cli_fail(c, &err);
    const et_target *t = NULL;
    if (name && et_targets_lookup(cat, name, &t, &err) < 0) {
        et_targets_destroy(cat);
        return cli_fail(c, &err);
    }
    int status = 0;
    if (c->json) {
        char *s = et_targets_to_json(cat);
        json_t *all = s ? json_loads(s, 0, NULL) : NULL;
        free(s);
        if (all && t) {
            json_t *list = json_object_get(all, "targets");
            json_t *one = json_incref(json_array_get(list, (size_t)(t - et_targets_get(cat, 0))));
            json_decref(all);
            all = one ? json_pack("{s:o}", "target", one) : NULL;
        }
        status = all ? 0 : 1;
        cli_print_json(all);
    } else if (t) {
        print_one(t);
    } else {
        print_list(cat);
    }
    et_targets_destroy(cat);
    return status;
}
