/* Impulse fields: defaults, JSON in and out, key=value assignments and
 * validation. One table (fields[]) describes every key, so the JSON loader,
 * `impulse set` and the error messages agree on what is allowed. */
#include "edgetrain/impulse.h"

#include "core/fsutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const resize_names[] = {"squash", "fit-shortest", "fit-longest", NULL};
static const char *const processing_names[] = {"image", "raw", NULL};
static const char *const color_names[] = {"rgb", "grayscale", NULL};
static const char *const model_names[] = {"conv", "mobilenetv1", "mobilenetv2", NULL};
static const char *const schedule_names[] = {"constant", "cosine", NULL};
static const char *const learning_types[] = {"conv", "transfer", NULL};
static const char *const input_types[] = {"image", NULL};

/* Width multipliers of the Keras application definitions. */
static const double v1_alphas[] = {0.1, 0.2, 0.25, 0.35, 0.5, 0.75, 1.0};
static const double v2_alphas[] = {0.05, 0.1, 0.35, 0.5, 0.75, 1.0};

const char *et_resize_name(et_resize_mode m) { return resize_names[m]; }
const char *et_model_name(et_model_kind k) { return model_names[k]; }
const char *et_lr_schedule_name(et_lr_schedule s) { return schedule_names[s]; }

/* The default conv net (DESIGN.md). */
static void default_conv_net(et_impulse *imp)
{
    imp->n_conv = 2;
    imp->conv[0] = (et_conv_layer){32, 3};
    imp->conv[1] = (et_conv_layer){16, 3};
    imp->n_dense = 0;
    imp->batch_norm = false;
    imp->dropout = 0.25;
}

void et_impulse_switch_architecture(et_impulse *imp, et_model_kind model)
{
    if (model == ET_MODEL_CONV && imp->model != ET_MODEL_CONV) {
        default_conv_net(imp);
    } else if (model != ET_MODEL_CONV && imp->model == ET_MODEL_CONV) {
        imp->alpha = 0.35;
        imp->head_neurons = 16;
        imp->dropout = 0.1;
    }
    imp->model = model;
}

/* The training defaults of the default conv net: 30 epochs at Adam 0.002 with
 * cosine decay, no augmentation (it still gained at the end of DESIGN.md's 20
 * epochs at a constant 0.0005: Fashion-MNIST test 90.8 % -> 91.8 %, and
 * augmentation costs this small net 1.8 points; docs/BENCHMARKS.md). Those of
 * the transfer-learning block (MobileNet alpha 0.35, a 16-neuron head): 20
 * epochs at 0.0005, with augmentation: trained from scratch, MobileNetV2
 * over-fits Fashion-MNIST without it (96x96: test 91.61 % without, 92.35 %
 * with; docs/BENCHMARKS.md). */
static void training_defaults(et_impulse *imp)
{
    bool conv = imp->model == ET_MODEL_CONV;
    imp->epochs = conv ? 30 : 20;
    imp->learning_rate = conv ? 0.002 : 0.0005;
    imp->augment = !conv;
}

et_impulse et_impulse_defaults(void)
{
    et_impulse imp = {
        .width = 96,
        .height = 96,
        .resize = ET_RESIZE_SQUASH,
        .processing = ET_PROCESSING_IMAGE,
        .color = ET_COLOR_RGB,
        .raw_scale = 1.0 / 255.0,
        .model = ET_MODEL_CONV,
        .alpha = 0.35,
        .head_neurons = 16,
        .schedule = ET_SCHEDULE_COSINE,
        .batch_size = 32,
        .validation_split = 0.2,
        .seed = 1,
    };
    default_conv_net(&imp);
    training_defaults(&imp);
    return imp;
}

/* ------------------------------------------------------------------------
 * The field table.
 */
typedef enum { F_INT, F_NUM, F_BOOL, F_ENUM, F_LAYERS, F_DENSE } field_kind;

enum { FOR_ALL = 0, FOR_CONV = 1, FOR_TRANSFER = 2, FOR_IMAGE = 4, FOR_RAW = 8 };

