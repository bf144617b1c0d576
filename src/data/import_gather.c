/* Import, first phase: from command-line paths to an ordered list of items.
 * Folders are walked in name order, so the same folder always gives the same
 * list; hidden files and folders (".name") are skipped. */
#include "data/csv.h"
#include "data/import_internal.h"

#include "core/fsutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_DEPTH 32

import_item *import_add(import_job *job, const char *path, const char *file, const char *label,
                        et_category category)
{
    if (job->n_items == job->cap_items) {
        size_t cap = job->cap_items ? job->cap_items * 2 : 256;
        import_item *grown = realloc(job->items, cap * sizeof *grown);
        if (!grown)
            return NULL;
        job->items = grown;
        job->cap_items = cap;
    }
    import_item *it = &job->items[job->n_items++];
    memset(it, 0, sizeof *it);
    it->path = path;
    it->file = file;
    it->label = label;
    it->category = category;
    it->set = -1;
    it->member = -1;
    it->state = ITEM_PENDING;
    return it;
}

void import_fail(import_item *it, const char *kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(it->message);
    it->message = strdup(buf);
    it->kind = kind;
    it->state = ITEM_PROBLEM;
}

/* A problem item that names a file without an image in it. */
static et_status add_problem(import_job *job, const char *file, const char *kind,
                             const char *message, et_error *err)
{
    import_item *it = import_add(job, file, file, NULL, ET_CATEGORY_NONE);
    if (!it)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    import_fail(it, kind, "%s", message);
    return ET_OK;
}

static bool starts_with_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Folder names that are only ever split markers, never labels. */
static bool is_exact_marker(const char *name)
{
    return !strcasecmp(name, "train") || !strcasecmp(name, "training") ||
           !strcasecmp(name, "test") || !strcasecmp(name, "testing");
}

/* train* -> training, test* / t10k* -> testing (the MNIST file names). */
static et_category category_of_name(const char *name)
{
    if (starts_with_ci(name, "train"))
        return ET_TRAINING;
    if (starts_with_ci(name, "test") || starts_with_ci(name, "t10k"))
        return ET_TESTING;
    return ET_CATEGORY_NONE;
}

static bool is_idx_name(const char *base)
{
    return strstr(base, "-ubyte") && strstr(base, "idx");
}

static bool is_idx_labels_name(const char *base)
{
    return strstr(base, "idx1") || strstr(base, "labels");
}

/* The labels file that goes with an IDX images file: "images" -> "labels",
 * "idx3"/"idx4" -> "idx1", in the same folder. */
static void idx_partner(const char *images_path, char *out, size_t n)
{
    snprintf(out, n, "%s", images_path);
    char *base = (char *)et_path_base(out);
    char *s;
    if ((s = strstr(base, "images")))
        memcpy(s, "labels", 6);
    if ((s = strstr(base, "idx3")) || (s = strstr(base, "idx4")))
        s[3] = '1';
}

static et_category pick_category(const import_job *job, et_category from_name,
                                 et_category from_folders)
{
    if (job->opt->category != ET_CATEGORY_NONE)
        return job->opt->category;
    if (from_name != ET_CATEGORY_NONE)
        return from_name;
    return from_folders;
}

