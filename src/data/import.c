/* Import: decode, resolve duplicates, split, store. See import_internal.h
 * for the phases. The database is written in one transaction at the end;
 * sample files are written before it (content-addressed, so a file left by
 * an interrupted import is harmless: nothing refers to it). */
#define _GNU_SOURCE /* syncfs */
#include "data/import_internal.h"

#include "core/fsutil.h"
#include "store/store_internal.h"

#include <fcntl.h>
#include <omp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

et_import_options et_import_defaults(void)
{
    return (et_import_options){.category = ET_CATEGORY_NONE, .test_fraction = 0.2};
}

/* Reads, decodes and hashes one image file. Thread-safe. */
static void decode_file(import_item *it)
{
    unsigned char *bytes = NULL;
    size_t n = 0;
    et_error e = {0};
    et_status rc = et_read_file(it->path, ET_IMAGE_MAX_FILE_BYTES, &bytes, &n, &e);
    if (rc < 0) {
        import_fail(it, rc == ET_EINVAL ? "too-large" : "unreadable", "%s", e.msg);
        return;
    }
    et_image img;
    const char *kind = NULL;
    if (et_image_decode(bytes, n, it->file, &img, &it->format, &kind, &e) < 0) {
        import_fail(it, kind ? kind : "undecodable", "%s", e.msg);
        free(bytes);
        return;
    }
    et_image_hash(&img, it->pixel_hash);
    et_sha256_hex(bytes, n, it->blob);
    it->width = img.width;
    it->height = img.height;
    it->channels = img.channels;
    it->bytes = (int64_t)n;
    et_image_free(&img);
    free(bytes);
}

static void hash_idx_member(const import_job *job, import_item *it)
{
    const import_idx_set *set = &job->sets[it->set];
    size_t sz = (size_t)set->width * (size_t)set->height * (size_t)set->channels;
    et_image img = {.width = set->width,
                    .height = set->height,
                    .channels = set->channels,
                    .pixels = set->images.data + sz * (size_t)it->member};
    et_image_hash(&img, it->pixel_hash);
    it->width = set->width;
    it->height = set->height;
    it->channels = set->channels;
    it->format = "idx";
    it->bytes = (int64_t)sz;
}

static et_status decode_all(import_job *job)
{
    et_progress bar;
    et_progress_begin(&bar, "decoding", job->n_items);
    size_t done = 0;
    int stop = 0;
#pragma omp parallel for schedule(dynamic, 64)
    for (size_t i = 0; i < job->n_items; i++) {
        int stopping;
#pragma omp atomic read
        stopping = stop;
        if (stopping)
            continue;
        import_item *it = &job->items[i];
        if (it->state == ITEM_PENDING) {
            if (it->set >= 0)
                hash_idx_member(job, it);
            else
                decode_file(it);
        }
        size_t now;
#pragma omp atomic capture
        now = ++done;
        /* Only the first thread draws the bar and polls for Ctrl-C. */
        if (omp_get_thread_num() == 0 && (now & 63) == 0) {
            if (et_interrupted()) {
#pragma omp atomic write
                stop = 1;
            }
            et_progress_update(&bar, now);
        }
    }
    et_progress_end(&bar);
    return stop || et_interrupted() ? ET_EINTR : ET_OK;
}

/* ------------------------------------------------------------------------
 * Resolve: duplicates and label conflicts, within the import and against
 * the project. The first occurrence in gather order wins.
 */
typedef struct hash_map {
    size_t cap;        /* power of two */
    int64_t *slots;    /* item index + 1; 0 = empty */
} hash_map;

static uint64_t hex_prefix(const char *h)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++)
        v = v << 4 | (uint64_t)(h[i] <= '9' ? h[i] - '0' : h[i] - 'a' + 10);
    return v;
}

/* Index of an earlier item with the same pixel hash as item i, or -1; with
 * add, item i is then recorded. */