typedef struct field {
    const char *block, *key;
    field_kind kind;
    double min, max;
    const char *const *names; /* F_ENUM */
    int applies;
    const char *applies_text;
} field;

static const field fields[] = {
    {"input", "type", F_ENUM, 0, 0, input_types, FOR_ALL, NULL},
    {"input", "width", F_INT, ET_INPUT_MIN, ET_INPUT_MAX, NULL, FOR_ALL, NULL},
    {"input", "height", F_INT, ET_INPUT_MIN, ET_INPUT_MAX, NULL, FOR_ALL, NULL},
    {"input", "resize", F_ENUM, 0, 0, resize_names, FOR_ALL, NULL},
    {"processing", "type", F_ENUM, 0, 0, processing_names, FOR_ALL, NULL},
    {"processing", "color", F_ENUM, 0, 0, color_names, FOR_IMAGE, "the image block (processing.type=image)"},
    {"processing", "scale", F_NUM, 1e-9, 1e6, NULL, FOR_RAW, "the raw block (processing.type=raw)"},
    {"learning", "type", F_ENUM, 0, 0, learning_types, FOR_ALL, NULL},
    {"learning", "model", F_ENUM, 0, 0, model_names, FOR_ALL, NULL},
    {"learning", "alpha", F_NUM, 0.05, 1.0, NULL, FOR_TRANSFER, "transfer learning (learning.model=mobilenetv1|mobilenetv2)"},
    {"learning", "head_neurons", F_INT, 0, 1024, NULL, FOR_TRANSFER, "transfer learning (learning.model=mobilenetv1|mobilenetv2)"},
    {"learning", "conv_layers", F_LAYERS, 1, ET_MAX_CONV_LAYERS, NULL, FOR_CONV, "the conv net (learning.model=conv)"},
    {"learning", "dense_layers", F_DENSE, 0, ET_MAX_DENSE_LAYERS, NULL, FOR_CONV, "the conv net (learning.model=conv)"},
    {"learning", "batch_norm", F_BOOL, 0, 0, NULL, FOR_CONV, "the conv net (learning.model=conv)"},
    {"learning", "dropout", F_NUM, 0, 0.9, NULL, FOR_ALL, NULL},
    {"learning", "epochs", F_INT, 1, 1000, NULL, FOR_ALL, NULL},
    {"learning", "learning_rate", F_NUM, 1e-7, 1.0, NULL, FOR_ALL, NULL},
    {"learning", "schedule", F_ENUM, 0, 0, schedule_names, FOR_ALL, NULL},
    {"learning", "batch_size", F_INT, 1, 1024, NULL, FOR_ALL, NULL},
    {"learning", "validation_split", F_NUM, 0.05, 0.5, NULL, FOR_ALL, NULL},
    {"learning", "augment", F_BOOL, 0, 0, NULL, FOR_ALL, NULL},
    {"learning", "seed", F_INT, 0, 2147483647.0, NULL, FOR_ALL, NULL},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static void allowed_keys(const char *block, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_FIELDS; i++)
        if (!strcmp(fields[i].block, block))
            used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s%s",
                                     used ? ", " : "", fields[i].key);
}

static const field *find_field(const char *block, const char *key)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (!strcmp(fields[i].block, block) && !strcmp(fields[i].key, key))
            return &fields[i];
    return NULL;
}

static int enum_index(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

static void enum_list(const char *const *names, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; names[i]; i++)
        used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s%s", i ? "|" : "",
                                 names[i]);
}

static int applies_mask(const et_impulse *imp)
{
    return (imp->model == ET_MODEL_CONV ? FOR_CONV : FOR_TRANSFER) |
           (imp->processing == ET_PROCESSING_IMAGE ? FOR_IMAGE : FOR_RAW);
}

/* Layers from JSON: [{"filters": 32, "kernel": 3}, ...] or [[32, 3], ...],
 * or from the shorthand string "32:3,16:3". */
