/* edgetrain profile: latency, peak RAM and flash of a model on a device,
 * float32 and int8. A trained model version (--model ID), or the current
 * impulse before training (--impulse); by default the newest model when it
 * was trained on the current impulse, else the impulse. --variants: the
 * current impulse with every MobileNet width in its place, one line each. */
#include "cli.h"

#include "edgetrain/impulse.h"
#include "edgetrain/profile.h"

#include <jansson.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_layers(const et_plan_profile *pp, const et_cost *c)
{
    printf("\n%s layers (%s on %s):\n", et_precision_name(pp->precision), c->engine, c->target);
    printf("  %3s  %-17s %-10s %-14s %12s %10s %10s %10s\n", "op", "kind", "cost", "output", "MACs",
           "params", "bytes", "ms");
    for (int i = 0; i < pp->n_layers; i++) {
        const et_layer_profile *l = &pp->layers[i];
        char shape[40];
        snprintf(shape, sizeof shape, "%dx%dx%d", l->out_h, l->out_w, l->out_c);
        printf("  %3d  %-17s %-10s %-14s %12lld %10lld %10lld %10.3f\n", l->op, l->op_name,
               et_cost_kind_name(l->cost.kind), shape, (long long)l->cost.macs,
               (long long)l->params, (long long)(l->weight_bytes + l->quant_bytes), c->layer_ms[i]);
    }
}

static const char *fits(bool ok, int64_t limit)
{
    return limit <= 0 ? "" : ok ? "fits" : "does NOT fit";
}

static void print_report(const et_profile_report *r, const et_target *t, bool verbose)
{
    const et_cost *cf = &r->cost[ET_PRECISION_FLOAT32], *cq = &r->cost[ET_PRECISION_INT8];
    const et_plan_profile *pf = &r->plan[ET_PRECISION_FLOAT32], *pq = &r->plan[ET_PRECISION_INT8];
    char clock[32], ram[32], flash[32];
    cli_format_clock(t->clock_hz, clock, sizeof clock);
    cli_format_bytes(t->ram_bytes, ram, sizeof ram);
    cli_format_bytes(t->flash_bytes, flash, sizeof flash);
    if (r->subject == ET_PROFILE_MODEL)
        printf("Model %lld (impulse version %lld, %s, %d classes)%s\n", (long long)r->model_id,
               (long long)r->impulse_version, r->architecture, r->classes,
               r->plans_rebuilt ? "; plans rebuilt from its graph (none stored)" : "");
    else if (r->impulse_version)
        printf("Impulse version %lld, not trained (%s, %d classes%s)\n",
               (long long)r->impulse_version, r->architecture, r->classes,
               r->classes_assumed ? " assumed: the project has no labels yet" : "");
    else
        printf("The default impulse for this project's data, not trained (%s, %d classes%s)\n",
               r->architecture, r->classes,
               r->classes_assumed ? " assumed: the project has no labels yet" : "");
    printf("on %s: %s; clock %s, RAM %s, flash %s; engine %s\n\n", t->name, t->description, clock,
           ram, flash, cq->engine);

    char a[32], b[32];
    printf("  %-22s %-24s %-24s\n", "", "float32", "int8");
    snprintf(a, sizeof a, "%.1f ms", cf->latency_ms);
    snprintf(b, sizeof b, "%.1f ms", cq->latency_ms);
    printf("  %-22s %-24s %-24s\n", "latency", a, b);
    char fa[64], fb[64];
    cli_format_bytes((int64_t)cf->ram_bytes, a, sizeof a);
    cli_format_bytes((int64_t)cq->ram_bytes, b, sizeof b);
    snprintf(fa, sizeof fa, "%s %s", a, fits(cf->fits_ram, t->ram_bytes));
    snprintf(fb, sizeof fb, "%s %s", b, fits(cq->fits_ram, t->ram_bytes));
    printf("  %-22s %-24s %-24s\n", "peak RAM (arena)", fa, fb);
    cli_format_bytes((int64_t)pf->input_bytes, a, sizeof a);
    cli_format_bytes((int64_t)pq->input_bytes, b, sizeof b);
    printf("  %-22s %-24s %-24s\n", "  of which input", a, b);
    cli_format_bytes((int64_t)cf->flash_bytes, a, sizeof a);
    cli_format_bytes((int64_t)cq->flash_bytes, b, sizeof b);
    snprintf(fa, sizeof fa, "%s %s", a, fits(cf->fits_flash, t->flash_bytes));
    snprintf(fb, sizeof fb, "%s %s", b, fits(cq->fits_flash, t->flash_bytes));
    printf("  %-22s %-24s %-24s\n", "flash", fa, fb);
    cli_format_bytes((int64_t)(pf->weight_bytes + pf->quant_bytes), a, sizeof a);
    cli_format_bytes((int64_t)(pq->weight_bytes + pq->quant_bytes), b, sizeof b);
    printf("  %-22s %-24s %-24s\n", "  weights + quant", a, b);
    cli_format_bytes((int64_t)(pf->plan_bytes - pf->weight_bytes - pf->quant_bytes), a, sizeof a);
    cli_format_bytes((int64_t)(pq->plan_bytes - pq->weight_bytes - pq->quant_bytes), b, sizeof b);
    printf("  %-22s %-24s %-24s\n", "  tables, padding", a, b);
    cli_format_bytes((int64_t)cf->code_bytes, a, sizeof a);
    cli_format_bytes((int64_t)cq->code_bytes, b, sizeof b);
    printf("  %-22s %-24s %-24s\n", "  runtime code (est.)", a, b);
    snprintf(a, sizeof a, "%lld", (long long)pf->params);
    snprintf(b, sizeof b, "%lld", (long long)pq->params);
    printf("  %-22s %-24s %-24s\n", "parameters (folded)", a, b);
    snprintf(a, sizeof a, "%lld", (long long)pf->macs);
    snprintf(b, sizeof b, "%lld", (long long)pq->macs);
    printf("  %-22s %-24s %-24s\n", "MACs", a, b);
    if (verbose) {
        print_layers(pf, cf);
        print_layers(pq, cq);
    } else {
        printf("\n--verbose shows the per-layer table. The figures behind the latency: 'edgetrain "
               "targets %s'.\n",
               t->name);
    }
}

