/* generated/ is cnnc's output for models/, checked in so that it can be read without building:
 * it must be what the current cnnc writes (`make generated` rewrites it). Also: cnnc's output
 * options, and its refusal to leave an output file behind on a malformed network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

static char tmpdir[] = "/tmp/cnnc-generated-XXXXXX";

static void matches_cnnc(void **state)
{
    const char *path = *state; /* SOURCE_DIR/models/NAME.net */
    char name[128], rel[256], c_out[512], h_out[512], c_in[512], h_in[512];
    const char *base = strrchr(path, '/') + 1;
    snprintf(name, sizeof name, "%.*s", (int)(strlen(base) - 4), base);
    snprintf(rel, sizeof rel, "models/%s", base);
    snprintf(c_out, sizeof c_out, "%s/%s.c", tmpdir, name);
    snprintf(h_out, sizeof h_out, "%s/%s.h", tmpdir, name);
    snprintf(c_in, sizeof c_in, "%s/generated/%s.c", SOURCE_DIR, name);
    snprintf(h_in, sizeof h_in, "%s/generated/%s.h", SOURCE_DIR, name);
    char *argv[] = {CNNC_PATH, rel, "-o", c_out, "-H", h_out, NULL};
    run_result r = run_program_in(SOURCE_DIR, argv);
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    const char *pairs[2][2] = {{c_in, c_out}, {h_in, h_out}};
    for (int i = 0; i < 2; i++) {
        char *want = read_whole_file(pairs[i][1], NULL);
        char *have = read_whole_file(pairs[i][0], NULL);
        assert_non_null(want);
        if (!have || strcmp(want, have) != 0)
            fail_msg("%s is stale: run `make generated` and commit it", pairs[i][0]);
        free(want);
        free(have);
    }
}

static void every_model_has_its_output(void **state)
{
    (void)state;
    char **models = list_files(SOURCE_DIR "/models", ".net");
    char **generated = list_files(SOURCE_DIR "/generated", ".c");
    assert_non_null(models);
    assert_non_null(generated);
    int nm = 0, ng = 0;
    while (models[nm])
        nm++;
    while (generated[ng])
        ng++;
    assert_int_equal(nm, ng); /* and no output of a removed model lingers */
    free_names(models);
    free_names(generated);
}

/* A malformed network: status 1, the error, and neither output file nor a temporary. */
static void no_output_on_error(void **state)
{
    (void)state;
    char c_out[512], h_out[512];
    snprintf(c_out, sizeof c_out, "%s/bad.c", tmpdir);
    snprintf(h_out, sizeof h_out, "%s/bad.h", tmpdir);
    char *argv[] = {CNNC_PATH, SOURCE_DIR "/tests/bad/unknown_layer.net", "-o", c_out, "-H",
                    h_out, NULL};
    run_result r = run_program(argv);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "error: unknown layer 'convv'"));
    assert_int_equal(access(c_out, F_OK), -1);
    assert_int_equal(access(h_out, F_OK), -1);
    run_result_free(&r);
    /* Nor a temporary file of the failed write. */
    char **left = list_files(tmpdir, "");
    for (char **p = left; p && *p; p++)
        assert_null(strstr(strrchr(*p, '/'), "/bad."));
    free_names(left);
}

/* An existing output survives a failed compilation untouched. */
static void failed_compile_keeps_old_output(void **state)
{
    (void)state;
    char c_out[512];
    snprintf(c_out, sizeof c_out, "%s/keep.c", tmpdir);
    FILE *f = fopen(c_out, "w");
    assert_non_null(f);
    fputs("previous contents\n", f);
    fclose(f);
    char *argv[] = {CNNC_PATH, SOURCE_DIR "/tests/bad/kernel_too_large.net", "-o", c_out, NULL};
    run_result r = run_program(argv);
    assert_int_equal(r.status, 1);
    run_result_free(&r);
    char *text = read_whole_file(c_out, NULL);
    assert_string_equal(text, "previous contents\n");
    free(text);
}

static void unwritable_output_is_an_error(void **state)
{
    (void)state;
    char *argv[] = {CNNC_PATH, SOURCE_DIR "/models/baseline.net", "-o", "/nonexistent/dir/x.c",
                    NULL};
    run_result r = run_program(argv);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.err, "cnnc: error: /nonexistent/dir/x.c: cannot create a temporary "
                               "file beside it: No such file or directory\n");
    run_result_free(&r);
}

static void batch_option_and_stdout(void **state)
{
    (void)state;
    char *argv[] = {CNNC_PATH, SOURCE_DIR "/models/baseline.net", "-o", "-", "--batch", "7", NULL};
    run_result r = run_program(argv);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "batches of up to 7."));
    assert_non_null(strstr(r.out, "static float conv2d_1_out[151424]; /* 7 x 21632 */"));
    assert_non_null(strstr(r.out, ".max_batch = 7,"));
    run_result_free(&r);
    char *bad[] = {CNNC_PATH, SOURCE_DIR "/models/baseline.net", "-o", "-", "--batch", "0", NULL};
    r = run_program(bad);
    assert_int_equal(r.status, 2);
    run_result_free(&r);
}

static int cleanup(void **state)
{
    (void)state;
    return remove_tree(tmpdir);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    char **models = list_files(SOURCE_DIR "/models", ".net");
    if (!models)
        return 1;
    int n = 0;
    while (models[n])
        n++;
    struct CMUnitTest *tests = calloc((size_t)n + 5, sizeof *tests);
    for (int i = 0; i < n; i++) {
        tests[i].name = strrchr(models[i], '/') + 1;
        tests[i].test_func = matches_cnnc;
        tests[i].initial_state = models[i];
    }
    tests[n] = (struct CMUnitTest)cmocka_unit_test(every_model_has_its_output);
    tests[n + 1] = (struct CMUnitTest)cmocka_unit_test(no_output_on_error);
    tests[n + 2] = (struct CMUnitTest)cmocka_unit_test(failed_compile_keeps_old_output);
    tests[n + 3] = (struct CMUnitTest)cmocka_unit_test(unwritable_output_is_an_error);
    tests[n + 4] = (struct CMUnitTest)cmocka_unit_test(batch_option_and_stdout);
    int failed = _cmocka_run_group_tests("generated/", tests, (size_t)n + 5, NULL, cleanup);
    free(tests);
    free_names(models);
    return failed;
}
