/* Sizes: the summary's static memory against what the compiler lays out for the generated C,
 * and the size limits at the batch sizes of `--batch`, `train { batch }` and `cnnc run`.
 * (The malformed files with sizes too large for the generated code are in tests/bad/.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

static char tmpdir[] = "/tmp/cnnc-sizes-XXXXXX";

/* The "(N bytes)" of the summary's static memory line, or -1. */
static long long summary_bytes(const char *out)
{
    const char *p = strstr(out, "Static memory of the compiled trainer: ");
    p = p ? strchr(p, '(') : NULL;
    if (!p)
        return -1;
    long long n = 0;
    for (p++; *p && *p != ' '; p++)
        if (*p >= '0' && *p <= '9')
            n = n * 10 + (*p - '0');
        else if (*p != ',')
            return -1;
    return n;
}

/* .bss, .data and .rodata of an object, from `size -A` (binutils): what the compiler allocated for
 * the generated file's static buffers, an account independent of cnnc's. */
static long long object_static_bytes(const char *obj)
{
    char *argv[] = {TEST_SIZE, "-A", (char *)obj, NULL};
    run_result r = run_program(argv);
    if (r.status != 0)
        fail_msg("size -A %s: %s", obj, r.err);
    long long total = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64];
        long long n;
        if (sscanf(line, "%63s %lld", name, &n) == 2 &&
            (strcmp(name, ".bss") == 0 || strcmp(name, ".data") == 0 ||
             strcmp(name, ".rodata") == 0))
            total += n;
    }
    run_result_free(&r);
    return total;
}

/* The figure `cnnc --summary` prints is what the object file holds: at least every buffer it
 * counts, and beyond them no more than the model's few small tables. */
static void static_memory_matches_the_object(void **state)
{
    const char *path = *state;
    char c_file[512], o_file[512];
    snprintf(c_file, sizeof c_file, "%s/net.c", tmpdir);
    snprintf(o_file, sizeof o_file, "%s/net.o", tmpdir);
    char *summary[] = {CNNC_PATH, "--summary", "--batch", "5", (char *)path, NULL};
    run_result r = run_program(summary);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, " at batch 5\n"));
    long long figure = summary_bytes(r.out);
    run_result_free(&r);
    assert_true(figure > 0);

    char *gen[] = {CNNC_PATH, (char *)path, "-o", c_file, "--batch", "5", NULL};
    r = run_program(gen);
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    char *cc[] = {TEST_CC, "-c", "-O0", "-I" SOURCE_DIR "/runtime", c_file, "-o", o_file, NULL};
    r = run_program(cc);
    if (r.status != 0)
        fail_msg("%s: %s", TEST_CC, r.err);
    run_result_free(&r);
    long long have = object_static_bytes(o_file);
    /* Beyond the buffers the object holds the tensor table and the layers' names: a few
     * hundred bytes per tensor and layer (MobileNetV1 has 81 tensors, 84 layers). */
    test_net t;
    assert_int_equal(test_net_from_file(&t, path), 0);
    int tensors = 0;
    for (int l = 0; l < t.ir.n_layers; l++)
        tensors += t.ir.layers[l].n_params;
    long long slack = 4096 + 160LL * (tensors + t.ir.n_layers);
    test_net_free(&t);
    if (have < figure || have > figure + slack)
        fail_msg("%s: the summary says %lld bytes of static buffers, the object holds %lld",
                 path, figure, have);
}

/* The baseline at --batch 65536: its second convolution's im2col rows, 11x11 windows of
 * 3x3x32 = 34,848 floats per image, are 2,283,798,528 floats: over 2^31 - 1. */
static void batch_flag_is_checked(void **state)
{
    (void)state;
    const char *want = "models/baseline.net:5:1: error: conv2d_2's im2col rows holds "
                       "2,283,798,528 elements at batch 65536 (34848 per image); at most "
                       "2,147,483,647 are supported";
    /* Memory is allowed for: it would stop the network first (10.64 GiB at conv2d_1). */
    char *check[] = {CNNC_PATH, "--check", "--batch", "65536", "--max-memory", "64G",
                     "models/baseline.net", NULL};
    run_result r = run_program_in(SOURCE_DIR, check);
    assert_int_equal(r.status, 1);
    assert_string_equal(strtok(r.err, "\n"), want);
    run_result_free(&r);

    char c_file[512];
    snprintf(c_file, sizeof c_file, "%s/big.c", tmpdir);
    char *gen[] = {CNNC_PATH, "models/baseline.net", "-o", c_file, "--batch", "65536",
                   "--max-memory", "64G", NULL};
    r = run_program_in(SOURCE_DIR, gen);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "conv2d_2's im2col rows holds 2,283,798,528 elements"));
    assert_int_equal(access(c_file, F_OK), -1);
    run_result_free(&r);

    /* The reference allocates the same buffers at the batch `cnnc run` is given. */
    char *run[] = {CNNC_PATH, "run", "--max-memory", "64G", "models/baseline.net", "train",
                   "--batch", "65536", "--data", "/nonexistent", NULL};
    r = run_program_in(SOURCE_DIR, run);
    assert_int_equal(r.status, 1);
    assert_string_equal(strtok(r.err, "\n"), want);
    run_result_free(&r);
}

