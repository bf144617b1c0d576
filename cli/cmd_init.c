/* edgetrain init [DIR] */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_init(cli *c, int argc, char **argv)
{
    int status = cli_parse_plain(c, "init", argc, argv);
    if (status >= 0)
        return status;
    if (argc - optind > 1)
        return cli_usage_error(c, "init", "init takes one folder");
    const char *dir = optind < argc ? argv[optind] : c->dir;
    et_error err = {0};
    if (et_project_init(dir, &err) < 0)
        return cli_fail(c, &err);
    et_project *p = NULL;
    if (et_project_open(dir, &p, &err) < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:s,s:i}", "project", et_project_root(p), "schema_version",
                                 ET_SCHEMA_VERSION));
    else
        printf("Created an edgetrain project in %s\n"
               "Next: edgetrain -C %s import PATH  (folders per label, CSV, or IDX files)\n",
               et_project_root(p), dir);
    et_project_close(p);
    return 0;
}