static void variant_name(const et_profile_variant *v, char *out, size_t n)
{
    if (v->model == ET_MODEL_CONV)
        snprintf(out, n, "%s", et_model_name(v->model));
    else
        snprintf(out, n, "%s a%g", et_model_name(v->model), v->alpha);
}

static void print_variants(const et_profile_variants *vs, const et_target *t, const char *engine)
{
    char clock[32], ram[32], flash[32];
    cli_format_clock(t->clock_hz, clock, sizeof clock);
    cli_format_bytes(t->ram_bytes, ram, sizeof ram);
    cli_format_bytes(t->flash_bytes, flash, sizeof flash);
    printf("The current impulse (version %lld; input %dx%dx%d, %d classes%s) and every MobileNet "
           "width in its place, not trained, int8\n",
           (long long)vs->impulse_version, vs->height, vs->width, vs->channels, vs->classes,
           vs->classes_assumed ? " assumed" : "");
    printf("on %s: %s; clock %s, RAM %s, flash %s; engine %s\n\n", t->name, t->description, clock,
           ram, flash, engine);
    printf("  %-20s %12s %12s %12s %12s  %s\n", "learning block", "latency", "RAM", "flash",
           "params", "fits");
    for (int i = 0; i < vs->n; i++) {
        const et_profile_variant *v = &vs->v[i];
        char name[48], lat[32], r[32], f[32];
        variant_name(v, name, sizeof name);
        if (v->current)
            snprintf(name + strlen(name), sizeof name - strlen(name), " *");
        if (v->error[0]) {
            printf("  %-20s %s\n", name, v->error);
            continue;
        }
        const et_cost *cq = &v->report.cost[ET_PRECISION_INT8];
        const et_plan_profile *pq = &v->report.plan[ET_PRECISION_INT8];
        snprintf(lat, sizeof lat, "%.1f ms", cq->latency_ms);
        cli_format_bytes((int64_t)cq->ram_bytes, r, sizeof r);
        cli_format_bytes((int64_t)cq->flash_bytes, f, sizeof f);
        const char *verdict = cq->fits_ram && cq->fits_flash ? "yes"
                              : !cq->fits_ram && !cq->fits_flash ? "no: RAM and flash"
                              : !cq->fits_ram                    ? "no: RAM"
                                                                 : "no: flash";
        printf("  %-20s %12s %12s %12s %12lld  %s\n", name, lat, r, f, (long long)pq->params,
               verdict);
    }
    printf("\n* the project's impulse. RAM is the runtime's planned arena (input included); "
           "flash the model plus the runtime's code. 'edgetrain impulse set learning.model=... "
           "learning.alpha=...' picks one.\n");
}