/* memory_limit.net needs about 29 GiB of static buffers: refused at the default 2 GiB, accepted
 * with a limit above it, refused again with one just below its exact figure. */
static void max_memory_flag(void **state)
{
    (void)state;
    const char *net = SOURCE_DIR "/tests/bad/memory_limit.net";
    char *def[] = {CNNC_PATH, "--check", (char *)net, NULL};
    run_result r = run_program(def);
    assert_int_equal(r.status, 1);
    run_result_free(&r);

    char *more[] = {CNNC_PATH, "--summary", "--max-memory", "64G", (char *)net, NULL};
    r = run_program(more);
    assert_int_equal(r.status, 0);
    long long figure = summary_bytes(r.out);
    run_result_free(&r);
    /* conv 64 3x3 on 1024x1024x3 at batch 32: output and its gradient 32 x 1022^2 x 64
     * floats each; 27 taps, so computed directly: per-image kernel and bias gradients
     * 32 x 28 x 64; kernel 1,728 and bias 64 (x4: value,
     * gradient, two optimizer slots), no transposed kernel (no gradient flows into the
     * input); the dense layer: its kernel 1022^2 x 64 x 10 (x4), bias 10 (x4), output and
     * gradient and logits 32 x 10 each, its transposed kernel. */
    long long pix = 1022LL * 1022, flat = pix * 64;
    long long want = 4 * (32 * pix * 64 * 2 + 32 * 28 * 64 + 4 * (1728 + 64) +
                          4 * (flat * 10 + 10) + 3 * 32 * 10 + flat * 10);
    assert_int_equal(figure, want);

    char limit[32];
    snprintf(limit, sizeof limit, "%lld", figure - 1);
    char *less[] = {CNNC_PATH, "--check", "--max-memory", limit, (char *)net, NULL};
    r = run_program(less);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "error: the generated trainer's static buffers reach"));
    run_result_free(&r);
    snprintf(limit, sizeof limit, "%lld", figure);
    char *exact[] = {CNNC_PATH, "--check", "--max-memory", limit, (char *)net, NULL};
    r = run_program(exact);
    assert_int_equal(r.status, 0);
    run_result_free(&r);

    const char *bad[] = {"0", "-5", "12Q", "G", "99999999999G", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {CNNC_PATH, "--check", "--max-memory", (char *)bad[i], (char *)net, NULL};
        r = run_program(argv);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "--max-memory needs a number of bytes"));
        run_result_free(&r);
    }
}

/* A flag without its value says what it needs. */
static void flags_need_values(void **state)
{
    (void)state;
    struct {
        const char *flag, *msg;
    } cases[] = {{"-o", "cnnc: error: -o needs a file name\n"},
                 {"-H", "cnnc: error: -H needs a file name\n"},
                 {"--batch", "cnnc: error: --batch needs a batch size\n"},
                 {"--max-memory", "cnnc: error: --max-memory needs a number of bytes\n"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {CNNC_PATH, SOURCE_DIR "/models/baseline.net", (char *)cases[i].flag,
                        NULL};
        run_result r = run_program(argv);
        assert_int_equal(r.status, 2);
        assert_string_equal(r.err, cases[i].msg);
        run_result_free(&r);
    }
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
    struct CMUnitTest *tests;
    char **paths;
    char **graphs = graph_nets(), **models = graph_models();
    int n = network_tests(static_memory_matches_the_object,
                          3 + count_names(graphs) + count_names(models), &tests, &paths);
    n += append_tests(tests + n, static_memory_matches_the_object, graphs);
    n += append_tests(tests + n, static_memory_matches_the_object, models);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(batch_flag_is_checked);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(max_memory_flag);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(flags_need_values);
    int failed = _cmocka_run_group_tests("sizes", tests, (size_t)n, NULL, cleanup);
    free(tests);
    free_names(paths);
    free_names(graphs);
    free_names(models);
    return failed;
}