static et_status parse_layers(const char *where, json_t *v, et_conv_layer *out, int *n,
                              et_error *err)
{
    const char *hint = "a list like [{\"filters\":32,\"kernel\":3}] or \"32:3,16:3\"";
    int count = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s) {
            int f = 0, k = 0, used = 0;
            if (count >= ET_MAX_CONV_LAYERS)
                return et_error_set(err, ET_EINVAL, "%s: at most %d conv layers", where,
                                    ET_MAX_CONV_LAYERS);
            if (sscanf(s, "%d:%d%n", &f, &k, &used) != 2)
                return et_error_set(err, ET_EINVAL, "%s='%s': expected %s", where,
                                    json_string_value(v), hint);
            out[count++] = (et_conv_layer){f, k};
            s += used;
            if (*s == ',')
                s++;
            else if (*s)
                return et_error_set(err, ET_EINVAL, "%s='%s': expected %s", where,
                                    json_string_value(v), hint);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (count >= ET_MAX_CONV_LAYERS)
                return et_error_set(err, ET_EINVAL, "%s: at most %d conv layers", where,
                                    ET_MAX_CONV_LAYERS);
            json_t *f = NULL, *k = NULL;
            if (json_is_object(e)) {
                f = json_object_get(e, "filters");
                k = json_object_get(e, "kernel");
                const char *key;
                json_t *val;
                json_object_foreach(e, key, val) {
                    if (strcmp(key, "filters") && strcmp(key, "kernel"))
                        return et_error_set(err, ET_EINVAL,
                                            "%s[%zu]: unknown key '%s' (allowed: filters, kernel)",
                                            where, i, key);
                }
            } else if (json_is_array(e) && json_array_size(e) == 2) {
                f = json_array_get(e, 0);
                k = json_array_get(e, 1);
            }
            if (!json_is_integer(f) || !json_is_integer(k))
                return et_error_set(err, ET_EINVAL, "%s[%zu]: expected %s", where, i, hint);
            out[count++] = (et_conv_layer){(int)json_integer_value(f), (int)json_integer_value(k)};
        }
    } else {
        return et_error_set(err, ET_EINVAL, "%s: expected %s", where, hint);
    }
    if (count < 1)
        return et_error_set(err, ET_EINVAL, "%s: at least one conv layer is needed", where);
    for (int i = 0; i < count; i++) {
        if (out[i].filters < 1 || out[i].filters > 1024)
            return et_error_set(err, ET_EINVAL, "%s[%d]: filters %d is outside 1..1024", where, i,
                                out[i].filters);
        if (out[i].kernel < 1 || out[i].kernel > 7)
            return et_error_set(err, ET_EINVAL, "%s[%d]: kernel %d is outside 1..7", where, i,
                                out[i].kernel);
    }
    *n = count;
    return ET_OK;
}

static et_status parse_dense(const char *where, json_t *v, int *out, int *n, et_error *err)
{
    const char *hint = "a list of neuron counts like [64, 32] or \"64,32\" (or [] for none)";
    int count = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s) {
            int units = 0, used = 0;
            if (count >= ET_MAX_DENSE_LAYERS)
                return et_error_set(err, ET_EINVAL, "%s: at most %d dense layers", where,
                                    ET_MAX_DENSE_LAYERS);
            if (sscanf(s, "%d%n", &units, &used) != 1)
                return et_error_set(err, ET_EINVAL, "%s='%s': expected %s", where,
                                    json_string_value(v), hint);
            out[count++] = units;
            s += used;
            if (*s == ',')
                s++;
            else if (*s)
                return et_error_set(err, ET_EINVAL, "%s='%s': expected %s", where,
                                    json_string_value(v), hint);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (count >= ET_MAX_DENSE_LAYERS)
                return et_error_set(err, ET_EINVAL, "%s: at most %d dense layers", where,
                                    ET_MAX_DENSE_LAYERS);
            if (!json_is_integer(e))
                return et_error_set(err, ET_EINVAL, "%s[%zu]: expected %s", where, i, hint);
            out[count++] = (int)json_integer_value(e);
        }
    } else {
        return et_error_set(err, ET_EINVAL, "%s: expected %s", where, hint);
    }
    for (int i = 0; i < count; i++)
        if (out[i] < 1 || out[i] > 4096)
            return et_error_set(err, ET_EINVAL, "%s[%d]: %d neurons is outside 1..4096", where, i,
                                out[i]);
    *n = count;
    return ET_OK;
}

