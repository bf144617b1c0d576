/* The tuner's search space: JSON in and out, the built-in default space,
 * the space around an impulse, and drawing candidates from it.
 *
 * Values are checked where they enter, with messages that name the key path
 * ("learning[1].alpha[0]"), the value and what is allowed. Combinations
 * (an input too small for a model) are not errors of the space: such a
 * candidate is recorded as a failed trial. */
#include "tune/tune_internal.h"

#include "core/fsutil.h"
#include "core/rng.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const resize_names[] = {"squash", "fit-shortest", "fit-longest"};
static const char *const color_names[] = {"rgb", "grayscale"};
static const char *const model_names[] = {"conv", "mobilenetv1", "mobilenetv2"};

/* Error context: the file name and the key path. */
typedef struct ctx {
    const char *name;
    et_error *err;
} ctx;

static et_status fail(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static et_status fail(ctx *c, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return et_error_set(c->err, ET_EINVAL, "%.100s: %s", c->name, msg);
}

static void shown(json_t *v, char *out, size_t n)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(out, n, "%s", s ? s : "?");
    free(s);
}

/* The alternatives of a key: a list, or one value standing for itself. An
 * empty list is an error. Sets *count. */
static et_status alternatives(ctx *c, const char *path, json_t *v, bool value_is_list,
                              json_t **items, int *count)
{
    int n = 0;
    if (json_is_array(v)) {
        if (json_array_size(v) == 0)
            return fail(c, "%s: an empty list; give at least one alternative%s", path,
                        value_is_list ? " ([[]] for none)" : "");
        if (json_array_size(v) > SPACE_MAX_ALTS)
            return fail(c, "%s: %zu alternatives; at most %d", path, json_array_size(v),
                        SPACE_MAX_ALTS);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (value_is_list && json_is_integer(e))
                return fail(c,
                            "%s: expected a list of alternatives, e.g. [[16], [16, 32]] (one "
                            "alternative is [[16, 32]])",
                            path);
            items[n++] = e;
        }
    } else if (value_is_list && !json_is_string(v)) {
        return fail(c, "%s: expected a list of alternatives, e.g. [[16], [16, 32]]", path);
    } else {
        items[n++] = v;
    }
    *count = n;
    return ET_OK;
}

static et_status get_int(ctx *c, const char *path, int i, json_t *v, int lo, int hi, int *out)
{
    char s[96];
    shown(v, s, sizeof s);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(c, "%s[%d] = %s: expected a whole number in %d..%d", path, i, s, lo, hi);
    *out = (int)json_integer_value(v);
    return ET_OK;
}

static et_status get_num(ctx *c, const char *path, int i, json_t *v, double lo, double hi,
                         bool lo_open, double *out)
{
    char s[96];
    shown(v, s, sizeof s);
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    if (!isfinite(d) || d < lo || d > hi || (lo_open && d <= lo))
        return fail(c, "%s[%d] = %s: expected a number in %s%g, %g]", path, i, s,
                    lo_open ? "(" : "[", lo, hi);
    *out = d;
    return ET_OK;
}

static et_status get_enum(ctx *c, const char *path, int i, json_t *v, const char *const *names,
                          int n_names, int *out)
{
    if (json_is_string(v))
        for (int k = 0; k < n_names; k++)
            if (!strcmp(json_string_value(v), names[k])) {
                *out = k;
                return ET_OK;
            }
    char s[96], allowed[256];
    shown(v, s, sizeof s);
    size_t used = 0;
    allowed[0] = '\0';
    for (int k = 0; k < n_names; k++)
        used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", k ? ", " : "",
                                 names[k]);
    return fail(c, "%s[%d] = %s: allowed values are %s", path, i, s, allowed);
}

static et_status get_bool(ctx *c, const char *path, int i, json_t *v, bool *out)
{
    if (!json_is_boolean(v)) {
        char s[96];
        shown(v, s, sizeof s);
        return fail(c, "%s[%d] = %s: expected true or false", path, i, s);
    }
    *out = json_is_true(v);
    return ET_OK;
}

static bool one_of(const char *key, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(key, keys[i]))
            return true;
    return false;
}

