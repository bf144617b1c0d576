/* The edgetrain command line as a user meets it: exit codes, messages that
 * name files, --json output, and the data report's checks. */
#include "testutil.h"

#include "core/fsutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static json_t *parse_json(const char *out)
{
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert(j, "stdout is not one JSON object (%s): %s", e.text, out);
    cr_assert(json_is_object(j));
    return j;
}

static json_int_t jint(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    cr_assert(json_is_integer(cur), "%s is not an integer", path);
    return json_integer_value(cur);
}

/* The value at a dotted path that is a number (not null), or NULL. */
static json_t *jget(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_is_number(cur) ? cur : NULL;
}

static int has_problem(json_t *problems, const char *file_suffix, const char *kind)
{
    size_t i;
    json_t *pr;
    json_array_foreach(problems, i, pr) {
        const char *f = json_string_value(json_object_get(pr, "file"));
        const char *k = json_string_value(json_object_get(pr, "kind"));
        if (!k || strcmp(k, kind))
            continue;
        if (!file_suffix)
            return 1;
        if (f && strlen(f) >= strlen(file_suffix) &&
            !strcmp(f + strlen(f) - strlen(file_suffix), file_suffix))
            return 1;
    }
    return 0;
}

/* The folder of the foundation issue: three good PNGs, a truncated JPEG, a
 * zero-byte PNG, a .txt and a copy of a cat under dog/. */
static const char *make_cat_dog(const char *dir)
{
    tu_image(tu_path(dir, "pets/cat/c1.png"), "png", 20, 20, 3, 1);
    tu_image(tu_path(dir, "pets/cat/c2.png"), "png", 20, 20, 3, 2);
    tu_image(tu_path(dir, "pets/dog/d1.png"), "png", 20, 20, 3, 3);
    const char *jpg = tu_path(dir, "pets/dog/broken.jpg");
    tu_image(jpg, "jpg", 64, 64, 3, 4);
    tu_truncate(jpg, tu_file_size(jpg) / 2);
    tu_write(tu_path(dir, "pets/cat/zero.png"), "", 0);
    tu_write(tu_path(dir, "pets/dog/notes.txt"), "a dog\n", 6);
    tu_copy(tu_path(dir, "pets/cat/c1.png"), tu_path(dir, "pets/dog/c1-copy.png"));
    return tu_path(dir, "pets");
}

Test(cli, cat_dog_folder_keeps_good_names_bad_and_reimport_changes_nothing)
{
    const char *dir = tu_tmpdir();
    const char *pets = make_cat_dog(dir);
    const char *proj = tu_path(dir, "proj");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "import", pets, NULL), 1, "stderr: %s", err);
    cr_assert(strstr(out, "Imported 3 samples"), "%s", out);
    cr_assert(strstr(err, "broken.jpg") && strstr(err, "truncated"), "%s", err);
    cr_assert(strstr(err, "zero.png") && strstr(err, "empty"), "%s", err);
    cr_assert(strstr(err, "notes.txt") && strstr(err, "unsupported"), "%s", err);
    cr_assert(strstr(err, "c1-copy.png") && strstr(err, "label-conflict"), "%s", err);
    free(out);
    free(err);

    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert_eq(jint(j, "samples"), 3);
    cr_assert_eq(jint(j, "labels.cat.training") + jint(j, "labels.cat.testing"), 2);
    cr_assert_eq(jint(j, "labels.dog.training") + jint(j, "labels.dog.testing"), 1);
    json_t *problems = json_object_get(j, "problems");
    cr_assert(has_problem(problems, "broken.jpg", "truncated"));
    cr_assert(has_problem(problems, "zero.png", "empty"));
    cr_assert(has_problem(problems, "notes.txt", "unsupported"));
    cr_assert(has_problem(problems, "c1-copy.png", "label-conflict"));
    json_decref(j);
    free(out);

    /* Again: the same outcome, nothing new in the project. */
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "--json", "import", pets, NULL), 1);
    j = parse_json(out);
    cr_assert_eq(jint(j, "imported"), 0);
    cr_assert_eq(jint(j, "duplicates"), 3);
    cr_assert_eq(jint(j, "skipped"), 4);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(jint(j, "samples"), 3);
    json_decref(j);
    free(out);
}

