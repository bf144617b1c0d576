/* edgetrain impulse show|set|load|save|history|revert|preview */
#include "cli.h"

#include "edgetrain/dsp.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *impulse_json(const et_impulse *imp)
{
    char *s = et_impulse_to_json(imp, false);
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    return j;
}

static int show(cli *c, et_project *p)
{
    et_impulse imp;
    int64_t version = 0;
    et_error err = {0};
    if (et_impulse_current(p, &imp, &version, &err) < 0)
        return cli_fail(c, &err);
    char key[65];
    et_impulse_features_key(&imp, key);
    if (c->json) {
        cli_print_json(json_pack("{s:I,s:b,s:o,s:s}", "version", (json_int_t)version, "default",
                                 version == 0, "impulse", impulse_json(&imp), "features_key", key));
        return 0;
    }
    char *s = et_impulse_to_json(&imp, true);
    if (version)
        printf("Impulse version %lld\n", (long long)version);
    else
        printf("Impulse: the default for this project's data (not stored yet; 'impulse set' or "
               "'features' stores it)\n");
    printf("%s\n", s ? s : "");
    free(s);
    return 0;
}

/* Stores imp unless it equals the current impulse. */
static int store(cli *c, et_project *p, const et_impulse *imp, const char *note)
{
    et_impulse cur;
    int64_t version = 0;
    et_error err = {0};
    if (et_impulse_current(p, &cur, &version, &err) < 0)
        return cli_fail(c, &err);
    char *a = et_impulse_to_json(imp, false), *b = et_impulse_to_json(&cur, false);
    bool same = a && b && !strcmp(a, b) && version > 0;
    char ka[65], kb[65];
    et_impulse_features_key(imp, ka);
    et_impulse_features_key(&cur, kb);
    bool features_changed = strcmp(ka, kb) != 0 || version == 0;
    free(a);
    free(b);
    int64_t saved = version;
    if (!same && et_impulse_save_version(p, imp, note, &saved, &err) < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:I,s:b,s:o}", "version", (json_int_t)saved, "changed", !same,
                                 "impulse", impulse_json(imp)));
    else if (same)
        printf("Impulse unchanged (version %lld)\n", (long long)saved);
    else
        printf("Impulse version %lld saved. Models trained from other versions are now stale%s\n",
               (long long)saved,
               features_changed ? ";\nthe processing changed: 'edgetrain features' generates "
                                  "features for it."
                                : " (the features stay valid).");
    return 0;
}

static int set(cli *c, et_project *p, int argc, char **argv)
{
    if (argc < 1)
        return cli_usage_error(c, "impulse", "impulse set needs key=value assignments");
    et_impulse imp;
    int64_t version = 0;
    et_error err = {0};
    if (et_impulse_current(p, &imp, &version, &err) < 0)
        return cli_fail(c, &err);
    char note[256] = "set";
    for (int i = 0; i < argc; i++) {
        if (et_impulse_set(&imp, argv[i], &err) < 0)
            return cli_fail(c, &err);
        size_t used = strlen(note);
        snprintf(note + used, sizeof note - used, " %s", argv[i]);
    }
    if (et_impulse_validate(&imp, &err) < 0)
        return cli_fail(c, &err);
    return store(c, p, &imp, note);
}

static int load(cli *c, et_project *p, const char *path)
{
    et_error err = {0};
    et_impulse imp;
    if (et_impulse_load_file(path, &imp, &err) < 0)
        return cli_fail(c, &err);
    char note[300];
    snprintf(note, sizeof note, "load %.280s", path);
    return store(c, p, &imp, note);
}