static et_status unknown_key(ctx *c, const char *block, const char *key, const char *const *keys,
                             size_t n)
{
    char allowed[256];
    size_t used = 0;
    allowed[0] = '\0';
    for (size_t i = 0; i < n; i++)
        used +=
            (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", i ? ", " : "", keys[i]);
    return fail(c, "unknown key '%s.%s' (allowed in %s: %s)", block, key, block, allowed);
}

/* ------------------------------------------------------------------------
 * Parsing.
 */
static et_status parse_training_key(ctx *c, const char *path, const char *key, json_t *v,
                                    space_training *t)
{
    json_t *items[SPACE_MAX_ALTS];
    int n = 0;
    et_status rc = alternatives(c, path, v, false, items, &n);
    for (int i = 0; rc == ET_OK && i < n; i++) {
        if (!strcmp(key, "learning_rate"))
            rc = get_num(c, path, i, items[i], 0, 1, true, &t->lr[i]);
        else if (!strcmp(key, "epochs"))
            rc = get_int(c, path, i, items[i], 1, 1000, &t->epochs[i]);
        else if (!strcmp(key, "batch_size"))
            rc = get_int(c, path, i, items[i], 1, 1024, &t->batch[i]);
        else if (!strcmp(key, "dropout"))
            rc = get_num(c, path, i, items[i], 0, 0.9, false, &t->dropout[i]);
        else
            rc = get_bool(c, path, i, items[i], &t->augment[i]);
    }
    if (rc < 0)
        return rc;
    if (!strcmp(key, "learning_rate"))
        t->n_lr = n;
    else if (!strcmp(key, "epochs"))
        t->n_epochs = n;
    else if (!strcmp(key, "batch_size"))
        t->n_batch = n;
    else if (!strcmp(key, "dropout"))
        t->n_dropout = n;
    else
        t->n_augment = n;
    return ET_OK;
}

static const char *const training_keys[] = {"learning_rate", "epochs", "batch_size", "augment",
                                            "dropout"};
#define N_TRAINING_KEYS (sizeof training_keys / sizeof training_keys[0])

/* One conv-layer alternative: [16, 32] (kernels from "kernel"), or the
 * impulse's forms [{"filters":16,"kernel":3}, ...] / "16:3,32:5". */
static et_status parse_layers(ctx *c, const char *path, int i, json_t *v, space_layers *out)
{
    memset(out, 0, sizeof *out);
    bool ints = json_is_array(v) && json_array_size(v) > 0;
    size_t k;
    json_t *e;
    json_array_foreach(v, k, e) ints = ints && json_is_integer(e);
    if (ints) {
        if (json_array_size(v) > ET_MAX_CONV_LAYERS)
            return fail(c, "%s[%d]: %zu layers; at most %d", path, i, json_array_size(v),
                        ET_MAX_CONV_LAYERS);
        json_array_foreach(v, k, e)
        {
            json_int_t f = json_integer_value(e);
            if (f < 1 || f > 1024)
                return fail(c, "%s[%d][%zu] = %lld: filters must be 1..1024", path, i, k,
                            (long long)f);
            out->layer[out->n++] = (et_conv_layer){(int)f, 3};
        }
        return ET_OK;
    }
    /* The impulse's own parser checks the other forms and names the problem. */
    et_impulse scratch = et_impulse_defaults();
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!text)
        return et_error_set(c->err, ET_ENOMEM, "out of memory");
    size_t len = strlen(text) + 32;
    char *assign = malloc(len);
    if (!assign) {
        free(text);
        return et_error_set(c->err, ET_ENOMEM, "out of memory");
    }
    /* A string alternative is passed without its JSON quotes (the shorthand). */
    if (json_is_string(v))
        snprintf(assign, len, "learning.conv_layers=%s", json_string_value(v));
    else
        snprintf(assign, len, "learning.conv_layers=%s", text);
    et_error e2 = {0};
    et_status rc = json_is_array(v) && json_array_size(v) == 0
                       ? et_error_set(&e2, ET_EINVAL, "at least one conv layer is needed")
                       : et_impulse_set(&scratch, assign, &e2);
    free(text);
    free(assign);
    if (rc < 0)
        return fail(c, "%s[%d]: %s (a list of filter counts like [16, 32] is allowed too)", path, i,
                    e2.msg);
    out->n = scratch.n_conv;
    memcpy(out->layer, scratch.conv, sizeof out->layer);
    out->kernels = true;
    return ET_OK;
}

static et_status parse_dense(ctx *c, const char *path, int i, json_t *v, space_dense *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_array(v))
        return fail(c, "%s[%d]: expected a list of neuron counts like [32] or [] for none", path,
                    i);
    if (json_array_size(v) > ET_MAX_DENSE_LAYERS)
        return fail(c, "%s[%d]: at most %d dense layers", path, i, ET_MAX_DENSE_LAYERS);
    size_t k;
    json_t *e;
    json_array_foreach(v, k, e)
    {
        if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > 4096)
            return fail(c, "%s[%d][%zu]: neurons must be a whole number in 1..4096", path, i, k);
        out->units[out->n++] = (int)json_integer_value(e);
    }
    return ET_OK;
}

