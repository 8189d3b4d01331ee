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
static const char *nth_line(const char *text, size_t len, int n, char *buf, size_t cap)
{
    const char *p = text, *end = text + len;
    for (int i = 0; i < n && p; i++) {
        p = memchr(p, '\n', (size_t)(end - p));
        if (p)
            p++;
    }
    if (!p)
        return NULL;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n_chars = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n_chars > 0 && p[n_chars - 1] == '\r')
        n_chars--;
    if (n_chars >= cap)
        n_chars = cap - 1;
    memcpy(buf, p, n_chars);
    buf[n_chars] = '\0';
    return buf;
}

/* Appends to out what cnnc prints for one diagnostic: "path:L:C: kind: message", the source
 * line (control characters as '?', tabs kept), and a caret under columns C..E (^~~~). */
static void expect_entry(char *out, size_t cap, const char *path, const char *kind, int line,
                         int col, int end_col, const char *message, const char *text, size_t len)
{
    size_t k = strlen(out);
    k += (size_t)snprintf(out + k, cap - k, "%s:%d:%d: %s: %s\n  ", path, line, col, kind,
                          message);
    /* The line's bytes from the text itself: a NUL byte may be among them. */
    const char *at = text;
    for (int i = 1; i < line; i++) {
        at = memchr(at, '\n', len - (size_t)(at - text));
        assert_non_null(at);
        at++;
    }
    const char *nl = memchr(at, '\n', len - (size_t)(at - text));
    size_t n = nl ? (size_t)(nl - at) : len - (size_t)(at - text);
    if (n > 0 && at[n - 1] == '\r')
        n--;
    for (size_t i = 0; i < n && k + 8 < cap; i++) {
        unsigned char c = (unsigned char)at[i];
        out[k++] = c == '\t' || c >= 0x20 ? (char)c : '?';
    }
    out[k++] = '\n';
    out[k++] = ' ';
    out[k++] = ' ';
    for (int i = 0; i < col - 1 && k + 8 < cap; i++)
        out[k++] = at[i] == '\t' ? '\t' : ' ';
    out[k++] = '^';
    for (int i = col; i < end_col && k + 8 < cap; i++)
        out[k++] = '~';
    out[k++] = '\n';
    out[k] = '\0';
}

/* Each file in tests/bad/ starts with the diagnostics cnnc must print, one comment line each,
 * in order: "# expect: L:C: message" for an error, "# note: L:C: message" for a note on it,
 * with "L:C-E" where the caret underlines columns C to E; "# stopping" where cnnc must say it
 * stops after too many errors. The whole of stderr is compared: every line, caret and span,
 * and the closing count, "N errors generated.". */
static void check_bad_file(void **state)
{
    const char *path = *state;
    size_t len;
    char *text = read_whole_file(path, &len);
    assert_non_null(text);
    static char expected[65536];
    expected[0] = '\0';
    int errors = 0, stopping = 0;
    for (int i = 0;; i++) {
        char header[1024], message[900], kind[8];
        if (!nth_line(text, len, i, header, sizeof header))
            break;
        if (strcmp(header, "# stopping") == 0) {
            stopping = 1;
            continue;
        }
        int line, col, end_col, used = 0;
        if (sscanf(header, "# %7[a-z]: %d:%d%n", kind, &line, &col, &used) != 3)
            break;
        end_col = col;
        const char *rest = header + used;
        if (*rest == '-')
            end_col = (int)strtol(rest + 1, (char **)&rest, 10);
        assert_true(*rest == ':');
        snprintf(message, sizeof message, "%s", rest + 2);
        int error = strcmp(kind, "expect") == 0;
        assert_true(error || strcmp(kind, "note") == 0);
        errors += error;
        expect_entry(expected, sizeof expected, path, error ? "error" : "note", line, col,
                     end_col, message, text, len);
    }
    assert_true(errors > 0);
    size_t k = strlen(expected);
    if (stopping)
        k += (size_t)snprintf(expected + k, sizeof expected - k,
                              "%s: error: too many errors; stopping\n", path);
    snprintf(expected + k, sizeof expected - k, "%d error%s generated.\n", errors,
             errors == 1 ? "" : "s");

    /* Compiled as a user would: the errors, and no output file. */
    char out_c[64];
    snprintf(out_c, sizeof out_c, "%s/out.c", tmpdir);
    char *argv[] = {CNNC_PATH, (char *)path, "-o", out_c, NULL};
    run_result r = run_program(argv);
    assert_int_equal(access(out_c, F_OK), -1);
    assert_string_equal(r.err, expected);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "");
    run_result_free(&r);
    free(text);
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

