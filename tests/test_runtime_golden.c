/* runtime golden: the etrt int8 kernels against TensorFlow Lite, bit for bit.
 *
 * tests/golden/int8/ holds one JSON file per case, recorded by
 * tests/gen_int8_golden.py from TensorFlow Lite's reference kernels: a one-op
 * int8 model's tensors (data, float32 scales, zero points), its options and
 * the output TFLite computed. For each case this test derives the kernel
 * parameters from the recorded float scales the way TFLite's Prepare does,
 * runs the etrt kernel and requires every output byte to equal TFLite's.
 *
 * Prepare, as TFLite (tensorflow/lite/kernels/, kernel_util.cc and the ops'
 * Prepare) computes it:
 *   conv, depthwise, per-channel fully connected: per output channel
 *     (double)input_scale * (double)filter_scale[c] / (double)output_scale;
 *   per-tensor fully connected: (double)(input_scale * filter_scale), the
 *     product taken in float32, / (double)output_scale
 *     (GetQuantizedConvolutionMultipler);
 *   each real multiplier through etrt_quantize_multiplier (QuantizeMultiplier);
 *   SAME padding: total = max((out - 1) * stride + k - in, 0), the top/left
 *     pad total / 2 (the extra row/column goes to the bottom/right);
 *   fused activation (CalculateActivationRangeQuantized), quantize(f) =
 *     zero_point + (int)roundf(f / scale) in float32:
 *     RELU [max(-128, quantize(0)), 127]; RELU6 the same, capped at
 *     min(127, quantize(6));
 *   add: left_shift 20, multipliers s1 / (2 max(s1, s2)), s2 / (2 max(s1, s2)),
 *     2 max(s1, s2) / (2^20 so);
 *   softmax: etrt_softmax_s8_prepare(input_scale, beta);
 *   pad: the value is the output zero point.
 */
#include "etrt_kernels.h"
#include "etrt_requant.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ET_GOLDEN_DIR
#error "ET_GOLDEN_DIR must name tests/golden (CMakeLists.txt sets it)"
#endif

#define GOLDEN_INT8 ET_GOLDEN_DIR "/int8"
#define MAX_CASES 128
#define MAX_SHOWN 8 /* mismatching outputs printed per case */

/* ------------------------------------------------------------------------
 * Reading a case
 */

typedef struct golden_tensor {
    bool present;
    int rank;
    int32_t shape[4];
    size_t count;
    int n_scale;
    float scale[256];   /* float32 exactly as TFLite stored it */
    int32_t zero_point; /* first zero point (per-channel ones are all 0) */
    int32_t *data;      /* values widened to int32 (int8 or int32 tensors) */
} golden_tensor;

typedef struct golden_case {
    char name[96];
    char op[32];
    json_t *root;
    json_t *options;
    int n_inputs;
    golden_tensor in[3];
    golden_tensor out;
} golden_case;

static void tensor_free(golden_tensor *t)
{
    free(t->data);
    t->data = NULL;
}

static void case_free(golden_case *c)
{
    for (int i = 0; i < c->n_inputs; i++)
        tensor_free(&c->in[i]);
    tensor_free(&c->out);
    json_decref(c->root);
    c->root = NULL;
}

/* Fills t from one recorded tensor (or marks it absent for JSON null).
 * Returns false with *why set when the record is malformed. */