static int64_t map_find(hash_map *m, const import_item *items, size_t i, bool add)
{
    size_t mask = m->cap - 1;
    for (size_t s = hex_prefix(items[i].pixel_hash) & mask;; s = (s + 1) & mask) {
        if (m->slots[s] == 0) {
            if (add)
                m->slots[s] = (int64_t)i + 1;
            return -1;
        }
        const import_item *other = &items[m->slots[s] - 1];
        if (!memcmp(other->pixel_hash, items[i].pixel_hash, 64))
            return m->slots[s] - 1;
    }
}

static et_status resolve(et_project *p, import_job *job, et_error *err)
{
    hash_map map = {.cap = 16};
    while (map.cap < job->n_items * 2)
        map.cap *= 2;
    map.slots = calloc(map.cap, sizeof *map.slots);
    if (!map.slots)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT id, label, source FROM samples WHERE pixel_hash = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        free(map.slots);
        return et_db_error(p, err, "looking up duplicates");
    }
    et_status rc = ET_OK;
    for (size_t i = 0; i < job->n_items && rc == ET_OK; i++) {
        import_item *it = &job->items[i];
        if (it->state != ITEM_PENDING)
            continue;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, it->pixel_hash, 64, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            const char *label = (const char *)sqlite3_column_text(st, 1);
            if (!it->label || !strcmp(label, it->label))
                it->state = ITEM_DUPLICATE;
            else
                import_fail(it, "label-conflict",
                            "the same image is already sample %lld, labelled '%s' (from %s)",
                            (long long)sqlite3_column_int64(st, 0), label,
                            (const char *)sqlite3_column_text(st, 2));
            continue;
        }
        if (step != SQLITE_DONE) {
            rc = et_db_error(p, err, "looking up duplicates");
            break;
        }
        int64_t first = map_find(&map, job->items, i, it->label != NULL);
        if (first < 0 && !it->label) {
            import_fail(it, "no-label",
                        "not inside a class folder; give --label LABEL, or import the folder "
                        "that holds one sub-folder per label");
        } else if (first < 0) {
            it->state = ITEM_NEW;
        } else if (!it->label || !strcmp(job->items[first].label, it->label)) {
            it->state = ITEM_DUPLICATE;
        } else {
            import_fail(it, "label-conflict", "the same image as %s, labelled '%s'",
                        job->items[first].file, job->items[first].label);
        }
    }
    sqlite3_finalize(st);
    free(map.slots);
    return rc;
}

/* ------------------------------------------------------------------------
 * Split: new samples without a category go to testing or training so that
 * each label's testing share (counting the samples already in the project)
 * comes as close as possible to test_fraction. Within a label the samples
 * with the smallest pixel hashes go to testing: the split depends only on
 * the images, not on file names or import order.
 */
static int by_label_then_hash(const void *a, const void *b, void *ctx)
{
    const import_item *items = ctx;
    const import_item *x = &items[*(const size_t *)a];
    const import_item *y = &items[*(const size_t *)b];
    int c = strcmp(x->label, y->label);
    return c ? c : memcmp(x->pixel_hash, y->pixel_hash, 64);
}