int cmd_profile(cli *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"target", required_argument, NULL, 't'},
        {"targets", required_argument, NULL, 'f'},
        {"model", required_argument, NULL, 'm'},
        {"impulse", no_argument, NULL, 'i'},
        {"variants", no_argument, NULL, 'a'},
        {"engine", required_argument, NULL, 'e'},
        {"verbose", no_argument, NULL, 'v'},
        {0},
    };
    const char *target = ET_PROFILE_DEFAULT_TARGET, *file = NULL, *engine = NULL;
    et_profile_subject subject = ET_PROFILE_AUTO;
    int64_t id = 0;
    bool help = false, verbose = false, variants = false;
    int o;
    while ((o = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
        if (cli_common_option(c, o, &help))
            continue;
        switch (o) {
        case 't': target = optarg; break;
        case 'f': file = optarg; break;
        case 'e': engine = optarg; break;
        case 'v': verbose = true; break;
        case 'a': variants = true; break;
        case 'm':
            if (!cli_parse_id(optarg, &id))
                return cli_usage_error(c, "profile", "--model '%s' is not a model id", optarg);
            if (subject == ET_PROFILE_IMPULSE)
                return cli_usage_error(c, "profile", "--model and --impulse exclude each other");
            subject = ET_PROFILE_MODEL;
            break;
        case 'i':
            if (subject == ET_PROFILE_MODEL)
                return cli_usage_error(c, "profile", "--model and --impulse exclude each other");
            subject = ET_PROFILE_IMPULSE;
            break;
        default: return cli_usage_error(c, "profile", "unknown option");
        }
    }
    if (help)
        return cli_help("profile");
    if (optind < argc)
        return cli_usage_error(c, "profile", "unexpected argument '%s'", argv[optind]);
    if (variants && subject != ET_PROFILE_AUTO)
        return cli_usage_error(c, "profile",
                               "--variants prices the current impulse's variants; it excludes "
                               "--model and --impulse");
    et_error err = {0};
    et_target_catalog *cat = NULL;
    if (cli_load_targets(c, file, &cat, &err) < 0)
        return cli_fail(c, &err);
    const et_target *t = NULL;
    const et_engine_costs *e = NULL;
    et_status rc = et_targets_lookup(cat, target, &t, &err);
    if (rc == ET_OK)
        rc = et_target_engine(t, engine, &e, &err);
    if (rc < 0) {
        /* A bad --target or --engine is bad usage: exit 2 either way. */
        err.code = ET_EINVAL;
        et_targets_destroy(cat);
        return cli_fail(c, &err);
    }
    et_project *p = NULL;
    et_profile_report r;
    memset(&r, 0, sizeof r);
    rc = cli_open(c, &p, &err);
    if (rc == ET_OK && variants) {
        et_profile_variants vs;
        rc = et_profile_project_variants(p, t, engine, &vs, &err);
        et_project_close(p);
        int status = rc < 0 ? cli_fail(c, &err) : 0;
        if (rc == ET_OK && c->json) {
            char *text = et_profile_variants_to_json(&vs, t);
            json_t *obj = text ? json_loads(text, 0, NULL) : NULL;
            free(text);
            status = obj ? 0 : 1;
            cli_print_json(obj);
        }
        else if (rc == ET_OK)
            print_variants(&vs, t, e->name);
        et_profile_variants_free(&vs);
        et_targets_destroy(cat);
        return status;
    }
    if (rc == ET_OK)
        rc = et_profile_project(p, subject, id, t, engine, &r, &err);
    et_project_close(p);
    int status = 0;
    if (rc < 0) {
        status = cli_fail(c, &err);
    } else if (c->json) {
        char *s = et_profile_report_to_json(&r, t, verbose);
        json_t *obj = s ? json_loads(s, 0, NULL) : NULL;
        free(s);
        status = obj ? 0 : 1;
        cli_print_json(obj);
    } else {
        print_report(&r, t, verbose);
    }
    et_profile_report_free(&r);
    et_targets_destroy(cat);
    return status;
}