static et_status alpha_check(ctx *c, const char *path, int i, et_model_kind model, double a)
{
    const double *list = NULL;
    size_t count = et_model_alphas(model, &list);
    char allowed[128];
    size_t used = 0;
    for (size_t k = 0; k < count; k++) {
        if (fabs(list[k] - a) < 1e-9)
            return ET_OK;
        used +=
            (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%g", k ? ", " : "", list[k]);
    }
    return fail(c, "%s[%d] = %g is not offered for %s (allowed: %s)", path, i, a,
                model_names[model], allowed);
}

static et_status parse_learning(ctx *c, int index, json_t *o, space_learning *l)
{
    char base[48], path[96];
    snprintf(base, sizeof base, "learning[%d]", index);
    if (!json_is_object(o))
        return fail(c, "%s: expected an object like {\"model\": \"conv\", ...}", base);
    json_t *m = json_object_get(o, "model");
    if (!m)
        return fail(c, "%s: 'model' is required (conv, mobilenetv1 or mobilenetv2)", base);
    snprintf(path, sizeof path, "%s.model", base);
    int model = 0;
    et_status rc = get_enum(c, path, 0, m, model_names, 3, &model);
    if (rc < 0)
        return rc;
    l->model = (et_model_kind)model;
    l->weight = 1;
    static const char *const conv_keys[] = {"model",  "weight",       "conv_layers",
                                            "kernel", "dense_layers", "batch_norm"};
    static const char *const transfer_keys[] = {"model", "weight", "alpha", "head_neurons"};
    static const char *const all_keys[] = {
        "model",      "weight",  "conv_layers",  "kernel",        "dense_layers",
        "batch_norm", "alpha",   "head_neurons", "learning_rate", "epochs",
        "batch_size", "augment", "dropout"};
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        snprintf(path, sizeof path, "%s.%s", base, key);
        bool conv = one_of(key, conv_keys, sizeof conv_keys / sizeof conv_keys[0]),
             transfer = one_of(key, transfer_keys, sizeof transfer_keys / sizeof transfer_keys[0]);
        if (one_of(key, training_keys, N_TRAINING_KEYS)) {
            rc = parse_training_key(c, path, key, v, &l->t);
        } else if (!conv && !transfer) {
            char block[48];
            snprintf(block, sizeof block, "%s", base);
            return unknown_key(c, block, key, all_keys, sizeof all_keys / sizeof all_keys[0]);
        } else if (l->model == ET_MODEL_CONV && !conv) {
            return fail(c,
                        "%s applies to mobilenetv1 and mobilenetv2 only (this alternative "
                        "is conv)",
                        path);
        } else if (l->model != ET_MODEL_CONV && !transfer) {
            return fail(c, "%s applies to conv only (this alternative is %s)", path,
                        model_names[l->model]);
        } else if (!strcmp(key, "model")) {
            continue;
        } else if (!strcmp(key, "weight")) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100)
                return fail(c, "%s: expected a whole number in 1..100", path);
            l->weight = (int)json_integer_value(v);
        } else {
            json_t *items[SPACE_MAX_ALTS];
            int n = 0;
            bool list_valued = !strcmp(key, "conv_layers") || !strcmp(key, "dense_layers");
            rc = alternatives(c, path, v, list_valued, items, &n);
            for (int i = 0; rc == ET_OK && i < n; i++) {
                if (!strcmp(key, "conv_layers"))
                    rc = parse_layers(c, path, i, items[i], &l->layers[i]);
                else if (!strcmp(key, "dense_layers"))
                    rc = parse_dense(c, path, i, items[i], &l->dense[i]);
                else if (!strcmp(key, "kernel"))
                    rc = get_int(c, path, i, items[i], 1, 7, &l->kernel[i]);
                else if (!strcmp(key, "head_neurons"))
                    rc = get_int(c, path, i, items[i], 0, 1024, &l->head[i]);
                else if (!strcmp(key, "batch_norm"))
                    rc = get_bool(c, path, i, items[i], &l->bn[i]);
                else {
                    rc = get_num(c, path, i, items[i], 0.05, 1.0, false, &l->alpha[i]);
                    if (rc == ET_OK)
                        rc = alpha_check(c, path, i, l->model, l->alpha[i]);
                }
            }
            if (!strcmp(key, "conv_layers"))
                l->n_layers = n;
            else if (!strcmp(key, "dense_layers"))
                l->n_dense = n;
            else if (!strcmp(key, "kernel"))
                l->n_kernel = n;
            else if (!strcmp(key, "head_neurons"))
                l->n_head = n;
            else if (!strcmp(key, "batch_norm"))
                l->n_bn = n;
            else
                l->n_alpha = n;
        }
        if (rc < 0)
            return rc;
    }
    return ET_OK;
}

static et_status parse_root(ctx *c, json_t *root, et_tune_space *s)
{
    if (!json_is_object(root))
        return fail(c, "a search space is a JSON object with input, processing, learning and "
                       "training");
    static const char *const blocks[] = {"input", "processing", "learning", "training"};
    static const char *const input_keys[] = {"size", "resize"};
    static const char *const processing_keys[] = {"color"};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (!one_of(key, blocks, 4))
            return fail(c, "unknown block '%s' (allowed: input, processing, learning, training)",
                        key);
    }
    et_status rc = ET_OK;
    json_t *input = json_object_get(root, "input");
    if (input && !json_is_object(input))
        return fail(c, "'input' must be an object like {\"size\": [32, 64]}");
    json_object_foreach(input, key, v)
    {
        if (!one_of(key, input_keys, 2))
            return unknown_key(c, "input", key, input_keys, 2);
        char path[64];
        snprintf(path, sizeof path, "input.%s", key);
        json_t *items[SPACE_MAX_ALTS];
        int n = 0;
        if ((rc = alternatives(c, path, v, false, items, &n)) < 0)
            return rc;
        for (int i = 0; i < n && rc == ET_OK; i++) {
            if (!strcmp(key, "resize")) {
                int r = 0;
                rc = get_enum(c, path, i, items[i], resize_names, 3, &r);
                s->resize[i] = (et_resize_mode)r;
            } else if (json_is_array(items[i]) && json_array_size(items[i]) == 2) {
                rc = get_int(c, path, i, json_array_get(items[i], 0), ET_INPUT_MIN, ET_INPUT_MAX,
                             &s->width[i]);
                if (rc == ET_OK)
                    rc = get_int(c, path, i, json_array_get(items[i], 1), ET_INPUT_MIN,
                                 ET_INPUT_MAX, &s->height[i]);
            } else if (json_is_integer(items[i])) {
                rc = get_int(c, path, i, items[i], ET_INPUT_MIN, ET_INPUT_MAX, &s->width[i]);
                s->height[i] = s->width[i];
            } else {
                char t[96];
                shown(items[i], t, sizeof t);
                rc = fail(c,
                          "%s[%d] = %s: expected a side in %d..%d px (square) or "
                          "[width, height]",
                          path, i, t, ET_INPUT_MIN, ET_INPUT_MAX);
            }
        }
        if (!strcmp(key, "resize"))
            s->n_resize = n;
        else
            s->n_size = n;
        if (rc < 0)
            return rc;
    }
    json_t *proc = json_object_get(root, "processing");
    if (proc && !json_is_object(proc))
        return fail(c, "'processing' must be an object like {\"color\": [\"grayscale\"]}");
    json_object_foreach(proc, key, v)
    {
        if (!one_of(key, processing_keys, 1))
            return unknown_key(c, "processing", key, processing_keys, 1);
        json_t *items[SPACE_MAX_ALTS];
        int n = 0;
        if ((rc = alternatives(c, "processing.color", v, false, items, &n)) < 0)
            return rc;
        for (int i = 0; i < n && rc == ET_OK; i++) {
            int col = 0;
            rc = get_enum(c, "processing.color", i, items[i], color_names, 2, &col);
            s->color[i] = (et_color)col;
        }
        s->n_color = n;
        if (rc < 0)
            return rc;
    }
    json_t *training = json_object_get(root, "training");
    if (training && !json_is_object(training))
        return fail(c, "'training' must be an object like {\"learning_rate\": [0.001]}");
    json_object_foreach(training, key, v)
    {
        if (!one_of(key, training_keys, N_TRAINING_KEYS))
            return unknown_key(c, "training", key, training_keys, N_TRAINING_KEYS);
        char path[64];
        snprintf(path, sizeof path, "training.%s", key);
        if ((rc = parse_training_key(c, path, key, v, &s->t)) < 0)
            return rc;
    }
    json_t *learning = json_object_get(root, "learning");
    if (learning) {
        json_t *items[SPACE_MAX_LEARNING];
        int n = 0;
        if (json_is_array(learning)) {
            if (json_array_size(learning) == 0)
                return fail(c, "learning: an empty list; give at least one alternative");
            if (json_array_size(learning) > SPACE_MAX_LEARNING)
                return fail(c, "learning: %zu alternatives; at most %d", json_array_size(learning),
                            SPACE_MAX_LEARNING);
            size_t i;
            json_t *e;
            json_array_foreach(learning, i, e) items[n++] = e;
        } else {
            items[n++] = learning;
        }
        for (int i = 0; i < n; i++)
            if ((rc = parse_learning(c, i, items[i], &s->learning[i])) < 0)
                return rc;
        s->n_learning = n;
    }
    return ET_OK;
}

