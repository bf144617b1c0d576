/* edgetrain data [--validate] [--forget-problems]
 * edgetrain data list [--label L] [--category C] */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

json_t *cli_report_json(const et_data_report *r)
{
    json_t *labels = json_object();
    for (size_t i = 0; i < r->n_labels; i++)
        json_object_set_new(labels, r->labels[i].label,
                            json_pack("{s:I,s:I}", "training", (json_int_t)r->labels[i].training,
                                      "testing", (json_int_t)r->labels[i].testing));
    json_t *sizes = json_array();
    for (size_t i = 0; i < r->n_sizes; i++)
        json_array_append_new(sizes, json_pack("{s:i,s:i,s:I}", "width", r->sizes[i].width,
                                               "height", r->sizes[i].height, "count",
                                               (json_int_t)r->sizes[i].count));
    json_t *channels = json_object();
    for (int ch = 1; ch <= 4; ch++)
        if (r->channels[ch]) {
            char key[2] = {(char)('0' + ch), 0};
            json_object_set_new(channels, key, json_integer(r->channels[ch]));
        }
    json_t *problems = json_array();
    for (size_t i = 0; i < r->n_problems; i++) {
        const et_problem *pr = &r->problems[i];
        json_array_append_new(problems,
                              json_pack("{s:s?,s:s?,s:s,s:s}", "file", pr->file, "label",
                                        pr->label, "kind", pr->kind, "message", pr->message));
    }
    return json_pack("{s:I,s:I,s:I,s:o,s:o,s:o,s:f,s:b,s:o}", "samples", (json_int_t)r->samples,
                     "training", (json_int_t)r->training, "testing", (json_int_t)r->testing,
                     "labels", labels, "sizes", sizes, "channels", channels, "imbalance",
                     r->imbalance, "validated", r->validated, "problems", problems);
}

void cli_report_print(const et_data_report *r)
{
    printf("%lld samples: %lld training, %lld testing, %zu label%s\n", (long long)r->samples,
           (long long)r->training, (long long)r->testing, r->n_labels,
           r->n_labels == 1 ? "" : "s");
    if (r->n_labels) {
        int w = 5;
        for (size_t i = 0; i < r->n_labels; i++) {
            int n = (int)strlen(r->labels[i].label);
            w = n > w ? (n > 40 ? 40 : n) : w;
        }
        printf("\n  %-*s %9s %9s %9s\n", w, "label", "training", "testing", "total");
        for (size_t i = 0; i < r->n_labels; i++) {
            const et_label_count *l = &r->labels[i];
            printf("  %-*.*s %9lld %9lld %9lld\n", w, w, l->label, (long long)l->training,
                   (long long)l->testing, (long long)(l->training + l->testing));
        }
        printf("\nimage sizes:");
        for (size_t i = 0; i < r->n_sizes && i < 5; i++)
            printf("%s %dx%d (%lld)", i ? "," : "", r->sizes[i].width, r->sizes[i].height,
                   (long long)r->sizes[i].count);
        if (r->n_sizes > 5)
            printf(", and %zu other sizes", r->n_sizes - 5);
        printf("\nchannels:");
        static const char *const names[] = {"", "grey", "grey+alpha", "RGB", "RGBA"};
        bool first = true;
        for (int ch = 1; ch <= 4; ch++)
            if (r->channels[ch]) {
                printf("%s %d %s (%lld)", first ? "" : ",", ch, names[ch],
                       (long long)r->channels[ch]);
                first = false;
            }
        if (r->imbalance > 0)
            printf("\nbalance: largest/smallest label = %.2f", r->imbalance);
        printf("\n");
    }
    if (r->n_problems == 0) {
        printf("\nNo problems found%s.\n", r->validated ? " (every stored file checked)" : "");
        return;
    }
    printf("\n%zu problem%s:\n", r->n_problems, r->n_problems == 1 ? "" : "s");
    for (size_t i = 0; i < r->n_problems; i++) {
        const et_problem *pr = &r->problems[i];
        if (pr->file && !strncmp(pr->message, pr->file, strlen(pr->file)))
            printf("  [%s] %s\n", pr->kind, pr->message);
        else if (pr->file)
            printf("  [%s] %s: %s\n", pr->kind, pr->file, pr->message);
        else if (pr->label)
            printf("  [%s] label '%s': %s\n", pr->kind, pr->label, pr->message);
        else
            printf("  [%s] %s\n", pr->kind, pr->message);
    }
}