/* Sets one field from a JSON value, checking its type, range and whether it
 * applies to the current block types. */
static et_status set_field(et_impulse *imp, const char *block, const char *key, json_t *v,
                           et_error *err)
{
    char where[128], allowed[512];
    snprintf(where, sizeof where, "%s.%s", block, key);
    const field *f = find_field(block, key);
    if (!f) {
        if (strcmp(block, "input") && strcmp(block, "processing") && strcmp(block, "learning"))
            return et_error_set(err, ET_EINVAL,
                                "unknown block '%s' in '%s' (allowed: input, processing, learning)",
                                block, where);
        allowed_keys(block, allowed, sizeof allowed);
        return et_error_set(err, ET_EINVAL, "unknown key '%s' (allowed in %s: %s)", where, block,
                            allowed);
    }
    if (f->applies && !(f->applies & applies_mask(imp)))
        return et_error_set(err, ET_EINVAL, "%s applies to %s only", where, f->applies_text);
    char *shown = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    char value[96];
    snprintf(value, sizeof value, "%s", shown ? shown : "?");
    free(shown);
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    switch (f->kind) {
    case F_INT:
        if (!json_is_integer(v) || d < f->min || d > f->max)
            return et_error_set(err, ET_EINVAL, "%s=%s: expected a whole number in %g..%g", where,
                                value, f->min, f->max);
        break;
    case F_NUM:
        if (!json_is_number(v) || !isfinite(d) || d < f->min || d > f->max)
            return et_error_set(err, ET_EINVAL, "%s=%s: expected a number in %g..%g", where, value,
                                f->min, f->max);
        break;
    case F_BOOL:
        if (!json_is_boolean(v))
            return et_error_set(err, ET_EINVAL, "%s=%s: expected true or false", where, value);
        break;
    case F_ENUM:
        if (!json_is_string(v) || enum_index(f->names, json_string_value(v)) < 0) {
            enum_list(f->names, allowed, sizeof allowed);
            return et_error_set(err, ET_EINVAL, "%s=%s: allowed values are %s", where, value,
                                allowed);
        }
        break;
    default: break;
    }
    int idx = f->kind == F_ENUM ? enum_index(f->names, json_string_value(v)) : 0;
    if (!strcmp(block, "input")) {
        if (!strcmp(key, "width"))
            imp->width = (int)d;
        else if (!strcmp(key, "height"))
            imp->height = (int)d;
        else if (!strcmp(key, "resize"))
            imp->resize = (et_resize_mode)idx;
    } else if (!strcmp(block, "processing")) {
        if (!strcmp(key, "type"))
            imp->processing = (et_processing_type)idx;
        else if (!strcmp(key, "color"))
            imp->color = (et_color)idx;
        else if (!strcmp(key, "scale"))
            imp->raw_scale = d;
    } else if (!strcmp(key, "type") || !strcmp(key, "model")) {
        /* learning.type=transfer keeps a MobileNet model (default v2);
         * learning.model picks the type. Switching fills the new type's defaults. */
        et_model_kind model = !strcmp(key, "model")   ? (et_model_kind)idx
                              : idx == 0              ? ET_MODEL_CONV
                              : imp->model != ET_MODEL_CONV ? imp->model
                                                            : ET_MODEL_MOBILENETV2;
        bool family_changes = (model == ET_MODEL_CONV) != (imp->model == ET_MODEL_CONV);
        et_impulse_switch_architecture(imp, model);
        if (family_changes)
            training_defaults(imp);
    } else if (!strcmp(key, "alpha")) {
        imp->alpha = d;
    } else if (!strcmp(key, "head_neurons")) {
        imp->head_neurons = (int)d;
    } else if (!strcmp(key, "conv_layers")) {
        return parse_layers(where, v, imp->conv, &imp->n_conv, err);
    } else if (!strcmp(key, "dense_layers")) {
        return parse_dense(where, v, imp->dense, &imp->n_dense, err);
    } else if (!strcmp(key, "batch_norm")) {
        imp->batch_norm = json_is_true(v);
    } else if (!strcmp(key, "dropout")) {
        imp->dropout = d;
    } else if (!strcmp(key, "epochs")) {
        imp->epochs = (int)d;
    } else if (!strcmp(key, "learning_rate")) {
        imp->learning_rate = d;
    } else if (!strcmp(key, "schedule")) {
        imp->schedule = (et_lr_schedule)idx;
    } else if (!strcmp(key, "batch_size")) {
        imp->batch_size = (int)d;
    } else if (!strcmp(key, "validation_split")) {
        imp->validation_split = d;
    } else if (!strcmp(key, "augment")) {
        imp->augment = json_is_true(v);
    } else if (!strcmp(key, "seed")) {
        imp->seed = (int64_t)d;
    }
    return ET_OK;
}

