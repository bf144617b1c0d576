/* The feature cache: features for every sample under cache/features/<key>/,
 * reused row by row (by pixel hash) when the samples change. A new set is
 * written into a temporary folder and swapped in with renames, so a crash or
 * Ctrl-C leaves the previous set intact. */
#define _GNU_SOURCE /* mremap-free mmap flags, strdup */
#include "edgetrain/dsp.h"

#include "core/fsutil.h"
#include "dsp/npy.h"
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* One sample to process. */
typedef struct row_src {
    int64_t id;
    uint8_t hash[32];
    char blob[65];
    int64_t member;
    int label;
    uint8_t category;
    int width, height, channels;
    char source[ET_SOURCE_MAX];
} row_src;

typedef struct sample_list {
    row_src *rows;
    size_t n;
    char **labels;
    size_t n_labels;
} sample_list;

static void hex_to_bytes(const char *hex, uint8_t out[32])
{
    for (int i = 0; i < 32; i++) {
        int hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
        int lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
}

static void list_free(sample_list *l)
{
    for (size_t i = 0; i < l->n_labels; i++)
        free(l->labels[i]);
    free(l->labels);
    free(l->rows);
}

static et_status list_samples(et_project *p, sample_list *l, et_error *err)
{
    memset(l, 0, sizeof *l);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT DISTINCT label FROM samples ORDER BY label", -1, &st,
                           NULL) != SQLITE_OK)
        return et_db_error(p, err, "listing labels");
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (l->n_labels == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(l->labels, cap * sizeof *grown);
            if (!grown) {
                sqlite3_finalize(st);
                return et_error_set(err, ET_ENOMEM, "out of memory");
            }
            l->labels = grown;
        }
        l->labels[l->n_labels++] = strdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    const char *sql = "SELECT id, pixel_hash, blob, member, label, category, width, height,"
                      " channels, source FROM samples ORDER BY id";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "listing samples");
    cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (l->n == cap) {
            cap = cap ? cap * 2 : 1024;
            row_src *grown = realloc(l->rows, cap * sizeof *grown);
            if (!grown) {
                sqlite3_finalize(st);
                return et_error_set(err, ET_ENOMEM, "out of memory");
            }
            l->rows = grown;
        }
        row_src *r = &l->rows[l->n++];
        r->id = sqlite3_column_int64(st, 0);
        hex_to_bytes((const char *)sqlite3_column_text(st, 1), r->hash);
        snprintf(r->blob, sizeof r->blob, "%s", sqlite3_column_text(st, 2));
        r->member = sqlite3_column_int64(st, 3);
        const char *label = (const char *)sqlite3_column_text(st, 4);
        size_t lo = 0, hi = l->n_labels;
        while (lo < hi) { /* labels are sorted: binary search */
            size_t mid = (lo + hi) / 2;
            if (strcmp(l->labels[mid], label) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        r->label = (int)lo;
        r->category = !strcmp((const char *)sqlite3_column_text(st, 5), "testing");
        r->width = sqlite3_column_int(st, 6);
        r->height = sqlite3_column_int(st, 7);
        r->channels = sqlite3_column_int(st, 8);
        snprintf(r->source, sizeof r->source, "%s", sqlite3_column_text(st, 9));
    }
    sqlite3_finalize(st);
    return ET_OK;
}

/* ------------------------------------------------------------------------
 * Reading an existing set.
 */
struct et_features {
    uint8_t *map[5];
    size_t map_bytes[5];
    const float *features;
    const int64_t *ids;
    const int32_t *labels;
    const uint8_t *categories;
    const uint8_t *hashes;
    size_t rows;
    int height, width, channels;
    char **label_names;
    size_t n_labels;
};

enum { F_FEATURES, F_IDS, F_LABELS, F_CATEGORIES, F_HASHES };
static const char *const npy_names[] = {"features.npy", "ids.npy", "labels.npy", "categories.npy",
                                        "hashes.npy"};
static const char *const npy_descr[] = {"<f4", "<i8", "<i4", "|u1", "|u1"};

static void set_dir(et_project *p, const char *key, char *out, size_t n)
{
    snprintf(out, n, "%s/cache/features/%.16s", et_project_root(p), key);
}

