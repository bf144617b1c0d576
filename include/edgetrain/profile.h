/*
 * edgetrain profile: what a model costs on a device. The device catalog
 * (data/targets.json, built into the binary, plus the user's target files),
 * the per-layer cost of a runtime plan (.etrt), and the latency, RAM and
 * flash of that plan on a target.
 *
 *     et_target_catalog *cat = NULL;
 *     if (et_targets_load(NULL, project_root, &cat, &err) < 0) ...   // built-in + targets.json
 *     const et_target *t = et_targets_find(cat, "cortex-m4f-80mhz");
 *     et_plan_profile pp;
 *     if (et_plan_profile_create(plan.bytes, plan.size, &pp, &err) < 0) ...
 *     et_cost cost;
 *     if (et_profile_cost(&pp, t, "cmsis-nn", &cost, &err) < 0) ...   // NULL engine: the default
 *     printf("%.1f ms, %zu B RAM (input %zu B), %zu B flash\n", cost.latency_ms,
 *            cost.ram_bytes, pp.input_bytes, cost.flash_bytes);
 *     et_cost_free(&cost);
 *     et_plan_profile_free(&pp);
 *     et_targets_destroy(cat);
 *
 * The latency model (docs/FORMATS.md, "Target files"): each op costs
 *     MACs x cycles_per_mac[kind] + elements x cycles_per_element[kind] + op_overhead
 * cycles, for the target's engine and the plan's precision, and the latency
 * is the sum over ops divided by the clock. MAC kinds: conv (a window
 * larger than 1x1), depthwise, pointwise (1x1 conv), dense; element kinds:
 * pool (per window tap read), add (per output value), softmax (per value).
 * Reshapes and pads cost only the op overhead. Every figure in the built-in
 * catalog carries its public source; most come from published whole-model
 * latencies (MLPerf Tiny), divided by the model's MACs.
 *
 * RAM is the plan's arena (etrt_arena_size: activations, scratch, the input
 * and the output); the input buffer is also given on its own. Flash is the
 * plan's bytes (weights, biases, quantization parameters, op and tensor
 * tables) plus an estimate of the runtime's code for the kernels the plan
 * uses (et_runtime_code_bytes).
 */
#ifndef EDGETRAIN_PROFILE_H
#define EDGETRAIN_PROFILE_H

#include "edgetrain/core.h"
#include "edgetrain/impulse.h"
#include "edgetrain/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The target `profile` uses when none is named. */
#define ET_PROFILE_DEFAULT_TARGET "cortex-m4f-80mhz"

typedef enum et_precision { ET_PRECISION_INT8 = 0, ET_PRECISION_FLOAT32 = 1 } et_precision;
#define ET_PRECISION_COUNT 2

/* "int8", "float32". */
const char *et_precision_name(et_precision p);

/* How an op is priced. */
typedef enum et_cost_kind {
    ET_COST_CONV = 0,      /* conv2d with a window larger than 1x1: per MAC */
    ET_COST_DEPTHWISE = 1, /* per MAC */
    ET_COST_POINTWISE = 2, /* 1x1 conv2d: per MAC */
    ET_COST_DENSE = 3,     /* fully connected: per MAC */
    ET_COST_POOL = 4,      /* max or average pooling: per window tap (input value read) */
    ET_COST_ADD = 5,       /* per output value */
    ET_COST_SOFTMAX = 6,   /* per value */
    ET_COST_OTHER = 7,     /* reshape, pad: the op overhead only */
} et_cost_kind;
#define ET_COST_KIND_COUNT 8
#define ET_COST_MAC_KINDS 4 /* the first four kinds are priced per MAC */

/* "conv", "depthwise", "pointwise", "dense", "pool", "add", "softmax", "other"
 * (the keys of a target file); "?" when unknown. */
const char *et_cost_kind_name(et_cost_kind k);

/* ------------------------------------------------------------------------
 * The device catalog.
 */

#define ET_TARGET_NAME_MAX 64
#define ET_ENGINE_NAME_MAX 32
#define ET_TARGET_MAX_ENGINES 4

/* One engine's figures on one target, per precision: cycles[kind] is cycles
 * per MAC (MAC kinds) or per element (element kinds; 0 where not material),
 * op_overhead cycles per op. */