static et_status gather_idx(import_job *job, const char *images_path, et_category folder_cat,
                            et_error *err)
{
    const et_import_options *opt = job->opt;
    char labels_buf[PATH_MAX];
    idx_partner(images_path, labels_buf, sizeof labels_buf);
    const char *labels_path = NULL;
    if (!opt->label) {
        if (!strcmp(labels_buf, images_path) || !et_is_file(labels_buf)) {
            char msg[PATH_MAX + 200];
            snprintf(msg, sizeof msg,
                     "IDX images without a labels file (looked for %s); give --label or add it",
                     labels_buf);
            return add_problem(job, images_path, "bad-idx", msg, err);
        }
        labels_path = et_arena_strdup(&job->arena, labels_buf);
    }
    import_idx_set set = {.images_path = images_path, .labels_path = labels_path};
    et_error e = {0};
    if (et_idx_read(images_path, &set.images, &e) < 0)
        return add_problem(job, images_path, "bad-idx", e.msg, err);
    const uint32_t *d = set.images.dims;
    const char *shape_problem = NULL;
    if (set.images.ndim == 3) {
        set.channels = 1;
    } else if (set.images.ndim == 4 && (d[3] == 1 || d[3] == 3 || d[3] == 4)) {
        set.channels = (int)d[3];
    } else {
        shape_problem = "IDX images must be N x height x width (x 1, 3 or 4 channels)";
    }
    if (!shape_problem && (d[1] == 0 || d[2] == 0 || d[1] > ET_IMAGE_MAX_SIDE ||
                           d[2] > ET_IMAGE_MAX_SIDE))
        shape_problem = "IDX image size is 0 or larger than 16384 pixels";
    if (shape_problem) {
        et_idx_free(&set.images);
        return add_problem(job, images_path, "bad-idx", shape_problem, err);
    }
    set.height = (int)d[1];
    set.width = (int)d[2];
    if (labels_path) {
        if (et_idx_read(labels_path, &set.labels, &e) < 0) {
            et_idx_free(&set.images);
            return add_problem(job, labels_path, "bad-idx", e.msg, err);
        }
        if (set.labels.ndim != 1 || set.labels.dims[0] != d[0]) {
            char msg[256];
            snprintf(msg, sizeof msg, "IDX labels file holds %u labels for %u images",
                     set.labels.ndim == 1 ? set.labels.dims[0] : 0, d[0]);
            et_idx_free(&set.images);
            et_idx_free(&set.labels);
            return add_problem(job, labels_path, "bad-idx", msg, err);
        }
    }
    if (job->n_sets == job->cap_sets) {
        size_t cap = job->cap_sets ? job->cap_sets * 2 : 4;
        import_idx_set *grown = realloc(job->sets, cap * sizeof *grown);
        if (!grown) {
            et_idx_free(&set.images);
            et_idx_free(&set.labels);
            return et_error_set(err, ET_ENOMEM, "out of memory");
        }
        job->sets = grown;
        job->cap_sets = cap;
    }
    int set_index = (int)job->n_sets;
    job->sets[job->n_sets++] = set;

    /* Label strings per label value, checked once each. */
    const char *names[256] = {0};
    const char *bad[256] = {0};
    if (!opt->label) {
        for (int v = 0; v < 256; v++) {
            if (opt->label_names && (size_t)v < opt->n_label_names) {
                names[v] = opt->label_names[v];
                et_error le = {0};
                if (et_label_check(names[v], &le) < 0)
                    bad[v] = et_arena_strdup(&job->arena, le.msg);
            } else if (opt->label_names) {
                bad[v] = et_arena_printf(&job->arena,
                                         "label value %d has no name (--label-names gives %zu)",
                                         v, opt->n_label_names);
            } else {
                names[v] = et_arena_printf(&job->arena, "%d", v);
            }
        }
    }
    et_category cat = pick_category(job, category_of_name(et_path_base(images_path)), folder_cat);
    for (uint32_t i = 0; i < d[0]; i++) {
        const char *file = et_arena_printf(&job->arena, "%s#%u", images_path, i);
        int v = opt->label ? -1 : set.labels.data ? job->sets[set_index].labels.data[i] : -1;
        const char *label = opt->label ? opt->label : names[v];
        import_item *it = import_add(job, images_path, file, label, cat);
        if (!file || !it)
            return et_error_set(err, ET_ENOMEM, "out of memory");
        it->set = set_index;
        it->member = i;
        if (v >= 0 && bad[v])
            import_fail(it, "bad-label", "%s", bad[v]);
    }
    return ET_OK;
}

static et_status gather_image(import_job *job, const char *path, const char *file,
                              const char *label, et_category cat, et_error *err)
{
    import_item *it = import_add(job, path, file, label, cat);
    if (!it)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    /* A file without a label is still decoded: if the project has the image
     * already it is a duplicate, not a problem (see resolve in import.c). */
    et_error le = {0};
    if (label && et_label_check(label, &le) < 0)
        import_fail(it, "bad-label", "%s", le.msg);
    return ET_OK;
}