size_t et_model_alphas(et_model_kind k, const double **list)
{
    *list = k == ET_MODEL_MOBILENETV1 ? v1_alphas : k == ET_MODEL_MOBILENETV2 ? v2_alphas : NULL;
    return k == ET_MODEL_MOBILENETV1   ? sizeof v1_alphas / sizeof v1_alphas[0]
           : k == ET_MODEL_MOBILENETV2 ? sizeof v2_alphas / sizeof v2_alphas[0]
                                       : 0;
}

static bool alpha_ok(et_model_kind model, double alpha, char *allowed, size_t n)
{
    const double *list = model == ET_MODEL_MOBILENETV1 ? v1_alphas : v2_alphas;
    size_t count = model == ET_MODEL_MOBILENETV1 ? sizeof v1_alphas / sizeof v1_alphas[0]
                                                 : sizeof v2_alphas / sizeof v2_alphas[0];
    size_t used = 0;
    bool ok = false;
    for (size_t i = 0; i < count; i++) {
        ok = ok || fabs(list[i] - alpha) < 1e-9;
        used += (size_t)snprintf(allowed + used, used < n ? n - used : 0, "%s%g", i ? ", " : "",
                                 list[i]);
    }
    return ok;
}

et_status et_impulse_validate(const et_impulse *imp, et_error *err)
{
    if (imp->width < ET_INPUT_MIN || imp->width > ET_INPUT_MAX || imp->height < ET_INPUT_MIN ||
        imp->height > ET_INPUT_MAX)
        return et_error_set(err, ET_EINVAL, "input %dx%d: width and height must be %d..%d",
                            imp->width, imp->height, ET_INPUT_MIN, ET_INPUT_MAX);
    if (imp->model != ET_MODEL_CONV) {
        char allowed[128];
        if (!alpha_ok(imp->model, imp->alpha, allowed, sizeof allowed))
            return et_error_set(err, ET_EINVAL, "learning.alpha=%g is not offered for %s (allowed: %s)",
                                imp->alpha, model_names[imp->model], allowed);
        if (imp->width < ET_TRANSFER_INPUT_MIN || imp->height < ET_TRANSFER_INPUT_MIN ||
            imp->width > ET_TRANSFER_INPUT_MAX || imp->height > ET_TRANSFER_INPUT_MAX)
            return et_error_set(err, ET_EINVAL,
                                "input %dx%d does not suit %s: it takes %d..%d px "
                                "(set input.width and input.height)",
                                imp->width, imp->height, model_names[imp->model],
                                ET_TRANSFER_INPUT_MIN, ET_TRANSFER_INPUT_MAX);
    } else {
        /* Each conv layer (same padding) is followed by a 2x2 max pool. */
        int side = imp->width < imp->height ? imp->width : imp->height;
        for (int i = 0; i < imp->n_conv; i++)
            side /= 2;
        if (side < 1)
            return et_error_set(err, ET_EINVAL,
                                "input %dx%d is too small for %d conv layers: each halves the "
                                "size, so the short side needs at least %d px",
                                imp->width, imp->height, imp->n_conv, 1 << imp->n_conv);
        if (imp->n_conv < 1)
            return et_error_set(err, ET_EINVAL, "learning.conv_layers: at least one layer is needed");
    }
    if (imp->processing == ET_PROCESSING_RAW && !(imp->raw_scale > 0 && isfinite(imp->raw_scale)))
        return et_error_set(err, ET_EINVAL, "processing.scale must be a positive number");
    return ET_OK;
}

