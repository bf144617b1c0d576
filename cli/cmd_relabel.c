/* edgetrain relabel ID LABEL */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_relabel(cli *c, int argc, char **argv)
{
    int status = cli_parse_plain(c, "relabel", argc, argv);
    if (status >= 0)
        return status;
    if (argc - optind != 2)
        return cli_usage_error(c, "relabel", "relabel takes a sample id and a label");
    const char *label = argv[optind + 1];
    et_project *p = NULL;
    et_sample s;
    if ((status = cli_open_sample(c, "relabel", argv[optind], &p, &s)) >= 0)
        return status;
    et_error err = {0};
    et_status rc = et_sample_relabel(p, s.id, label, &err);
    et_project_close(p);
    if (rc < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:I,s:s,s:s}", "id", (json_int_t)s.id, "label", label,
                                 "previous_label", s.label));
    else
        printf("Sample %lld: '%s' -> '%s'\n", (long long)s.id, s.label, label);
    return 0;
}
