/* edgetrain remove ID */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_remove(cli *c, int argc, char **argv)
{
    int status = cli_parse_plain(c, "remove", argc, argv);
    if (status >= 0)
        return status;
    if (argc - optind != 1)
        return cli_usage_error(c, "remove", "remove takes one sample id");
    et_project *p = NULL;
    et_sample s;
    if ((status = cli_open_sample(c, "remove", argv[optind], &p, &s)) >= 0)
        return status;
    et_error err = {0};
    et_status rc = et_sample_remove(p, s.id, &err);
    et_project_close(p);
    if (rc < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:I,s:s,s:s,s:b}", "id", (json_int_t)s.id, "label", s.label,
                                 "source", s.source, "removed", 1));
    else
        printf("Removed sample %lld ('%s', %s)\n", (long long)s.id, s.label, s.source);
    return 0;
}