static bool parse_tensor(json_t *j, golden_tensor *t, const char **why)
{
    memset(t, 0, sizeof *t);
    if (json_is_null(j))
        return true;
    json_t *shape = json_object_get(j, "shape"), *scale = json_object_get(j, "scale");
    json_t *zp = json_object_get(j, "zero_point"), *data = json_object_get(j, "data");
    if (!json_is_array(shape) || !json_is_array(scale) || !json_is_array(zp) ||
        !json_is_array(data)) {
        *why = "tensor lacks shape/scale/zero_point/data";
        return false;
    }
    t->rank = (int)json_array_size(shape);
    if (t->rank < 1 || t->rank > 4) {
        *why = "tensor rank not in 1..4";
        return false;
    }
    t->count = 1;
    for (int i = 0; i < t->rank; i++) {
        t->shape[i] = (int32_t)json_integer_value(json_array_get(shape, (size_t)i));
        t->count *= (size_t)t->shape[i];
    }
    /* Tensors that are not quantized (PAD's int32 paddings) have no scale. */
    t->n_scale = (int)json_array_size(scale);
    if (t->n_scale > 256 || json_array_size(zp) != (size_t)t->n_scale) {
        *why = "tensor has too many scales, or not one zero point per scale";
        return false;
    }
    /* The JSON number is the float32 written as the double it equals, so
     * this conversion is exact. */
    for (int i = 0; i < t->n_scale; i++)
        t->scale[i] = (float)json_number_value(json_array_get(scale, (size_t)i));
    t->zero_point = t->n_scale ? (int32_t)json_integer_value(json_array_get(zp, 0)) : 0;
    if (json_array_size(data) != t->count) {
        *why = "tensor data size does not match its shape";
        return false;
    }
    t->data = malloc(t->count * sizeof *t->data + 1);
    if (!t->data) {
        *why = "out of memory";
        return false;
    }
    for (size_t i = 0; i < t->count; i++)
        t->data[i] = (int32_t)json_integer_value(json_array_get(data, i));
    t->present = true;
    return true;
}

static bool load_case(const char *path, golden_case *c, const char **why)
{
    json_error_t err;
    memset(c, 0, sizeof *c);
    c->root = json_load_file(path, 0, &err);
    if (!c->root) {
        *why = "not valid JSON";
        return false;
    }
    const char *name = json_string_value(json_object_get(c->root, "name"));
    const char *op = json_string_value(json_object_get(c->root, "op"));
    json_t *prov = json_object_get(c->root, "provenance");
    json_t *inputs = json_object_get(c->root, "inputs");
    c->options = json_object_get(c->root, "options");
    if (!name || !op || !json_is_object(c->options) || !json_is_array(inputs) ||
        !json_string_value(json_object_get(prov, "tensorflow")) ||
        !json_is_integer(json_object_get(prov, "seed"))) {
        *why = "missing name, op, options, inputs or provenance";
        return false;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->op, sizeof c->op, "%s", op);
    c->n_inputs = (int)json_array_size(inputs);
    if (c->n_inputs < 1 || c->n_inputs > 3) {
        *why = "1 to 3 inputs expected";
        return false;
    }
    for (int i = 0; i < c->n_inputs; i++)
        if (!parse_tensor(json_array_get(inputs, (size_t)i), &c->in[i], why))
            return false;
    if (!c->in[0].present) {
        *why = "first input missing";
        return false;
    }
    if (!parse_tensor(json_object_get(c->root, "output"), &c->out, why) || !c->out.present) {
        *why = *why ? *why : "output missing";
        return false;
    }
    if (c->in[0].n_scale != 1 || c->out.n_scale != 1) {
        *why = "input and output need one scale each";
        return false;
    }
    for (size_t i = 0; i < c->out.count; i++)
        if (c->out.data[i] < -128 || c->out.data[i] > 127) {
            *why = "output is not int8";
            return false;
        }
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The case files, sorted so that runs are repeatable. */
static int list_cases(char **paths)
{
    DIR *d = opendir(GOLDEN_INT8);
    cr_assert_not_null(d, "cannot open %s", GOLDEN_INT8);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        cr_assert_lt(n, MAX_CASES);
        size_t size = sizeof GOLDEN_INT8 + len + 1;
        paths[n] = malloc(size);
        cr_assert_not_null(paths[n]);
        snprintf(paths[n], size, "%s/%s", GOLDEN_INT8, e->d_name);
        n++;
    }
    closedir(d);
    qsort(paths, (size_t)n, sizeof *paths, cmp_str);
    return n;
}