/* Applies every key of one block object; "type" and "model" first, since
 * they decide which other keys apply. */
static et_status apply_block(et_impulse *imp, const char *block, json_t *o, const char *name,
                             et_error *err)
{
    if (!json_is_object(o))
        return et_error_set(err, ET_EINVAL, "%s: '%s' must be an object", name, block);
    static const char *const first[] = {"type", "model"};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(o, first[k]);
        if (v && set_field(imp, block, first[k], v, err) < 0)
            return err ? err->code : ET_EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (!strcmp(key, "type") || !strcmp(key, "model"))
            continue;
        if (set_field(imp, block, key, v, err) < 0)
            return ET_EINVAL;
    }
    return ET_OK;
}

static et_status prefix_error(et_error *err, const char *name)
{
    if (err && name) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "%.200s: %.800s", name, msg);
    }
    return ET_EINVAL;
}

et_status et_impulse_from_json(const char *text, size_t n, const char *name, et_impulse *out,
                               et_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return et_error_set(err, ET_EINVAL, "%s:%d:%d: %s", name, je.line, je.column, je.text);
    et_impulse imp = et_impulse_defaults();
    /* Impulses stored before learning.schedule existed trained at a constant
     * rate: one without the key keeps doing so. */
    json_t *learning = json_object_get(root, "learning");
    if (json_is_object(learning) && !json_object_get(learning, "schedule"))
        imp.schedule = ET_SCHEDULE_CONSTANT;
    et_status rc = ET_OK;
    if (!json_is_object(root)) {
        rc = et_error_set(err, ET_EINVAL, "%s: an impulse is a JSON object with input, "
                                          "processing and learning",
                          name);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v) {
            if (strcmp(key, "input") && strcmp(key, "processing") && strcmp(key, "learning")) {
                rc = et_error_set(err, ET_EINVAL,
                                  "%s: unknown block '%s' (allowed: input, processing, learning)",
                                  name, key);
                break;
            }
        }
        static const char *const blocks[] = {"input", "processing", "learning"};
        for (int b = 0; b < 3 && rc == ET_OK; b++) {
            json_t *o = json_object_get(root, blocks[b]);
            if (o && apply_block(&imp, blocks[b], o, name, err) < 0)
                rc = prefix_error(err, name);
        }
        if (rc == ET_OK && et_impulse_validate(&imp, err) < 0)
            rc = prefix_error(err, name);
    }
    json_decref(root);
    if (rc == ET_OK)
        *out = imp;
    return rc;
}

et_status et_impulse_set(et_impulse *imp, const char *assignment, et_error *err)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = strchr(assignment, '.');
    if (!eq || !dot || dot > eq)
        return et_error_set(err, ET_EINVAL,
                            "'%s': expected block.key=value, e.g. input.width=96", assignment);
    char block[32], key[64];
    snprintf(block, sizeof block, "%.*s", (int)(dot - assignment), assignment);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    const char *text = eq + 1;
    /* The value is JSON when it parses as JSON (numbers, true, [..]); else a string. */
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v)
        v = json_string(text);
    if (!v)
        return et_error_set(err, ET_EINVAL, "%s: the value is not valid UTF-8", assignment);
    et_impulse copy = *imp;
    et_status rc = set_field(&copy, block, key, v, err);
    json_decref(v);
    if (rc == ET_OK)
        *imp = copy;
    return rc;
}

