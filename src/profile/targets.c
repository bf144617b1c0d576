/* The device catalog: the built-in data/targets.json (compiled in by CMake
 * as et_targets_json.h) and the user's target files, every key checked
 * where it enters. The schema is in docs/FORMATS.md ("Target files"). */
#include "edgetrain/profile.h"

#include "core/fsutil.h"
#include "et_targets_json.h" /* generated: et_builtin_targets_json[], _len */
#include "profile/profile_internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Target files are small; a bigger one is a mistake. */
#define TARGET_FILE_MAX (4u << 20)
#define MAX_TARGETS 1024

struct et_target_catalog {
    et_arena arena; /* every string, board list and source list */
    et_target *targets;
    int n, cap;
};

static const char *const precision_names[ET_PRECISION_COUNT] = {"int8", "float32"};
static const char *const kind_names[ET_COST_KIND_COUNT] = {
    "conv", "depthwise", "pointwise", "dense", "pool", "add", "softmax", "other"};

const char *et_precision_name(et_precision p)
{
    return (unsigned)p < ET_PRECISION_COUNT ? precision_names[p] : "?";
}

const char *et_cost_kind_name(et_cost_kind k)
{
    return (unsigned)k < ET_COST_KIND_COUNT ? kind_names[k] : "?";
}

et_target_catalog *et_targets_create(void)
{
    et_target_catalog *c = calloc(1, sizeof *c);
    if (c)
        et_arena_init(&c->arena, 0);
    return c;
}

void et_targets_destroy(et_target_catalog *c)
{
    if (!c)
        return;
    et_arena_free(&c->arena);
    free(c->targets);
    free(c);
}

int et_targets_count(const et_target_catalog *c)
{
    return c ? c->n : 0;
}

const et_target *et_targets_get(const et_target_catalog *c, int i)
{
    return c && i >= 0 && i < c->n ? &c->targets[i] : NULL;
}

const et_target *et_targets_find(const et_target_catalog *c, const char *name)
{
    for (int i = 0; c && name && i < c->n; i++)
        if (!strcmp(c->targets[i].name, name))
            return &c->targets[i];
    return NULL;
}

et_status et_targets_lookup(const et_target_catalog *c, const char *name, const et_target **out,
                            et_error *err)
{
    *out = et_targets_find(c, name);
    if (*out)
        return ET_OK;
    char list[700] = "";
    size_t used = 0;
    for (int i = 0; i < c->n && used + 2 < sizeof list; i++) {
        int w =
            snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", c->targets[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return et_error_set(err, ET_ENOTFOUND,
                        "no target '%s'; known targets: %s (add your own with --targets FILE)",
                        name, list);
}

et_status et_target_engine(const et_target *t, const char *engine, const et_engine_costs **out,
                           et_error *err)
{
    const char *want = engine ? engine : t->default_engine;
    for (int i = 0; i < t->n_engines; i++)
        if (!strcmp(t->engines[i].name, want)) {
            *out = &t->engines[i];
            return ET_OK;
        }
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; i < t->n_engines && used + 2 < sizeof list; i++) {
        int w =
            snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", t->engines[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    *out = NULL;
    return et_error_set(err, ET_ENOTFOUND, "target '%s' has no figures for engine '%s'; it has: %s",
                        t->name, want, list);
}

/* ------------------------------------------------------------------------
 * Parsing and checking one file.
 */

typedef struct parse_ctx {
    const char *origin;
    et_arena *arena;
    et_error *err;
    char where[128]; /* "targets[3] ('name')" */
} parse_ctx;

static et_status bad(parse_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static et_status bad(parse_ctx *x, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return et_error_set(x->err, ET_EINVAL, "%s: %s%s%s", x->origin, x->where,
                        x->where[0] ? ": " : "", msg);
}

/* Names: lowercase letters, digits, '-', '.', '_', starting with a letter
 * or digit; so they are safe on a command line and in a file name. */
static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '.' || s[i] == '_'))
            return false;
    return true;
}

/* The JSON text of a value, for messages ("-5", "\"abc\"", "an object"). */
static void show(const json_t *v, char *out, size_t n)
{
    if (json_is_object(v))
        snprintf(out, n, "an object");
    else if (json_is_array(v))
        snprintf(out, n, "an array");
    else {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(out, n, "%.60s", s ? s : "?");
        free(s);
    }
}