Test(cli, data_report_checks_labels)
{
    const char *dir = tu_tmpdir();
    for (int i = 0; i < 40; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "in/many/%02d.png", i);
        tu_image(tu_path(dir, rel), "png", 6, 6, 1, 10 + i);
    }
    for (int i = 0; i < 4; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "in/train/few/%02d.png", i);
        tu_image(tu_path(dir, rel), "png", 7, 5, 3, 90 + i);
    }
    const char *proj = tu_path(dir, "proj");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 0);
    char *out = NULL;
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", "--json", NULL), 0);
    json_t *j = parse_json(out);
    json_t *problems = json_object_get(j, "problems");
    cr_assert(has_problem(problems, NULL, "few-samples"), "%s", out);
    cr_assert(has_problem(problems, NULL, "no-testing"), "%s", out);
    cr_assert(has_problem(problems, NULL, "imbalance"), "%s", out);
    cr_assert_not(has_problem(problems, NULL, "one-label"));
    cr_assert_eq(jint(j, "channels.1"), 40);
    cr_assert_eq(jint(j, "channels.3"), 4);
    json_t *sizes = json_object_get(j, "sizes");
    cr_assert_eq(json_array_size(sizes), 2);
    cr_assert_eq(jint(json_array_get(sizes, 0), "count"), 40, "most common size first");
    cr_assert_eq(json_real_value(json_object_get(j, "imbalance")), 10.0);
    json_decref(j);
    free(out);
    /* The text report names the labels. */
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", NULL), 0);
    cr_assert(strstr(out, "label 'few': only 4 samples"), "%s", out);
    free(out);
}

Test(cli, validate_finds_missing_and_altered_files)
{
    const char *dir = tu_tmpdir();
    tu_image(tu_path(dir, "in/a/1.png"), "png", 6, 6, 3, 1);
    tu_image(tu_path(dir, "in/b/2.png"), "png", 6, 6, 3, 2);
    const char *proj = tu_path(dir, "proj");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 0);
    char *out = NULL;
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", "list", "--json", NULL), 0);
    json_t *j = parse_json(out);
    json_t *samples = json_object_get(j, "samples");
    cr_assert_eq(json_array_size(samples), 2);
    free(out);
    /* Find the stored files through the SHA-256 of the original bytes. */
    size_t n = 0;
    unsigned char *bytes = tu_read(tu_path(dir, "in/a/1.png"), &n);
    char hash[65];
    et_sha256_hex(bytes, n, hash);
    free(bytes);
    char rel[128];
    snprintf(rel, sizeof rel, "samples/%.2s/%s", hash, hash);
    const char *stored_a = tu_path(proj, rel);
    cr_assert_eq(access(stored_a, R_OK), 0, "content-addressed copy at %s", stored_a);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "data", "--validate", NULL), 0,
                 "labels with 1 sample each are advice, not a failed validation");
    tu_write(stored_a, "tampered", 8);
    bytes = tu_read(tu_path(dir, "in/b/2.png"), &n);
    et_sha256_hex(bytes, n, hash);
    free(bytes);
    snprintf(rel, sizeof rel, "samples/%.2s/%s", hash, hash);
    unlink(tu_path(proj, rel));
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", "--validate", "--json", NULL), 1);
    json_decref(j);
    j = parse_json(out);
    json_t *problems = json_object_get(j, "problems");
    cr_assert(has_problem(problems, NULL, "corrupt-file"), "%s", out);
    cr_assert(has_problem(problems, NULL, "missing-file"), "%s", out);
    cr_assert(json_is_true(json_object_get(j, "validated")));
    json_decref(j);
    free(out);
}

Test(cli, problems_are_remembered_until_fixed_or_forgotten)
{
    const char *dir = tu_tmpdir();
    for (int i = 0; i < 12; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "in/%s/%02d.png", i % 2 ? "x" : "y", i);
        tu_image(tu_path(dir, rel), "png", 6, 6, 3, 10 + i);
    }
    const char *bad = tu_path(dir, "in/x/bad.png");
    tu_write(bad, "", 0);
    const char *proj = tu_path(dir, "proj");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 1);
    char *out = NULL;
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", NULL), 0);
    cr_assert(strstr(out, "bad.png"), "%s", out);
    free(out);
    /* Fixed file, imported again: the problem is gone. */
    tu_image(bad, "png", 6, 6, 3, 999);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", NULL), 0);
    cr_assert_null(strstr(out, "bad.png"), "%s", out);
    free(out);
    /* A problem file replaced by a copy of an image already there: cleared too. */
    tu_write(bad, "", 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 1);
    tu_copy(tu_path(dir, "in/x/01.png"), bad);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", NULL), 0);
    cr_assert_null(strstr(out, "bad.png"), "%s", out);
    free(out);
    /* Another problem, forgotten on request. */
    tu_write(tu_path(dir, "in/y/worse.gif"), "GIF89a", 6);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 1);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", "--forget-problems", NULL), 0);
    cr_assert_null(strstr(out, "worse.gif"), "%s", out);
    free(out);
}

Test(cli, sample_commands)
{
    const char *dir = tu_tmpdir();
    tu_image(tu_path(dir, "in/a/1.png"), "png", 6, 6, 3, 1);
    const char *proj = tu_path(dir, "proj");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", "--category", "training",
                        tu_path(dir, "in"), NULL),
                 0);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "relabel", "1", "b", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "label")), "b");
    cr_assert_str_eq(json_string_value(json_object_get(j, "previous_label")), "a");
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "move", "1", "testing", NULL), 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", "list", "--category", "testing",
                        "--json", NULL),
                 0);
    j = parse_json(out);
    cr_assert_eq(json_array_size(json_object_get(j, "samples")), 1);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "move", "1", "validation", NULL), 2);
    cr_assert(strstr(err, "training or testing"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "relabel", "7", "x", NULL), 2);
    cr_assert(strstr(err, "no sample with id 7"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "remove", "1", NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "remove", "1", NULL), 2);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "remove", "abc", NULL), 2);
}