/* ------------------------------------------------------------------------
 * TFLite's Prepare
 */

static const char *opt_str(const golden_case *c, const char *key)
{
    const char *s = json_string_value(json_object_get(c->options, key));
    cr_assert_not_null(s, "%s: option %s missing", c->name, key);
    return s;
}

static int32_t opt_int(const golden_case *c, const char *key)
{
    json_t *v = json_object_get(c->options, key);
    cr_assert(json_is_integer(v), "%s: option %s missing", c->name, key);
    return (int32_t)json_integer_value(v);
}

/* CalculateActivationRangeQuantized for int8; the division and the rounding
 * are float32, as in TFLite. */
static void act_range(const golden_case *c, float scale, int32_t zp, int32_t *lo, int32_t *hi)
{
    const char *act = opt_str(c, "fused_activation");
    *lo = -128;
    *hi = 127;
    if (strcmp(act, "RELU") == 0 || strcmp(act, "RELU6") == 0) {
        int32_t q0 = zp + (int32_t)roundf(0.0f / scale);
        *lo = q0 > *lo ? q0 : *lo;
    }
    if (strcmp(act, "RELU6") == 0) {
        int32_t q6 = zp + (int32_t)roundf(6.0f / scale);
        *hi = q6 < *hi ? q6 : *hi;
    }
    cr_assert(strcmp(act, "NONE") == 0 || strcmp(act, "RELU") == 0 || strcmp(act, "RELU6") == 0,
              "%s: fused activation %s is not one the runtime has", c->name, act);
}

/* Output size and top/left padding of one spatial axis, TFLite's rule; checks
 * that the recorded output size is the one TFLite computes. */
static int32_t axis_pad(const golden_case *c, int32_t in, int32_t k, int32_t stride, int32_t out)
{
    bool same = strcmp(opt_str(c, "padding"), "SAME") == 0;
    int32_t want = same ? (in + stride - 1) / stride : (in - k + stride) / stride;
    cr_assert_eq(out, want, "%s: output size %d, TFLite's rule gives %d", c->name, out, want);
    if (!same)
        return 0;
    int32_t total = (out - 1) * stride + k - in;
    return total > 0 ? total / 2 : 0;
}

static etrt_window window(const golden_case *c, int32_t k_h, int32_t k_w)
{
    etrt_window w = {k_h, k_w, opt_int(c, "stride_h"), opt_int(c, "stride_w"), 0, 0};
    w.pad_top = axis_pad(c, c->in[0].shape[1], k_h, w.stride_h, c->out.shape[1]);
    w.pad_left = axis_pad(c, c->in[0].shape[2], k_w, w.stride_w, c->out.shape[2]);
    return w;
}

static etrt_dims dims4(const golden_tensor *t)
{
    cr_assert_eq(t->rank, 4);
    return (etrt_dims){t->shape[0], t->shape[1], t->shape[2], t->shape[3]};
}

/* Per output channel multipliers, double products (PopulateConvolution-
 * QuantizationParams); n_scale == 1 with per_tensor: the float32 product of
 * GetQuantizedConvolutionMultipler. */
static void channel_multipliers(const golden_case *c, const golden_tensor *w, int32_t n,
                                bool per_tensor, int32_t *mult, int32_t *shift)
{
    const float in_scale = c->in[0].scale[0], out_scale = c->out.scale[0];
    for (int32_t i = 0; i < n; i++) {
        double real;
        if (per_tensor)
            real = (double)(in_scale * w->scale[0]) / (double)out_scale;
        else
            real = (double)in_scale * (double)w->scale[i] / (double)out_scale;
        int s = 0;
        etrt_quantize_multiplier(real, &mult[i], &s);
        shift[i] = s;
    }
}

static int8_t *to_s8(const golden_tensor *t)
{
    int8_t *p = malloc(t->count + 1);
    cr_assert_not_null(p);
    for (size_t i = 0; i < t->count; i++) {
        cr_assert(t->data[i] >= -128 && t->data[i] <= 127);
        p[i] = (int8_t)t->data[i];
    }
    return p;
}

