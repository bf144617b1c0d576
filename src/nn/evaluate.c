/* Evaluating stored model versions (float32 through the training engine,
 * int8 through the runtime) and the model embedding for the explorer. */
#include "nn/train_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

et_status et_predict_rows(et_net *net, const et_features *f, const size_t *rows, size_t n,
                          float *batch_x, int node, float *out, et_error *err)
{
    int h, w, c;
    et_features_shape(f, &h, &w, &c);
    size_t row_floats = (size_t)h * w * c;
    const et_layer_info *li = et_model_layer(
        et_net_model(net), node >= 0 ? node : et_model_node_count(et_net_model(net)) - 1);
    size_t width = (size_t)li->out.h * li->out.w * li->out.c;
    size_t max_batch = (size_t)et_net_max_batch(net);
    for (size_t start = 0; start < n; start += max_batch) {
        size_t b = n - start < max_batch ? n - start : max_batch;
        for (size_t i = 0; i < b; i++)
            memcpy(batch_x + i * row_floats, et_features_row(f, rows[start + i]),
                   row_floats * sizeof(float));
        et_status rc = et_net_forward(net, batch_x, (int)b, false, 0, err);
        if (rc < 0)
            return rc;
        const float *y = node >= 0 ? et_net_node_output(net, node) : et_net_probs(net);
        memcpy(out + start * width, y, b * width * sizeof(float));
        if (et_interrupted())
            return et_error_set(err, ET_EINTR, "interrupted");
    }
    return ET_OK;
}

/* An inference net over a loaded model's weights that keeps node `node`'s
 * output (-1: only the probabilities), and its staging buffer. */
static et_status open_net(const et_loaded_model *m, int batch, int node, et_net **net, float **x,
                          et_error *err)
{
    et_shape in = et_model_input_shape(m->model);
    *x = malloc((size_t)batch * in.h * in.w * in.c * sizeof **x);
    if (!*x)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    et_status rc = et_net_create_inference(m->model, batch, &node, node >= 0, net, err);
    if (rc == ET_OK)
        memcpy(et_net_params(*net), m->params, m->n_params * sizeof(float));
    return rc;
}

void et_eval_result_free(et_eval_result *r)
{
    if (!r)
        return;
    et_metrics_free(&r->float32);
    et_metrics_free(&r->int8);
    memset(r, 0, sizeof *r);
}

et_status et_evaluate(et_project *p, const et_loaded_model *m, et_category category, bool float32,
                      bool int8, et_eval_result *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    if (int8 && !m->int8.bytes && !float32)
        return et_error_set(err, ET_ENOTFOUND,
                            "model %lld has no int8 version (it was trained with --no-int8 or "
                            "before int8 existed); run 'edgetrain train' again",
                            (long long)m->info.id);
    int8 = int8 && m->int8.bytes;
    et_features_stats fs;
    et_features *f = NULL;
    et_status rc = et_features_update(p, &m->impulse, m->info.impulse_version, &fs, err);
    if (rc == ET_OK)
        rc = et_features_open(p, &m->impulse, &f, err);
    if (rc < 0)
        return rc;
    /* Feature-set label index -> model class, or -1 for a label the model does not know. */
    size_t n_labels = et_features_n_labels(f), rows = et_features_rows(f), k_n = m->n_labels;
    int *map = malloc((n_labels + 1) * sizeof *map);
    size_t *sel = malloc((rows + 1) * sizeof *sel);
    int32_t *truth = malloc((rows + 1) * sizeof *truth);
    int64_t *ids = malloc((rows + 1) * sizeof *ids);
    float *pf = malloc((rows + 1) * k_n * sizeof *pf), *pq = malloc((rows + 1) * k_n * sizeof *pq);
    float *x = NULL;
    et_net *net = NULL;
    if (!map || !sel || !truth || !ids || !pf || !pq)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    for (size_t l = 0; rc == ET_OK && l < n_labels; l++) {
        map[l] = -1;
        for (size_t k = 0; k < k_n; k++)
            if (!strcmp(et_features_label_name(f, l), m->labels[k]))
                map[l] = (int)k;
    }
    size_t n = 0;
    for (size_t i = 0; rc == ET_OK && i < rows; i++) {
        if (et_features_category(f, i) != category)
            continue;
        int k = map[et_features_label(f, i)];
        if (k < 0) {
            out->unknown++;
            continue;
        }
        truth[n] = k;
        ids[n] = et_features_id(f, i);
        sel[n++] = i;
    }
    if (rc == ET_OK && n == 0)
        rc = et_error_set(err, ET_EINVAL, "no %s samples with a label the model knows",
                          et_category_name(category));
    if (rc == ET_OK && float32) {
        rc = open_net(m, 64, -1, &net, &x, err);
        if (rc == ET_OK)
            rc = et_predict_rows(net, f, sel, n, x, -1, pf, err);
        if (rc == ET_OK)
            rc = et_metrics_compute(truth, pf, n, k_n, ids, &out->float32, err);
        out->has_float32 = rc == ET_OK;
    }
    if (rc == ET_OK && int8) {
        rc = et_plan_predict(m->int8.bytes, m->int8.size, f, sel, n, pq, err);
        if (rc == ET_OK)
            rc = et_metrics_compute(truth, pq, n, k_n, ids, &out->int8, err);
        out->has_int8 = rc == ET_OK;
    }
    if (rc == ET_OK && out->has_float32 && out->has_int8)
        out->agreement = et_metrics_agreement(pf, pq, n, k_n);
    et_net_destroy(net);
    free(x);
    free(map);
    free(sel);
    free(truth);
    free(ids);
    free(pf);
    free(pq);
    et_features_close(f);
    if (rc < 0)
        et_eval_result_free(out);
    return rc;
}

int et_model_embedding_node(const et_model *m)
{
    int last_dense = -1;
    for (int i = 0; i < et_model_node_count(m); i++)
        if (et_model_layer(m, i)->kind == ET_NODE_DENSE)
            last_dense = i;
    if (last_dense < 0)
        return -1;
    int node = et_model_layer(m, last_dense)->inputs[0];
    while (node >= 0 && et_model_layer(m, node)->kind == ET_NODE_DROPOUT)
        node = et_model_layer(m, node)->inputs[0];
    return node;
}

et_status et_model_embed(void *ctx, const et_features *f, const size_t *rows, size_t n, float **out,
                         size_t *dims, et_error *err)
{
    const et_loaded_model *m = ctx;
    int node = et_model_embedding_node(m->model);
    if (node < 0)
        return et_error_set(err, ET_EINVAL, "model %lld has no classifier layer",
                            (long long)m->info.id);
    const et_layer_info *li = et_model_layer(m->model, node);
    size_t d = (size_t)li->out.h * li->out.w * li->out.c;
    int h, w, c;
    et_features_shape(f, &h, &w, &c);
    et_shape in = et_model_input_shape(m->model);
    if (in.h != h || in.w != w || in.c != c)
        return et_error_set(err, ET_EINVAL,
                            "the features (%dx%dx%d) do not fit model %lld (%dx%dx%d)", h, w, c,
                            (long long)m->info.id, in.h, in.w, in.c);
    float *emb = malloc((n + 1) * d * sizeof *emb), *x = NULL;
    et_net *net = NULL;
    et_status rc =
        emb ? open_net(m, 64, node, &net, &x, err) : et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK)
        rc = et_predict_rows(net, f, rows, n, x, node, emb, err);
    et_net_destroy(net);
    free(x);
    if (rc < 0) {
        free(emb);
        return rc;
    }
    *out = emb;
    *dims = d;
    return ET_OK;
}