Test(cli, usage_errors_exit_2_and_say_why)
{
    const char *dir = tu_tmpdir();
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(NULL, &err, "frobnicate", NULL), 2);
    cr_assert(strstr(err, "unknown command 'frobnicate'"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", dir, "data", NULL), 2);
    cr_assert(strstr(err, "no edgetrain project"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(&out, &err, "-C", dir, "--json", "data", NULL), 2);
    json_t *j = parse_json(out);
    cr_assert(json_object_get(j, "error"), "--json errors are one object too: %s", out);
    json_decref(j);
    free(out);
    free(err);
    const char *proj = tu_path(dir, "proj");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, &err, "init", proj, NULL), 2);
    cr_assert(strstr(err, "already holds"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "import", "--split", "70/20", dir, NULL), 2);
    cr_assert(strstr(err, "--split"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "import", NULL), 2);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "import", tu_path(dir, "absent"), NULL), 2);
    cr_assert(strstr(err, "absent"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(&out, &err, "--json", "frobnicate", NULL), 2);
    j = parse_json(out);
    cr_assert(json_object_get(j, "error"));
    json_decref(j);
    free(out);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "import", "--bogus", dir, NULL), 2);
    cr_assert(strstr(err, "unknown option '--bogus'"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "help", "bogus", NULL), 2);
    free(err);
    cr_assert_eq(tu_run(&out, NULL, "import", "--help", NULL), 0);
    cr_assert(strstr(out, "--label"), "%s", out);
    free(out);
}

Test(cli, demo_on_a_small_mnist_style_folder)
{
    const char *dir = tu_tmpdir();
    tu_idx_pair(tu_path(dir, "fm/train-images-idx3-ubyte.gz"),
                tu_path(dir, "fm/train-labels-idx1-ubyte.gz"), 100, 8, 8, 10, 1, 1);
    tu_idx_pair(tu_path(dir, "fm/t10k-images-idx3-ubyte.gz"),
                tu_path(dir, "fm/t10k-labels-idx1-ubyte.gz"), 20, 8, 8, 10, 500, 1);
    char *out = NULL;
    /* A tune of two candidates keeps it to seconds (the demo's default is 3 minutes). */
    cr_assert_eq(tu_run(&out, NULL, "demo", "--json", "--dir", tu_path(dir, "demo"), "--source",
                        tu_path(dir, "fm"), "--epochs", "2", "--tune-trials", "2", NULL),
                 0);
    json_t *j = parse_json(out);
    cr_assert_eq(jint(j, "data.samples"), 120);
    cr_assert_eq(jint(j, "data.labels.Sneaker.training"), 10);
    cr_assert_eq(jint(j, "data.labels.Sneaker.testing"), 2);
    cr_assert_eq(jint(j, "impulse.version"), 1);
    /* The tune ran, its best trial was selected and retrained: before and after. */
    cr_assert_eq(jint(j, "tune.counts.done") + jint(j, "tune.counts.pruned"), 2, "%s", out);
    cr_assert(jint(j, "tune.best_trial") > 0, "%s", out);
    cr_assert(jint(j, "tune.comparison.selected.impulse_version") > 1, "%s", out);
    cr_assert(jint(j, "tune.comparison.selected.model_id") > jint(j, "train.model_id"));
    cr_assert(jget(j, "tune.comparison.default.test.float32"), "%s", out);
    cr_assert(jget(j, "tune.comparison.selected.latency_ms"), "%s", out);
    cr_assert(jint(j, "tune.comparison.selected.ram_bytes") > 0, "%s", out);
    /* The trained default model's profile on the two demo boards. */
    json_t *prof = json_object_get(j, "profile");
    cr_assert_eq(json_array_size(prof), 2, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(prof, 1), "target")),
                     "cortex-m7-216mhz");
    for (size_t k = 0; k < 2; k++) {
        cr_assert_gt(jint(json_array_get(prof, k), "int8.ram_bytes"), 0);
        cr_assert(jget(json_array_get(prof, k), "float32.latency_ms"), "%s", out);
    }
    json_t *dflt = json_deep_copy(json_object_get(
        json_object_get(json_object_get(json_object_get(j, "tune"), "comparison"), "default"),
        "impulse"));
    json_decref(j);
    free(out);
    /* Twice: reuses the project, back on the default impulse; --no-tune skips the tuner. */
    cr_assert_eq(tu_run(&out, NULL, "demo", "--json", "--dir", tu_path(dir, "demo"), "--source",
                        tu_path(dir, "fm"), "--epochs", "1", "--no-tune", NULL),
                 0);
    j = parse_json(out);
    cr_assert_eq(jint(j, "data.samples"), 120);
    cr_assert(json_is_null(json_object_get(j, "tune")), "%s", out);
    cr_assert(json_equal(json_object_get(json_object_get(j, "impulse"), "json"), dflt),
              "the default impulse again: %s", out);
    json_decref(dflt);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "demo", "--dir", tu_path(dir, "demo"), "--source",
                        tu_path(dir, "fm"), "--epochs", "1", "--no-tune", NULL),
                 0);
    cr_assert(strstr(out, "120 samples"), "%s", out);
    cr_assert(strstr(out, "cortex-m7-216mhz"), "%s", out);
    cr_assert(!strstr(out, "Tuner run"), "%s", out);
    free(out);
    cr_assert_eq(tu_run(NULL, NULL, "demo", "--no-tune", "--tune-time", "0", NULL), 2);
}