static bool all_zero(const golden_tensor *t)
{
    for (size_t i = 0; i < t->count; i++)
        if (t->data[i] != 0)
            return false;
    return true;
}

/* Compares a kernel's output with TFLite's; prints the first mismatches and
 * their count. Returns the number of mismatches. */
static size_t compare(const golden_case *c, const char *variant, const int8_t *got)
{
    size_t bad = 0;
    for (size_t i = 0; i < c->out.count; i++) {
        if (got[i] == c->out.data[i])
            continue;
        if (bad < MAX_SHOWN)
            cr_log_error("%s%s: output[%zu] got %d, TFLite %d", c->name, variant, i, got[i],
                         c->out.data[i]);
        bad++;
    }
    if (bad)
        cr_log_error("%s%s: %zu of %zu outputs differ from TFLite", c->name, variant, bad,
                     c->out.count);
    return bad;
}

/* ------------------------------------------------------------------------
 * One runner per op. Each returns the number of mismatching outputs.
 */

static size_t run_conv(const golden_case *c, bool depthwise)
{
    const golden_tensor *x = &c->in[0], *w = &c->in[1], *b = &c->in[2];
    cr_assert(w->present && w->rank == 4, "%s: filter", c->name);
    etrt_dims in = dims4(x), out = dims4(&c->out);
    cr_assert_eq(opt_int(c, "dilation_h"), 1, "%s: the runtime has no dilation", c->name);
    cr_assert_eq(opt_int(c, "dilation_w"), 1, "%s: the runtime has no dilation", c->name);
    etrt_conv_s8_params p = {0};
    p.win = window(c, w->shape[1], w->shape[2]);
    if (depthwise) {
        p.depth_multiplier = opt_int(c, "depth_multiplier");
        cr_assert_eq(w->shape[0], 1);
        cr_assert_eq(w->shape[3], out.c);
        cr_assert_eq(out.c, in.c * p.depth_multiplier);
    } else {
        p.depth_multiplier = 1;
        cr_assert_eq(w->shape[0], out.c);
        cr_assert_eq(w->shape[3], in.c);
    }
    cr_assert_eq(w->n_scale, out.c, "%s: conv weights must be per-channel", c->name);
    int32_t mult[256], shift[256];
    channel_multipliers(c, w, out.c, false, mult, shift);
    p.multiplier = mult;
    p.shift = shift;
    p.input_offset = -x->zero_point;
    p.output_offset = c->out.zero_point;
    act_range(c, c->out.scale[0], c->out.zero_point, &p.act_min, &p.act_max);

    int8_t *xs = to_s8(x), *ws = to_s8(w), *y = malloc(c->out.count + 1);
    cr_assert_not_null(y);
    size_t scratch_size = depthwise ? etrt_depthwise_conv2d_s8_scratch_size(&p, in, out)
                                    : etrt_conv2d_s8_scratch_size(&p, in, out);
    void *scratch = scratch_size ? malloc(scratch_size) : NULL;
    cr_assert(scratch_size == 0 || scratch);
    size_t bad = 0;
    /* With an all-zero bias (Keras use_bias=False: the converter still adds
     * one), the NULL-bias path must give the same result. */
    for (int pass = 0; pass < (b->present && all_zero(b) ? 2 : 1); pass++) {
        const int32_t *bias = b->present && pass == 0 ? b->data : NULL;
        memset(y, 0x55, c->out.count);
        if (depthwise)
            etrt_depthwise_conv2d_s8(&p, in, xs, ws, bias, out, y, scratch);
        else
            etrt_conv2d_s8(&p, in, xs, ws, bias, out, y, scratch);
        bad += compare(c, pass ? " (bias NULL)" : "", y);
    }
    free(scratch);
    free(y);
    free(ws);
    free(xs);
    return bad;
}