void et_features_close(et_features *f)
{
    if (!f)
        return;
    for (int i = 0; i < 5; i++)
        if (f->map[i])
            munmap(f->map[i], f->map_bytes[i]);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->label_names[i]);
    free(f->label_names);
    free(f);
}

static et_status map_npy(et_features *f, int which, const char *dir, uint64_t *shape, int *ndim,
                         const void **data, et_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, npy_names[which]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return et_error_set(err, ET_ENOTFOUND, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < 64) {
        close(fd);
        return et_error_set(err, ET_ECORRUPT, "%s: too short for a .npy file", path);
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return et_error_set(err, ET_EIO, "%s: cannot map: %s", path, strerror(errno));
    f->map[which] = m;
    f->map_bytes[which] = (size_t)st.st_size;
    size_t off = 0;
    et_status rc = et_npy_parse(m, (size_t)st.st_size, npy_descr[which], shape, ndim, &off, path,
                                err);
    if (rc < 0)
        return rc;
    uint64_t count = 1;
    for (int i = 0; i < *ndim; i++)
        count *= shape[i];
    static const size_t item[] = {4, 8, 4, 1, 1};
    if (off + count * item[which] > (size_t)st.st_size)
        return et_error_set(err, ET_ECORRUPT, "%s: shorter than its header says", path);
    *data = (const uint8_t *)m + off;
    return ET_OK;
}

et_status et_features_open(et_project *p, const et_impulse *imp, et_features **out,
                           et_error *err)
{
    *out = NULL;
    char key[65], dir[PATH_MAX - 64];
    et_impulse_features_key(imp, key);
    set_dir(p, key, dir, sizeof dir);
    char meta_path[PATH_MAX];
    snprintf(meta_path, sizeof meta_path, "%s/meta.json", dir);
    if (!et_is_file(meta_path))
        return et_error_set(err, ET_ENOTFOUND,
                            "no features for this impulse yet (run 'edgetrain features')");
    et_features *f = calloc(1, sizeof *f);
    if (!f)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    uint64_t shape[8];
    int ndim = 0;
    const void *data = NULL;
    et_status rc = map_npy(f, F_FEATURES, dir, shape, &ndim, &data, err);
    if (rc == ET_OK && ndim != 4)
        rc = et_error_set(err, ET_ECORRUPT, "%s/features.npy: expected 4 dimensions", dir);
    if (rc == ET_OK) {
        f->features = data;
        f->rows = shape[0];
        f->height = (int)shape[1];
        f->width = (int)shape[2];
        f->channels = (int)shape[3];
    }
    const void **slots[] = {NULL, (const void **)&f->ids, (const void **)&f->labels,
                            (const void **)&f->categories, (const void **)&f->hashes};
    for (int k = F_IDS; k <= F_HASHES && rc == ET_OK; k++) {
        rc = map_npy(f, k, dir, shape, &ndim, slots[k], err);
        if (rc == ET_OK && shape[0] != f->rows)
            rc = et_error_set(err, ET_ECORRUPT, "%s/%s: %llu rows, features.npy has %zu", dir,
                              npy_names[k], (unsigned long long)shape[0], f->rows);
    }
    if (rc == ET_OK) {
        json_error_t je;
        json_t *meta = json_load_file(meta_path, 0, &je);
        json_t *labels = meta ? json_object_get(meta, "labels") : NULL;
        if (!json_is_array(labels)) {
            rc = et_error_set(err, ET_ECORRUPT, "%s: no label list (%s)", meta_path,
                              meta ? "missing" : je.text);
        } else {
            f->n_labels = json_array_size(labels);
            f->label_names = calloc(f->n_labels + 1, sizeof *f->label_names);
            for (size_t i = 0; f->label_names && i < f->n_labels; i++)
                f->label_names[i] = strdup(json_is_string(json_array_get(labels, i))
                                               ? json_string_value(json_array_get(labels, i))
                                               : "");
            if (!f->label_names)
                rc = et_error_set(err, ET_ENOMEM, "out of memory");
        }
        json_decref(meta);
    }
    if (rc < 0) {
        et_features_close(f);
        return rc;
    }
    *out = f;
    return ET_OK;
}

size_t et_features_rows(const et_features *f) { return f->rows; }

void et_features_shape(const et_features *f, int *height, int *width, int *channels)
{
    *height = f->height;
    *width = f->width;
    *channels = f->channels;
}

const float *et_features_row(const et_features *f, size_t i)
{
    return f->features + i * (size_t)f->height * f->width * f->channels;
}

int64_t et_features_id(const et_features *f, size_t i) { return f->ids[i]; }
int et_features_label(const et_features *f, size_t i) { return f->labels[i]; }
et_category et_features_category(const et_features *f, size_t i)
{
    return f->categories[i] ? ET_TESTING : ET_TRAINING;
}
size_t et_features_n_labels(const et_features *f) { return f->n_labels; }
const char *et_features_label_name(const et_features *f, size_t label)
{
    return label < f->n_labels ? f->label_names[label] : "";
}

/* ------------------------------------------------------------------------
 * Building a set.
 */

/* IDX files referenced by samples, each read once. */
typedef struct idx_cache {
    char (*blobs)[65];
    et_idx *files;
    size_t n;
} idx_cache;

static void idx_cache_free(idx_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        et_idx_free(&c->files[i]);
    free(c->files);
    free(c->blobs);
}

static et_status idx_cache_load(et_project *p, const sample_list *l, idx_cache *c, et_error *err)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < l->n; i++) {
        if (l->rows[i].member < 0)
            continue;
        bool have = false;
        for (size_t k = 0; k < c->n && !have; k++)
            have = !strcmp(c->blobs[k], l->rows[i].blob);
        if (have)
            continue;
        char (*blobs)[65] = realloc(c->blobs, (c->n + 1) * sizeof *blobs);
        et_idx *files = blobs ? realloc(c->files, (c->n + 1) * sizeof *files) : NULL;
        if (blobs)
            c->blobs = blobs;
        if (!files)
            return et_error_set(err, ET_ENOMEM, "out of memory");
        c->files = files;
        char path[PATH_MAX];
        et_status rc = et_project_blob_path(p, l->rows[i].blob, path, sizeof path, err);
        if (rc == ET_OK)
            rc = et_idx_read(path, &c->files[c->n], err);
        if (rc < 0)
            return rc;
        memcpy(c->blobs[c->n++], l->rows[i].blob, 65);
    }
    return ET_OK;
}

