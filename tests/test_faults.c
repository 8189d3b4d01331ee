/* No silent miscompile: cnnc with its Nth allocation or write failed (cnnc_faults, tests/
 * faults.c), for every N a compilation makes, either writes exactly what cnnc writes or
 * fails with status 1, leaving the previous output untouched and no temporary file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "support.h"

static char tmpdir[] = "/tmp/cnnc-faults-XXXXXX";

/* The command of a run: PROG [SUBCOMMAND] NET -o OUT [its flags]. */
static const char *subcommand = "export";
static const char *const *export_flags;

static void command(char **argv, const char *prog, const char *net, const char *out)
{
    int n = 0;
    argv[n++] = (char *)prog;
    if (export_flags)
        argv[n++] = (char *)subcommand;
    argv[n++] = (char *)net;
    argv[n++] = "-o";
    argv[n++] = (char *)out;
    for (int i = 0; export_flags && export_flags[i]; i++)
        argv[n++] = (char *)export_flags[i];
    argv[n] = NULL;
}

/* How many counted calls a clean run of `cnnc_faults net -o out` makes. */
static long count_calls(const char *net, const char *out)
{
    setenv("CNNC_FAIL_COUNT", "1", 1);
    char *argv[16];
    command(argv, CNNC_FAULTS_PATH, net, out);
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
    char *plain[16];
    command(plain, CNNC_PATH, net, want_path);
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
    assert_true(total > 10); /* the wrapper counts: a run makes many calls */

    int failures = 0;
    for (long n = 1; n <= total; n += step) {
        FILE *f = fopen(out, "w");
        assert_non_null(f);
        fputs(prev, f);
        fclose(f);
        char at[32];
        snprintf(at, sizeof at, "%ld", n);
        setenv("CNNC_FAIL_AT", at, 1);
        char *argv[16];
        command(argv, CNNC_FAULTS_PATH, net, out);
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

/* cnnc export of a small network, float and int8 (its calibration included), cnnc onnx and
 * cnnc import: every call in turn for the float export, the ONNX model and its import, one in
 * every 3 for the int8 export. */
static void calls_of_an_export(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_file(&t, SOURCE_DIR "/tests/nets/dense_only.net"), 0);
    cnn_model *m = cnn_reference_new(&t.ir, 1);
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    cnn_init_tensors(m, &rng);
    char ckpt[256], images[256], err[600];
    snprintf(ckpt, sizeof ckpt, "%s/dense.ckpt", tmpdir);
    snprintf(images, sizeof images, "%s/images", tmpdir);
    assert_int_equal(cnn_checkpoint_save(ckpt, m, NULL, err, sizeof err), 0);
    assert_int_equal(write_idx_images(images, 20, t.ir.input.h, t.ir.input.w, t.ir.input.c,
                                      NULL, &rng), 0);
    const char *float_flags[] = {"--weights", ckpt, NULL};
    export_flags = float_flags;
    int failures = inject(SOURCE_DIR "/tests/nets/dense_only.net", 1);
    const char *int8_flags[] = {"--weights", ckpt, "--int8", "--calibrate", "20",
                                "--train-images", images, NULL};
    export_flags = int8_flags;
    failures += inject(SOURCE_DIR "/tests/nets/dense_only.net", 3);
    subcommand = "onnx";
    export_flags = float_flags;
    failures += inject(SOURCE_DIR "/tests/nets/dense_only.net", 1);
    /* cnnc import of that model, every call in turn: the .net file, and with the checkpoint
     * (written first, atomically). */
    char model[256], ckpt2[256];
    snprintf(model, sizeof model, "%s/dense.onnx", tmpdir);
    snprintf(ckpt2, sizeof ckpt2, "%s/imported.ckpt", tmpdir);
    char *onnx_argv[] = {CNNC_PATH, "onnx", SOURCE_DIR "/tests/nets/dense_only.net",
                         "--weights", ckpt, "-o", model, NULL};
    run_result r = run_program(onnx_argv);
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    subcommand = "import";
    const char *no_flags[] = {NULL}, *import_flags[] = {"--weights", ckpt2, NULL};
    export_flags = no_flags;
    failures += inject(model, 1);
    export_flags = import_flags;
    failures += inject(model, 1);
    subcommand = "export";
    export_flags = NULL;
    print_message("export: %d failed calls reported\n", failures);
    assert_true(failures > 0);
    cnn_model_destroy(m);
    test_net_free(&t);
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
        cmocka_unit_test(calls_of_an_export),
    };
    return cmocka_run_group_tests_name("fault injection", tests, NULL, cleanup);
}