static size_t run_fc(const golden_case *c)
{
    const golden_tensor *x = &c->in[0], *w = &c->in[1], *b = &c->in[2];
    cr_assert(w->present && w->rank == 2, "%s: filter", c->name);
    int32_t out_n = w->shape[0], in_n = w->shape[1];
    cr_assert_eq(x->count % (size_t)in_n, 0);
    int32_t batches = (int32_t)(x->count / (size_t)in_n);
    cr_assert_eq(c->out.count, (size_t)batches * (size_t)out_n);
    cr_assert_eq(opt_int(c, "weights_format"), 0, "%s: shuffled weights", c->name);
    etrt_fc_s8_params p = {0};
    p.per_channel = w->n_scale > 1;
    cr_assert(w->n_scale == 1 || w->n_scale == out_n);
    cr_assert_str_eq(opt_str(c, "weights"), p.per_channel ? "per-channel" : "per-tensor");
    int32_t mult[256], shift[256];
    channel_multipliers(c, w, p.per_channel ? out_n : 1, !p.per_channel, mult, shift);
    p.multiplier = mult;
    p.shift = shift;
    p.input_offset = -x->zero_point;
    p.output_offset = c->out.zero_point;
    act_range(c, c->out.scale[0], c->out.zero_point, &p.act_min, &p.act_max);

    int8_t *xs = to_s8(x), *ws = to_s8(w), *y = malloc(c->out.count + 1);
    cr_assert_not_null(y);
    size_t bad = 0;
    for (int pass = 0; pass < (b->present && all_zero(b) ? 2 : 1); pass++) {
        memset(y, 0x55, c->out.count);
        etrt_fully_connected_s8(&p, batches, in_n, xs, out_n, ws,
                                b->present && pass == 0 ? b->data : NULL, y);
        bad += compare(c, pass ? " (bias NULL)" : "", y);
    }
    free(y);
    free(ws);
    free(xs);
    return bad;
}

/* Pooling and pad requantize nothing: TFLite requires the output to share
 * the input's scale and zero point. */
static void require_same_quant(const golden_case *c)
{
    cr_assert(c->in[0].scale[0] == c->out.scale[0] && c->in[0].zero_point == c->out.zero_point,
              "%s: input and output quantization differ", c->name);
}

static size_t run_pool(const golden_case *c, bool max)
{
    require_same_quant(c);
    etrt_dims in = dims4(&c->in[0]), out = dims4(&c->out);
    etrt_pool_s8_params p = {0};
    p.win = window(c, opt_int(c, "filter_h"), opt_int(c, "filter_w"));
    act_range(c, c->out.scale[0], c->out.zero_point, &p.act_min, &p.act_max);
    int8_t *xs = to_s8(&c->in[0]), *y = malloc(c->out.count + 1);
    cr_assert_not_null(y);
    memset(y, 0x55, c->out.count);
    if (max)
        etrt_max_pool_s8(&p, in, xs, out, y);
    else
        etrt_avg_pool_s8(&p, in, xs, out, y);
    size_t bad = compare(c, "", y);
    free(y);
    free(xs);
    return bad;
}