static et_status split(et_project *p, import_job *job, et_error *err)
{
    size_t n = 0;
    size_t *order = malloc((job->n_items + 1) * sizeof *order);
    if (!order)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    for (size_t i = 0; i < job->n_items; i++)
        if (job->items[i].state == ITEM_NEW && job->items[i].category == ET_CATEGORY_NONE)
            order[n++] = i;
    qsort_r(order, n, sizeof *order, by_label_then_hash, job->items);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db,
                           "SELECT COUNT(*), COALESCE(SUM(category = 'testing'), 0)"
                           " FROM samples WHERE label = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        free(order);
        return et_db_error(p, err, "counting samples");
    }
    et_status rc = ET_OK;
    for (size_t start = 0; start < n;) {
        const char *label = job->items[order[start]].label;
        size_t end = start;
        while (end < n && !strcmp(job->items[order[end]].label, label))
            end++;
        int64_t have = 0, have_testing = 0;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            rc = et_db_error(p, err, "counting samples");
            break;
        }
        have = sqlite3_column_int64(st, 0);
        have_testing = sqlite3_column_int64(st, 1);
        /* Samples of this label that this import places itself (IDX, folders). */
        for (size_t i = 0; i < job->n_items; i++) {
            const import_item *it = &job->items[i];
            if (it->state == ITEM_NEW && it->category != ET_CATEGORY_NONE &&
                !strcmp(it->label, label)) {
                have++;
                have_testing += it->category == ET_TESTING;
            }
        }
        int64_t count = (int64_t)(end - start);
        int64_t want = (int64_t)((double)(have + count) * job->opt->test_fraction + 0.5) -
                       have_testing;
        if (want < 0)
            want = 0;
        if (want > count)
            want = count;
        for (size_t k = start; k < end; k++)
            job->items[order[k]].category =
                (int64_t)(k - start) < want ? ET_TESTING : ET_TRAINING;
        start = end;
    }
    sqlite3_finalize(st);
    free(order);
    return rc;
}

/* ------------------------------------------------------------------------
 * Store.
 */

/* Writes bytes to samples/<h0h1>/<hash> unless it is there already. The
 * caller makes the writes durable with one syncfs before committing. */
static et_status put_blob(et_project *p, const char *hash, const void *bytes, size_t n,
                          et_error *err)
{
    char dir[PATH_MAX], path[PATH_MAX + 80], tmp[PATH_MAX + 160];
    snprintf(dir, sizeof dir, "%s/samples/%.2s", p->root, hash);
    snprintf(path, sizeof path, "%s/%s", dir, hash);
    if (et_is_file(path))
        return ET_OK;
    et_status rc = et_mkdir_p(dir, err);
    if (rc < 0)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%d", path, (long)getpid(), omp_get_thread_num());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return et_error_set(err, ET_EIO, "%s: cannot write", tmp);
    bool ok = fwrite(bytes, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return et_error_set(err, ET_EIO, "%s: cannot write (disk full?)", path);
    }
    return ET_OK;
}

static et_status put_blob_file(et_project *p, const char *src, char hash[65], int64_t *bytes,
                               et_error *err)
{
    unsigned char *data = NULL;
    size_t n = 0;
    et_status rc = et_read_file(src, ET_IDX_MAX_BYTES, &data, &n, err);
    if (rc < 0)
        return rc;
    et_sha256_hex(data, n, hash);
    *bytes = (int64_t)n;
    rc = put_blob(p, hash, data, n, err);
    free(data);
    return rc;
}

typedef struct set_blobs {
    char images[65], labels[65];
    int64_t images_bytes, labels_bytes;
    bool used;
} set_blobs;