/* The foundation issue's acceptance check on the real data set, when the
 * Debian package is installed (scripts/setup.sh installs it). */
Test(cli, fashion_mnist_imports_70000_samples, .timeout = 600)
{
    const char *fm = "/usr/share/datasets/fashion-mnist";
    if (access(fm, R_OK) != 0)
        cr_skip_test("dataset-fashion-mnist is not installed");
    const char *proj = tu_path(tu_tmpdir(), "p");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", fm, NULL), 0);
    char *out = NULL;
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "data", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert_eq(jint(j, "samples"), 70000);
    cr_assert_eq(jint(j, "training"), 60000);
    cr_assert_eq(jint(j, "testing"), 10000);
    cr_assert_eq(json_object_size(json_object_get(j, "labels")), 10);
    cr_assert_eq(json_array_size(json_object_get(j, "problems")), 0);
    json_decref(j);
    free(out);
}

static const char *small_project(const char *dir)
{
    for (int i = 0; i < 12; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "in/%s/%02d.png", i % 3 ? "shoe" : "boot", i);
        tu_image(tu_path(dir, rel), "png", 30, 20, 3, 40 + i);
    }
    const char *proj = tu_path(dir, "proj");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 0);
    return proj;
}

Test(cli, impulse_set_show_history_revert_save_load)
{
    const char *dir = tu_tmpdir();
    const char *proj = small_project(dir);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "show", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert_eq(jint(j, "version"), 0);
    cr_assert(json_is_true(json_object_get(j, "default")));
    cr_assert_eq(jint(j, "impulse.input.width"), 30, "the most common training size");
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "--json", "impulse", "set", "input.width=96",
                        "input.height=96", "learning.model=mobilenetv2", "learning.alpha=0.35",
                        NULL),
                 0);
    j = parse_json(out);
    cr_assert_eq(jint(j, "version"), 1);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(j, "impulse"), "learning"), "model")),
                     "mobilenetv2");
    json_decref(j);
    free(out);
    /* A bad value names the key, the value and what is allowed; nothing is stored. */
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "impulse", "set", "learning.alpha=0.3", NULL), 2);
    cr_assert(strstr(err, "learning.alpha=0.3") && strstr(err, "0.35"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "impulse", "set", "input.width=20", NULL), 2);
    cr_assert(strstr(err, "32..224"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "history", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(json_array_size(json_object_get(j, "versions")), 1);
    json_decref(j);
    free(out);
    /* Save, change, load back: a third version equal to the first. */
    const char *file = tu_path(dir, "imp.json");
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "save", file, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "processing.color=grayscale",
                        NULL),
                 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "load", file, "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(jint(j, "version"), 3);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "revert", "2", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(jint(j, "version"), 4);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(j, "impulse"), "processing"), "color")),
                     "grayscale");
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "set", "processing.color=grayscale",
                        NULL),
                 0);
    cr_assert(strstr(out, "unchanged"), "no new version for no change: %s", out);
    free(out);
    tu_write(file, "{\"input\": {\"width\": 96,}", 24);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "impulse", "load", file, NULL), 2);
    cr_assert(strstr(err, "imp.json:1:"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "impulse", "revert", "42", NULL), 2);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "impulse", "frob", NULL), 2);
    free(err);
}

Test(cli, an_empty_project_keeps_its_default_impulse_open)
{
    const char *proj = tu_path(tu_tmpdir(), "proj");
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "features", NULL), 2);
    cr_assert(strstr(err, "no samples"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "history", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert_eq(json_array_size(json_object_get(j, "versions")), 0,
                 "nothing stored: a later import still shapes the default");
    json_decref(j);
    free(out);
}

Test(cli, features_and_preview)
{
    const char *dir = tu_tmpdir();
    const char *proj = small_project(dir);
    char *out = NULL;
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "input.width=16",
                        "input.height=16", "input.resize=fit-shortest", NULL),
                 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "features", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert_eq(jint(j, "samples"), 12);
    cr_assert_eq(jint(j, "computed"), 12);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(j, "shape"), 2)), 3);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "features", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(jint(j, "computed"), 0, "cached");
    json_decref(j);
    free(out);
    const char *pv = tu_path(dir, "preview");
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "preview", "3", "--out", pv, "--json",
                        NULL),
                 0);
    j = parse_json(out);
    const char *processed = json_string_value(json_object_get(j, "processed"));
    et_image img;
    size_t n = 0;
    unsigned char *png = tu_read(processed, &n);
    const char *format = NULL, *kind = NULL;
    et_error err = {0};
    cr_assert_eq(et_image_decode(png, n, processed, &img, &format, &kind, &err), 0, "%s", err.msg);
    cr_assert(img.width == 16 && img.height == 16 && img.channels == 3);
    et_image_free(&img);
    free(png);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "preview", "999", "--out", pv, NULL), 2);
}