static size_t run_add(const golden_case *c)
{
    const golden_tensor *x1 = &c->in[0], *x2 = &c->in[1];
    cr_assert(x2->present && x1->count == x2->count && x1->count == c->out.count,
              "%s: add without broadcasting expected", c->name);
    const float s1 = x1->scale[0], s2 = x2->scale[0], so = c->out.scale[0];
    etrt_add_s8_params p = {0};
    p.input1_offset = -x1->zero_point;
    p.input2_offset = -x2->zero_point;
    p.output_offset = c->out.zero_point;
    p.left_shift = 20;
    /* 2 * max(float, float) is exact; (1 << 20) * so is an exact float32. */
    const double twice_max = 2.0 * (double)(s1 > s2 ? s1 : s2);
    etrt_quantize_multiplier((double)s1 / twice_max, &p.input1_multiplier, &p.input1_shift);
    etrt_quantize_multiplier((double)s2 / twice_max, &p.input2_multiplier, &p.input2_shift);
    etrt_quantize_multiplier(twice_max / (double)((float)(1 << p.left_shift) * so),
                             &p.output_multiplier, &p.output_shift);
    cr_assert(p.input1_shift <= 0 && p.input2_shift <= 0 && p.output_shift <= 0,
              "%s: add multipliers must be below one", c->name);
    act_range(c, so, c->out.zero_point, &p.act_min, &p.act_max);

    /* The header's own preparation must agree with TFLite's. */
    etrt_add_s8_params q = p;
    etrt_add_s8_prepare(s1, s2, so, &q);
    cr_expect(q.left_shift == p.left_shift && q.input1_multiplier == p.input1_multiplier &&
                  q.input1_shift == p.input1_shift && q.input2_multiplier == p.input2_multiplier &&
                  q.input2_shift == p.input2_shift && q.output_multiplier == p.output_multiplier &&
                  q.output_shift == p.output_shift,
              "%s: etrt_add_s8_prepare disagrees with TFLite's Prepare", c->name);

    int8_t *a = to_s8(x1), *b = to_s8(x2), *y = malloc(c->out.count + 1);
    cr_assert_not_null(y);
    memset(y, 0x55, c->out.count);
    etrt_add_s8(&p, c->out.count, a, b, y);
    size_t bad = compare(c, "", y);
    /* In place, as the header allows (the planner runs adds in place). */
    memcpy(y, a, c->out.count);
    etrt_add_s8(&p, c->out.count, y, b, y);
    bad += compare(c, " (in place)", y);
    free(y);
    free(b);
    free(a);
    return bad;
}

static size_t run_softmax(const golden_case *c)
{
    const golden_tensor *x = &c->in[0];
    cr_assert(c->out.scale[0] == 1.0f / 256 && c->out.zero_point == -128,
              "%s: int8 softmax output must be scale 1/256, zero point -128", c->name);
    json_t *beta = json_object_get(c->options, "beta");
    cr_assert(json_is_number(beta), "%s: beta missing", c->name);
    etrt_softmax_s8_params p;
    etrt_softmax_s8_prepare((double)x->scale[0], (double)(float)json_number_value(beta), &p);
    int32_t depth = x->shape[x->rank - 1];
    int32_t rows = (int32_t)(x->count / (size_t)depth);
    int8_t *xs = to_s8(x), *y = malloc(c->out.count + 1);
    cr_assert_not_null(y);
    memset(y, 0x55, c->out.count);
    etrt_softmax_s8(&p, rows, depth, xs, y);
    size_t bad = compare(c, "", y);
    free(y);
    free(xs);
    return bad;
}

static size_t run_pad(const golden_case *c)
{
    require_same_quant(c);
    const golden_tensor *pads = &c->in[1];
    cr_assert(pads->present && pads->count == 8, "%s: paddings must be [4][2]", c->name);
    cr_assert(pads->data[0] == 0 && pads->data[1] == 0 && pads->data[6] == 0 && pads->data[7] == 0,
              "%s: the runtime pads height and width only", c->name);
    etrt_pad_params p = {pads->data[2], pads->data[3], pads->data[4], pads->data[5]};
    etrt_dims in = dims4(&c->in[0]), out = dims4(&c->out);
    int8_t *xs = to_s8(&c->in[0]), *y = malloc(c->out.count + 1);
    cr_assert_not_null(y);
    memset(y, 0x55, c->out.count);
    etrt_pad_s8(&p, in, xs, (int8_t)c->out.zero_point, out, y);
    size_t bad = compare(c, "", y);
    free(y);
    free(xs);
    return bad;
}

/* ------------------------------------------------------------------------
 * Tests
 */