static et_status write_files(et_project *p, import_job *job, set_blobs *sb, et_error *err)
{
    for (size_t i = 0; i < job->n_items; i++)
        if (job->items[i].state == ITEM_NEW && job->items[i].set >= 0)
            sb[job->items[i].set].used = true;
    for (size_t s = 0; s < job->n_sets; s++) {
        if (!sb[s].used)
            continue;
        et_status rc = put_blob_file(p, job->sets[s].images_path, sb[s].images,
                                     &sb[s].images_bytes, err);
        if (rc == ET_OK && job->sets[s].labels_path)
            rc = put_blob_file(p, job->sets[s].labels_path, sb[s].labels, &sb[s].labels_bytes,
                               err);
        if (rc < 0)
            return rc;
    }
    et_status rc = ET_OK;
    int failed = 0;
    et_progress bar;
    et_progress_begin(&bar, "storing", job->n_items);
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t i = 0; i < job->n_items; i++) {
        import_item *it = &job->items[i];
        int stop;
#pragma omp atomic read
        stop = failed;
        if (stop || it->state != ITEM_NEW || it->set >= 0)
            continue;
        et_error e = {0};
        unsigned char *data = NULL;
        size_t n = 0;
        et_status r = et_read_file(it->path, ET_IMAGE_MAX_FILE_BYTES, &data, &n, &e);
        if (r == ET_OK) {
            char check[65];
            et_sha256_hex(data, n, check);
            if (memcmp(check, it->blob, 64))
                r = et_error_set(&e, ET_EIO, "%s: the file changed during the import", it->path);
            else
                r = put_blob(p, it->blob, data, n, &e);
        }
        free(data);
        if (r < 0) {
#pragma omp critical
            {
                if (rc == ET_OK) {
                    rc = r;
                    *err = e;
                }
            }
#pragma omp atomic write
            failed = 1;
        }
        if (omp_get_thread_num() == 0 && (i & 63) == 0)
            et_progress_update(&bar, i);
    }
    et_progress_end(&bar);
    if (rc < 0)
        return rc;
    /* One flush for every file written above, before the database refers to them. */
    char samples[PATH_MAX];
    snprintf(samples, sizeof samples, "%s/samples", p->root);
    int fd = open(samples, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0) {
        if (fd >= 0)
            close(fd);
        return et_error_set(err, ET_EIO, "%s: cannot flush to disk", samples);
    }
    close(fd);
    return ET_OK;
}

static const char *blob_format(const char *path)
{
    unsigned char head[2] = {0};
    FILE *f = fopen(path, "rb");
    if (f) {
        if (fread(head, 1, 2, f) != 2)
            head[0] = 0;
        fclose(f);
    }
    return head[0] == 0x1F && head[1] == 0x8B ? "idx.gz" : "idx";
}

#define STEP(stmt, what)                                                   \
    do {                                                                   \
        if (sqlite3_step(stmt) != SQLITE_DONE) {                           \
            rc = et_db_error(p, err, what);                                \
            goto done;                                                     \
        }                                                                  \
        sqlite3_reset(stmt);                                               \
    } while (0)

