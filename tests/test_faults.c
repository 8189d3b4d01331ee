/* No silent miscompile: cnnc with its Nth allocation or write failed (cnnc_faults, tests/
 * faults.c), for every N a compilation makes, either writes exactly what cnnc writes or
 * fails with status 1, leaving the previous output untouched and no temporary file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

static char tmpdir[] = "/tmp/cnnc-faults-XXXXXX";

/* How many counted calls a clean run of `cnnc_faults net -o out` makes. */
static long count_calls(const char *net, const char *out)
{
    setenv("CNNC_FAIL_COUNT", "1", 1);
    char *argv[] = {CNNC_FAULTS_PATH, (char *)net, "-o", (char *)out, NULL};
    run_result r = run_program(argv);
    unsetenv("CNNC_FAIL_COUNT");
    assert_int_equal(r.status, 0);
    long n = 0;
    const char *p = strstr(r.err, "faults: ");
    assert_non_null(p);
    n = atol(p + 8);
    run_result_free(&r);
    return n;
}

/* Fails calls first, first + step, ... of compiling net; returns how many runs failed. */
static int inject(const char *net, long step)
{
    char want_path[256], out[256], prev[] = "previous contents\n";
    snprintf(want_path, sizeof want_path, "%s/want.c", tmpdir);
    snprintf(out, sizeof out, "%s/out.c", tmpdir);
    char *plain[] = {CNNC_PATH, (char *)net, "-o", want_path, NULL};
    run_result r = run_program(plain);
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    size_t want_len;
    char *want = read_whole_file(want_path, &want_len);
    assert_non_null(want);

    long total = count_calls(net, out);
    char *clean = read_whole_file(out, NULL);
    assert_non_null(clean);
    assert_string_equal(clean, want); /* the wrapper changes nothing when nothing fails */
    free(clean);
    assert_true(total > 100);

    int failures = 0;
    for (long n = 1; n <= total; n += step) {
        FILE *f = fopen(out, "w");
        assert_non_null(f);
        fputs(prev, f);
        fclose(f);
        char at[32];
        snprintf(at, sizeof at, "%ld", n);
        setenv("CNNC_FAIL_AT", at, 1);
        char *argv[] = {CNNC_FAULTS_PATH, (char *)net, "-o", out, NULL};
        r = run_program(argv);
        unsetenv("CNNC_FAIL_AT");
        size_t len;
        char *have = read_whole_file(out, &len);
        assert_non_null(have);
        if (r.status == 0) {
            if (len != want_len || memcmp(have, want, len) != 0)
                fail_msg("%s: call %ld failed, cnnc exited 0 with another output", net, n);
        } else {
            if (r.status != 1)
                fail_msg("%s: call %ld failed: status %d (not 1), stderr %s", net, n, r.status,
                         r.err);
            if (strcmp(have, prev) != 0)
                fail_msg("%s: call %ld failed: the previous output was changed", net, n);
            failures++;
        }
        free(have);
        run_result_free(&r);
    }
    /* Nor a temporary file of a failed write. */
    char **left = list_files(tmpdir, "");
    for (char **p = left; p && *p; p++)
        if (strstr(*p, ".tmp."))
            fail_msg("a temporary file was left: %s", *p);
    free_names(left);
    free(want);
    return failures;
}

/* Every call of a small network's compilation, one at a time. */
static void every_call_of_a_small_network(void **state)
{
    (void)state;
    int failures = inject(SOURCE_DIR "/tests/nets/dense_only.net", 1);
    print_message("dense_only: %d failed calls reported\n", failures);
    assert_true(failures > 0);
}

/* The baseline's compilation, a call in every 7 (it makes over ten thousand). */
static void calls_of_the_baseline(void **state)
{
    (void)state;
    int failures = inject(SOURCE_DIR "/models/batchnorm.net", 7);
    assert_true(failures > 0);
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
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_call_of_a_small_network),
        cmocka_unit_test(calls_of_the_baseline),
    };
    return cmocka_run_group_tests_name("fault injection", tests, NULL, cleanup);
}