/* Checks that obj has only keys from allowed (NULL-terminated). */
static et_status only_keys(parse_ctx *x, const json_t *obj, const char *what,
                           const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (int i = 0; allowed[i]; i++)
            ok = ok || !strcmp(key, allowed[i]);
        if (!ok) {
            char list[300] = "";
            size_t used = 0;
            for (int i = 0; allowed[i] && used + 2 < sizeof list; i++) {
                int w =
                    snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", allowed[i]);
                if (w < 0)
                    break;
                used += (size_t)w;
            }
            return bad(x, "unknown key '%s' in %s; allowed: %s", key, what, list);
        }
    }
    return ET_OK;
}

static et_status get_string(parse_ctx *x, const json_t *obj, const char *key, bool required,
                            const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            return bad(x, "key '%s' is missing", key);
        return ET_OK;
    }
    char shown[80];
    show(v, shown, sizeof shown);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return bad(x, "key '%s': %s is not allowed; give a non-empty string", key, shown);
    *out = et_arena_strdup(x->arena, json_string_value(v));
    return *out ? ET_OK : et_error_set(x->err, ET_ENOMEM, "out of memory");
}

static et_status get_number(parse_ctx *x, const json_t *obj, const char *key, bool required,
                            double lo, double hi, const char *what, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return bad(x, "key '%s' is missing; give %s", key, what);
        return ET_OK;
    }
    char shown[80];
    show(v, shown, sizeof shown);
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi))
        return bad(x, "key '%s': %s is not allowed; give %s", key, shown, what);
    *out = json_number_value(v);
    return ET_OK;
}

static et_status get_bytes(parse_ctx *x, const json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return bad(x, "key '%s' is missing; give a whole number of bytes (0 = no limit)", key);
    char shown[80];
    show(v, shown, sizeof shown);
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > ((json_int_t)1 << 50))
        return bad(x,
                   "key '%s': %s is not allowed; give a whole number of bytes, 0 (no limit) to "
                   "2^50",
                   key, shown);
    *out = (int64_t)json_integer_value(v);
    return ET_OK;
}

static et_status parse_precision(parse_ctx *x, const json_t *obj, const char *engine,
                                 et_precision p, et_engine_costs *e)
{
    static const char *const keys[] = {"conv", "depthwise", "pointwise",   "dense", "pool",
                                       "add",  "softmax",   "op_overhead", NULL};
    char saved[128];
    snprintf(saved, sizeof saved, "%s", x->where);
    snprintf(x->where + strlen(x->where), sizeof x->where - strlen(x->where), ", engine '%s', %s",
             engine, precision_names[p]);
    et_status rc = ET_OK;
    if (!json_is_object(obj))
        rc = bad(x, "must be an object of cycle figures (conv, depthwise, pointwise, dense, and "
                    "optionally pool, add, softmax, op_overhead)");
    if (rc == ET_OK)
        rc = only_keys(x, obj, "a cost figure object", keys);
    for (int k = 0; rc == ET_OK && k < ET_COST_KIND_COUNT - 1; k++) {
        bool per_mac = k < ET_COST_MAC_KINDS;
        e->cycles[p][k] = 0;
        rc = get_number(x, obj, kind_names[k], per_mac, per_mac ? 1e-3 : 0, 1e6,
                        per_mac ? "cycles per MAC, 0.001 to 1e6"
                                : "cycles per element, 0 to 1e6 (0: not material)",
                        &e->cycles[p][k]);
    }
    e->op_overhead[p] = 0;
    if (rc == ET_OK)
        rc = get_number(x, obj, "op_overhead", false, 0, 1e9, "cycles per op, 0 to 1e9",
                        &e->op_overhead[p]);
    snprintf(x->where, sizeof x->where, "%s", saved);
    return rc;
}