static int save(cli *c, et_project *p, const char *path)
{
    et_impulse imp;
    int64_t version = 0;
    et_error err = {0};
    if (et_impulse_current(p, &imp, &version, &err) < 0)
        return cli_fail(c, &err);
    char *s = et_impulse_to_json(&imp, true);
    if (!s)
        return cli_fail(c, &(et_error){ET_ENOMEM, "out of memory"});
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the NUL: written with its length below */
    et_status rc = et_write_file_atomic(path, s, n + 1, &err);
    free(s);
    if (rc < 0)
        return cli_fail(c, &err);
    if (c->json)
        cli_print_json(json_pack("{s:s,s:I}", "file", path, "version", (json_int_t)version));
    else
        printf("Impulse version %lld written to %s\n", (long long)version, path);
    return 0;
}

typedef struct history_ctx {
    json_t *list;
} history_ctx;

static int history_row(void *ctx, const et_impulse_version *v)
{
    history_ctx *h = ctx;
    if (h->list) {
        json_t *imp = json_loads(v->json, 0, NULL);
        json_array_append_new(h->list, json_pack("{s:I,s:s,s:s,s:o?}", "version",
                                                 (json_int_t)v->version, "created_at",
                                                 v->created_at, "note", v->note, "impulse", imp));
    } else {
        printf("%6lld  %s  %s\n", (long long)v->version, v->created_at, v->note);
    }
    return 0;
}

static int history(cli *c, et_project *p)
{
    history_ctx h = {.list = c->json ? json_array() : NULL};
    et_error err = {0};
    if (!c->json)
        printf("%6s  %-20s  %s\n", "version", "created", "change");
    if (et_impulse_history(p, history_row, &h, &err) < 0) {
        json_decref(h.list);
        return cli_fail(c, &err);
    }
    if (c->json)
        cli_print_json(json_pack("{s:o}", "versions", h.list));
    return 0;
}

static int revert(cli *c, et_project *p, const char *arg)
{
    int64_t v = 0;
    if (!cli_parse_id(arg, &v))
        return cli_usage_error(c, "impulse", "'%s' is not an impulse version", arg);
    et_impulse imp;
    et_error err = {0};
    if (et_impulse_get_version(p, v, &imp, &err) < 0)
        return cli_fail(c, &err);
    char note[64];
    snprintf(note, sizeof note, "revert to version %lld", (long long)v);
    return store(c, p, &imp, note);
}