Test(cli, explore_writes_svg_png_csv_and_json)
{
    const char *dir = tu_tmpdir();
    const char *proj = small_project(dir);
    char *out = NULL, *err = NULL;
    const char *svg = tu_path(dir, "map.svg"), *csv = tu_path(dir, "map.csv");
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "explore", "--out", svg, "--csv", csv,
                        "--iterations", "250", "--json", NULL),
                 0, "%s", err);
    json_t *j = parse_json(out);
    cr_assert_eq(jint(j, "samples"), 12);
    cr_assert_eq(json_array_size(json_object_get(j, "points")), 12);
    const char *png = json_string_value(json_object_get(j, "png"));
    cr_assert(png && strstr(png, "map.png"), "the PNG sits next to the SVG: %s", png);
    json_decref(j);
    free(out);
    free(err);
    size_t n = 0;
    char *text = (char *)tu_read(svg, &n);
    int circles = 0;
    for (char *s = text; (s = strstr(s, "<circle")); s++)
        circles++;
    cr_assert_eq(circles, 12, "one dot per sample");
    cr_assert(strstr(text, "<title>id 1"), "hover text names the sample");
    free(text);
    text = (char *)tu_read(csv, &n);
    cr_assert(!strncmp(text, "id,label,source,x,y\n", 20), "%s", text);
    free(text);
    /* Only the training samples, with PCA. */
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "explore", "--method", "pca", "--category",
                        "training", "--out", svg, "--json", NULL),
                 0);
    j = parse_json(out);
    cr_assert_lt(jint(j, "samples"), 12);
    json_decref(j);
    free(out);
    /* --limit is a bound: 7 of 12 samples (8 shoe, 4 boot) by largest remainder. */
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "explore", "--limit", "7", "--out", svg, "--json",
                        NULL),
                 0);
    j = parse_json(out);
    cr_assert_eq(jint(j, "samples"), 7);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "explore", "--method", "umap", NULL), 2);
    cr_assert(strstr(err, "umap"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "explore", "--category", "testing", "--limit",
                        "3", NULL),
                 2, "too few samples to map");
    free(err);
}

/* Three easily told apart classes of 12x12 grey pictures: dark, bright, striped. */
static const char *separable_project(const char *dir, int per_class)
{
    static const char *const names[] = {"dark", "bright", "striped"};
    unsigned char px[12 * 12];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < per_class; i++) {
            for (int j = 0; j < 144; j++) {
                int noise = (int)((j * 7 + i * 13 + k * 31) % 23);
                px[j] = (unsigned char)(k == 0   ? 20 + noise
                                        : k == 1 ? 220 + noise % 30
                                                 : ((j / 12) % 2 ? 230 : 10) + noise % 20);
            }
            char rel[64];
            snprintf(rel, sizeof rel, "in/%s/%03d.pgm", names[k], i);
            char header[32];
            int hn = snprintf(header, sizeof header, "P5\n12 12\n255\n");
            unsigned char file[32 + 144];
            memcpy(file, header, (size_t)hn);
            memcpy(file + hn, px, 144);
            tu_write(tu_path(dir, rel), file, (size_t)hn + 144);
        }
    const char *proj = tu_path(dir, "proj");
    cr_assert_eq(tu_run(NULL, NULL, "init", proj, NULL), 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "import", tu_path(dir, "in"), NULL), 0);
    return proj;
}