et_status et_tune_space_parse(const char *text, size_t n, const char *name, et_tune_space **out,
                              et_error *err)
{
    *out = NULL;
    if (!name)
        name = "search space";
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return et_error_set(err, ET_EINVAL, "%s:%d:%d: %s", name, je.line, je.column, je.text);
    et_tune_space *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(root);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    ctx c = {name, err};
    et_status rc = parse_root(&c, root, s);
    json_decref(root);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return ET_OK;
}

et_status et_tune_space_load(const char *path, et_tune_space **out, et_error *err)
{
    unsigned char *data = NULL;
    size_t size = 0;
    *out = NULL;
    et_status rc = et_read_file(path, 1 << 20, &data, &size, err);
    if (rc < 0)
        return rc;
    rc = et_tune_space_parse((const char *)data, size, path, out, err);
    free(data);
    return rc;
}

void et_tune_space_destroy(et_tune_space *s)
{
    free(s);
}

/* ------------------------------------------------------------------------
 * Canonical JSON.
 */
static json_t *layers_json(const space_layers *l)
{
    if (!l->kernels) {
        json_t *a = json_array();
        for (int k = 0; k < l->n; k++)
            json_array_append_new(a, json_integer(l->layer[k].filters));
        return a;
    }
    char text[ET_MAX_CONV_LAYERS * 16] = "";
    size_t used = 0;
    for (int k = 0; k < l->n; k++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%d:%d", k ? "," : "",
                                 l->layer[k].filters, l->layer[k].kernel);
    return json_string(text);
}

static void training_json(json_t *o, const space_training *t)
{
    json_t *a;
    if (t->n_lr) {
        json_object_set_new(o, "learning_rate", a = json_array());
        for (int i = 0; i < t->n_lr; i++)
            json_array_append_new(a, json_real(t->lr[i]));
    }
    if (t->n_epochs) {
        json_object_set_new(o, "epochs", a = json_array());
        for (int i = 0; i < t->n_epochs; i++)
            json_array_append_new(a, json_integer(t->epochs[i]));
    }
    if (t->n_batch) {
        json_object_set_new(o, "batch_size", a = json_array());
        for (int i = 0; i < t->n_batch; i++)
            json_array_append_new(a, json_integer(t->batch[i]));
    }
    if (t->n_augment) {
        json_object_set_new(o, "augment", a = json_array());
        for (int i = 0; i < t->n_augment; i++)
            json_array_append_new(a, json_boolean(t->augment[i]));
    }
    if (t->n_dropout) {
        json_object_set_new(o, "dropout", a = json_array());
        for (int i = 0; i < t->n_dropout; i++)
            json_array_append_new(a, json_real(t->dropout[i]));
    }
}