typedef enum {
    OP_CONV,
    OP_DEPTHWISE,
    OP_FC,
    OP_MAX_POOL,
    OP_AVG_POOL,
    OP_ADD,
    OP_SOFTMAX,
    OP_PAD
} op_kind;

/* TFLite op name, and how many cases of it tests/golden/int8 must hold (as
 * generated; a deleted file makes the coverage test fail). */
static const struct {
    const char *name;
    int min_cases;
} ops[] = {
    [OP_CONV] = {"CONV_2D", 10},
    [OP_DEPTHWISE] = {"DEPTHWISE_CONV_2D", 6},
    [OP_FC] = {"FULLY_CONNECTED", 4},
    [OP_MAX_POOL] = {"MAX_POOL_2D", 2},
    [OP_AVG_POOL] = {"AVERAGE_POOL_2D", 4},
    [OP_ADD] = {"ADD", 3},
    [OP_SOFTMAX] = {"SOFTMAX", 3},
    [OP_PAD] = {"PAD", 2},
};
#define N_OPS ((int)(sizeof ops / sizeof ops[0]))

static size_t run_case(const golden_case *c, op_kind k)
{
    switch (k) {
    case OP_CONV: return run_conv(c, false);
    case OP_DEPTHWISE: return run_conv(c, true);
    case OP_FC: return run_fc(c);
    case OP_MAX_POOL: return run_pool(c, true);
    case OP_AVG_POOL: return run_pool(c, false);
    case OP_ADD: return run_add(c);
    case OP_SOFTMAX: return run_softmax(c);
    case OP_PAD: return run_pad(c);
    }
    return 0;
}

/* Runs every case of one op; each differing case logs its mismatches. */
static void run_op(op_kind k)
{
    char *paths[MAX_CASES];
    int n = list_cases(paths), ran = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        golden_case c;
        const char *why = NULL;
        cr_assert(load_case(paths[i], &c, &why), "%s: %s", paths[i], why);
        if (strcmp(c.op, ops[k].name) == 0) {
            ran++;
            if (run_case(&c, k) != 0)
                failed++;
        }
        case_free(&c);
        free(paths[i]);
    }
    cr_assert_gt(ran, 0, "no %s cases in %s", ops[k].name, GOLDEN_INT8);
    cr_expect_eq(failed, 0, "%d of %d %s cases differ from TensorFlow Lite", failed, ran,
                 ops[k].name);
}

Test(runtime_golden, files_parse_and_cover_every_op)
{
    char *paths[MAX_CASES];
    int n = list_cases(paths), count[N_OPS] = {0};
    for (int i = 0; i < n; i++) {
        golden_case c;
        const char *why = NULL;
        cr_expect(load_case(paths[i], &c, &why), "%s: %s", paths[i], why ? why : "");
        int k = 0;
        while (k < N_OPS && strcmp(c.op, ops[k].name) != 0)
            k++;
        cr_expect_lt(k, N_OPS, "%s: op %s is not one the runtime has", paths[i], c.op);
        if (k < N_OPS)
            count[k]++;
        case_free(&c);
        free(paths[i]);
    }
    for (int k = 0; k < N_OPS; k++)
        cr_expect_geq(count[k], ops[k].min_cases, "%d %s cases, %d expected", count[k], ops[k].name,
                      ops[k].min_cases);
}

Test(runtime_golden, conv2d)
{
    run_op(OP_CONV);
}

Test(runtime_golden, depthwise_conv2d)
{
    run_op(OP_DEPTHWISE);
}

Test(runtime_golden, fully_connected)
{
    run_op(OP_FC);
}

Test(runtime_golden, max_pool)
{
    run_op(OP_MAX_POOL);
}

Test(runtime_golden, avg_pool)
{
    run_op(OP_AVG_POOL);
}

Test(runtime_golden, add)
{
    run_op(OP_ADD);
}

Test(runtime_golden, softmax)
{
    run_op(OP_SOFTMAX);
}

Test(runtime_golden, pad)
{
    run_op(OP_PAD);
}
