/* core: errors, the arena, hashing, paths, the CSV reader. */
#include "testutil.h"

#include "core/fsutil.h"
#include "data/csv.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(core, error_set_formats_and_returns_code)
{
    et_error err = {0};
    cr_assert_eq(et_error_set(&err, ET_EINVAL, "bad %s at %d", "thing", 7), ET_EINVAL);
    cr_assert_eq(err.code, ET_EINVAL);
    cr_assert_str_eq(err.msg, "bad thing at 7");
    cr_assert_eq(et_error_set(NULL, ET_EIO, "ignored"), ET_EIO);
    cr_assert_str_eq(et_status_str(ET_EINTR), "interrupted");
    cr_assert_str_eq(et_status_str(12345), "unknown error");
}

Test(core, arena_aligns_grows_and_resets)
{
    et_arena a;
    et_arena_init(&a, 256);
    char *first = et_arena_alloc(&a, 3);
    char *second = et_arena_alloc(&a, 5);
    cr_assert_eq((uintptr_t)first % 16, 0);
    cr_assert_eq((uintptr_t)second % 16, 0);
    cr_assert_eq(second - first, 16);
    /* Larger than a block: gets its own. */
    unsigned char *big = et_arena_alloc(&a, 10000);
    cr_assert(big);
    memset(big, 7, 10000);
    int *zeros = et_arena_calloc(&a, 100, sizeof(int));
    for (int i = 0; i < 100; i++)
        cr_assert_eq(zeros[i], 0);
    cr_assert_str_eq(et_arena_strdup(&a, "label"), "label");
    cr_assert_str_eq(et_arena_printf(&a, "%s#%d", "file", 12), "file#12");
    cr_assert_null(et_arena_strdup(&a, NULL));
    cr_assert_null(et_arena_calloc(&a, SIZE_MAX / 2, 4), "overflow must fail, not wrap");
    cr_assert_gt(a.used_bytes, 10000);
    et_arena_reset(&a);
    cr_assert_eq(a.used_bytes, 0);
    cr_assert(et_arena_alloc(&a, 8));
    et_arena_free(&a);
    et_arena_free(NULL);
}

Test(core, sha256_matches_known_vectors)
{
    char hex[65];
    et_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    et_sha256_hex("", 0, hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    et_sha256 h;
    cr_assert_eq(et_sha256_begin(&h), 0);
    et_sha256_add(&h, "a", 1);
    et_sha256_add(&h, "bc", 2);
    et_sha256_end(&h, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(core, paths)
{
    char buf[64];
    cr_assert(et_path_join(buf, sizeof buf, "a/b/", "c.png"));
    cr_assert_str_eq(buf, "a/b/c.png");
    cr_assert_not(et_path_join(buf, 8, "abcdef", "ghijkl"), "must report truncation");
    cr_assert_str_eq(et_path_base("/x/y/z.JPG"), "z.JPG");
    et_path_dir("/x/y/z.JPG", buf, sizeof buf);
    cr_assert_str_eq(buf, "/x/y");
    et_path_dir("z.png", buf, sizeof buf);
    cr_assert_str_eq(buf, ".");
    et_path_ext("/x/y/z.JPG", buf, sizeof buf);
    cr_assert_str_eq(buf, "jpg");
    et_path_ext("/x/.hidden", buf, sizeof buf);
    cr_assert_str_eq(buf, "");
}

Test(core, atomic_write_and_read_limits)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "f.bin");
    et_error err = {0};
    cr_assert_eq(et_write_file_atomic(path, "hello", 5, &err), 0, "%s", err.msg);
    unsigned char *data = NULL;
    size_t n = 0;
    cr_assert_eq(et_read_file(path, 100, &data, &n, &err), 0);
    cr_assert_eq(n, 5);
    cr_assert_str_eq((char *)data, "hello");
    free(data);
    cr_assert_eq(et_read_file(path, 4, &data, &n, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "f.bin"), "the message names the file: %s", err.msg);
    cr_assert_eq(et_read_file(tu_path(dir, "nope"), 4, &data, &n, &err), ET_ENOTFOUND);
    cr_assert_eq(et_read_file(dir, 4, &data, &n, &err), ET_EIO, "a folder is not a file");
}

static et_csv_row *parse(const char *text, size_t *n, et_arena *a, et_status expect, et_error *err)
{
    et_csv_row *rows = NULL;
    cr_assert_eq(et_csv_parse(text, strlen(text), "t.csv", a, &rows, n, err), expect, "%s",
                 err->msg);
    return rows;
}

Test(core, csv_fields_quotes_crlf_bom_blank_lines)
{
    et_arena a;
    et_arena_init(&a, 0);
    et_error err = {0};
    size_t n = 0;
    et_csv_row *rows = parse("\xEF\xBB\xBFpath,label\r\n"
                             "a.png,cat\r\n"
                             "\r\n"
                             "\"b, c.png\",\"say \"\"hi\"\"\",testing\n"
                             "\"multi\nline.png\",dog\n"
                             "last.png,cat",
                             &n, &a, ET_OK, &err);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(rows[0].fields[0], "path");
    cr_assert_str_eq(rows[1].fields[1], "cat");
    cr_assert_eq(rows[1].line, 2);
    cr_assert_eq(rows[2].n_fields, 3);
    cr_assert_str_eq(rows[2].fields[0], "b, c.png");
    cr_assert_str_eq(rows[2].fields[1], "say \"hi\"");
    cr_assert_eq(rows[2].line, 4);
    cr_assert_str_eq(rows[3].fields[0], "multi\nline.png");
    cr_assert_eq(rows[4].line, 7, "line numbers count the newline inside quotes");
    cr_assert_str_eq(rows[4].fields[0], "last.png");
    et_arena_free(&a);
}

Test(core, csv_errors_name_the_line)
{
    et_arena a;
    et_arena_init(&a, 0);
    et_error err = {0};
    size_t n = 0;
    parse("a.png,cat\n\"open.png,dog\n", &n, &a, ET_EINVAL, &err);
    cr_assert(strstr(err.msg, "t.csv:2"), "%s", err.msg);
    parse("a.png,cat\nb.png,\"dog\"x\n", &n, &a, ET_EINVAL, &err);
    cr_assert(strstr(err.msg, "t.csv:2"), "%s", err.msg);
    et_csv_row *rows = parse("", &n, &a, ET_OK, &err);
    (void)rows;
    cr_assert_eq(n, 0);
    et_arena_free(&a);
}

Test(core, interrupt_flag)
{
    et_interrupt_clear();
    cr_assert_not(et_interrupted());
    et_interrupt_raise();
    cr_assert(et_interrupted());
    et_interrupt_clear();
    cr_assert_not(et_interrupted());
}
