/* edgetrain move ID training|testing */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cmd_move(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONG_OPTIONS, {0}};
    bool help = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
        if (!cli_common_option(c, o, &help))
            return cli_usage_error(c, "move", "unknown option");
    if (help)
        return cli_help("move");
    int64_t id = 0;
    et_category cat;
    if (argc - optind != 2)
        return cli_usage_error(c, "move", "move takes a sample id and training|testing");
    if (!cli_parse_id(argv[optind], &id))
        return cli_usage_error(c, "move", "'%s' is not a sample id", argv[optind]);
    if (et_category_parse(argv[optind + 1], &cat) < 0)
        return cli_usage_error(c, "move", "'%s': use training or testing", argv[optind + 1]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_sample before;
    et_status rc = et_sample_get(p, id, &before, &err);
    if (rc == ET_OK)
        rc = et_sample_move(p, id, cat, &err);
    et_project_close(p);
    if (rc < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id, "category",
                                 et_category_name(cat), "previous_category",
                                 et_category_name(before.category)));
    else
        printf("Sample %lld: %s -> %s\n", (long long)id, et_category_name(before.category),
               et_category_name(cat));
    return 0;
}
