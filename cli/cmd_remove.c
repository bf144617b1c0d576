/* edgetrain remove ID */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_remove(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONG_OPTIONS, {0}};
    bool help = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
        if (!cli_common_option(c, o, &help))
            return cli_usage_error(c, "remove", "unknown option");
    if (help)
        return cli_help("remove");
    int64_t id = 0;
    if (argc - optind != 1)
        return cli_usage_error(c, "remove", "remove takes one sample id");
    if (!cli_parse_id(argv[optind], &id))
        return cli_usage_error(c, "remove", "'%s' is not a sample id", argv[optind]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_sample s;
    et_status rc = et_sample_get(p, id, &s, &err);
    if (rc == ET_OK)
        rc = et_sample_remove(p, id, &err);
    et_project_close(p);
    if (rc < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:I,s:s,s:s,s:b}", "id", (json_int_t)id, "label", s.label,
                                 "source", s.source, "removed", 1));
    else
        printf("Removed sample %lld ('%s', %s)\n", (long long)id, s.label, s.source);
    return 0;
}
