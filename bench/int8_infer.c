/* Single-thread int8 inference speed of the edgetrain runtime (runtime/, the
 * code a device runs) on the host, for bench/int8_vs_tflite.sh:
 *
 *     bench_int8_infer MODELS_DIR/ID/model_int8.etrt FEATURES_DIR [WARMUP]
 *
 * Loads the model (et_plan_load: the runtime's own checks) and the feature
 * set's testing rows (FEATURES_DIR/features.npy, memory-mapped), quantizes
 * every row once (etrt_quantize_s8, as `edgetrain test` does), then runs
 * etrt_invoke one sample at a time on this one thread. Only the invokes are
 * timed (the same as the TensorFlow Lite side, bench/int8_infer_tflite.py);
 * WARMUP (default 10) untimed invokes come first. Labels are mapped to the
 * model's classes by name (meta.json against the model.json beside the
 * model), so the accuracy is the one `edgetrain test --int8` reports.
 * Prints one JSON line. */
#include "dsp/npy.h"
#include "edgetrain/edgetrain.h"
#include "edgetrain/quant.h"
#include "etrt.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct mapped_npy {
    const uint8_t *map;
    size_t map_size;
    const void *data;
    uint64_t shape[4];
    int ndim;
} mapped_npy;

static int map_npy(const char *dir, const char *name, const char *descr, mapped_npy *a)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(a, 0, sizeof *a);
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    a->map_size = (size_t)st.st_size;
    void *m = mmap(NULL, a->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        perror(path);
        return -1;
    }
    a->map = m;
    size_t off = 0;
    et_error err = {0};
    if (et_npy_parse(a->map, a->map_size, descr, a->shape, &a->ndim, &off, path, &err) < 0) {
        fprintf(stderr, "bench_int8_infer: %s\n", err.msg);
        return -1;
    }
    a->data = a->map + off;
    return 0;
}

static void unmap_npy(mapped_npy *a)
{
    if (a->map)
        munmap((void *)a->map, a->map_size);
}

/* to_class[i]: the model's class index of the feature set's label i, or -1. */
static int label_map(const char *features_dir, const char *model_path, int **to_class,
                     size_t *n_labels)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", features_dir);
    json_error_t je;
    json_t *meta = json_load_file(path, 0, &je);
    const char *slash = strrchr(model_path, '/');
    int dir_len = slash ? (int)(slash - model_path) : 1;
    snprintf(path, sizeof path, "%.*s/model.json", dir_len, slash ? model_path : ".");
    json_t *model = json_load_file(path, 0, &je);
    json_t *fl = json_object_get(meta, "labels"), *ml = json_object_get(model, "labels");
    int rc = -1;
    if (!json_is_array(fl) || !json_is_array(ml)) {
        fprintf(stderr, "bench_int8_infer: no labels in %s/meta.json or %s\n", features_dir, path);
        goto done;
    }
    *n_labels = json_array_size(fl);
    *to_class = malloc((*n_labels + 1) * sizeof **to_class);
    for (size_t i = 0; i < *n_labels; i++) {
        (*to_class)[i] = -1;
        for (size_t k = 0; k < json_array_size(ml); k++)
            if (json_equal(json_array_get(fl, i), json_array_get(ml, k)))
                (*to_class)[i] = (int)k;
    }
    rc = 0;