char *et_tune_space_to_json(const et_tune_space *s)
{
    json_t *root = json_object(), *o, *a;
    json_object_set_new(root, "input", o = json_object());
    if (s->n_size) {
        json_object_set_new(o, "size", a = json_array());
        for (int i = 0; i < s->n_size; i++)
            json_array_append_new(a, s->width[i] == s->height[i]
                                         ? json_integer(s->width[i])
                                         : json_pack("[i,i]", s->width[i], s->height[i]));
    }
    if (s->n_resize) {
        json_object_set_new(o, "resize", a = json_array());
        for (int i = 0; i < s->n_resize; i++)
            json_array_append_new(a, json_string(resize_names[s->resize[i]]));
    }
    json_object_set_new(root, "processing", o = json_object());
    if (s->n_color) {
        json_object_set_new(o, "color", a = json_array());
        for (int i = 0; i < s->n_color; i++)
            json_array_append_new(a, json_string(color_names[s->color[i]]));
    }
    if (s->n_learning) {
        json_t *list = json_array();
        json_object_set_new(root, "learning", list);
        for (int k = 0; k < s->n_learning; k++) {
            const space_learning *l = &s->learning[k];
            json_array_append_new(list, o = json_object());
            json_object_set_new(o, "model", json_string(model_names[l->model]));
            if (l->weight != 1)
                json_object_set_new(o, "weight", json_integer(l->weight));
            if (l->n_layers) {
                json_object_set_new(o, "conv_layers", a = json_array());
                for (int i = 0; i < l->n_layers; i++)
                    json_array_append_new(a, layers_json(&l->layers[i]));
            }
            if (l->n_kernel) {
                json_object_set_new(o, "kernel", a = json_array());
                for (int i = 0; i < l->n_kernel; i++)
                    json_array_append_new(a, json_integer(l->kernel[i]));
            }
            if (l->n_dense) {
                json_object_set_new(o, "dense_layers", a = json_array());
                for (int i = 0; i < l->n_dense; i++) {
                    json_t *d = json_array();
                    for (int u = 0; u < l->dense[i].n; u++)
                        json_array_append_new(d, json_integer(l->dense[i].units[u]));
                    json_array_append_new(a, d);
                }
            }
            if (l->n_bn) {
                json_object_set_new(o, "batch_norm", a = json_array());
                for (int i = 0; i < l->n_bn; i++)
                    json_array_append_new(a, json_boolean(l->bn[i]));
            }
            if (l->n_alpha) {
                json_object_set_new(o, "alpha", a = json_array());
                for (int i = 0; i < l->n_alpha; i++)
                    json_array_append_new(a, json_real(l->alpha[i]));
            }
            if (l->n_head) {
                json_object_set_new(o, "head_neurons", a = json_array());
                for (int i = 0; i < l->n_head; i++)
                    json_array_append_new(a, json_integer(l->head[i]));
            }
            training_json(o, &l->t);
        }
    }
    json_object_set_new(root, "training", o = json_object());
    training_json(o, &s->t);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    return text;
}

/* ------------------------------------------------------------------------
 * Size and drawing.
 */
static bool transfer_size_ok(int w, int h)
{
    return w >= ET_TRANSFER_INPUT_MIN && h >= ET_TRANSFER_INPUT_MIN && w <= ET_TRANSFER_INPUT_MAX &&
           h <= ET_TRANSFER_INPUT_MAX;
}

/* The input sizes a learning alternative draws from: MobileNets only those
 * they accept (all of them when none is accepted: the candidate then fails
 * with the reason). Writes indices into s->width/height. */
static int sizes_for(const et_tune_space *s, const space_learning *l, int *idx)
{
    int n = 0;
    for (int i = 0; i < s->n_size; i++)
        if (l->model == ET_MODEL_CONV || transfer_size_ok(s->width[i], s->height[i]))
            idx[n++] = i;
    if (n == 0)
        for (int i = 0; i < s->n_size; i++)
            idx[n++] = i;
    return n;
}

static int or1(int n)
{
    return n > 0 ? n : 1;
}

double et_tune_space_size(const et_tune_space *s)
{
    double shared = (double)or1(s->n_resize) * or1(s->n_color);
    if (s->n_learning == 0) {
        const space_training *t = &s->t;
        return shared * or1(s->n_size) * or1(t->n_lr) * or1(t->n_epochs) * or1(t->n_batch) *
               or1(t->n_augment) * or1(t->n_dropout);
    }
    double total = 0;
    for (int k = 0; k < s->n_learning; k++) {
        const space_learning *l = &s->learning[k];
        int idx[SPACE_MAX_ALTS];
        double n = shared * or1(s->n_size ? sizes_for(s, l, idx) : 0);
        n *= or1(l->n_layers) * or1(l->n_dense) * or1(l->n_bn) * or1(l->n_alpha) * or1(l->n_head);
        bool any_free_kernel = l->n_layers == 0;
        for (int i = 0; i < l->n_layers; i++)
            any_free_kernel = any_free_kernel || !l->layers[i].kernels;
        if (any_free_kernel)
            n *= or1(l->n_kernel);
        const space_training *a = &l->t, *t = &s->t;
        n *= or1(a->n_lr ? a->n_lr : t->n_lr) * or1(a->n_epochs ? a->n_epochs : t->n_epochs) *
             or1(a->n_batch ? a->n_batch : t->n_batch) *
             or1(a->n_augment ? a->n_augment : t->n_augment) *
             or1(a->n_dropout ? a->n_dropout : t->n_dropout);
        total += n;
    }
    return total;
}

bool et_tune_space_drop_rgb(et_tune_space *s)
{
    bool grey = false, rgb = false;
    for (int i = 0; i < s->n_color; i++) {
        grey = grey || s->color[i] == ET_COLOR_GRAYSCALE;
        rgb = rgb || s->color[i] == ET_COLOR_RGB;
    }
    if (!grey || !rgb)
        return false;
    s->n_color = 1;
    s->color[0] = ET_COLOR_GRAYSCALE;
    return true;
}

static int pick(uint64_t *rng, int n)
{
    return n <= 1 ? 0 : (int)(et_rng_unit(rng) * n);
}