/* The pixels of one sample: a view into an IDX file, or a decoded file
 * (then *owned is set and the caller frees it). */
static et_status load_pixels(et_project *p, const idx_cache *c, const row_src *r, et_image *img,
                             bool *owned, et_error *err)
{
    *owned = false;
    if (r->member >= 0) {
        for (size_t k = 0; k < c->n; k++) {
            if (strcmp(c->blobs[k], r->blob))
                continue;
            size_t sz = (size_t)r->width * r->height * r->channels;
            if (sz * (size_t)(r->member + 1) > c->files[k].bytes)
                return et_error_set(err, ET_ECORRUPT, "sample %lld (%s): not in its stored file",
                                    (long long)r->id, r->source);
            *img = (et_image){r->width, r->height, r->channels,
                              c->files[k].data + sz * (size_t)r->member};
            return ET_OK;
        }
        return et_error_set(err, ET_ECORRUPT, "sample %lld: stored file %.12s not loaded",
                            (long long)r->id, r->blob);
    }
    char path[PATH_MAX];
    unsigned char *bytes = NULL;
    size_t n = 0;
    et_status rc = et_project_blob_path(p, r->blob, path, sizeof path, err);
    if (rc == ET_OK)
        rc = et_read_file(path, ET_IMAGE_MAX_FILE_BYTES, &bytes, &n, err);
    if (rc < 0)
        return et_error_set(err, rc, "sample %lld (%s): %s (run 'edgetrain data --validate')",
                            (long long)r->id, r->source, err ? err->msg : "");
    const char *format = NULL, *kind = NULL;
    rc = et_image_decode(bytes, n, r->source, img, &format, &kind, err);
    free(bytes);
    *owned = rc == ET_OK;
    return rc;
}