Test(cli, train_then_test, .timeout = 600)
{
    const char *dir = tu_tmpdir();
    const char *proj = separable_project(dir, 40);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "test", NULL), 2, "no model yet");
    cr_assert(strstr(err, "edgetrain train"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "learning.conv_layers=8:3",
                        "learning.learning_rate=0.01", "learning.batch_size=16", NULL),
                 0);
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "train", "--epochs", "6", "--json", NULL), 0,
                 "%s", err);
    cr_assert(strstr(err, "epoch   1/6"), "per-epoch progress on stderr: %s", err);
    json_t *j = parse_json(out);
    cr_assert_eq(jint(j, "model_id"), 1);
    cr_assert_eq(jint(j, "epochs_run"), 6);
    cr_assert_eq(jint(j, "model"), 1);
    cr_assert_eq(jint(j, "epochs"), 6);
    cr_assert_gt(json_real_value(json_object_get(j, "samples_per_second")), 0);
    json_t *val = json_object_get(json_object_get(j, "validation"), "float32");
    cr_assert_eq(json_object_size(json_object_get(val, "f1")), 3, "f1 per label: %s", out);
    cr_assert_gt(json_real_value(json_object_get(val, "accuracy")), 0.9, "%s", out);
    /* The int8 model, run by the runtime, on the same validation samples. */
    json_t *val8 = json_object_get(json_object_get(j, "validation"), "int8");
    double acc = json_real_value(json_object_get(val, "accuracy"));
    double acc8 = json_real_value(json_object_get(val8, "accuracy"));
    cr_assert_geq(acc8, acc - 0.05, "int8 lost too much: %s", out);
    cr_assert_eq(jint(val8, "samples"), jint(val, "samples"));
    json_t *quant = json_object_get(j, "quantization");
    cr_assert_gt(json_real_value(json_object_get(quant, "agreement")), 0.9, "%s", out);
    cr_assert_gt(jint(json_object_get(quant, "int8_plan"), "arena_bytes"), 0);
    cr_assert_lt(jint(json_object_get(quant, "int8_plan"), "bytes"),
                 jint(json_object_get(quant, "float32_plan"), "bytes"), "int8 is smaller");
    cr_assert(json_is_null(json_object_get(j, "int8_error")));
    cr_assert_eq(json_array_size(json_object_get(j, "labels")), 3);
    json_decref(j);
    free(out);
    free(err);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "test", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert_eq(jint(j, "model_id"), 1);
    cr_assert_gt(jint(j, "samples"), 0);
    cr_assert_gt(json_real_value(json_object_get(json_object_get(j, "float32"), "accuracy")), 0.9,
                 "%s", out);
    cr_assert_gt(json_real_value(json_object_get(json_object_get(j, "int8"), "accuracy")), 0.85,
                 "%s", out);
    cr_assert_gt(json_real_value(json_object_get(j, "agreement")), 0.85, "%s", out);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "test", "--int8", "--json", NULL), 0);
    j = parse_json(out);
    cr_assert(json_is_null(json_object_get(j, "float32")), "--int8 alone: %s", out);
    cr_assert(json_is_object(json_object_get(j, "int8")), "%s", out);
    cr_assert(json_is_null(json_object_get(j, "agreement")));
    json_decref(j);
    free(out);
    /* Same impulse, data and seed: the same model, bit for bit. */
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "train", "--epochs", "6", NULL), 0);
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/models/1/weights.npy", proj);
    snprintf(b, sizeof b, "%s/models/2/weights.npy", proj);
    size_t na = 0, nb = 0;
    unsigned char *wa = tu_read(a, &na), *wb = tu_read(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_arr_eq(wa, wb, na, "two trainings with one seed differ");
    free(wa);
    free(wb);
    snprintf(a, sizeof a, "%s/models/1/model_int8.etrt", proj);
    snprintf(b, sizeof b, "%s/models/2/model_int8.etrt", proj);
    wa = tu_read(a, &na);
    wb = tu_read(b, &nb);
    cr_assert(na > 0 && na == nb);
    cr_assert_arr_eq(wa, wb, na, "two conversions of one model differ");
    free(wa);
    free(wb);
    /* The explorer on the model's penultimate layer (the conv net's flatten: 6x6x8). */
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "explore", "--embedding", "model", "--iterations",
                        "250", "--out", tu_path(dir, "emb.svg"), "--json", NULL),
                 0);
    j = parse_json(out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "embedding")), "model");
    cr_assert_eq(jint(j, "dimensions"), 6 * 6 * 8);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--epochs", "0", NULL), 2);
    free(err);
    /* Without int8: the float model alone; asking for int8 then says why there is none. */
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "train", "--epochs", "1", "--no-int8", "--json",
                        NULL),
                 0);
    j = parse_json(out);
    cr_assert(json_is_null(json_object_get(json_object_get(j, "validation"), "int8")));
    int64_t plain = jint(j, "model_id");
    json_decref(j);
    free(out);
    char idtext[32];
    snprintf(idtext, sizeof idtext, "%lld", (long long)plain);
    cr_assert_neq(tu_run(NULL, &err, "-C", proj, "test", "--int8", "--model", idtext, NULL), 0);
    cr_assert(strstr(err, "no int8 version"), "%s", err);
    free(err);
    /* The estimate: printed before training, alone with --estimate (nothing
     * stored), and a time limit refuses the job before any work. */
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "train", "--estimate", "--json", NULL), 0, "%s",
                 err);
    cr_assert(strstr(err, "Estimated training time"), "%s", err);
    j = parse_json(out);
    cr_assert_gt(json_real_value(json_object_get(j, "estimated_seconds")), 0, "%s", out);
    json_decref(j);
    free(out);
    free(err);
    long models = tu_db_int(proj, "SELECT count(*) FROM models");
    /* 10 ms: far below any machine's estimate for 1000 epochs (a fast one
     * estimated under 1 s for this tiny set). */
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--epochs", "1000", "--time-limit",
                        "0.01s", NULL),
                 1, "%s", err);
    cr_assert(strstr(err, "is larger than compute time limit (0m 0s)"), "%s", err);
    cr_assert(strstr(err, "Estimated training time ("), "%s", err);
    free(err);
    cr_assert_eq(tu_db_int(proj, "SELECT count(*) FROM models"), models, "nothing stored");
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--time-limit", "soon", NULL), 2);
    free(err);
    /* Quantization-aware fine-tuning on demand: the best int8 model is kept. */
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "train", "--epochs", "6", "--qat", "--qat-epochs",
                        "2", "--json", NULL),
                 0, "%s", err);
    cr_assert(strstr(err, "int8 fine-tuning epoch 2/2"), "%s", err);
    j = parse_json(out);
    const char *method = json_string_value(json_object_get(json_object_get(j, "quantization"),
                                                           "method"));
    cr_assert(method && (!strcmp(method, "qat") || !strcmp(method, "minmax")), "%s", out);
    cr_assert_gt(json_real_value(json_object_get(
                     json_object_get(json_object_get(j, "validation"), "int8"), "accuracy")),
                 0.8, "%s", out);
    json_decref(j);
    free(out);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--calibration", "kl", NULL), 2);
    cr_assert(strstr(err, "minmax or mse"), "%s", err);
    free(err);
}