/* Float features back to 8-bit pixels for viewing. */
static uint8_t *to_pixels(const et_impulse *imp, const float *f, size_t n)
{
    uint8_t *px = malloc(n ? n : 1);
    double scale = imp->processing == ET_PROCESSING_RAW ? 1.0 / imp->raw_scale : 255.0;
    for (size_t i = 0; px && i < n; i++) {
        double v = f[i] * scale + 0.5;
        px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    return px;
}

static int preview(cli *c, et_project *p, int argc, char **argv)
{
    const char *out = NULL, *id_arg = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!id_arg)
            id_arg = argv[i];
        else
            return cli_usage_error(c, "impulse", "unexpected argument '%s'", argv[i]);
    }
    if (!id_arg || !out)
        return cli_usage_error(c, "impulse", "impulse preview needs SAMPLE_ID and --out DIR");
    int64_t id = 0;
    if (!cli_parse_id(id_arg, &id))
        return cli_usage_error(c, "impulse", "'%s' is not a sample id", id_arg);
    et_error err = {0};
    et_impulse imp;
    int64_t version = 0;
    et_sample s;
    et_image img = {0};
    if (et_impulse_current(p, &imp, &version, &err) < 0 || et_sample_get(p, id, &s, &err) < 0 ||
        et_sample_load(p, &s, &img, &err) < 0 || et_mkdir_p(out, &err) < 0)
        return cli_fail(c, &err);
    int ch = et_dsp_channels(&imp, img.channels);
    size_t n = (size_t)imp.width * imp.height * ch;
    float *features = malloc(n * sizeof *features);
    void *scratch = malloc(et_dsp_scratch_size(&imp));
    uint8_t *px = NULL, *big = NULL;
    int status = 0;
    if (!features || !scratch || et_dsp_process(&imp, &img, features, scratch, &err) < 0 ||
        !(px = to_pixels(&imp, features, n))) {
        if (!err.msg[0])
            et_error_set(&err, ET_ENOMEM, "out of memory");
        status = cli_fail(c, &err);
        goto done;
    }
    int k = 256 / (imp.width > imp.height ? imp.width : imp.height);
    k = k < 1 ? 1 : k;
    big = malloc((size_t)imp.width * k * imp.height * k * ch);
    for (int y = 0; big && y < imp.height * k; y++)
        for (int x = 0; x < imp.width * k; x++)
            memcpy(big + ((size_t)y * imp.width * k + x) * ch,
                   px + ((size_t)(y / k) * imp.width + x / k) * ch, (size_t)ch);
    char raw_path[4096], proc_path[4096], big_path[4096];
    snprintf(raw_path, sizeof raw_path, "%s/sample-%lld-raw.png", out, (long long)id);
    snprintf(proc_path, sizeof proc_path, "%s/sample-%lld-processed.png", out, (long long)id);
    snprintf(big_path, sizeof big_path, "%s/sample-%lld-processed-x%d.png", out, (long long)id, k);
    et_image raw = img, proc = {imp.width, imp.height, ch, px},
             scaled = {imp.width * k, imp.height * k, ch, big};
    if (!big || et_image_write_png(raw_path, &raw, &err) < 0 ||
        et_image_write_png(proc_path, &proc, &err) < 0 ||
        et_image_write_png(big_path, &scaled, &err) < 0) {
        if (!big)
            et_error_set(&err, ET_ENOMEM, "out of memory");
        status = cli_fail(c, &err);
        goto done;
    }
    if (c->json)
        cli_print_json(json_pack("{s:I,s:s,s:s,s:s,s:s,s:i,s:i,s:i}", "id", (json_int_t)id, "label",
                                 s.label, "raw", raw_path, "processed", proc_path,
                                 "processed_scaled", big_path, "width", imp.width, "height",
                                 imp.height, "channels", ch));
    else
        printf("Sample %lld ('%s', %dx%dx%d) through the %s impulse%s:\n  raw:       %s\n"
               "  processed: %s (%dx%dx%d)\n  scaled:    %s (x%d)\n",
               (long long)id, s.label, img.width, img.height, img.channels,
               version ? "stored" : "default", version ? " (newest version)" : "", raw_path,
               proc_path, imp.width, imp.height, ch, big_path, k);
done:
    et_image_free(&img);
    free(features);
    free(scratch);
    free(px);
    free(big);
    return status;
}

int cmd_impulse(cli *c, int argc, char **argv)
{
    /* Sub-commands take positional words; --json and --help are handled here. */
    int n = 0;
    char *args[64];
    if (argc > 64)
        return cli_usage_error(c, "impulse", "at most 63 arguments at once (%d given)", argc - 1);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            c->json = true;
            et_progress_set_enabled(false);
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            return cli_help("impulse");
        } else {
            args[n++] = argv[i];
        }
    }
    const char *sub = n ? args[0] : "show";
    et_error err = {0};
    et_project *p = NULL;
    if (cli_open(c, &p, &err) < 0)
        return cli_fail(c, &err);
    int status;
    if (!strcmp(sub, "show") && n <= 1)
        status = show(c, p);
    else if (!strcmp(sub, "set"))
        status = set(c, p, n - 1, args + 1);
    else if (!strcmp(sub, "load") && n == 2)
        status = load(c, p, args[1]);
    else if (!strcmp(sub, "save") && n == 2)
        status = save(c, p, args[1]);
    else if (!strcmp(sub, "history") && n == 1)
        status = history(c, p);
    else if (!strcmp(sub, "revert") && n == 2)
        status = revert(c, p, args[1]);
    else if (!strcmp(sub, "preview"))
        status = preview(c, p, n - 1, args + 1);
    else
        status = cli_usage_error(c, "impulse", "unknown or incomplete sub-command '%s'", sub);
    et_project_close(p);
    return status;
}