/* A UTF-8 byte-order mark starts the file and lines end in CRLF, as editors on Windows write
 * them: accepted, and columns count from the first character after the mark. */
static void bom_and_crlf(void **state)
{
    (void)state;
    char good[128], bad[128];
    snprintf(good, sizeof good, "%s/bom.net", tmpdir);
    snprintf(bad, sizeof bad, "%s/bom_bad.net", tmpdir);
    FILE *f = fopen(good, "wb");
    assert_non_null(f);
    fputs("\xEF\xBB\xBFinput 28x28x1\r\nconv 8 3x3 relu\r\nflatten\r\ndense 10 softmax\r\n", f);
    fclose(f);
    f = fopen(bad, "wb");
    assert_non_null(f);
    fputs("\xEF\xBB\xBFinptu 28x28x1\r\nconv 8 3x3 rleu\r\n", f);
    fclose(f);
    char *ok[] = {CNNC_PATH, "--check", good, NULL};
    run_result r = run_program(ok);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    run_result_free(&r);
    char *no[] = {CNNC_PATH, "--check", bad, NULL};
    r = run_program(no);
    assert_int_equal(r.status, 1);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:1:1: error: unknown layer 'inptu'; did you mean 'input'?\n"
             "  inptu 28x28x1\n"
             "  ^~~~~\n"
             "%s:2:12: error: unknown activation 'rleu'; did you mean 'relu'?\n"
             "  conv 8 3x3 rleu\n"
             "             ^~~~\n"
             "2 errors generated.\n", bad, bad);
    assert_string_equal(r.err, want);
    run_result_free(&r);
    unlink(good);
    unlink(bad);
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

/* An output nothing reads is a warning: printed with its place, and the file is still good. */
static void unused_output_is_a_warning(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/unused.net", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("input 8x8x1\nx = conv 2 3x3\nconv 3 3x3 from input\nflatten\ndense 4 softmax\n", f);
    fclose(f);
    char *argv[] = {CNNC_PATH, "--check", path, NULL};
    run_result r = run_program(argv);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:2:1: warning: the output of conv2d_1 is never read: it does not reach the "
             "network's output\n"
             "  x = conv 2 3x3\n"
             "  ^\n"
             "%s:5:1: note: the network's output is the last layer's, dense_1\n"
             "  dense 4 softmax\n"
             "  ^~~~~\n"
             "1 warning generated.\n", path, path);
    assert_string_equal(r.err, want);
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    unlink(path);
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
    struct CMUnitTest *tests = calloc((size_t)n + 5, sizeof *tests);
    for (int i = 0; i < n; i++) {
        tests[i].name = strrchr(files[i], '/') + 1;
        tests[i].test_func = check_bad_file;
        tests[i].initial_state = files[i];
    }
    tests[n] = (struct CMUnitTest)cmocka_unit_test(unreadable_file_is_an_error);
    tests[n + 1] = (struct CMUnitTest)cmocka_unit_test(directory_is_an_error);
    tests[n + 2] = (struct CMUnitTest)cmocka_unit_test(check_mode_reports_the_same);
    tests[n + 3] = (struct CMUnitTest)cmocka_unit_test(bom_and_crlf);
    tests[n + 4] = (struct CMUnitTest)cmocka_unit_test(unused_output_is_a_warning);
    int failed = _cmocka_run_group_tests("malformed .net files", tests, (size_t)n + 5, NULL, NULL);
    rmdir(tmpdir);
    free(tests);
    free_names(files);
    return failed;
}