/* Orders old rows by their pixel hash (ctx: the old set's hashes). */
static int cmp_old_row(const void *a, const void *b, void *ctx)
{
    const uint8_t *hashes = ctx;
    return memcmp(hashes + 32 * *(const size_t *)a, hashes + 32 * *(const size_t *)b, 32);
}

/* Old row for a hash, or -1. order holds the old rows sorted by hash. */
static int64_t find_old(const et_features *old, const size_t *order, const uint8_t hash[32])
{
    size_t lo = 0, hi = old ? old->rows : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(old->hashes + 32 * order[mid], hash, 32);
        if (c == 0)
            return (int64_t)order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static et_status write_npy(const char *dir, int which, const void *data, size_t item_bytes,
                           const uint64_t *shape, int ndim, et_error *err)
{
    char header[256];
    size_t h = et_npy_header(header, sizeof header, npy_descr[which], shape, ndim);
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= shape[i];
    size_t bytes = h + count * item_bytes;
    uint8_t *buf = malloc(bytes ? bytes : 1);
    if (!buf)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    memcpy(buf, header, h);
    memcpy(buf + h, data, count * item_bytes);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, npy_names[which]);
    et_status rc = et_write_file_atomic(path, buf, bytes, err);
    free(buf);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* True when old holds exactly these samples, labels and categories. */
static bool up_to_date(const et_features *old, const sample_list *l)
{
    if (!old || old->rows != l->n || old->n_labels != l->n_labels)
        return false;
    for (size_t i = 0; i < l->n_labels; i++)
        if (strcmp(old->label_names[i], l->labels[i]))
            return false;
    for (size_t i = 0; i < l->n; i++) {
        const row_src *r = &l->rows[i];
        if (old->ids[i] != r->id || old->labels[i] != r->label ||
            old->categories[i] != r->category || memcmp(old->hashes + 32 * i, r->hash, 32))
            return false;
    }
    return true;
}

typedef struct build {
    et_project *p;
    const et_impulse *imp;
    const sample_list *l;
    const idx_cache *idx;
    const et_features *old;
    const size_t *old_order;
    float *out;
    size_t row_floats;
    int channels;
    int64_t computed, reused;
} build;

static et_status fill_rows(build *b, et_error *err)
{
    et_status rc = ET_OK;
    int failed = 0;
    size_t done = 0;
    et_progress bar;
    et_progress_begin(&bar, "features", b->l->n);
#pragma omp parallel
    {
        void *scratch = malloc(et_dsp_scratch_size(b->imp));
        int64_t computed = 0, reused = 0;
#pragma omp for schedule(dynamic, 64)
        for (size_t i = 0; i < b->l->n; i++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop)
                continue;
            const row_src *r = &b->l->rows[i];
            float *dst = b->out + i * b->row_floats;
            et_error e = {0};
            et_status r_rc = scratch ? ET_OK : et_error_set(&e, ET_ENOMEM, "out of memory");
            int64_t old_row = find_old(b->old, b->old_order, r->hash);
            if (r_rc == ET_OK && old_row >= 0) {
                memcpy(dst, et_features_row(b->old, (size_t)old_row), b->row_floats * 4);
                reused++;
            } else if (r_rc == ET_OK) {
                et_image img;
                bool owned = false;
                r_rc = load_pixels(b->p, b->idx, r, &img, &owned, &e);
                if (r_rc == ET_OK && et_dsp_channels(b->imp, img.channels) != b->channels)
                    r_rc = et_error_set(&e, ET_EINVAL,
                                        "sample %lld (%s) has %d channels, the others %d: the raw "
                                        "block needs one channel count (use the image block, or "
                                        "remove the sample)",
                                        (long long)r->id, r->source, img.channels, b->channels);
                if (r_rc == ET_OK)
                    r_rc = et_dsp_process(b->imp, &img, dst, scratch, &e);
                if (owned)
                    et_image_free(&img);
                computed++;
            }
            if (r_rc == ET_OK && et_interrupted())
                r_rc = et_error_set(&e, ET_EINTR, "interrupted; the previous features are kept");
            if (r_rc < 0) {
#pragma omp critical
                {
                    if (rc == ET_OK) {
                        rc = r_rc;
                        if (err)
                            *err = e;
                    }
                }
#pragma omp atomic write
                failed = 1;
            }
            size_t now;
#pragma omp atomic capture
            now = ++done;
            if (omp_get_thread_num() == 0 && (now & 255) == 0)
                et_progress_update(&bar, now);
        }
#pragma omp atomic
        b->computed += computed;
#pragma omp atomic
        b->reused += reused;
        free(scratch);
    }
    et_progress_end(&bar);
    return rc;
}