typedef struct et_engine_costs {
    char name[ET_ENGINE_NAME_MAX]; /* "tflm-reference", "cmsis-nn", "esp-nn", "etrt" */
    double cycles[ET_PRECISION_COUNT][ET_COST_KIND_COUNT - 1];
    double op_overhead[ET_PRECISION_COUNT];
} et_engine_costs;

typedef struct et_target_source {
    const char *url;  /* where the figure comes from */
    const char *note; /* what it says, and the derivation */
} et_target_source;

/* One device. Owned by its catalog. */
typedef struct et_target {
    char name[ET_TARGET_NAME_MAX]; /* lowercase, digits, '-', '.', '_': "cortex-m4f-80mhz" */
    const char *description;
    int n_boards;
    const char *const *boards; /* example boards */
    double clock_hz;
    int64_t ram_bytes;      /* typical RAM; 0 = not a constraint (Linux, host) */
    int64_t flash_bytes;    /* typical flash; 0 = not a constraint */
    char code_size_isa[16]; /* "armv7e-m" or "armv6-m": which runtime code sizes to use */
    char default_engine[ET_ENGINE_NAME_MAX];
    int n_engines;
    et_engine_costs engines[ET_TARGET_MAX_ENGINES];
    int n_sources;
    const et_target_source *sources;
    const char *origin; /* "built-in" or the file the target came from */
} et_target;

typedef struct et_target_catalog et_target_catalog;

/* Loads the built-in catalog (data/targets.json, compiled in), then
 * PROJECT_ROOT/targets.json when project_root is given and that file exists,
 * then user_file when given (it must exist). A target in a later file
 * replaces a built-in or earlier one of the same name; a name twice in one
 * file is an error. Errors (ET_EINVAL) name the file, and the line and
 * column of bad JSON, or the target, the key, the value and what is
 * allowed; ET_EIO when a file cannot be read. The caller destroys *out. */
et_status et_targets_load(const char *user_file, const char *project_root, et_target_catalog **out,
                          et_error *err);

/* Adds the targets of one target file's text (n bytes; origin names it in
 * messages and in et_target.origin), with the same checks and replacement
 * rule. On error the catalog is unchanged. */
et_status et_targets_add_json(et_target_catalog *c, const char *text, size_t n, const char *origin,
                              et_error *err);

/* An empty catalog (for et_targets_add_json). NULL when out of memory. */
et_target_catalog *et_targets_create(void);
void et_targets_destroy(et_target_catalog *c);

int et_targets_count(const et_target_catalog *c);
/* Target i (0 <= i < count), in catalog order; NULL when out of range. */
const et_target *et_targets_get(const et_target_catalog *c, int i);
/* The target named name, or NULL. */
const et_target *et_targets_find(const et_target_catalog *c, const char *name);
/* Like et_targets_find, but ET_ENOTFOUND with a message listing the names. */
et_status et_targets_lookup(const et_target_catalog *c, const char *name, const et_target **out,
                            et_error *err);

/* The engine named engine (NULL: the target's default engine), or
 * ET_ENOTFOUND with a message listing the target's engines. */
et_status et_target_engine(const et_target *t, const char *engine, const et_engine_costs **out,
                           et_error *err);

/* The catalog as one line of JSON:
 *   {"default_target": "...", "targets": [{"name", "description", "boards": [...],
 *    "clock_hz", "ram_bytes", "flash_bytes", "code_size_isa", "default_engine",
 *    "engines": {"NAME": {"int8": {"conv": c, ...}, "float32": {...}}},
 *    "sources": [{"url", "note"}], "origin"}]}
 * malloc'ed; NULL when out of memory. */
char *et_targets_to_json(const et_target_catalog *c);

/* ------------------------------------------------------------------------
 * Per-layer cost of a plan, and latency.
 */

/* One layer as the latency model sees it: its kind, its MACs (MAC kinds)
 * and its elements (element kinds). */
typedef struct et_layer_desc {
    et_cost_kind kind;
    int64_t macs;
    int64_t elements;
    int64_t pooled; /* a conv with a max pool fused after it: the values the pool reads,
                       priced as ET_COST_POOL; 0 otherwise */
} et_layer_desc;