Test(cli, early_stopping_and_augmentation, .timeout = 600)
{
    const char *dir = tu_tmpdir();
    const char *proj = separable_project(dir, 30);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "learning.conv_layers=4:3",
                        "learning.batch_size=16", NULL),
                 0);
    /* A learning rate far too high: validation loss stops improving at once. */
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "train", "--epochs", "40", "--learning-rate", "1",
                        "--early-stopping", "2", "--json", NULL),
                 0, "%s", err);
    json_t *j = parse_json(out);
    int run = (int)jint(j, "epochs_run"), best = (int)jint(j, "best_epoch");
    cr_assert_lt(run, 40, "early stopping never stopped: %s", out);
    cr_assert_eq(run, best + 2, "stops 2 epochs after the best: %s", out);
    json_decref(j);
    free(out);
    free(err);
    /* Augmented training is reproducible, and differs from plain training. */
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "train", "--epochs", "2", NULL), 0); /* model 2 */
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "learning.augment=true", NULL),
                 0);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "train", "--epochs", "2", NULL), 0); /* model 3 */
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "train", "--epochs", "2", NULL), 0); /* model 4 */
    unsigned char *w[3];
    size_t n[3];
    for (int k = 0; k < 3; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/models/%d/weights.npy", proj, k + 2);
        w[k] = tu_read(path, &n[k]);
    }
    cr_assert(n[1] == n[2] && !memcmp(w[1], w[2], n[1]), "augmented training is not reproducible");
    cr_assert(n[0] == n[1] && memcmp(w[0], w[1], n[0]), "augmentation changed nothing");
    for (int k = 0; k < 3; k++)
        free(w[k]);
}

/* Ctrl-C during training: the best epoch so far is stored, status interrupted. */
Test(cli, ctrl_c_keeps_the_best_epoch, .timeout = 600)
{
    const char *dir = tu_tmpdir();
    const char *proj = separable_project(dir, 200);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "learning.batch_size=8", NULL),
                 0);
    const char *cli = getenv("ET_CLI");
    const char *log = tu_path(dir, "train.log");
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen(log, "w", stderr);
        execl(cli, cli, "-C", proj, "train", "--epochs", "500", (char *)NULL);
        _exit(127);
    }
    /* Wait for the first epoch's line, then press Ctrl-C. */
    bool seen = false;
    for (int i = 0; i < 1000 && !seen; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        size_t n = 0;
        char *text = (char *)tu_read(log, &n);
        seen = strstr(text, "epoch   1/500") != NULL;
        free(text);
    }
    cr_assert(seen, "no epoch finished");
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %d", status);
    char *out = NULL;
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "test", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "interrupted");
    json_decref(j);
    free(out);
}

Test(cli, train_settings_are_checked_before_any_work)
{
    const char *dir = tu_tmpdir();
    const char *proj = separable_project(dir, 10);
    char *err = NULL;
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--batch-size", "500", NULL), 2);
    cr_assert(strstr(err, "batch size 500") && strstr(err, "at most"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--learning-rate", "-1", NULL), 2);
    cr_assert(strstr(err, "--learning-rate"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--model", "resnet", NULL), 2);
    cr_assert(strstr(err, "learning.model") && strstr(err, "resnet") && strstr(err, "mobilenetv2"),
              "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--model", "mobilenetv2", "--alpha",
                        "0.3", NULL),
                 2);
    cr_assert(strstr(err, "0.35"), "the allowed alphas are named: %s", err);
    free(err);
    /* 12x12 pictures are too small for MobileNet (32..224 px). */
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--model", "mobilenetv1", NULL), 2);
    cr_assert(strstr(err, "32..224"), "%s", err);
    free(err);
    char *out = NULL;
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "impulse", "history", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert_eq(json_array_size(json_object_get(j, "versions")), 1,
                 "refused settings store no impulse version: %s", out);
    json_decref(j);
    free(out);
}

/* A validation split of a few images: training goes on, with a warning that
 * names how few samples the int8 figures rest on. */
Test(cli, tiny_validation_split_warns_before_int8, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    const char *proj = separable_project(dir, 6);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "learning.conv_layers=4:3",
                        "learning.batch_size=4", NULL),
                 0);
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "train", "--epochs", "1", "--json", NULL), 0,
                 "%s", err);
    json_t *j = parse_json(out);
    long n_val = (long)jint(j, "validation_samples");
    cr_assert_lt(n_val, 20, "%s", out);
    char want[64];
    snprintf(want, sizeof want, "calibrating on only %ld validation sample", n_val);
    cr_assert(strstr(err, want), "%s", err);
    cr_assert_not(json_is_null(json_object_get(json_object_get(j, "validation"), "int8")), "%s",
                  out);
    json_decref(j);
    free(out);
    free(err);
}

