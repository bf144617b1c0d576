/* edgetrain move ID training|testing */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_move(cli *c, int argc, char **argv)
{
    int status = cli_parse_plain(c, "move", argc, argv);
    if (status >= 0)
        return status;
    et_category cat;
    if (argc - optind != 2)
        return cli_usage_error(c, "move", "move takes a sample id and training|testing");
    if (et_category_parse(argv[optind + 1], &cat) < 0)
        return cli_usage_error(c, "move", "'%s': use training or testing", argv[optind + 1]);
    et_project *p = NULL;
    et_sample s;
    if ((status = cli_open_sample(c, "move", argv[optind], &p, &s)) >= 0)
        return status;
    et_error err = {0};
    et_status rc = et_sample_move(p, s.id, cat, &err);
    et_project_close(p);
    if (rc < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:I,s:s,s:s}", "id", (json_int_t)s.id, "category",
                                 et_category_name(cat), "previous_category",
                                 et_category_name(s.category)));
    else
        printf("Sample %lld: %s -> %s\n", (long long)s.id, et_category_name(s.category),
               et_category_name(cat));
    return 0;
}