/* Helpers that count from shapes (NHWC, batch 1), for describing models by
 * hand. A conv with a 1x1 window is ET_COST_POINTWISE. */
et_layer_desc et_layer_conv(int out_h, int out_w, int out_c, int k_h, int k_w, int in_c);
et_layer_desc et_layer_depthwise(int out_h, int out_w, int out_c, int k_h, int k_w);
et_layer_desc et_layer_dense(int in, int out);
et_layer_desc et_layer_pool(int out_h, int out_w, int c, int k_h, int k_w);
et_layer_desc et_layer_add(int64_t values);
et_layer_desc et_layer_softmax(int64_t values);

/* Latency of layers[0..n) on engine e at precision p and clock_hz:
 * writes cycles[i] per layer when cycles is not NULL and returns the total
 * in milliseconds. */
double et_latency_ms(const et_layer_desc *layers, int n, const et_engine_costs *e, et_precision p,
                     double clock_hz, double *cycles);

/* One op of a plan. */
typedef struct et_layer_profile {
    int op;              /* index in the plan */
    const char *op_name; /* "conv2d", "depthwise_conv2d", "fully_connected", "max_pool",
                            "avg_pool", "add", "softmax", "reshape", "pad",
                            "conv2d_maxpool" */
    et_layer_desc cost;  /* kind, MACs, elements */
    bool pointwise;      /* a 1x1 conv2d */
    int out_h, out_w, out_c;
    int k_h, k_w, stride; /* window ops; 0 otherwise */
    int64_t params;       /* weights + biases (values) */
    int64_t weight_bytes; /* weights + biases (bytes, in the plan) */
    int64_t quant_bytes;  /* int8: per-channel multipliers and shifts */
} et_layer_profile;

/* What a plan holds and needs, from its bytes. */
typedef struct et_plan_profile {
    et_precision precision;
    int n_layers;
    et_layer_profile *layers; /* [n_layers], malloc'ed */
    int64_t macs;             /* sum over layers */
    int64_t params;           /* weights + biases after batch-norm folding */
    size_t plan_bytes;        /* the .etrt size: all of the model's flash but the code */
    size_t weight_bytes;      /* weights + biases */
    size_t quant_bytes;       /* multipliers and shifts */
    size_t table_bytes;       /* header, tensor and op records */
    size_t arena_bytes;       /* peak RAM: the planned arena, input and output included */
    size_t input_bytes, output_bytes;
    uint32_t kernels; /* bit (1 << etrt op kind): the kernels the plan uses */
} et_plan_profile;

/* Walks a plan (checked with etrt_model_init; ET_EINVAL names the runtime's
 * reason). The caller frees with et_plan_profile_free. */
et_status et_plan_profile_create(const uint8_t *plan, size_t size, et_plan_profile *out,
                                 et_error *err);
void et_plan_profile_free(et_plan_profile *p);

/* The layer descriptions of a plan profile ([p->n_layers], malloc'ed), for
 * et_latency_ms. NULL when out of memory. */
et_layer_desc *et_plan_profile_layers(const et_plan_profile *p);

/* Bytes of runtime code (etrt) for the kernels a plan uses: the loader and
 * interpreter plus one kernel per op kind and precision, measured for
 * Armv7E-M (Cortex-M4/M7/M33) or Armv6-M (Cortex-M0+) with clang -Os
 * (src/profile/README.md). libc (memcpy, expf) and, on Armv6-M, the
 * compiler's soft-float helpers are not counted. isa: "armv7e-m" or
 * "armv6-m"; anything else uses armv7e-m. */
size_t et_runtime_code_bytes(const et_plan_profile *p, const char *isa);

/* A plan on a target. */
typedef struct et_cost {
    char target[ET_TARGET_NAME_MAX];
    char engine[ET_ENGINE_NAME_MAX];
    et_precision precision;
    double clock_hz;
    double latency_ms;
    double *layer_ms; /* [n_layers] of the plan profile, malloc'ed */
    int n_layers;
    size_t ram_bytes;   /* the arena */
    size_t input_bytes; /* inside ram_bytes */
    size_t code_bytes;
    size_t flash_bytes;        /* plan + code */
    bool fits_ram, fits_flash; /* true when the target sets no limit */
} et_cost;