static et_status write_rows(et_project *p, import_job *job, const set_blobs *sb,
                            bool clear_problems, et_import_result *res, et_error *err)
{
    sqlite3_stmt *imp = NULL, *blob = NULL, *sample = NULL, *prob = NULL, *unprob = NULL;
    et_status rc = et_db_exec(p, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        return rc;
    if (sqlite3_prepare_v2(p->db, "INSERT INTO imports(arguments, imported, skipped) VALUES(?,?,?)",
                           -1, &imp, NULL) ||
        sqlite3_prepare_v2(p->db,
                           "INSERT OR IGNORE INTO blobs(hash, format, bytes, original)"
                           " VALUES(?,?,?,?)",
                           -1, &blob, NULL) ||
        sqlite3_prepare_v2(p->db,
                           "INSERT INTO samples(pixel_hash, blob, member, source, label, category,"
                           " width, height, channels, format, import_id)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &sample, NULL) ||
        sqlite3_prepare_v2(p->db,
                           "INSERT OR REPLACE INTO problems(file, kind, message, import_id)"
                           " VALUES(?,?,?,?)",
                           -1, &prob, NULL) ||
        sqlite3_prepare_v2(p->db, "DELETE FROM problems WHERE file IN (?1, ?2)", -1, &unprob,
                           NULL)) {
        rc = et_db_error(p, err, "preparing the import");
        goto done;
    }
    int64_t import_id = 0;
    if (res->imported) {
        sqlite3_bind_text(imp, 1, job->opt->arguments ? job->opt->arguments : "", -1,
                          SQLITE_STATIC);
        sqlite3_bind_int64(imp, 2, res->imported);
        sqlite3_bind_int64(imp, 3, res->skipped);
        STEP(imp, "recording the import");
        import_id = sqlite3_last_insert_rowid(p->db);
    }
    for (size_t s = 0; s < job->n_sets; s++) {
        if (!sb[s].used)
            continue;
        for (int k = 0; k < 2; k++) {
            const char *path = k ? job->sets[s].labels_path : job->sets[s].images_path;
            if (!path)
                continue;
            sqlite3_bind_text(blob, 1, k ? sb[s].labels : sb[s].images, 64, SQLITE_STATIC);
            sqlite3_bind_text(blob, 2, blob_format(path), -1, SQLITE_STATIC);
            sqlite3_bind_int64(blob, 3, k ? sb[s].labels_bytes : sb[s].images_bytes);
            sqlite3_bind_text(blob, 4, path, -1, SQLITE_STATIC);
            STEP(blob, "recording a stored file");
        }
    }
    for (size_t i = 0; i < job->n_items; i++) {
        const import_item *it = &job->items[i];
        if ((i & 1023) == 0 && et_interrupted()) {
            rc = et_error_set(err, ET_EINTR, "interrupted; nothing was imported");
            goto done;
        }
        if (it->state == ITEM_PROBLEM) {
            sqlite3_bind_text(prob, 1, it->file, -1, SQLITE_STATIC);
            sqlite3_bind_text(prob, 2, it->kind, -1, SQLITE_STATIC);
            sqlite3_bind_text(prob, 3, it->message, -1, SQLITE_STATIC);
            if (import_id)
                sqlite3_bind_int64(prob, 4, import_id);
            else
                sqlite3_bind_null(prob, 4);
            STEP(prob, "recording a problem");
            continue;
        }
        if (clear_problems) { /* fixed since an earlier import */
            sqlite3_bind_text(unprob, 1, it->file, -1, SQLITE_STATIC);
            sqlite3_bind_text(unprob, 2, it->path, -1, SQLITE_STATIC);
            STEP(unprob, "clearing a problem");
        }
        if (it->state != ITEM_NEW)
            continue;
        const char *blob_hash = it->set >= 0 ? sb[it->set].images : it->blob;
        if (it->set < 0) {
            sqlite3_bind_text(blob, 1, it->blob, 64, SQLITE_STATIC);
            sqlite3_bind_text(blob, 2, it->format, -1, SQLITE_STATIC);
            sqlite3_bind_int64(blob, 3, it->bytes);
            sqlite3_bind_text(blob, 4, it->path, -1, SQLITE_STATIC);
            STEP(blob, "recording a stored file");
        }
        sqlite3_bind_text(sample, 1, it->pixel_hash, 64, SQLITE_STATIC);
        sqlite3_bind_text(sample, 2, blob_hash, 64, SQLITE_STATIC);
        sqlite3_bind_int64(sample, 3, it->member);
        sqlite3_bind_text(sample, 4, it->file, -1, SQLITE_STATIC);
        sqlite3_bind_text(sample, 5, it->label, -1, SQLITE_STATIC);
        sqlite3_bind_text(sample, 6, et_category_name(it->category), -1, SQLITE_STATIC);
        sqlite3_bind_int(sample, 7, it->width);
        sqlite3_bind_int(sample, 8, it->height);
        sqlite3_bind_int(sample, 9, it->channels);
        sqlite3_bind_text(sample, 10, it->format, -1, SQLITE_STATIC);
        sqlite3_bind_int64(sample, 11, import_id);
        STEP(sample, "recording a sample");
    }
    res->import_id = import_id;
done:
    sqlite3_finalize(imp);
    sqlite3_finalize(blob);
    sqlite3_finalize(sample);
    sqlite3_finalize(prob);
    sqlite3_finalize(unprob);
    if (rc < 0) {
        sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
        res->import_id = 0;
        return rc;
    }
    /* A signal that arrives from here on is too late to stop the commit. */
    return et_db_exec(p, "COMMIT", err);
}

static et_status has_problems(et_project *p, bool *any, et_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(p->db, "SELECT EXISTS (SELECT 1 FROM problems)", -1, &st, NULL) !=
        SQLITE_OK)
        return et_db_error(p, err, "reading problems");
    *any = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return ET_OK;
}

static void job_free(import_job *job)
{
    for (size_t i = 0; i < job->n_items; i++)
        free(job->items[i].message);
    free(job->items);
    for (size_t s = 0; s < job->n_sets; s++) {
        et_idx_free(&job->sets[s].images);
        et_idx_free(&job->sets[s].labels);
    }
    free(job->sets);
    et_arena_free(&job->arena);
}

et_status et_import(et_project *p, const char *const *paths, size_t n_paths,
                    const et_import_options *opt, et_problem_fn on_problem, void *ctx,
                    et_import_result *result, et_error *err)
{
    et_import_options defaults = et_import_defaults();
    if (!opt)
        opt = &defaults;
    memset(result, 0, sizeof *result);
    if (opt->test_fraction < 0 || opt->test_fraction > 1)
        return et_error_set(err, ET_EINVAL, "test fraction %g is outside 0..1", opt->test_fraction);
    if (opt->label && et_label_check(opt->label, err) < 0)
        return ET_EINVAL;
    import_job job = {.opt = opt};
    et_arena_init(&job.arena, 1 << 20);
    et_status rc = ET_OK;
    for (size_t i = 0; i < n_paths && rc == ET_OK; i++)
        rc = import_gather(&job, paths[i], err);
    if (rc == ET_OK && et_interrupted())
        rc = et_error_set(err, ET_EINTR, "interrupted; nothing was imported");
    if (rc == ET_OK && (rc = decode_all(&job)) == ET_EINTR)
        et_error_set(err, ET_EINTR, "interrupted; nothing was imported");
    if (rc == ET_OK)
        rc = resolve(p, &job, err);
    if (rc == ET_OK)
        rc = split(p, &job, err);
    if (rc < 0) {
        job_free(&job);
        return rc;
    }
    result->files = (int64_t)job.n_items;
    for (size_t i = 0; i < job.n_items; i++) {
        const import_item *it = &job.items[i];
        switch (it->state) {
        case ITEM_NEW:
            result->imported++;
            result->training += it->category == ET_TRAINING;
            result->testing += it->category == ET_TESTING;
            break;
        case ITEM_DUPLICATE: result->duplicates++; break;
        case ITEM_PROBLEM:
            result->skipped++;
            if (on_problem) {
                et_problem pr = {.file = it->file, .kind = it->kind, .message = it->message};
                on_problem(ctx, &pr);
            }
            break;
        default: break;
        }
    }
    if (opt->strict && result->skipped) {
        rc = et_error_set(err, ET_EPROBLEMS, "%lld input%s with problems; --strict: nothing imported",
                          (long long)result->skipped, result->skipped == 1 ? "" : "s");
        result->imported = result->training = result->testing = 0;
        job_free(&job);
        return rc;
    }
    set_blobs *sb = calloc(job.n_sets + 1, sizeof *sb);
    if (!sb)
        rc = et_error_set(err, ET_ENOMEM, "out of memory");
    if (rc == ET_OK && result->imported)
        rc = write_files(p, &job, sb, err);
    if (rc == ET_OK && et_interrupted())
        rc = et_error_set(err, ET_EINTR, "interrupted; nothing was imported");
    bool stored_problems = false;
    if (rc == ET_OK && (rc = has_problems(p, &stored_problems, err)) == ET_OK &&
        (result->imported || result->skipped || stored_problems))
        rc = write_rows(p, &job, sb, stored_problems, result, err);
    free(sb);
    job_free(&job);
    if (rc < 0) {
        result->imported = result->training = result->testing = 0;
        return rc;
    }
    if (result->skipped)
        return et_error_set(err, ET_EPROBLEMS, "%lld input%s skipped", (long long)result->skipped,
                            result->skipped == 1 ? "" : "s");
    return ET_OK;
}