typedef struct list_ctx {
    json_t *array;
} list_ctx;

static int print_sample(void *ctx, const et_sample *s)
{
    list_ctx *l = ctx;
    if (l->array) {
        json_array_append_new(
            l->array, json_pack("{s:I,s:s,s:s,s:i,s:i,s:i,s:s,s:s,s:s}", "id", (json_int_t)s->id,
                                "label", s->label, "category", et_category_name(s->category),
                                "width", s->width, "height", s->height, "channels", s->channels,
                                "format", s->format, "source", s->source, "hash", s->pixel_hash));
    } else {
        printf("%8lld  %-8s  %-20s %5dx%-5d %d  %s\n", (long long)s->id,
               et_category_name(s->category), s->label, s->width, s->height, s->channels,
               s->source);
    }
    return 0;
}

static int data_list(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"label", required_argument, NULL, 'l'},
        {"category", required_argument, NULL, 'c'},
        {0},
    };
    et_sample_filter f = {.label = NULL, .category = ET_CATEGORY_NONE};
    bool help = false;
    int o;
    while ((o = getopt_long(argc, argv, "hl:c:", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        if (o == 'l')
            f.label = optarg;
        else if (o == 'c' && et_category_parse(optarg, &f.category) == ET_OK)
            continue;
        else if (o == 'c')
            return cli_usage_error(c, "data", "--category '%s': use training or testing", optarg);
        else
            return cli_usage_error(c, "data", "unknown option");
    }
    if (help)
        return cli_help("data");
    if (optind < argc)
        return cli_usage_error(c, "data", "unexpected argument '%s'", argv[optind]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    list_ctx l = {.array = c->json ? json_array() : NULL};
    if (!c->json)
        printf("%8s  %-8s  %-20s %11s %s  %s\n", "id", "category", "label", "size", "c", "source");
    et_status rc = et_samples_each(p, &f, print_sample, &l, &err);
    et_project_close(p);
    if (rc < 0) {
        json_decref(l.array);
        return cli_fail(c, &err);
    }
    if (c->json)
        cli_print_json(json_pack("{s:o}", "samples", l.array));
    return 0;
}

int cmd_data(cli *c, int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "list"))
        return data_list(c, argc - 1, argv + 1);
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"validate", no_argument, NULL, 'v'},
        {"forget-problems", no_argument, NULL, 'F'},
        {0},
    };
    bool help = false, validate = false, forget = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        if (o == 'v')
            validate = true;
        else if (o == 'F')
            forget = true;
        else
            return cli_usage_error(c, "data", "unknown option");
    }
    if (help)
        return cli_help("data");
    if (optind < argc)
        return cli_usage_error(c, "data", "unexpected argument '%s' (did you mean 'data list'?)",
                               argv[optind]);
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    et_data_report *r = NULL;
    et_status rc = forget ? et_data_forget_problems(p, &err) : ET_OK;
    if (rc == ET_OK)
        rc = et_data_report_create(p, validate, &r, &err);
    if (rc < 0) {
        et_project_close(p);
        return cli_fail(c, &err);
    }
    if (c->json) {
        json_t *o2 = cli_report_json(r);
        json_object_set_new(o2, "project", json_string(et_project_root(p)));
        cli_print_json(o2);
    } else {
        printf("Project %s\n", et_project_root(p));
        cli_report_print(r);
    }
    /* --validate fails when a stored file is missing or altered; the other
     * problems are advice about the data and do not fail it. */
    int status = 0;
    for (size_t i = 0; validate && i < r->n_problems; i++)
        if (!strcmp(r->problems[i].kind, "missing-file") ||
            !strcmp(r->problems[i].kind, "corrupt-file"))
            status = 1;
    et_data_report_destroy(r);
    et_project_close(p);
    return status;
}