/* The augmentation alternatives that apply to learning alternative l: its
 * own, else the space's. */
static const space_training *augment_list(const et_tune_space *s, const space_learning *l)
{
    return l && l->t.n_augment > 0 ? &l->t : &s->t;
}

static bool offers_augment(const space_training *t, bool value)
{
    for (int i = 0; i < t->n_augment; i++)
        if (t->augment[i] == value)
            return true;
    return false;
}

bool tune_space_offers_both_augments(const et_tune_space *s)
{
    for (int k = 0; k < (s->n_learning > 0 ? s->n_learning : 1); k++) {
        const space_training *t = augment_list(s, s->n_learning > 0 ? &s->learning[k] : NULL);
        if (offers_augment(t, false) && offers_augment(t, true))
            return true;
    }
    return false;
}

void et_tune_space_sample(const et_tune_space *s, const et_impulse *base, int64_t seed,
                          uint64_t *rng, et_impulse *out)
{
    tune_space_sample_with(s, base, seed, rng, -1, out);
}

void tune_space_sample_with(const et_tune_space *s, const et_impulse *base, int64_t seed,
                            uint64_t *rng, int augment, et_impulse *out)
{
    et_impulse imp = *base;
    /* The learning alternative first: it decides which sizes apply. */
    const space_learning *l = NULL;
    if (s->n_learning > 0) {
        int total = 0;
        for (int k = 0; k < s->n_learning; k++)
            total += s->learning[k].weight;
        int r = pick(rng, total), k = 0;
        while (r >= s->learning[k].weight)
            r -= s->learning[k++].weight;
        l = &s->learning[k];
    }
    if (s->n_size > 0) {
        int idx[SPACE_MAX_ALTS];
        int n = l ? sizes_for(s, l, idx) : s->n_size;
        if (!l)
            for (int i = 0; i < n; i++)
                idx[i] = i;
        int i = idx[pick(rng, n)];
        imp.width = s->width[i];
        imp.height = s->height[i];
    }
    if (s->n_resize > 0)
        imp.resize = s->resize[pick(rng, s->n_resize)];
    if (s->n_color > 0) {
        et_color col = s->color[pick(rng, s->n_color)];
        if (imp.processing == ET_PROCESSING_IMAGE)
            imp.color = col;
    }
    const space_training *a = l ? &l->t : NULL, *t = &s->t;
    if (l) {
        if (l->model != imp.model) {
            /* A new architecture starts from its own defaults, as 'impulse set'
             * does; the space draws the training settings. A MobileNet's alpha
             * restarts at 0.35, which both offer. */
            et_impulse_switch_architecture(&imp, l->model);
            if (l->model != ET_MODEL_CONV)
                imp.alpha = 0.35;
        }
        if (l->model == ET_MODEL_CONV) {
            if (l->n_layers > 0) {
                const space_layers *ly = &l->layers[pick(rng, l->n_layers)];
                imp.n_conv = ly->n;
                memcpy(imp.conv, ly->layer, sizeof imp.conv);
                int kernel = l->n_kernel > 0 ? l->kernel[pick(rng, l->n_kernel)] : 3;
                if (!ly->kernels)
                    for (int i = 0; i < imp.n_conv; i++)
                        imp.conv[i].kernel = kernel;
            } else if (l->n_kernel > 0) {
                int kernel = l->kernel[pick(rng, l->n_kernel)];
                for (int i = 0; i < imp.n_conv; i++)
                    imp.conv[i].kernel = kernel;
            }
            if (l->n_dense > 0) {
                const space_dense *d = &l->dense[pick(rng, l->n_dense)];
                imp.n_dense = d->n;
                memcpy(imp.dense, d->units, sizeof imp.dense);
            }
            if (l->n_bn > 0)
                imp.batch_norm = l->bn[pick(rng, l->n_bn)];
        } else {
            if (l->n_alpha > 0)
                imp.alpha = l->alpha[pick(rng, l->n_alpha)];
            if (l->n_head > 0)
                imp.head_neurons = l->head[pick(rng, l->n_head)];
        }
    }
#define DRAW(field, count, target)                                                                 \
    do {                                                                                           \
        if (a && a->count > 0)                                                                     \
            target = a->field[pick(rng, a->count)];                                                \
        else if (t->count > 0)                                                                     \
            target = t->field[pick(rng, t->count)];                                                \
    } while (0)
    DRAW(lr, n_lr, imp.learning_rate);
    DRAW(epochs, n_epochs, imp.epochs);
    DRAW(batch, n_batch, imp.batch_size);
    DRAW(augment, n_augment, imp.augment);
    DRAW(dropout, n_dropout, imp.dropout);
#undef DRAW
    if (augment >= 0 && offers_augment(augment_list(s, l), augment == 1))
        imp.augment = augment == 1;
    imp.seed = seed;
    *out = imp;
}

/* ------------------------------------------------------------------------
 * The built-in spaces.
 */
static void add_size(et_tune_space *s, int w, int h)
{
    for (int i = 0; i < s->n_size; i++)
        if (s->width[i] == w && s->height[i] == h)
            return;
    if (s->n_size < SPACE_MAX_ALTS) {
        s->width[s->n_size] = w;
        s->height[s->n_size] = h;
        s->n_size++;
    }
}

static void add_layers(space_learning *l, const int *filters, int n)
{
    space_layers *ly = &l->layers[l->n_layers++];
    memset(ly, 0, sizeof *ly);
    for (int i = 0; i < n; i++)
        ly->layer[ly->n++] = (et_conv_layer){filters[i], 3};
}