static et_status gather_csv(import_job *job, const char *csv_path, et_error *err)
{
    unsigned char *text = NULL;
    size_t n = 0;
    et_status rc = et_read_file(csv_path, (size_t)1 << 30, &text, &n, err);
    if (rc < 0)
        return rc;
    et_csv_row *rows = NULL;
    size_t n_rows = 0;
    et_error pe = {0};
    rc = et_csv_parse((const char *)text, n, csv_path, &job->arena, &rows, &n_rows, &pe);
    free(text);
    if (rc == ET_ENOMEM)
        return et_error_set(err, rc, "%s", pe.msg);
    if (rc < 0)
        return add_problem(job, csv_path, "bad-csv", pe.msg, err);
    if (n_rows == 0)
        return add_problem(job, csv_path, "bad-csv", "CSV file holds no rows (expected path,label[,category])", err);
    char dir[PATH_MAX];
    et_path_dir(csv_path, dir, sizeof dir);
    size_t first = 0;
    if (rows[0].n_fields >= 2 && !strcasecmp(rows[0].fields[0], "path") &&
        !strcasecmp(rows[0].fields[1], "label"))
        first = 1; /* header */
    for (size_t r = first; r < n_rows; r++) {
        const et_csv_row *row = &rows[r];
        const char *where = et_arena_printf(&job->arena, "%s:%d", csv_path, row->line);
        if (!where)
            return et_error_set(err, ET_ENOMEM, "out of memory");
        char msg[1200];
        if (row->n_fields < 2 || row->n_fields > 3) {
            snprintf(msg, sizeof msg, "expected path,label[,category], found %d field%s",
                     row->n_fields, row->n_fields == 1 ? "" : "s");
            if ((rc = add_problem(job, where, "bad-csv", msg, err)) < 0)
                return rc;
            continue;
        }
        const char *rel = row->fields[0];
        et_category cat = ET_CATEGORY_NONE;
        if (row->n_fields == 3 && row->fields[2][0] &&
            et_category_parse(row->fields[2], &cat) < 0) {
            snprintf(msg, sizeof msg, "category '%.100s' is not training or testing",
                     row->fields[2]);
            if ((rc = add_problem(job, where, "bad-csv", msg, err)) < 0)
                return rc;
            continue;
        }
        if (!rel[0]) {
            if ((rc = add_problem(job, where, "bad-csv", "empty path", err)) < 0)
                return rc;
            continue;
        }
        char joined[PATH_MAX];
        if (rel[0] == '/')
            snprintf(joined, sizeof joined, "%s", rel);
        else if (!et_path_join(joined, sizeof joined, dir, rel)) {
            if ((rc = add_problem(job, where, "bad-csv", "path too long", err)) < 0)
                return rc;
            continue;
        }
        char abs[PATH_MAX];
        if (!realpath(joined, abs) || !et_is_file(abs)) {
            snprintf(msg, sizeof msg, "%.1000s: no such file (listed at line %d)", joined,
                     row->line);
            if ((rc = add_problem(job, where, "missing", msg, err)) < 0)
                return rc;
            continue;
        }
        const char *label = job->opt->label ? job->opt->label : row->fields[1];
        const char *path = et_arena_strdup(&job->arena, abs);
        if (!path)
            return et_error_set(err, ET_ENOMEM, "out of memory");
        if ((rc = gather_image(job, path, path, label, pick_category(job, ET_CATEGORY_NONE, cat),
                               err)) < 0)
            return rc;
    }
    return ET_OK;
}

static int skip_hidden(const struct dirent *d) { return d->d_name[0] != '.'; }

/* True when child (a folder, maybe reached through a symbolic link) is dir
 * itself or one of its ancestors: walking it would never end. */
static bool link_loops(const char *dir, const char *child)
{
    struct stat st;
    if (lstat(child, &st) != 0 || !S_ISLNK(st.st_mode))
        return false;
    char d[PATH_MAX], c[PATH_MAX];
    if (!realpath(dir, d) || !realpath(child, c))
        return false;
    size_t n = strlen(c);
    return !strncmp(d, c, n) && (d[n] == '\0' || d[n] == '/' || n == 1);
}

/* Labels and categories from folders: a file's own folder is its label,
 * unless that folder is named exactly train/training/test/testing; folders
 * further up named train.../test... set the category, and the innermost
 * other folder further up is the label when the file's own folder is a
 * marker. So pets/train/cat/a.png, pets/cat/train/a.png and
 * pets/trainers/a.png give cat/training, cat/training and trainers/(split).
 * parent is the name of dir (NULL at the import root); outer_label and
 * outer_cat describe the folders above it. */