int et_impulse_channels(const et_impulse *imp)
{
    if (imp->processing == ET_PROCESSING_RAW)
        return 0;
    return imp->color == ET_COLOR_GRAYSCALE ? 1 : 3;
}

static json_t *blocks_json(const et_impulse *imp, bool with_learning)
{
    json_t *root = json_object();
    json_object_set_new(root, "input",
                        json_pack("{s:s,s:i,s:i,s:s}", "type", "image", "width", imp->width,
                                  "height", imp->height, "resize", resize_names[imp->resize]));
    if (imp->processing == ET_PROCESSING_IMAGE)
        json_object_set_new(root, "processing", json_pack("{s:s,s:s}", "type", "image", "color",
                                                          color_names[imp->color]));
    else
        json_object_set_new(root, "processing",
                            json_pack("{s:s,s:f}", "type", "raw", "scale", imp->raw_scale));
    if (!with_learning)
        return root;
    json_t *l = json_object();
    if (imp->model == ET_MODEL_CONV) {
        json_object_set_new(l, "type", json_string("conv"));
        json_t *layers = json_array();
        for (int i = 0; i < imp->n_conv; i++)
            json_array_append_new(layers, json_pack("{s:i,s:i}", "filters", imp->conv[i].filters,
                                                    "kernel", imp->conv[i].kernel));
        json_object_set_new(l, "conv_layers", layers);
        json_t *dense = json_array();
        for (int i = 0; i < imp->n_dense; i++)
            json_array_append_new(dense, json_integer(imp->dense[i]));
        json_object_set_new(l, "dense_layers", dense);
        json_object_set_new(l, "batch_norm", json_boolean(imp->batch_norm));
    } else {
        json_object_set_new(l, "type", json_string("transfer"));
        json_object_set_new(l, "model", json_string(model_names[imp->model]));
        json_object_set_new(l, "alpha", json_real(imp->alpha));
        json_object_set_new(l, "head_neurons", json_integer(imp->head_neurons));
    }
    json_object_set_new(l, "dropout", json_real(imp->dropout));
    json_object_set_new(l, "epochs", json_integer(imp->epochs));
    json_object_set_new(l, "learning_rate", json_real(imp->learning_rate));
    json_object_set_new(l, "schedule", json_string(schedule_names[imp->schedule]));
    json_object_set_new(l, "batch_size", json_integer(imp->batch_size));
    json_object_set_new(l, "validation_split", json_real(imp->validation_split));
    json_object_set_new(l, "augment", json_boolean(imp->augment));
    json_object_set_new(l, "seed", json_integer(imp->seed));
    json_object_set_new(root, "learning", l);
    return root;
}

/* Twelve significant digits: 0.35 prints as 0.35, not 0.34999999999999998. */
#define DUMP_FLAGS (JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12))

char *et_impulse_to_json(const et_impulse *imp, bool pretty)
{
    json_t *root = blocks_json(imp, true);
    char *s = root ? json_dumps(root, DUMP_FLAGS | (pretty ? JSON_INDENT(2) : JSON_COMPACT)) : NULL;
    json_decref(root);
    return s;
}

void et_impulse_features_key(const et_impulse *imp, char out[65])
{
    json_t *root = blocks_json(imp, false);
    char *s = root ? json_dumps(root, DUMP_FLAGS | JSON_COMPACT) : NULL;
    et_sha256_hex(s ? s : "", s ? strlen(s) : 0, out);
    free(s);
    json_decref(root);
}

et_status et_impulse_load_file(const char *path, et_impulse *out, et_error *err)
{
    unsigned char *text = NULL;
    size_t n = 0;
    et_status rc = et_read_file(path, (size_t)1 << 20, &text, &n, err);
    if (rc < 0)
        return rc;
    rc = et_impulse_from_json((const char *)text, n, path, out, err);
    free(text);
    return rc;
}
