/* Golden error tests: every file in tests/bad/ names, on its first line, the exact error that
 * cnnc must report (line, column, message); the caret and echoed line are checked too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#define BAD_DIR SOURCE_DIR "/tests/bad"

static char tmpdir[] = "/tmp/cnnc-errors-XXXXXX";

/* The n-th line (0-based) of text, copied into buf. */
static const char *nth_line(const char *text, int n, char *buf, size_t cap)
{
    const char *p = text;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p)
        return NULL;
    size_t len = strcspn(p, "\n");
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return buf;
}

static void check_bad_file(void **state)
{
    const char *path = *state;
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';

    int line, col;
    char message[512];
    assert_int_equal(sscanf(text, "# expect: %d:%d: %511[^\n]", &line, &col, message), 3);

    /* Compiled as a user would: the error, and no output file. */
    char out_c[64];
    snprintf(out_c, sizeof out_c, "%s/out.c", tmpdir);
    char *argv[] = {CNNC_PATH, (char *)path, "-o", out_c, NULL};
    run_result r = run_program(argv);
    assert_int_equal(access(out_c, F_OK), -1);
    char expected[1200], got[1200], source_line[1024], caret[1100];
    snprintf(expected, sizeof expected, "%s:%d:%d: error: %s", path, line, col, message);
    assert_non_null(nth_line(r.err, 0, got, sizeof got));
    assert_string_equal(got, expected);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");

    /* The offending line is echoed, with a caret under the column (tabs kept as tabs). */
    assert_non_null(nth_line(text, line - 1, source_line, sizeof source_line));
    snprintf(expected, sizeof expected, "  %s", source_line);
    assert_non_null(nth_line(r.err, 1, got, sizeof got));
    assert_string_equal(got, expected);
    size_t k = 0;
    caret[k++] = ' ';
    caret[k++] = ' ';
    for (int i = 0; i < col - 1; i++)
        caret[k++] = source_line[i] == '\t' ? '\t' : ' ';
    caret[k++] = '^';
    caret[k] = '\0';
    assert_non_null(nth_line(r.err, 2, got, sizeof got));
    assert_string_equal(got, caret);
    run_result_free(&r);
}

static void unreadable_file_is_an_error(void **state)
{
    (void)state;
    char *argv[] = {CNNC_PATH, "--summary", "/nonexistent/dir/net.net", NULL};
    run_result r = run_program(argv);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err,
                        "/nonexistent/dir/net.net: error: cannot read the file: No such file or "
                        "directory\n");
    run_result_free(&r);
}

static void directory_is_an_error(void **state)
{
    (void)state;
    char *argv[] = {CNNC_PATH, "--check", BAD_DIR, NULL};
    run_result r = run_program(argv);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "error: cannot read the file"));
    run_result_free(&r);
}

static void check_mode_reports_the_same(void **state)
{
    (void)state;
    char *argv[] = {CNNC_PATH, "--check", BAD_DIR "/unknown_layer.net", NULL};
    run_result r = run_program(argv);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "unknown_layer.net:3:1: error: unknown layer 'convv'"));
    run_result_free(&r);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    char **files = list_files(BAD_DIR, ".net");
    if (!files) {
        fprintf(stderr, "cannot list %s\n", BAD_DIR);
        return 1;
    }
    int n = 0;
    while (files[n])
        n++;
    struct CMUnitTest *tests = calloc((size_t)n + 3, sizeof *tests);
    for (int i = 0; i < n; i++) {
        tests[i].name = strrchr(files[i], '/') + 1;
        tests[i].test_func = check_bad_file;
        tests[i].initial_state = files[i];
    }
    tests[n] = (struct CMUnitTest)cmocka_unit_test(unreadable_file_is_an_error);
    tests[n + 1] = (struct CMUnitTest)cmocka_unit_test(directory_is_an_error);
    tests[n + 2] = (struct CMUnitTest)cmocka_unit_test(check_mode_reports_the_same);
    int failed = _cmocka_run_group_tests("malformed .net files", tests, (size_t)n + 3, NULL, NULL);
    rmdir(tmpdir);
    free(tests);
    free_names(files);
    return failed;
}
