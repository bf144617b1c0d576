/* Model summaries: a Keras-like table as text, and the same as JSON. */
#include "nn/nn_internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string; on out of memory it drops everything and stays NULL. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
    bool failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int w = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->failed = true;
            break;
        }
        if (b->s && (size_t)w < room) {
            b->len += (size_t)w;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)w + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            break;
        }
        b->s = s;
        b->cap = cap;
    }
    free(b->s);
    b->s = NULL;
}

/* 1234567 -> "1,234,567". */
static const char *group(char out[32], int64_t v)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v));
    size_t n = strlen(digits), o = 0;
    if (v < 0)
        out[o++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return out;
}

static const char *shape_text(char out[40], const et_layer_info *l)
{
    if (l->flat)
        snprintf(out, 40, "%d", l->out.c);
    else
        snprintf(out, 40, "%dx%dx%d", l->out.h, l->out.w, l->out.c);
    return out;
}

/* "mobilenetv2 (alpha 0.35)" or "conv". */
static void describe(const et_model *m, char *out, size_t n)
{
    if (m->arch == ET_MODEL_CONV)
        snprintf(out, n, "%s", et_model_name(m->arch));
    else
        snprintf(out, n, "%s (alpha %g)", et_model_name(m->arch), m->alpha);
}

char *et_model_summary_text(const et_model *m)
{
    strbuf b = {0};
    char arch[64], g1[32], g2[32], g3[32], shape[40];
    describe(m, arch, sizeof arch);
    et_shape in = et_model_input_shape(m);
    sb_printf(&b, "Model: %s, input %dx%dx%d, %d classes\n", arch, in.h, in.w, in.c, m->classes);
    static const char rule[] = "-------------------------------------------------------------"
                               "-----------------------------------------";
    sb_printf(&b, "%-28s %-17s %-12s %10s %13s  %s\n%s\n", "Layer", "Kind", "Output", "Params",
              "MACs", "Input", rule);
    for (int i = 0; i < m->n_nodes; i++) {
        const et_layer_info *l = &m->nodes[i].info;
        sb_printf(&b, "%-28s %-17s %-12s %10s %13s", l->name, et_node_kind_name(l->kind),
                  shape_text(shape, l), group(g1, l->trainable_params + l->non_trainable_params),
                  group(g2, l->macs));
        /* Name the inputs only where the graph is not a plain chain. */
        if (l->n_inputs == 2)
            sb_printf(&b, "  %s + %s", m->nodes[l->inputs[0]].info.name,
                      m->nodes[l->inputs[1]].info.name);
        else if (l->n_inputs == 1 && l->inputs[0] != i - 1)
            sb_printf(&b, "  %s", m->nodes[l->inputs[0]].info.name);
        sb_printf(&b, "\n");
    }
    et_model_totals t = et_model_totals_all(m);
    sb_printf(&b, "%s\n", rule);
    sb_printf(&b, "Total params: %s (%s bytes as float32)\n", group(g1, t.params),
              group(g2, t.params * 4));
    sb_printf(&b, "Trainable params: %s\nNon-trainable params: %s\n", group(g1, t.trainable_params),
              group(g2, t.non_trainable_params));
    if (m->backbone_nodes > 0) {
        et_model_totals bb = et_model_totals_range(m, 0, m->backbone_nodes);
        sb_printf(&b, "Backbone (up to %s): %s params, %s MACs\n",
                  m->nodes[m->backbone_nodes - 1].info.name, group(g1, bb.params),
                  group(g3, bb.macs));
    }
    sb_printf(&b, "MACs per sample: %s (conv2d, depthwise_conv2d and dense multiply-accumulates)\n",
              group(g1, t.macs));
    return b.failed ? NULL : b.s;
}

char *et_model_summary_json(const et_model *m)
{
    json_t *root = json_object(), *layers = json_array();
    bool ok = root && layers && !json_object_set_new(root, "layers", layers);
    if (!ok)
        json_decref(layers);
    for (int i = 0; ok && i < m->n_nodes; i++) {
        const et_layer_info *l = &m->nodes[i].info;
        json_t *inputs = json_array();
        for (int k = 0; inputs && k < l->n_inputs; k++)
            json_array_append_new(inputs, json_string(m->nodes[l->inputs[k]].info.name));
        json_t *o = json_pack(
            "{s:s,s:s,s:[i,i,i],s:o*,s:I,s:I,s:I}", "name", l->name, "kind",
            et_node_kind_name(l->kind), "output", l->out.h, l->out.w, l->out.c, "inputs", inputs,
            "params", (json_int_t)(l->trainable_params + l->non_trainable_params),
            "trainable_params", (json_int_t)l->trainable_params, "macs", (json_int_t)l->macs);
        ok = o && !json_array_append_new(layers, o);
    }
    et_model_totals t = et_model_totals_all(m);
    et_shape in = et_model_input_shape(m);
    if (ok) {
        json_t *rest =
            json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:[i,i,i],s:i}", "architecture",
                      et_model_name(m->arch), "params", (json_int_t)t.params, "trainable_params",
                      (json_int_t)t.trainable_params, "non_trainable_params",
                      (json_int_t)t.non_trainable_params, "param_bytes", (json_int_t)(t.params * 4),
                      "macs", (json_int_t)t.macs, "input", in.h, in.w, in.c, "classes", m->classes);
        ok = rest && !json_object_update(root, rest);
        json_decref(rest);
    }
    if (ok && m->arch != ET_MODEL_CONV)
        ok = !json_object_set_new(root, "alpha", json_real(m->alpha));
    char *s =
        ok ? json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(root);
    return s;
}
