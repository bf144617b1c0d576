/* edgetrain settings [KEY=VALUE ...]: the project's settings, shown or set.
 * Known keys and their checks live here (one: time_limit). */
#include "cli.h"

#include "edgetrain/estimate.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct setting_info {
    const char *key;
    const char *help;
} setting_info;

static const setting_info known[] = {
    {"time_limit", "compute time limit of `edgetrain train` (90s, 20m, 1h30m; none = no limit)"},
};
#define N_KNOWN (sizeof known / sizeof known[0])

/* ET_OK when key is known and value fits it (none, which removes a
 * setting, fits every key); else what is wrong, in err. */
static et_status check(const char *key, const char *value, et_error *err)
{
    size_t k = 0;
    while (k < N_KNOWN && strcmp(key, known[k].key))
        k++;
    if (k == N_KNOWN)
        return et_error_set(err, ET_EINVAL, "unknown setting '%s' (known: time_limit)", key);
    double s;
    et_error e = {0};
    if (strcmp(value, "none") && et_parse_duration(value, &s, &e) < 0) /* time_limit */
        return et_error_set(err, ET_EINVAL, "time_limit=%s: %s, or none", value, e.msg);
    return ET_OK;
}

et_status cli_time_limit_setting(et_project *p, double *seconds, et_error *err)
{
    char *v = NULL;
    *seconds = 0;
    et_status rc = et_project_setting_get(p, "time_limit", &v, err);
    if (rc == ET_OK && v) {
        et_error e = {0};
        if (et_parse_duration(v, seconds, &e) < 0)
            rc = et_error_set(err, ET_ECORRUPT,
                              "the project's time_limit setting '%s' is not a duration; set it "
                              "again with edgetrain settings time_limit=20m (or none)",
                              v);
    }
    free(v);
    return rc;
}

int cmd_settings(cli *c, int argc, char **argv)
{
    int status = cli_parse_plain(c, "settings", argc, argv);
    if (status >= 0)
        return status;
    /* Check every assignment before changing anything. */
    for (int i = optind; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i])
            return cli_usage_error(c, "settings", "'%s' is not KEY=VALUE", argv[i]);
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i]), argv[i]);
        et_error e = {0};
        if (check(key, eq + 1, &e) < 0)
            return cli_usage_error(c, "settings", "%s", e.msg);
    }
    et_project *p = NULL;
    et_error err = {0};
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_status rc = ET_OK;
    for (int i = optind; i < argc && rc == ET_OK; i++) {
        const char *eq = strchr(argv[i], '=');
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i]), argv[i]);
        rc = et_project_setting_set(p, key, strcmp(eq + 1, "none") ? eq + 1 : NULL, &err);
    }
    json_t *out = c->json ? json_object() : NULL;
    for (size_t k = 0; k < N_KNOWN && rc == ET_OK; k++) {
        char *v = NULL;
        rc = et_project_setting_get(p, known[k].key, &v, &err);
        if (rc < 0)
            break;
        if (out)
            json_object_set_new(out, known[k].key, v ? json_string(v) : json_null());
        else
            printf("%-12s %-8s %s\n", known[k].key, v ? v : "none", known[k].help);
        free(v);
    }
    et_project_close(p);
    if (rc < 0) {
        json_decref(out);
        return cli_fail(c, &err);
    }
    if (out)
        cli_print_json(out);
    return 0;
}