done:
    json_decref(meta);
    json_decref(model);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_int8_infer MODEL_INT8.etrt FEATURES_DIR [WARMUP]\n");
        return 2;
    }
    int warmup = argc > 3 ? atoi(argv[3]) : 10;
    et_error err = {0};
    et_plan plan;
    if (et_plan_load(argv[1], &plan, &err) < 0)
        return fprintf(stderr, "bench_int8_infer: %s\n", err.msg), 1;
    etrt_model m;
    if (etrt_model_init(&m, plan.bytes, plan.size) < 0)
        return fprintf(stderr, "bench_int8_infer: %s does not load\n", argv[1]), 1;
    etrt_tensor_info in = etrt_input_info(&m), out = etrt_output_info(&m);
    if (in.type != ETRT_INT8 || out.type != ETRT_INT8)
        return fprintf(stderr, "bench_int8_infer: %s is not an int8 model\n", argv[1]), 1;

    mapped_npy x, lab, cat;
    if (map_npy(argv[2], "features.npy", "<f4", &x) < 0 ||
        map_npy(argv[2], "labels.npy", "<i4", &lab) < 0 ||
        map_npy(argv[2], "categories.npy", "|u1", &cat) < 0)
        return 1;
    size_t n = (size_t)x.shape[0], row = (size_t)in.h * in.w * in.c;
    if (x.ndim != 4 || x.shape[1] != (uint64_t)in.h || x.shape[2] != (uint64_t)in.w ||
        x.shape[3] != (uint64_t)in.c || lab.shape[0] != n || cat.shape[0] != n)
        return fprintf(stderr, "bench_int8_infer: the features do not fit the model's input\n"), 1;
    int *to_class = NULL;
    size_t n_labels = 0;
    if (label_map(argv[2], argv[1], &to_class, &n_labels) < 0)
        return 1;

    /* The testing rows whose label the model knows, quantized once. */
    const float *xf = x.data;
    const int32_t *labels = lab.data;
    const uint8_t *category = cat.data;
    size_t n_test = 0;
    for (size_t i = 0; i < n; i++)
        n_test += category[i] == 1 && labels[i] >= 0 && (size_t)labels[i] < n_labels &&
                  to_class[labels[i]] >= 0;
    int8_t *q = malloc(n_test * row);
    int *truth = malloc(n_test * sizeof *truth);
    size_t classes = (size_t)out.h * out.w * out.c;
    uint8_t *arena = aligned_alloc(16, (etrt_arena_size(&m) + 15) & ~(size_t)15);
    if (!q || !truth || !arena || n_test == 0)
        return fprintf(stderr, "bench_int8_infer: no testing rows or out of memory\n"), 1;
    for (size_t i = 0, t = 0; i < n; i++) {
        if (!(category[i] == 1 && labels[i] >= 0 && (size_t)labels[i] < n_labels &&
              to_class[labels[i]] >= 0))
            continue;
        etrt_quantize_s8(row, xf + i * row, in.scale, in.zero_point, q + t * row);
        truth[t++] = to_class[labels[i]];
    }

    int8_t *input = etrt_input(&m, arena);
    const int8_t *scores = etrt_output(&m, arena);
    for (int i = 0; i < warmup; i++) {
        memcpy(input, q + ((size_t)i % n_test) * row, row);
        etrt_invoke(&m, arena);
    }
    double busy = 0;
    size_t correct = 0;
    for (size_t t = 0; t < n_test; t++) {
        memcpy(input, q + t * row, row);
        double t0 = et_now_s();
        etrt_invoke(&m, arena);
        busy += et_now_s() - t0;
        size_t best = 0;
        for (size_t k = 1; k < classes; k++)
            if (scores[k] > scores[best])
                best = k;
        correct += (int)best == truth[t];
    }
    printf("{\"peer\": \"edgetrain\", \"samples\": %zu, \"threads\": 1, \"seconds\": %.4f, "
           "\"samples_per_s\": %.1f, \"us_per_sample\": %.2f, \"accuracy\": %.6f, "
           "\"arena_bytes\": %zu, \"model_bytes\": %zu}\n",
           n_test, busy, (double)n_test / busy, 1e6 * busy / (double)n_test,
           (double)correct / (double)n_test, etrt_arena_size(&m), plan.size);
    free(arena);
    free(q);
    free(truth);
    free(to_class);
    unmap_npy(&x);
    unmap_npy(&lab);
    unmap_npy(&cat);
    et_plan_free(&plan);
    return 0;
}