et_status et_tune_space_default(et_project *p, et_tune_space **out, et_error *err)
{
    *out = NULL;
    et_impulse base;
    et_status rc = et_impulse_default_for(p, &base, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    int max_channels = 1;
    if (sqlite3_prepare_v2(p->db, "SELECT coalesce(max(channels), 1) FROM samples", -1, &st,
                           NULL) != SQLITE_OK)
        return et_db_error(p, err, "reading the samples' channels");
    if (sqlite3_step(st) == SQLITE_ROW)
        max_channels = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    et_tune_space *s = calloc(1, sizeof *s);
    if (!s)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    /* Sizes up to a quarter above the images' own: upscaling further adds
     * cost and no information. Smaller images also get their own size. */
    int side = base.width < base.height ? base.width : base.height;
    static const int sizes[] = {32, 48, 64, 96, 128, 160};
    if (side < 32)
        add_size(s, side, side);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i] * 4 <= side * 5)
            add_size(s, sizes[i], sizes[i]);
    s->resize[s->n_resize++] = ET_RESIZE_SQUASH;
    if (base.width != base.height)
        s->resize[s->n_resize++] = ET_RESIZE_FIT_SHORTEST;
    s->color[s->n_color++] = ET_COLOR_GRAYSCALE;
    if (max_channels >= 3)
        s->color[s->n_color++] = ET_COLOR_RGB;
    int smallest = 1 << 30, largest = 0;
    for (int i = 0; i < s->n_size; i++) {
        int m = s->width[i] < s->height[i] ? s->width[i] : s->height[i];
        smallest = m < smallest ? m : smallest;
        largest = m > largest ? m : largest;
    }
    /* Conv nets of 1 to 4 layers, as deep as the smallest input allows. */
    space_learning *conv = &s->learning[s->n_learning++];
    conv->model = ET_MODEL_CONV;
    /* Conv nets twice as often as both MobileNets together: on small inputs they are
     * as accurate for a fraction of the flash (Fashion-MNIST at 32 px, trained in
     * full: MobileNetV2 alpha 0.35 91.4 % on test, 497 KiB of int8 flash; the best
     * conv nets 91.5-92.0 % in 86-125 KiB; docs/BENCHMARKS.md). */
    conv->weight = 4;
    static const int f1a[] = {16}, f1b[] = {32}, f2a[] = {8, 16}, f2b[] = {16, 32},
                     f2c[] = {32, 64}, f3a[] = {16, 32, 64}, f3b[] = {32, 64, 128},
                     f4a[] = {16, 32, 64, 128};
    add_layers(conv, f1a, 1);
    add_layers(conv, f1b, 1);
    if (smallest >= 4) {
        add_layers(conv, f2a, 2);
        add_layers(conv, f2b, 2);
        add_layers(conv, f2c, 2);
    }
    if (smallest >= 8) {
        add_layers(conv, f3a, 3);
        add_layers(conv, f3b, 3);
    }
    if (smallest >= 16)
        add_layers(conv, f4a, 4);
    conv->kernel[conv->n_kernel++] = 3;
    conv->kernel[conv->n_kernel++] = 5;
    conv->dense[conv->n_dense++] = (space_dense){0, {0}};
    conv->dense[conv->n_dense++] = (space_dense){1, {32}};
    /* Always batch norm: it costs nothing on the device (folded into the
     * conv), and with augmentation it lets the nets go further: Fashion-MNIST,
     * conv 16/32/64 5x5 at 32 px, 30 epochs, 92.28 % int8 on test with both,
     * 91.49 % with neither (docs/BENCHMARKS.md). Searching it halved the
     * draws of the nets that win long runs. */
    conv->bn[conv->n_bn++] = true;
    conv->t.n_dropout = 3;
    conv->t.dropout[0] = 0.1, conv->t.dropout[1] = 0.25, conv->t.dropout[2] = 0.4;
    /* MobileNets at small alphas, when an input of at least 48 px is offered
     * (their lowest, 32 px, leaves a 1x1 map after their strides: at that
     * size every one of them lost its first rung in the benchmark's runs 19
     * and 20; docs/BENCHMARKS.md). */
    if (largest >= 48) {
        static const double a1[] = {0.1, 0.25}, a2[] = {0.1, 0.35};
        for (int v = 0; v < 2; v++) {
            space_learning *l = &s->learning[s->n_learning++];
            l->model = v ? ET_MODEL_MOBILENETV2 : ET_MODEL_MOBILENETV1;
            l->weight = 1;
            for (int i = 0; i < 2; i++)
                l->alpha[l->n_alpha++] = v ? a2[i] : a1[i];
            l->head[l->n_head++] = 0;
            l->head[l->n_head++] = 32;
            l->t.n_dropout = 1;
            l->t.dropout[0] = 0.1;
        }
    }
    static const double lrs[] = {0.0005, 0.001, 0.002, 0.005};
    for (int i = 0; i < 4; i++)
        s->t.lr[s->t.n_lr++] = lrs[i];
    s->t.epochs[s->t.n_epochs++] = base.epochs;
    s->t.batch[s->t.n_batch++] = base.batch_size;
    s->t.augment[s->t.n_augment++] = false;
    s->t.augment[s->t.n_augment++] = true;
    *out = s;
    return ET_OK;
}