static et_status walk(import_job *job, const char *dir, int depth, const char *parent,
                      const char *outer_label, et_category outer_cat, et_error *err)
{
    const char *label = outer_label;
    et_category cat = outer_cat;
    if (parent && is_exact_marker(parent))
        cat = category_of_name(parent);
    else if (parent)
        label = parent;
    /* What the folders below see as "above them". */
    const char *below_label = outer_label;
    et_category below_cat = outer_cat;
    if (parent && category_of_name(parent) != ET_CATEGORY_NONE)
        below_cat = category_of_name(parent);
    else if (parent)
        below_label = parent;

    struct dirent **list = NULL;
    int n = scandir(dir, &list, skip_hidden, alphasort);
    if (n < 0)
        return add_problem(job, et_arena_strdup(&job->arena, dir), "unreadable", strerror(errno), err);
    et_status rc = ET_OK;
    for (int i = 0; i < n && rc == ET_OK; i++) {
        char child[PATH_MAX];
        const char *name = list[i]->d_name;
        if (!et_path_join(child, sizeof child, dir, name)) {
            rc = add_problem(job, et_arena_strdup(&job->arena, dir), "unreadable",
                             "a path inside is too long", err);
            continue;
        }
        const char *path = et_arena_strdup(&job->arena, child);
        if (!path) {
            rc = et_error_set(err, ET_ENOMEM, "out of memory");
            break;
        }
        if (et_is_dir(child) && link_loops(dir, child)) {
            rc = add_problem(job, path, "unreadable",
                             "symbolic link to a folder that contains it (a loop); skipped", err);
        } else if (et_is_dir(child)) {
            if (depth >= MAX_DEPTH)
                rc = add_problem(job, path, "unreadable", "folders nested too deep", err);
            else
                rc = walk(job, path, depth + 1, et_path_base(path), below_label, below_cat, err);
        } else if (!et_is_file(child)) {
            continue; /* sockets, fifos, dangling links */
        } else if (is_idx_name(name)) {
            if (!is_idx_labels_name(name)) {
                rc = gather_idx(job, path, cat, err);
            } else {
                /* Consumed with its images file when that exists. */
                char images[PATH_MAX];
                snprintf(images, sizeof images, "%s", child);
                char *b = (char *)et_path_base(images), *s;
                if ((s = strstr(b, "labels")))
                    memcpy(s, "images", 6);
                if ((s = strstr(b, "idx1")))
                    s[3] = '3';
                if (!et_is_file(images))
                    rc = add_problem(job, path, "bad-idx", "IDX labels file without its images file",
                                     err);
            }
        } else {
            rc = gather_image(job, path, path, job->opt->label ? job->opt->label : label,
                              pick_category(job, ET_CATEGORY_NONE, cat), err);
        }
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return rc;
}

et_status import_gather(import_job *job, const char *path, et_error *err)
{
    char abs[PATH_MAX];
    if (!realpath(path, abs))
        return et_error_set(err, ET_ENOTFOUND, "%s: %s", path, strerror(errno));
    const char *p = et_arena_strdup(&job->arena, abs);
    if (!p)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    if (et_is_dir(abs))
        return walk(job, p, 0, NULL, NULL, ET_CATEGORY_NONE, err);
    if (!et_is_file(abs))
        return et_error_set(err, ET_EINVAL, "%s: not a file or folder", path);
    char ext[16];
    et_path_ext(abs, ext, sizeof ext);
    const char *base = et_path_base(abs);
    if (!strcmp(ext, "csv"))
        return gather_csv(job, p, err);
    if (is_idx_name(base)) {
        if (is_idx_labels_name(base))
            return et_error_set(err, ET_EINVAL,
                                "%s: this is an IDX labels file; import the images file "
                                "(its labels are found beside it)",
                                path);
        return gather_idx(job, p, ET_CATEGORY_NONE, err);
    }
    return gather_image(job, p, p, job->opt->label, pick_category(job, ET_CATEGORY_NONE,
                                                                   ET_CATEGORY_NONE),
                        err);
}