static et_status parse_target(parse_ctx *x, const json_t *o, et_target *t)
{
    static const char *const keys[] = {"name",          "description",    "boards",  "clock_hz",
                                       "ram_bytes",     "flash_bytes",    "engines", "sources",
                                       "code_size_isa", "default_engine", NULL};
    memset(t, 0, sizeof *t);
    if (!json_is_object(o))
        return bad(x, "a target must be an object");
    const char *s = NULL;
    et_status rc = get_string(x, o, "name", true, &s);
    if (rc < 0)
        return rc;
    if (!name_ok(s, ET_TARGET_NAME_MAX))
        return bad(x,
                   "key 'name': '%s' is not allowed; use 1 to %d lowercase letters, digits, "
                   "'-', '.' or '_', starting with a letter or digit",
                   s, ET_TARGET_NAME_MAX - 1);
    snprintf(t->name, sizeof t->name, "%s", s);
    size_t len = strlen(x->where);
    snprintf(x->where + len, sizeof x->where - len, " ('%s')", t->name);
    if ((rc = only_keys(x, o, "a target", keys)) < 0 ||
        (rc = get_string(x, o, "description", true, &t->description)) < 0 ||
        (rc = get_number(x, o, "clock_hz", true, 1e3, 1e11, "the clock in Hz, 1000 to 1e11",
                         &t->clock_hz)) < 0 ||
        (rc = get_bytes(x, o, "ram_bytes", &t->ram_bytes)) < 0 ||
        (rc = get_bytes(x, o, "flash_bytes", &t->flash_bytes)) < 0)
        return rc;

    json_t *boards = json_object_get(o, "boards");
    if (boards) {
        if (!json_is_array(boards))
            return bad(x, "key 'boards' must be an array of strings");
        size_t n = json_array_size(boards);
        const char **list = et_arena_calloc(x->arena, n ? n : 1, sizeof *list);
        if (!list)
            return et_error_set(x->err, ET_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *b = json_array_get(boards, i);
            if (!json_is_string(b) || json_string_length(b) == 0)
                return bad(x, "boards[%zu] must be a non-empty string", i);
            if (!(list[i] = et_arena_strdup(x->arena, json_string_value(b))))
                return et_error_set(x->err, ET_ENOMEM, "out of memory");
        }
        t->boards = list;
        t->n_boards = (int)n;
    }

    const char *isa = NULL;
    if ((rc = get_string(x, o, "code_size_isa", false, &isa)) < 0)
        return rc;
    if (isa && strcmp(isa, "armv7e-m") && strcmp(isa, "armv6-m"))
        return bad(x, "key 'code_size_isa': '%s' is not allowed; use armv7e-m or armv6-m", isa);
    snprintf(t->code_size_isa, sizeof t->code_size_isa, "%s", isa ? isa : "armv7e-m");

    json_t *engines = json_object_get(o, "engines");
    if (!engines)
        return bad(x, "key 'engines' is missing; give at least one engine's figures, e.g. "
                      "{\"cmsis-nn\": {\"int8\": {...}, \"float32\": {...}}}");
    if (!json_is_object(engines) || json_object_size(engines) == 0 ||
        json_object_size(engines) > ET_TARGET_MAX_ENGINES)
        return bad(x, "key 'engines' must be an object of 1 to %d engines", ET_TARGET_MAX_ENGINES);
    const char *ename;
    json_t *ev;
    json_object_foreach(engines, ename, ev)
    {
        static const char *const ekeys[] = {"int8", "float32", NULL};
        et_engine_costs *e = &t->engines[t->n_engines++];
        if (!name_ok(ename, ET_ENGINE_NAME_MAX))
            return bad(x,
                       "engine name '%s' is not allowed; use 1 to %d lowercase letters, digits, "
                       "'-', '.' or '_'",
                       ename, ET_ENGINE_NAME_MAX - 1);
        snprintf(e->name, sizeof e->name, "%s", ename);
        if (!json_is_object(ev))
            return bad(x, "engine '%s' must be an object with keys int8 and float32", ename);
        if ((rc = only_keys(x, ev, "an engine", ekeys)) < 0)
            return rc;
        for (int p = 0; p < ET_PRECISION_COUNT; p++) {
            json_t *pv = json_object_get(ev, precision_names[p]);
            if (!pv)
                return bad(x,
                           "engine '%s': key '%s' is missing (both int8 and float32 are "
                           "needed)",
                           ename, precision_names[p]);
            if ((rc = parse_precision(x, pv, ename, (et_precision)p, e)) < 0)
                return rc;
        }
    }
    const char *def = NULL;
    if ((rc = get_string(x, o, "default_engine", false, &def)) < 0)
        return rc;
    snprintf(t->default_engine, sizeof t->default_engine, "%s", def ? def : t->engines[0].name);
    const et_engine_costs *found = NULL;
    if (et_target_engine(t, t->default_engine, &found, NULL) < 0)
        return bad(x, "key 'default_engine': '%s' is not one of the target's engines",
                   t->default_engine);

    json_t *sources = json_object_get(o, "sources");
    if (!sources)
        return bad(x,
                   "key 'sources' is missing; every figure needs its source: give "
                   "[{\"url\": \"...\", \"note\": \"what it says and how the figure follows\"}]");
    if (!json_is_array(sources) || json_array_size(sources) == 0)
        return bad(x, "key 'sources' must be a non-empty array of {\"url\", \"note\"} objects");
    size_t ns = json_array_size(sources);
    et_target_source *src = et_arena_calloc(x->arena, ns, sizeof *src);
    if (!src)
        return et_error_set(x->err, ET_ENOMEM, "out of memory");
    for (size_t i = 0; i < ns; i++) {
        static const char *const skeys[] = {"url", "note", NULL};
        json_t *sv = json_array_get(sources, i);
        char saved[128];
        snprintf(saved, sizeof saved, "%s", x->where);
        len = strlen(x->where);
        snprintf(x->where + len, sizeof x->where - len, ", sources[%zu]", i);
        if (!json_is_object(sv))
            rc = bad(x, "must be an object {\"url\", \"note\"}");
        if (rc == ET_OK)
            rc = only_keys(x, sv, "a source", skeys);
        if (rc == ET_OK)
            rc = get_string(x, sv, "url", true, &src[i].url);
        if (rc == ET_OK)
            rc = get_string(x, sv, "note", true, &src[i].note);
        snprintf(x->where, sizeof x->where, "%s", saved);
        if (rc < 0)
            return rc;
    }
    t->sources = src;
    t->n_sources = (int)ns;
    return ET_OK;
}

