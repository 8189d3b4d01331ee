/* cnnc onnx against ONNX's checker and a runtime nobody here wrote: every network of
 * tests/nets/, tests/graphs/, tests/run_only/ and models/ and 40 random ones, with random
 * weights, exported, checked by onnx.checker with full_check, and run by OpenCV's DNN module (tests/onnx_check.py, Debian's python3-onnx and
 * python3-opencv), which must give the reference's probabilities to 1e-5; then the same in ONNX
 * Runtime, from PyPI in a virtual environment (scripts/ort_venv.sh), where it can be installed:
 * a cross-check, skipped with the reason where it cannot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "random_net.h"
#include "reference.h"
#include "support.h"

#define IMAGES 4

static char tmpdir[] = "/tmp/cnnc-onnx-XXXXXX";
static char ort_python[1024]; /* "" when ONNX Runtime could not be installed */
static char ort_reason[1024];

static void write_floats(const char *path, const float *v, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(v, sizeof(float), n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void onnx_network(void **state)
{
    const char *path = *state;
    test_net t;
    if (test_net_from_file(&t, path)) {
        cnn_diag_print(stderr, &t.src, &t.diag);
        fail_msg("cnnc refuses %s", path);
    }
    const char *name = t.ir.name;
    cnn_model *ref = cnn_reference_new(&t.ir, IMAGES);
    assert_non_null(ref);
    cnn_rng rng;
    cnn_rng_seed(&rng, 21);
    random_weights(ref, &rng, 0.2f);
    char ckpt[512], model[512], inputs[512], want[512], err[600];
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", tmpdir, name);
    snprintf(model, sizeof model, "%s/%s.onnx", tmpdir, name);
    snprintf(inputs, sizeof inputs, "%s/%s.in", tmpdir, name);
    snprintf(want, sizeof want, "%s/%s.want", tmpdir, name);
    assert_int_equal(cnn_checkpoint_save(ckpt, ref, NULL, err, sizeof err), 0);
    char *argv[] = {CNNC_PATH, "onnx", (char *)path, "--weights", ckpt, "-o", model, NULL};
    run_result r = run_program(argv);
    if (r.status != 0)
        fail_msg("cnnc onnx failed on %s: %s", path, r.err);
    run_result_free(&r);

    size_t size = cnn_input_size(ref);
    float *x = malloc(sizeof(float) * size * IMAGES);
    for (size_t i = 0; i < size * IMAGES; i++)
        x[i] = (float)cnn_rng_below(&rng, 256) * (1.0f / 255.0f);
    ref->ops->forward(ref, x, IMAGES, 0, NULL);
    write_floats(inputs, x, size * IMAGES);
    write_floats(want, ref->output, (size_t)IMAGES * ref->n_classes);
    char dims[5][16];
    int v[5] = {ref->in_h, ref->in_w, ref->in_c, ref->n_classes, IMAGES};
    for (int i = 0; i < 5; i++)
        snprintf(dims[i], sizeof dims[i], "%d", v[i]);
    char *check[] = {TEST_PYTHON, SOURCE_DIR "/tests/onnx_check.py", model, inputs, want,
                     dims[4], dims[0], dims[1], dims[2], dims[3], NULL};
    r = run_program(check);
    if (r.status == 77) {
        print_message("%s", r.out);
        run_result_free(&r);
        free(x);
        cnn_model_destroy(ref);
        test_net_free(&t);
        skip();
    }
    if (r.status != 0)
        fail_msg("%s: %s%s", path, r.out, r.err);
    print_message("%s: %s", name, r.out);
    run_result_free(&r);
    if (ort_python[0]) {
        check[0] = ort_python;
        check[1] = SOURCE_DIR "/tests/onnx_runtime_check.py";
        r = run_program(check);
        if (r.status != 0)
            fail_msg("%s: %s%s", path, r.out, r.err);
        print_message("%s: %s", name, r.out);
        run_result_free(&r);
    }
    free(x);
    cnn_model_destroy(ref);
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
    /* ONNX Runtime's environment beside the test (build/tests/ort-venv), made once. */
    char *venv[] = {SOURCE_DIR "/scripts/ort_venv.sh", "ort-venv", NULL};
    run_result v = run_program(venv);
    if (v.status == 0 && v.out) {
        snprintf(ort_python, sizeof ort_python, "%s", v.out);
        ort_python[strcspn(ort_python, "\n")] = '\0';
    } else
        snprintf(ort_reason, sizeof ort_reason, "%s", v.err ? v.err : "");
    run_result_free(&v);
    if (!ort_python[0])
        printf("ONNX Runtime checks skipped: %s\n", ort_reason);
    struct CMUnitTest *tests;
    char **paths;
    /* And CNNC_ONNX_RANDOM_NETS random networks (default 40, tests/random_net.c). */
    const char *count_env = getenv("CNNC_ONNX_RANDOM_NETS");
    int n_random = count_env ? atoi(count_env) : 40;
    char **run_only = run_only_nets(), **graphs = graph_nets(), **models = graph_models();
    int n = network_tests(onnx_network,
                          n_random + count_names(run_only) + count_names(graphs) +
                              count_names(models),
                          &tests, &paths);
    n += append_tests(tests + n, onnx_network, run_only);
    n += append_tests(tests + n, onnx_network, graphs);
    n += append_tests(tests + n, onnx_network, models);
    char **random_paths = random_net_files("onnx", 11, n_random);
    if (!random_paths)
        return 1;
    for (int i = 0; i < n_random; i++) {
        tests[n].name = strrchr(random_paths[i], '/') + 1;
        tests[n].test_func = onnx_network;
        tests[n].initial_state = random_paths[i];
        n++;
    }
    int failed = _cmocka_run_group_tests("onnx export", tests, (size_t)n, NULL, cleanup);
    free(tests);
    free_names(paths);
    free_names(run_only);
    free_names(graphs);
    free_names(models);
    free_names(random_paths);
    return failed;
}