/* The compute time limit while training: with this machine's measured rates
 * made a million times too fast, the estimate passes the limit, and training
 * stops at the end of the epoch after which the next one would overrun it,
 * keeping the best epoch. The rates live in a cache of this test's own. */
Test(cli, time_limit_stops_at_an_epoch_end, .timeout = 120)
{
    const char *dir = tu_tmpdir();
    char cache[4096];
    snprintf(cache, sizeof cache, "%s", tu_path(dir, "cache")); /* tu_path's buffer is reused */
    cr_assert_eq(setenv("XDG_CACHE_HOME", cache, 1), 0);
    const char *proj = separable_project(dir, 40);
    char *out = NULL, *err = NULL;
    /* Heavy enough that 1000 epochs take far more than a second anywhere. */
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set",
                        "learning.conv_layers=32:3,32:3", "learning.batch_size=16", NULL),
                 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "train", "--estimate", "--json", NULL), 0);
    free(out);
    char glob_dir[4096 + 16];
    snprintf(glob_dir, sizeof glob_dir, "%s/edgetrain", cache);
    DIR *d = opendir(glob_dir);
    cr_assert(d, "no machine cache in %s", glob_dir);
    int edited = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "machine-", 8))
            continue;
        char path[4096 + 16 + 256];
        snprintf(path, sizeof path, "%s/%s", glob_dir, e->d_name);
        json_t *j = json_load_file(path, 0, NULL);
        cr_assert(j, "%s", path);
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) if (json_is_real(v) && strcmp(key, "correction") &&
                                           strcmp(key, "seconds"))
            json_real_set(v, json_real_value(v) * 1e-6);
        cr_assert_eq(json_dump_file(j, path, JSON_INDENT(2)), 0);
        json_decref(j);
        edited++;
    }
    closedir(d);
    cr_assert_eq(edited, 1);
    cr_assert_eq(tu_run(&out, &err, "-C", proj, "train", "--epochs", "1000", "--time-limit",
                        "1s", "--no-int8", "--json", NULL),
                 0, "%s", err);
    json_t *j = parse_json(out);
    cr_assert(json_is_true(json_object_get(j, "time_limit_reached")), "%s", out);
    cr_assert_lt(jint(j, "epochs_run"), 1000);
    cr_assert_geq(jint(j, "best_epoch"), 1);
    cr_assert(strstr(err, "the next epoch would end past the compute time limit (0m 1s)"), "%s",
              err);
    json_decref(j);
    free(out);
    free(err);
}

/* The compute time limit as a project setting: checked when set, used by
 * train unless --time-limit says otherwise, removed with none. */
Test(cli, time_limit_setting)
{
    const char *dir = tu_tmpdir();
    const char *proj = separable_project(dir, 10);
    char *out = NULL, *err = NULL;
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "impulse", "set", "learning.batch_size=8", NULL),
                 0);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "settings", "--json", NULL), 0);
    json_t *j = parse_json(out);
    cr_assert(json_is_null(json_object_get(j, "time_limit")), "%s", out);
    json_decref(j);
    free(out);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "settings", "time_limit=soon", NULL), 2);
    cr_assert(strstr(err, "time_limit=soon"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "settings", "colour=red", NULL), 2);
    cr_assert(strstr(err, "unknown setting 'colour'"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "settings", "time_limit", NULL), 2);
    free(err);
    cr_assert_eq(tu_run(&out, NULL, "-C", proj, "settings", "time_limit=0.01s", "--json", NULL),
                 0);
    cr_assert(strstr(out, "\"time_limit\": \"0.01s\"") || strstr(out, "\"time_limit\":\"0.01s\""),
              "%s", out);
    free(out);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--epochs", "1000", NULL), 1, "%s",
                 err);
    cr_assert(strstr(err, "is larger than compute time limit (0m 0s)"), "%s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--epochs", "1", "--time-limit", "none",
                        "--no-int8", NULL),
                 0, "--time-limit none overrides the setting: %s", err);
    free(err);
    cr_assert_eq(tu_run(NULL, NULL, "-C", proj, "settings", "time_limit=none", NULL), 0);
    cr_assert_eq(tu_run(NULL, &err, "-C", proj, "train", "--epochs", "1", "--no-int8", NULL), 0,
                 "%s", err);
    free(err);
}