et_status et_targets_add_json(et_target_catalog *c, const char *text, size_t n, const char *origin,
                              et_error *err)
{
    static const char *const top_keys[] = {"schema", "version", "notes", "targets", NULL};
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return et_error_set(err, ET_EINVAL, "%s:%d:%d: bad JSON: %s", origin, je.line, je.column,
                            je.text);
    parse_ctx x = {.origin = et_arena_strdup(&c->arena, origin), .arena = &c->arena, .err = err};
    if (!x.origin) {
        json_decref(root);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    et_status rc = ET_OK;
    et_target *fresh = NULL;
    size_t nt = 0;
    json_t *targets = NULL;
    if (!json_is_object(root))
        rc = bad(&x, "the file must be a JSON object {\"targets\": [...]}");
    if (rc == ET_OK)
        rc = only_keys(&x, root, "the file's top level", top_keys);
    json_t *schema = rc == ET_OK ? json_object_get(root, "schema") : NULL;
    if (rc == ET_OK && schema &&
        !(json_is_string(schema) && !strcmp(json_string_value(schema), "edgetrain-targets")))
        rc = bad(&x, "key 'schema' must be \"edgetrain-targets\"");
    json_t *version = rc == ET_OK ? json_object_get(root, "version") : NULL;
    if (rc == ET_OK && version && !(json_is_integer(version) && json_integer_value(version) == 1))
        rc = bad(&x, "key 'version': this edgetrain reads version 1 target files");
    if (rc == ET_OK) {
        targets = json_object_get(root, "targets");
        if (!targets || !json_is_array(targets) || json_array_size(targets) == 0 ||
            json_array_size(targets) > MAX_TARGETS)
            rc = bad(&x, "key 'targets' must be an array of 1 to %d targets", MAX_TARGETS);
    }
    if (rc == ET_OK) {
        nt = json_array_size(targets);
        fresh = calloc(nt, sizeof *fresh);
        if (!fresh)
            rc = et_error_set(err, ET_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == ET_OK && i < nt; i++) {
        snprintf(x.where, sizeof x.where, "targets[%zu]", i);
        rc = parse_target(&x, json_array_get(targets, i), &fresh[i]);
        fresh[i].origin = x.origin;
        for (size_t j = 0; rc == ET_OK && j < i; j++)
            if (!strcmp(fresh[j].name, fresh[i].name))
                rc = bad(&x, "the name '%s' is already used by targets[%zu] in this file",
                         fresh[i].name, j);
    }
    json_decref(root);
    /* Apply: replace targets of the same name, append the others. */
    if (rc == ET_OK && (size_t)c->n + nt > (size_t)c->cap) {
        int cap = c->n + (int)nt + 8;
        et_target *grown = realloc(c->targets, (size_t)cap * sizeof *grown);
        if (!grown)
            rc = et_error_set(err, ET_ENOMEM, "out of memory");
        else {
            c->targets = grown;
            c->cap = cap;
        }
    }
    for (size_t i = 0; rc == ET_OK && i < nt; i++) {
        int at = -1;
        for (int j = 0; j < c->n; j++)
            if (!strcmp(c->targets[j].name, fresh[i].name))
                at = j;
        if (at >= 0)
            c->targets[at] = fresh[i];
        else
            c->targets[c->n++] = fresh[i];
    }
    free(fresh);
    return rc;
}

static et_status add_file(et_target_catalog *c, const char *path, et_error *err)
{
    unsigned char *data = NULL;
    size_t n = 0;
    et_status rc = et_read_file(path, TARGET_FILE_MAX, &data, &n, err);
    if (rc == ET_OK)
        rc = et_targets_add_json(c, (const char *)data, n, path, err);
    free(data);
    return rc;
}

et_status et_targets_load(const char *user_file, const char *project_root, et_target_catalog **out,
                          et_error *err)
{
    *out = NULL;
    et_target_catalog *c = et_targets_create();
    if (!c)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    et_status rc = et_targets_add_json(c, (const char *)et_builtin_targets_json,
                                       et_builtin_targets_json_len, "built-in", err);
    if (rc == ET_OK && project_root) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/targets.json", project_root);
        if (stat(path, &st) == 0)
            rc = add_file(c, path, err);
    }
    if (rc == ET_OK && user_file)
        rc = add_file(c, user_file, err);
    if (rc < 0) {
        et_targets_destroy(c);
        return rc;
    }
    *out = c;
    return ET_OK;
}

/* ------------------------------------------------------------------------
 * JSON out.
 */

static json_t *engine_json(const et_engine_costs *e)
{
    json_t *o = json_object();
    for (int p = 0; o && p < ET_PRECISION_COUNT; p++) {
        json_t *f = json_object();
        for (int k = 0; f && k < ET_COST_KIND_COUNT - 1; k++)
            if (k < ET_COST_MAC_KINDS || e->cycles[p][k] > 0)
                json_object_set_new(f, kind_names[k], json_real(e->cycles[p][k]));
        if (f && e->op_overhead[p] > 0)
            json_object_set_new(f, "op_overhead", json_real(e->op_overhead[p]));
        json_object_set_new(o, precision_names[p], f);
    }
    return o;
}

json_t *et_target_json_internal(const et_target *t)
{
    json_t *boards = json_array(), *engines = json_object(), *sources = json_array();
    for (int i = 0; i < t->n_boards; i++)
        json_array_append_new(boards, json_string(t->boards[i]));
    for (int i = 0; i < t->n_engines; i++)
        json_object_set_new(engines, t->engines[i].name, engine_json(&t->engines[i]));
    for (int i = 0; i < t->n_sources; i++)
        json_array_append_new(
            sources, json_pack("{s:s,s:s}", "url", t->sources[i].url, "note", t->sources[i].note));
    return json_pack("{s:s,s:s,s:o,s:f,s:I,s:I,s:s,s:s,s:o,s:o,s:s}", "name", t->name,
                     "description", t->description, "boards", boards, "clock_hz", t->clock_hz,
                     "ram_bytes", (json_int_t)t->ram_bytes, "flash_bytes",
                     (json_int_t)t->flash_bytes, "code_size_isa", t->code_size_isa,
                     "default_engine", t->default_engine, "engines", engines, "sources", sources,
                     "origin", t->origin);
}

char *et_targets_to_json(const et_target_catalog *c)
{
    json_t *list = json_array();
    for (int i = 0; list && i < c->n; i++)
        json_array_append_new(list, et_target_json_internal(&c->targets[i]));
    json_t *o =
        json_pack("{s:s,s:o}", "default_target", ET_PROFILE_DEFAULT_TARGET, "targets", list);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    return s;
}