static int round4(double v)
{
    int r = (int)lround(v / 4) * 4;
    return r < 4 ? 4 : r;
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void add_num(double *list, int *n, double v)
{
    for (int i = 0; i < *n; i++)
        if (fabs(list[i] - v) < 1e-12)
            return;
    list[(*n)++] = v;
}

static void add_int(int *list, int *n, int v)
{
    for (int i = 0; i < *n; i++)
        if (list[i] == v)
            return;
    list[(*n)++] = v;
}

static void add_layer_alt(space_learning *l, const et_conv_layer *layers, int n)
{
    if (n < 1 || n > ET_MAX_CONV_LAYERS)
        return;
    for (int i = 0; i < l->n_layers; i++)
        if (l->layers[i].n == n && !memcmp(l->layers[i].layer, layers, (size_t)n * sizeof *layers))
            return;
    space_layers *ly = &l->layers[l->n_layers++];
    memset(ly, 0, sizeof *ly);
    ly->n = n;
    ly->kernels = true;
    memcpy(ly->layer, layers, (size_t)n * sizeof *layers);
}

et_status et_tune_space_around(const et_impulse *imp, et_tune_space **out, et_error *err)
{
    *out = NULL;
    et_status rc = et_impulse_validate(imp, err);
    if (rc < 0)
        return rc;
    et_tune_space *s = calloc(1, sizeof *s);
    if (!s)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    bool transfer = imp->model != ET_MODEL_CONV;
    int lo = transfer ? ET_TRANSFER_INPUT_MIN : ET_INPUT_MIN;
    int hi = transfer ? ET_TRANSFER_INPUT_MAX : ET_INPUT_MAX;
    static const double scales[] = {0.75, 1.0, 1.25};
    for (int i = 0; i < 3; i++) {
        int w = i == 1 ? imp->width : clampi(round4(imp->width * scales[i]), lo, hi);
        int h = i == 1 ? imp->height : clampi(round4(imp->height * scales[i]), lo, hi);
        /* A conv net needs 2^layers px. */
        if (!transfer && (w >> imp->n_conv < 1 || h >> imp->n_conv < 1))
            continue;
        add_size(s, w, h);
    }
    s->resize[s->n_resize++] = imp->resize;
    if (imp->processing == ET_PROCESSING_IMAGE) {
        s->color[s->n_color++] = imp->color;
        if (imp->color == ET_COLOR_RGB)
            s->color[s->n_color++] = ET_COLOR_GRAYSCALE;
    }
    space_learning *l = &s->learning[s->n_learning++];
    l->model = imp->model;
    l->weight = 1;
    if (!transfer) {
        et_conv_layer v[ET_MAX_CONV_LAYERS];
        int n = imp->n_conv;
        add_layer_alt(l, imp->conv, n);
        for (int i = 0; i < n; i++)
            v[i] = (et_conv_layer){imp->conv[i].filters > 1 ? imp->conv[i].filters / 2 : 1,
                                   imp->conv[i].kernel};
        add_layer_alt(l, v, n);
        for (int i = 0; i < n; i++)
            v[i] = (et_conv_layer){clampi(imp->conv[i].filters * 2, 1, 1024), imp->conv[i].kernel};
        add_layer_alt(l, v, n);
        add_layer_alt(l, imp->conv, n - 1);
        int side = imp->width < imp->height ? imp->width : imp->height;
        if (n < ET_MAX_CONV_LAYERS && side >> (n + 1) >= 1) {
            memcpy(v, imp->conv, (size_t)n * sizeof *v);
            v[n] = (et_conv_layer){clampi(imp->conv[n - 1].filters * 2, 1, 1024),
                                   imp->conv[n - 1].kernel};
            add_layer_alt(l, v, n + 1);
        }
        l->dense[l->n_dense].n = imp->n_dense;
        memcpy(l->dense[l->n_dense].units, imp->dense, sizeof imp->dense);
        l->n_dense++;
        l->bn[l->n_bn++] = imp->batch_norm;
        l->bn[l->n_bn++] = !imp->batch_norm;
    } else {
        const double *list = NULL;
        int count = (int)et_model_alphas(imp->model, &list), at = 0;
        for (int i = 0; i < count; i++)
            if (fabs(list[i] - imp->alpha) < 1e-9)
                at = i;
        for (int i = at - 1; i <= at + 1; i++)
            if (i >= 0 && i < count)
                add_num(l->alpha, &l->n_alpha, list[i]);
        if (imp->head_neurons > 0) {
            add_int(l->head, &l->n_head, clampi(imp->head_neurons / 2, 1, 1024));
            add_int(l->head, &l->n_head, imp->head_neurons);
            add_int(l->head, &l->n_head, clampi(imp->head_neurons * 2, 1, 1024));
        } else {
            add_int(l->head, &l->n_head, 0);
            add_int(l->head, &l->n_head, 16);
        }
    }
    add_num(s->t.dropout, &s->t.n_dropout, fmax(0, imp->dropout - 0.1));
    add_num(s->t.dropout, &s->t.n_dropout, imp->dropout);
    add_num(s->t.dropout, &s->t.n_dropout, fmin(0.9, imp->dropout + 0.1));
    add_num(s->t.lr, &s->t.n_lr, fmax(1e-7, imp->learning_rate / 2));
    add_num(s->t.lr, &s->t.n_lr, imp->learning_rate);
    add_num(s->t.lr, &s->t.n_lr, fmin(1, imp->learning_rate * 2));
    s->t.epochs[s->t.n_epochs++] = imp->epochs;
    s->t.batch[s->t.n_batch++] = imp->batch_size;
    s->t.augment[s->t.n_augment++] = imp->augment;
    s->t.augment[s->t.n_augment++] = !imp->augment;
    *out = s;
    return ET_OK;
}