/* Prices plan profile p on target t with engine (NULL: the default).
 * ET_ENOTFOUND when the target has no such engine; ET_ENOMEM. The caller
 * frees with et_cost_free. */
et_status et_profile_cost(const et_plan_profile *p, const et_target *t, const char *engine,
                          et_cost *out, et_error *err);
void et_cost_free(et_cost *c);

/* ------------------------------------------------------------------------
 * Profiling a project's model.
 */

typedef enum et_profile_subject {
    ET_PROFILE_AUTO = 0,    /* the newest model version of the current impulse, else the impulse */
    ET_PROFILE_MODEL = 1,   /* a model version (model_id; 0 = the newest that is not stale) */
    ET_PROFILE_IMPULSE = 2, /* the current impulse, untrained */
} et_profile_subject;

/* Both precisions of one model on one target. */
typedef struct et_profile_report {
    et_profile_subject subject; /* what was profiled: ET_PROFILE_MODEL or ET_PROFILE_IMPULSE */
    int64_t model_id;           /* the model version, or 0 */
    int64_t impulse_version;    /* of the model, or the current one (0: not stored yet) */
    char architecture[24];      /* "conv", "mobilenetv1", "mobilenetv2" */
    int classes;
    bool classes_assumed; /* the project has no labels yet: 2 assumed */
    bool plans_rebuilt;   /* a model version's plans were not stored: made from its graph */
    int64_t model_params; /* the training graph's parameters (batch norm included) */
    et_plan_profile plan[ET_PRECISION_COUNT];
    et_cost cost[ET_PRECISION_COUNT];
} et_profile_report;

/* Profiles a project's model on target t with engine (NULL: the default):
 * a stored model version's plans (models/<id>/model_int8.etrt and
 * model_float32.etrt), or the plans of the current impulse built untrained
 * (et_quant_convert_uncalibrated: the same shapes and sizes as after
 * training). ET_PROFILE_AUTO takes the newest model version when it was
 * trained on the current impulse, else the impulse. The caller frees with
 * et_profile_report_free. */
et_status et_profile_project(et_project *p, et_profile_subject subject, int64_t model_id,
                             const et_target *t, const char *engine, et_profile_report *out,
                             et_error *err);

/* The plans of an impulse that has not been trained, priced: classes
 * outputs, channels inputs (et_model_create_from_impulse's ranges). */
et_status et_profile_impulse(const et_impulse *imp, int classes, int channels, const et_target *t,
                             const char *engine, et_profile_report *out, et_error *err);

void et_profile_report_free(et_profile_report *r);

/* The project's current impulse as it is, then with each other MobileNetV1
 * and MobileNetV2 width in its place (the same input, head and classes),
 * untrained, priced on t: which variants fit a board before any training. */
typedef struct et_profile_variant {
    et_model_kind model;
    double alpha;                 /* 0 for the conv net */
    bool current;                 /* the project's impulse unchanged (the first) */
    char error[1024];             /* why the variant cannot be built ("" when it was priced) */
    et_profile_report report;     /* when error is "" */
} et_profile_variant;

typedef struct et_profile_variants {
    int64_t impulse_version;
    int height, width, channels, classes;
    bool classes_assumed;
    et_profile_variant *v;
    int n;
} et_profile_variants;

et_status et_profile_project_variants(et_project *p, const et_target *t, const char *engine,
                                      et_profile_variants *out, et_error *err);
void et_profile_variants_free(et_profile_variants *v);

/* The variants as one line of JSON (docs/CLI.md, "profile --variants"):
 * each with the float32 and int8 figures of et_profile_report_to_json, or
 * its error. malloc'ed; NULL when out of memory. */
char *et_profile_variants_to_json(const et_profile_variants *vs, const et_target *t);

/* The report as one line of JSON (docs/CLI.md, "profile"); layers adds the
 * per-layer table to each precision. malloc'ed; NULL when out of memory. */
char *et_profile_report_to_json(const et_profile_report *r, const et_target *t, bool layers);

#ifdef __cplusplus
}
#endif
#endif
