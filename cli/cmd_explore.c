/* edgetrain explore: the feature explorer. Maps every sample's features to
 * 2-D (PCA, then t-SNE) and writes an SVG (hover a dot to see which sample
 * it is), a PNG and optionally a CSV of the coordinates. */
#include "cli.h"

#include "edgetrain/dsp.h"
#include "edgetrain/explore.h"
#include "edgetrain/train.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_count(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* path with its extension replaced by ext (".png"). */
static void with_ext(const char *path, const char *ext, char *out, size_t n)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
    snprintf(out, n, "%.*s%s", (int)stem, path, ext);
}

int cmd_explore(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"method", required_argument, NULL, 'm'},
        {"category", required_argument, NULL, 'c'},
        {"limit", required_argument, NULL, 'l'},
        {"out", required_argument, NULL, 'o'},
        {"png", required_argument, NULL, 'p'},
        {"csv", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 's'},
        {"perplexity", required_argument, NULL, 'x'},
        {"iterations", required_argument, NULL, 'i'},
        {"embedding", required_argument, NULL, 'e'},
        {0},
    };
    et_explore_options opt = et_explore_defaults();
    const char *svg = NULL, *png = NULL, *csv = NULL;
    bool help = false, use_model = false;
    long v = 0;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        switch (o) {
        case 'm':
            if (!strcmp(optarg, "tsne"))
                opt.method = ET_EXPLORE_TSNE;
            else if (!strcmp(optarg, "pca"))
                opt.method = ET_EXPLORE_PCA;
            else if (!strcmp(optarg, "umap"))
                return cli_usage_error(c, "explore", "--method umap is not available in this "
                                                     "version; use tsne (default) or pca");
            else
                return cli_usage_error(c, "explore", "--method '%s': use tsne or pca", optarg);
            break;
        case 'c':
            if (!strcmp(optarg, "all"))
                opt.category = ET_CATEGORY_NONE;
            else if (et_category_parse(optarg, &opt.category) < 0)
                return cli_usage_error(c, "explore",
                                       "--category '%s': use training, testing or all", optarg);
            break;
        case 'l':
            if (!parse_count(optarg, 0, 10000000, &v))
                return cli_usage_error(c, "explore", "--limit '%s': a count (0 = no limit)",
                                       optarg);
            opt.limit = (size_t)v;
            break;
        case 'o': svg = optarg; break;
        case 'p': png = optarg; break;
        case 'v': csv = optarg; break;
        case 's':
            if (!parse_count(optarg, 0, 2147483647L, &v))
                return cli_usage_error(c, "explore", "--seed '%s': a whole number", optarg);
            opt.seed = v;
            break;
        case 'x': {
            char *end = NULL;
            opt.perplexity = strtod(optarg, &end);
            if (!*optarg || *end || !(opt.perplexity >= 1 && opt.perplexity <= 1000))
                return cli_usage_error(c, "explore", "--perplexity '%s': a number in 1..1000",
                                       optarg);
            break;
        }
        case 'i':
            if (!parse_count(optarg, 1, 100000, &v))
                return cli_usage_error(c, "explore", "--iterations '%s': 1..100000", optarg);
            opt.iterations = (int)v;
            break;
        case 'e':
            if (!strcmp(optarg, "model"))
                use_model = true;
            else if (strcmp(optarg, "features"))
                return cli_usage_error(c, "explore",
                                       "--embedding '%s': features (the processed features) or "
                                       "model (the newest model's penultimate layer)",
                                       optarg);
            break;
        default: return cli_usage_error(c, "explore", "unknown option");
        }
    }
    if (help)
        return cli_help("explore");
    if (optind < argc)
        return cli_usage_error(c, "explore", "unexpected argument '%s'", argv[optind]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    char svg_buf[4096], png_buf[4096];
    if (!svg) {
        snprintf(svg_buf, sizeof svg_buf, "%s/explorer.svg", et_project_root(p));
        svg = svg_buf;
    }
    if (!png) {
        with_ext(svg, ".png", png_buf, sizeof png_buf);
        png = png_buf;
    }
    /* Output folders are created, as 'impulse preview' does. */
    const char *outs[] = {svg, png, csv};
    for (int i = 0; i < 3; i++) {
        if (!outs[i] || !strchr(outs[i], '/'))
            continue;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", outs[i]);
        *strrchr(dir, '/') = '\0';
        if (dir[0] && et_mkdir_p(dir, &err) < 0) {
            et_project_close(p);
            return cli_fail(c, &err);
        }
    }
    et_impulse imp;
    int64_t version = 0;
    et_features_stats st;
    et_features *f = NULL;
    et_explore_result res = {0};
    et_loaded_model model = {0};
    et_status rc = et_impulse_current_stored(p, &imp, &version, "default for the data", &err);
    if (rc == ET_OK && use_model) {
        /* The model's own impulse makes the features it embeds. */
        rc = et_model_store_load(p, 0, &model, &err);
        if (rc == ET_OK) {
            imp = model.impulse;
            version = model.info.impulse_version;
            opt.embed = et_model_embed;
            opt.embed_ctx = &model;
        }
    }
    if (rc == ET_OK)
        rc = et_features_update(p, &imp, version, &st, &err);
    if (rc == ET_OK)
        rc = et_features_open(p, &imp, &f, &err);
    if (rc == ET_OK)
        rc = et_explore_run(p, f, &opt, &res, &err);
    size_t n_labels = f ? et_features_n_labels(f) : 0;
    const char **names = calloc(n_labels + 1, sizeof *names);
    for (size_t i = 0; names && i < n_labels; i++)
        names[i] = et_features_label_name(f, i);
    char title[256];
    char what[64] = "features";
    if (use_model)
        snprintf(what, sizeof what, "model %lld embedding", (long long)model.info.id);
    snprintf(title, sizeof title, "%s of %zu samples (%s, %s, impulse version %lld)",
             opt.method == ET_EXPLORE_PCA ? "PCA" : "t-SNE", res.n,
             opt.category == ET_CATEGORY_NONE ? "training + testing"
                                               : et_category_name(opt.category),
             what, (long long)version);
    if (rc == ET_OK)
        rc = et_map_write_svg(svg, res.points, res.n, names, n_labels, title, &err);
    if (rc == ET_OK)
        rc = et_map_write_png(png, res.points, res.n, names, n_labels, title, 1200, 900, &err);
    if (rc == ET_OK && csv)
        rc = et_map_write_csv(csv, res.points, res.n, names, n_labels, &err);
    int status = 0;
    if (rc < 0) {
        status = cli_fail(c, &err);
    } else if (c->json) {
        json_t *points = json_array();
        for (size_t i = 0; i < res.n; i++) {
            const et_map_point *pt = &res.points[i];
            json_array_append_new(points, json_pack("{s:I,s:s,s:s?,s:f,s:f}", "id",
                                                    (json_int_t)pt->id, "label", names[pt->label],
                                                    "source", pt->source, "x", (double)pt->x, "y",
                                                    (double)pt->y));
        }
        cli_print_json(json_pack("{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:s?,s:o}", "method",
                                 opt.method == ET_EXPLORE_PCA ? "pca" : "tsne", "embedding",
                                 use_model ? "model" : "features", "samples",
                                 (json_int_t)res.n, "dimensions", (json_int_t)res.dimensions,
                                 "impulse_version", (json_int_t)version, "svg", svg, "png", png,
                                 "csv", csv, "points", points));
    } else {
        printf("Mapped %zu samples (%zu features each) with %s.\n  %s  (open in a browser; "
               "hover a dot to see its sample)\n  %s\n",
               res.n, res.dimensions, opt.method == ET_EXPLORE_PCA ? "PCA" : "t-SNE", svg, png);
        if (csv)
            printf("  %s\n", csv);
    }
    free(names);
    if (use_model)
        et_loaded_model_free(&model);
    et_explore_result_free(&res);
    et_features_close(f);
    et_project_close(p);
    return status;
}
