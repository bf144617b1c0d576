/* Running and loading .etrt plans on the host, through the runtime itself. */
#include "quant/quant_internal.h"

#include "core/fsutil.h"
#include "etrt.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void et_plan_free(et_plan *p)
{
    if (!p)
        return;
    free(p->bytes);
    memset(p, 0, sizeof *p);
}

static const float *feature_row(const void *ctx, size_t i)
{
    const et_feature_rows *s = ctx;
    return et_features_row(s->f, s->rows[i]);
}

et_row_source et_row_source_features(et_feature_rows *ctx, const et_features *f, const size_t *rows,
                                     size_t n)
{
    ctx->f = f;
    ctx->rows = rows;
    et_row_source src = {feature_row, ctx, n, 0, 0, 0};
    et_features_shape(f, &src.h, &src.w, &src.c);
    return src;
}

et_status et_plan_predict(const uint8_t *plan, size_t size, const et_features *f,
                          const size_t *rows, size_t n, float *probs, et_error *err)
{
    et_feature_rows ctx;
    et_row_source src = et_row_source_features(&ctx, f, rows, n);
    return et_plan_predict_rows(plan, size, &src, probs, err);
}

et_status et_plan_predict_rows(const uint8_t *plan, size_t size, const et_row_source *src,
                               float *probs, et_error *err)
{
    etrt_model m;
    int lr = etrt_model_init(&m, plan, size);
    if (lr < 0)
        return et_error_set(err, ET_EINVAL, "the model plan does not load: %s (op %d)",
                            etrt_strerror(lr), m.error_op);
    etrt_tensor_info in = etrt_input_info(&m), out = etrt_output_info(&m);
    int h = src->h, w = src->w, c = src->c;
    size_t n = src->n;
    if (in.h != h || in.w != w || in.c != c)
        return et_error_set(err, ET_EINVAL,
                            "the features (%dx%dx%d) do not fit the model's input (%dx%dx%d)", h, w,
                            c, in.h, in.w, in.c);
    size_t row = (size_t)h * w * c, classes = (size_t)out.h * out.w * out.c;
    size_t arena_size = etrt_arena_size(&m);
    volatile int failed = 0, stopped = 0;
#pragma omp parallel
    {
        /* One arena per thread: the runtime keeps no other state. */
        uint8_t *arena = aligned_alloc(16, (arena_size + 15) & ~(size_t)15);
        if (!arena)
            failed = 1;
#pragma omp for schedule(dynamic, 16)
        for (size_t i = 0; i < n; i++) {
            if (failed || stopped)
                continue;
            const float *x = src->row(src->ctx, i);
            if (in.type == ETRT_INT8)
                etrt_quantize_s8(row, x, in.scale, in.zero_point, etrt_input(&m, arena));
            else
                memcpy(etrt_input(&m, arena), x, row * sizeof(float));
            etrt_invoke(&m, arena);
            if (out.type == ETRT_INT8)
                etrt_dequantize_s8(classes, etrt_output(&m, arena), out.scale, out.zero_point,
                                   probs + i * classes);
            else
                memcpy(probs + i * classes, etrt_output(&m, arena), classes * sizeof(float));
            if (omp_get_thread_num() == 0 && et_interrupted())
                stopped = 1;
        }
        free(arena);
    }
    if (failed)
        return et_error_set(err, ET_ENOMEM, "out of memory for the runtime's arena (%zu bytes)",
                            arena_size);
    if (stopped)
        return et_error_set(err, ET_EINTR, "interrupted");
    return ET_OK;
}

et_status et_plan_load(const char *path, et_plan *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return et_error_set(err, ET_EIO, "%s: %s", path, strerror(errno));
    et_status rc = ET_OK;
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0)
        size = ftell(fp);
    if (size < 0 || fseek(fp, 0, SEEK_SET) != 0)
        rc = et_error_set(err, ET_EIO, "%s: cannot read its size", path);
    else if (size > (long)1 << 31)
        rc = et_error_set(err, ET_EINVAL, "%s: %ld bytes is too large for a model", path, size);
    uint8_t *buf = rc == ET_OK ? aligned_alloc(16, ((size_t)size + 16) & ~(size_t)15) : NULL;
    if (rc == ET_OK && !buf)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK && fread(buf, 1, (size_t)size, fp) != (size_t)size)
        rc = et_error_set(err, ET_EIO, "%s: read error", path);
    fclose(fp);
    etrt_model m;
    int lr = rc == ET_OK ? etrt_model_init(&m, buf, (size_t)size) : 0;
    if (lr < 0)
        rc = et_error_set(err, ET_EINVAL, "%s: %s (op %d)", path, etrt_strerror(lr), m.error_op);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    out->bytes = buf;
    out->size = (size_t)size;
    out->arena_size = etrt_arena_size(&m);
    out->input_bytes = etrt_input_info(&m).bytes;
    out->output_bytes = etrt_output_info(&m).bytes;
    out->n_ops = (int)m.header->n_ops;
    return ET_OK;
}
