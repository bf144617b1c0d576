/* edgetrain features: brings the feature cache up to date with the impulse
 * and the samples. Stores the default impulse as version 1 when none is. */
#include "cli.h"

#include "edgetrain/dsp.h"

#include <getopt.h>
#include <stdio.h>

int cmd_features(cli *c, int argc, char **argv)
{
    int status = cli_parse_plain(c, "features", argc, argv);
    if (status >= 0)
        return status;
    if (optind < argc)
        return cli_usage_error(c, "features", "unexpected argument '%s'", argv[optind]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_impulse imp;
    int64_t version = 0;
    et_features_stats st;
    et_status rc = et_impulse_current_stored(p, &imp, &version, "default for the data", &err);
    if (rc == ET_OK)
        rc = et_features_update(p, &imp, version, &st, &err);
    et_project_close(p);
    if (rc < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:I,s:I,s:I,s:I,s:f,s:s,s:s,s:[i,i,i]}", "impulse_version",
                                 (json_int_t)version, "samples", (json_int_t)st.samples,
                                 "computed", (json_int_t)st.computed, "reused",
                                 (json_int_t)st.reused, "seconds", st.seconds, "key", st.key,
                                 "path", st.path, "shape", imp.height, imp.width, st.channels));
    else
        printf("Features for %lld samples (impulse version %lld): %lld computed, %lld reused, "
               "%.1fs\n  %s/features.npy\n",
               (long long)st.samples, (long long)version, (long long)st.computed,
               (long long)st.reused, st.seconds, st.path);
    return 0;
}