static et_status write_set(build *b, const char *tmp, et_error *err)
{
    const sample_list *l = b->l;
    uint64_t shape[4] = {l->n, (uint64_t)b->imp->height, (uint64_t)b->imp->width,
                         (uint64_t)b->channels};
    char header[256], path[PATH_MAX + 32];
    size_t h = et_npy_header(header, sizeof header, "<f4", shape, 4);
    size_t bytes = h + l->n * b->row_floats * sizeof(float);
    snprintf(path, sizeof path, "%s/features.npy", tmp);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return et_error_set(err, ET_EIO, "%s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)bytes) < 0) {
        close(fd);
        return et_error_set(err, ET_EIO, "%s: cannot grow to %zu bytes (disk full?)", path, bytes);
    }
    uint8_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        close(fd);
        return et_error_set(err, ET_EIO, "%s: cannot map: %s", path, strerror(errno));
    }
    memcpy(m, header, h);
    b->out = (float *)(m + h); /* h is a multiple of 64: rows stay aligned */
    et_status rc = fill_rows(b, err);
    if (rc == ET_OK && (msync(m, bytes, MS_SYNC) < 0 || fsync(fd) < 0))
        rc = et_error_set(err, ET_EIO, "%s: cannot write: %s", path, strerror(errno));
    munmap(m, bytes);
    close(fd);
    if (rc < 0)
        return rc;

    int64_t *ids = malloc(l->n * sizeof *ids + 1);
    int32_t *labels = malloc(l->n * sizeof *labels + 1);
    uint8_t *cats = malloc(l->n + 1), *hashes = malloc(32 * l->n + 1);
    if (!ids || !labels || !cats || !hashes)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    for (size_t i = 0; rc == ET_OK && i < l->n; i++) {
        ids[i] = l->rows[i].id;
        labels[i] = l->rows[i].label;
        cats[i] = l->rows[i].category;
        memcpy(hashes + 32 * i, l->rows[i].hash, 32);
    }
    uint64_t one[1] = {l->n}, two[2] = {l->n, 32};
    if (rc == ET_OK)
        rc = write_npy(tmp, F_IDS, ids, 8, one, 1, err);
    if (rc == ET_OK)
        rc = write_npy(tmp, F_LABELS, labels, 4, one, 1, err);
    if (rc == ET_OK)
        rc = write_npy(tmp, F_CATEGORIES, cats, 1, one, 1, err);
    if (rc == ET_OK)
        rc = write_npy(tmp, F_HASHES, hashes, 1, two, 2, err);
    free(ids);
    free(labels);
    free(cats);
    free(hashes);
    if (rc < 0)
        return rc;

    char key[65];
    et_impulse_features_key(b->imp, key);
    char *imp_json = et_impulse_to_json(b->imp, false);
    json_t *blocks = imp_json ? json_loads(imp_json, 0, NULL) : NULL;
    free(imp_json);
    json_t *names = json_array();
    for (size_t i = 0; i < l->n_labels; i++)
        json_array_append_new(names, json_string(l->labels[i]));
    json_t *meta = json_pack("{s:s,s:[I,i,i,i],s:o,s:o?,s:o?}", "key", key, "shape",
                             (json_int_t)l->n, b->imp->height, b->imp->width, b->channels,
                             "labels", names, "input", json_incref(json_object_get(blocks, "input")),
                             "processing", json_incref(json_object_get(blocks, "processing")));
    json_decref(blocks);
    char *text = meta ? json_dumps(meta, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(meta);
    if (!text)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/meta.json", tmp);
    rc = et_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

static et_status record_set(et_project *p, const char *key, int64_t version, int64_t rows,
                            et_error *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = "INSERT INTO feature_sets(key, impulse_version, samples, stale) VALUES(?,?,?,0)"
                      " ON CONFLICT(key) DO UPDATE SET impulse_version = excluded.impulse_version,"
                      " samples = excluded.samples, stale = 0,"
                      " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ','now')";
    if (sqlite3_prepare_v2(p->db, sql, -1, &st, NULL) != SQLITE_OK)
        return et_db_error(p, err, "recording the feature set");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_int64(st, 3, rows);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? ET_OK : et_db_error(p, err, "recording the feature set");
}

et_status et_features_update(et_project *p, const et_impulse *imp, int64_t impulse_version,
                             et_features_stats *stats, et_error *err)
{
    memset(stats, 0, sizeof *stats);
    double t0 = et_now_s();
    et_status rc = et_impulse_validate(imp, err);
    if (rc < 0)
        return rc;
    sample_list l;
    idx_cache idx = {0};
    if ((rc = list_samples(p, &l, err)) < 0) {
        list_free(&l);
        return rc;
    }
    if (l.n == 0) {
        list_free(&l);
        return et_error_set(err, ET_EINVAL, "the project has no samples (edgetrain import PATH)");
    }
    build b = {.p = p, .imp = imp, .l = &l, .idx = &idx};
    b.channels = et_dsp_channels(imp, l.rows[0].channels);
    b.row_floats = (size_t)imp->width * imp->height * b.channels;

    char key[65], dir[3200], tmp[3300], old_dir[3300];
    et_impulse_features_key(imp, key);
    set_dir(p, key, dir, sizeof dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    snprintf(old_dir, sizeof old_dir, "%s.old.%ld", dir, (long)getpid());

    et_features *old = NULL;
    size_t *order = NULL;
    et_error ignore = {0};
    if (et_features_open(p, imp, &old, &ignore) == ET_OK) {
        int oh, ow, oc;
        et_features_shape(old, &oh, &ow, &oc);
        order = malloc((old->rows + 1) * sizeof *order);
        if (oc != b.channels || !order) {
            et_features_close(old);
            old = NULL;
        } else {
            for (size_t i = 0; i < old->rows; i++)
                order[i] = i;
            qsort_r(order, old->rows, sizeof *order, cmp_old_row, (void *)old->hashes);
        }
    }
    b.old = old;
    b.old_order = order;
    if (up_to_date(old, &l)) {
        et_features_close(old);
        free(order);
        rc = record_set(p, key, impulse_version, (int64_t)l.n, err);
        *stats = (et_features_stats){.samples = (int64_t)l.n, .reused = (int64_t)l.n,
                                     .channels = b.channels, .seconds = et_now_s() - t0};
        memcpy(stats->key, key, 65);
        snprintf(stats->path, sizeof stats->path, "%s", dir);
        list_free(&l);
        return rc;
    }
    rc = idx_cache_load(p, &l, &idx, err);
    remove_tree(tmp);
    if (rc == ET_OK)
        rc = et_mkdir_p(tmp, err);
    if (rc == ET_OK)
        rc = write_set(&b, tmp, err);
    et_features_close(old);
    free(order);
    idx_cache_free(&idx);
    /* Swap the new set in: the old one is renamed away first, so a crash in
     * between leaves either set whole, never a mixture. */
    if (rc == ET_OK && et_is_dir(dir) && rename(dir, old_dir) < 0)
        rc = et_error_set(err, ET_EIO, "%s: cannot replace: %s", dir, strerror(errno));
    if (rc == ET_OK && rename(tmp, dir) < 0)
        rc = et_error_set(err, ET_EIO, "%s: cannot rename into place: %s", tmp, strerror(errno));
    if (rc < 0) {
        remove_tree(tmp);
        list_free(&l);
        return rc;
    }
    remove_tree(old_dir);
    rc = record_set(p, key, impulse_version, (int64_t)l.n, err);
    stats->samples = (int64_t)l.n;
    stats->channels = b.channels;
    stats->computed = b.computed;
    stats->reused = b.reused;
    stats->seconds = et_now_s() - t0;
    memcpy(stats->key, key, 65);
    snprintf(stats->path, sizeof stats->path, "%s", dir);
    list_free(&l);
    return rc;
}
