/* store: project folders, the schema and its migrations, sample records. */
#include "testutil.h"

#include "core/fsutil.h"

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Test(store, init_creates_folders_wal_and_schema)
{
    const char *dir = tu_path(tu_tmpdir(), "proj");
    et_error err = {0};
    cr_assert_eq(et_project_init(dir, &err), 0, "%s", err.msg);
    cr_assert(access(tu_path(dir, "samples"), F_OK) == 0);
    cr_assert(access(tu_path(dir, "cache"), F_OK) == 0);
    cr_assert(access(tu_path(dir, "models"), F_OK) == 0);
    cr_assert_eq(tu_db_int(dir, "PRAGMA user_version"), ET_SCHEMA_VERSION);
    cr_assert_eq(tu_db_int(dir, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    cr_assert_eq(et_project_init(dir, &err), ET_EEXIST, "a second init must refuse");
    cr_assert(strstr(err.msg, "already holds"), "%s", err.msg);
}

Test(store, open_finds_the_project_in_a_parent_folder)
{
    const char *dir = tu_path(tu_tmpdir(), "proj");
    et_error err = {0};
    cr_assert_eq(et_project_init(dir, &err), 0, "%s", err.msg);
    const char *deep = tu_path(dir, "samples/x/y/z");
    cr_assert_eq(et_mkdir_p(deep, &err), 0);
    et_project *p = tu_open(deep);
    char real[4096];
    cr_assert(realpath(dir, real));
    cr_assert_str_eq(et_project_root(p), real);
    et_project_close(p);
    et_project_close(NULL);
}

Test(store, open_without_a_project_says_what_to_do)
{
    et_project *p = NULL;
    et_error err = {0};
    cr_assert_eq(et_project_open(tu_tmpdir(), &p, &err), ET_ENOTFOUND);
    cr_assert_null(p);
    cr_assert(strstr(err.msg, "edgetrain init"), "%s", err.msg);
    cr_assert_eq(et_project_open("/definitely/not/here", &p, &err), ET_ENOTFOUND);
}

Test(store, newer_schema_is_refused_older_is_migrated)
{
    const char *dir = tu_path(tu_tmpdir(), "proj");
    et_error err = {0};
    cr_assert_eq(et_project_init(dir, &err), 0);
    tu_db_exec(dir, "PRAGMA user_version = 999");
    et_project *p = NULL;
    cr_assert_eq(et_project_open(dir, &p, &err), ET_EVERSION);
    cr_assert(strstr(err.msg, "newer edgetrain"), "%s", err.msg);

    /* An empty database at version 0 is brought up to date on open. */
    const char *old = tu_path(tu_tmpdir(), "old");
    cr_assert_eq(et_mkdir_p(old, &err), 0);
    tu_db_exec(old, "CREATE TABLE unrelated(x)");
    p = tu_open(old);
    et_project_close(p);
    cr_assert_eq(tu_db_int(old, "PRAGMA user_version"), ET_SCHEMA_VERSION);
    cr_assert_eq(tu_db_int(old, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'samples'"), 1);
}

Test(store, garbage_database_is_an_error_not_a_crash)
{
    const char *dir = tu_tmpdir();
    tu_write(tu_path(dir, "edgetrain.db"), "this is not sqlite, just text..........", 40);
    et_project *p = NULL;
    et_error err = {0};
    cr_assert_eq(et_project_open(dir, &p, &err), ET_EDB);
    cr_assert(strstr(err.msg, "edgetrain.db"), "%s", err.msg);
}

Test(store, categories_and_labels)
{
    et_category c;
    cr_assert_eq(et_category_parse("Training", &c), 0);
    cr_assert_eq(c, ET_TRAINING);
    cr_assert_eq(et_category_parse("test", &c), 0);
    cr_assert_eq(c, ET_TESTING);
    cr_assert_eq(et_category_parse("validation", &c), ET_EINVAL);
    cr_assert_str_eq(et_category_name(ET_TESTING), "testing");

    et_error err = {0};
    cr_assert_eq(et_label_check("T-shirt/top", &err), 0);
    cr_assert_eq(et_label_check("chaussure rouge é", &err), 0);
    cr_assert_eq(et_label_check("", &err), ET_EINVAL);
    cr_assert_eq(et_label_check(" cat", &err), ET_EINVAL);
    cr_assert_eq(et_label_check("cat\n", &err), ET_EINVAL);
    cr_assert_eq(et_label_check("ca\x01t", &err), ET_EINVAL);
    cr_assert_eq(et_label_check("bad \xC3\x28 utf8", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "UTF-8"), "%s", err.msg);
    char longlabel[ET_LABEL_MAX + 2];
    memset(longlabel, 'a', sizeof longlabel - 1);
    longlabel[sizeof longlabel - 1] = 0;
    cr_assert_eq(et_label_check(longlabel, &err), ET_EINVAL);
}

Test(store, relabel_move_remove)
{
    const char *dir = tu_tmpdir();
    const char *proj = tu_path(dir, "proj");
    tu_image(tu_path(dir, "in/cat/a.png"), "png", 8, 8, 3, 1);
    tu_image(tu_path(dir, "in/cat/b.png"), "png", 8, 8, 3, 2);
    et_error err = {0};
    cr_assert_eq(et_project_init(proj, &err), 0);
    et_project *p = tu_open(proj);
    et_import_options opt = et_import_defaults();
    opt.category = ET_TRAINING;
    et_import_result res;
    const char *paths[] = {tu_path(dir, "in")};
    cr_assert_eq(et_import(p, paths, 1, &opt, NULL, NULL, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.imported, 2);

    cr_assert_eq(et_sample_relabel(p, 1, "dog", &err), 0, "%s", err.msg);
    et_sample s;
    cr_assert_eq(et_sample_get(p, 1, &s, &err), 0);
    cr_assert_str_eq(s.label, "dog");
    cr_assert_eq(et_sample_relabel(p, 1, "", &err), ET_EINVAL);
    cr_assert_eq(et_sample_relabel(p, 99, "dog", &err), ET_ENOTFOUND);
    cr_assert(strstr(err.msg, "99"), "%s", err.msg);

    cr_assert_eq(et_sample_move(p, 2, ET_TESTING, &err), 0);
    cr_assert_eq(tu_count(p, NULL, ET_TESTING), 1);
    cr_assert_eq(et_sample_move(p, 2, ET_CATEGORY_NONE, &err), ET_EINVAL);
    cr_assert_eq(et_sample_move(p, 42, ET_TESTING, &err), ET_ENOTFOUND);

    cr_assert_eq(et_sample_remove(p, 1, &err), 0);
    cr_assert_eq(et_sample_get(p, 1, &s, &err), ET_ENOTFOUND);
    cr_assert_eq(et_sample_remove(p, 1, &err), ET_ENOTFOUND);
    cr_assert_eq(tu_count(p, NULL, ET_CATEGORY_NONE), 1);
    et_project_close(p);
}
