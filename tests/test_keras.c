/* Keras weight files (runtime/keras_h5.c) against files nobody here wrote:
 * - h5py's (Debian's python3-h5py, tests/keras_h5.py): Keras 2's layout with fixed- and with
 *   variable-length strings, and Keras 3's, load into each of the five models with the values
 *   written; the files cnnc writes read back in h5py in the layout Keras reads;
 * - errors name the file, the layer and the tensor, and leave the network as it was;
 * - Keras itself (TensorFlow and Keras from PyPI, scripts/keras_venv.sh; skipped with the reason
 *   where they cannot be installed; tests/keras_check.py): Keras models built layer for layer
 *   from the five .net files load cnnc's .h5 and .weights.h5 and predict what cnnc predicts,
 *   and cnnc loads what Keras wrote for a Keras-trained model and predicts what Keras does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reference.h"
#include "support.h"

#define IMAGES 8

static char tmpdir[] = "/tmp/cnnc-keras-XXXXXX";
static char keras_python[1024]; /* "" when Keras could not be installed */
static char keras_reason[1024];

/* tests/keras_h5.py's values: element i of tensor t. */
static float value(int t, size_t i)
{
    return (float)sin(0.37 * t + 0.011 * (double)i);
}

static void write_tensor_list(const cnn_model *m, const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int t = 0; t < m->n_tensors; t++) {
        fprintf(f, "%s", m->tensors[t].name);
        for (int i = 0; i < m->tensors[t].rank; i++)
            fprintf(f, " %d", m->tensors[t].dims[i]);
        fputc('\n', f);
    }
    assert_int_equal(fclose(f), 0);
}

static void run_ok(char **argv)
{
    run_result r = run_program(argv);
    if (r.status != 0)
        fail_msg("%s failed (%d): %s%s", argv[1], r.status, r.out, r.err);
    run_result_free(&r);
}

static void h5py_files(void **state)
{
    const char *path = *state;
    test_net t;
    assert_int_equal(test_net_from_file(&t, path), 0);
    cnn_model *m = cnn_reference_new(&t.ir, 1);
    assert_non_null(m);
    char list[600], dir[512], file[600], err[800];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, t.ir.name);
    snprintf(list, sizeof list, "%s.tensors", dir);
    assert_int_equal(mkdir(dir, 0777), 0);
    write_tensor_list(m, list);
    char *write[] = {TEST_PYTHON, SOURCE_DIR "/tests/keras_h5.py", "write", list, dir, NULL};
    run_ok(write);
    const char *files[] = {"keras2-fixed.h5", "keras2-vlen.h5", "keras3.weights.h5"};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < m->n_tensors; i++)
            memset(m->tensors[i].value, 0, sizeof(float) * m->tensors[i].size);
        snprintf(file, sizeof file, "%s/%s", dir, files[k]);
        if (cnn_checkpoint_load(file, m, NULL, NULL, err, sizeof err))
            fail_msg("%s", err);
        for (int i = 0; i < m->n_tensors; i++)
            for (size_t j = 0; j < m->tensors[i].size; j++)
                if (fabsf(m->tensors[i].value[j] - value(i, j)) > 1.2e-7f) /* libm's sin and numpy's */
                    fail_msg("%s: %s[%zu] is %.9g, h5py wrote %.9g", files[k],
                             m->tensors[i].name, j, (double)m->tensors[i].value[j],
                             (double)value(i, j));
    }
    /* What cnnc writes, h5py reads as Keras does. */
    const char *mine[] = {"cnnc.h5", "cnnc.weights.h5"};
    for (int k = 0; k < 2; k++) {
        snprintf(file, sizeof file, "%s/%s", dir, mine[k]);
        if (cnn_checkpoint_save(file, m, NULL, err, sizeof err))
            fail_msg("%s", err);
        char *check[] = {TEST_PYTHON, SOURCE_DIR "/tests/keras_h5.py", "check", list, file, NULL};
        run_ok(check);
    }
    cnn_model_destroy(m);
    test_net_free(&t);
}

static void refuse(cnn_model *m, const char *file, const char *message)
{
    float *before = malloc(sizeof(float) * m->tensors[0].size);
    memcpy(before, m->tensors[0].value, sizeof(float) * m->tensors[0].size);
    char err[800];
    assert_int_equal(cnn_checkpoint_load(file, m, NULL, NULL, err, sizeof err), -1);
    if (!strstr(err, message) || !strstr(err, file))
        fail_msg("expected '%s' about %s, got: %s", message, file, err);
    assert_memory_equal(before, m->tensors[0].value, sizeof(float) * m->tensors[0].size);
    free(before);
}

static void errors_name_the_layer_and_tensor(void **state)
{
    (void)state;
    test_net base, other, bn;
    assert_int_equal(test_net_from_file(&base, SOURCE_DIR "/models/baseline.net"), 0);
    assert_int_equal(test_net_from_file(&bn, SOURCE_DIR "/models/batchnorm.net"), 0);
    assert_int_equal(test_net_from_string(&other, "network baseline\ninput 28x28x1\n"
                                                  "conv 32 5x5 relu; pool 2\n"
                                                  "conv 64 3x3 relu; pool 2\n"
                                                  "conv 64 3x3 relu\nflatten\n"
                                                  "dense 64 relu\ndense 10 softmax\n"), 0);
    cnn_model *a = cnn_reference_new(&base.ir, 1), *b = cnn_reference_new(&other.ir, 1),
              *c = cnn_reference_new(&bn.ir, 1);
    cnn_rng rng;
    cnn_rng_seed(&rng, 4);
    cnn_init_tensors(a, &rng);
    cnn_init_tensors(b, &rng);
    cnn_init_tensors(c, &rng);
    char h5[512], k3[512], text[512], err[800];
    snprintf(h5, sizeof h5, "%s/base.h5", tmpdir);
    snprintf(k3, sizeof k3, "%s/base.weights.h5", tmpdir);
    snprintf(text, sizeof text, "%s/text.h5", tmpdir);
    assert_int_equal(cnn_checkpoint_save(h5, a, NULL, err, sizeof err), 0);
    assert_int_equal(cnn_checkpoint_save(k3, a, NULL, err, sizeof err), 0);
    refuse(b, h5, "layer 'conv2d_1' weight 'conv2d_1/kernel:0' has shape 3x3x1x32, and the "
                  "network's conv2d_1/kernel is 5x5x1x32");
    refuse(b, k3, "layer 'layers/conv2d' weight '0' has shape 3x3x1x32, and the network's "
                  "conv2d_1/kernel is 5x5x1x32");
    refuse(c, h5, "layer 'conv2d_2' has 2 weights, and the network's batch_normalization_1 4");
    refuse(c, k3, "no group 'layers/batch_normalization/vars' for the network's "
                  "batch_normalization_1");
    FILE *f = fopen(text, "w");
    fputs("not HDF5\n", f);
    fclose(f);
    refuse(a, text, "not an HDF5 file");
    refuse(a, SOURCE_DIR "/nonexistent.h5", "cannot open");
    cnn_model_destroy(a);
    cnn_model_destroy(b);
    cnn_model_destroy(c);
    test_net_free(&base);
    test_net_free(&other);
    test_net_free(&bn);
}

static void write_floats(const char *path, const float *v, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(v, sizeof(float), n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void keras_itself(void **state)
{
    const char *path = *state;
    if (!keras_python[0]) {
        print_message("skipped: %s\n", keras_reason);
        skip();
    }
    test_net t;
    assert_int_equal(test_net_from_file(&t, path), 0);
    cnn_model *m = cnn_reference_new(&t.ir, IMAGES);
    cnn_rng rng;
    cnn_rng_seed(&rng, 12);
    random_weights(m, &rng, 0.2f);
    char dir[512], file[700], err[800];
    snprintf(dir, sizeof dir, "%s/keras-%s", tmpdir, t.ir.name);
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(file, sizeof file, "%s/cnnc.h5", dir);
    assert_int_equal(cnn_checkpoint_save(file, m, NULL, err, sizeof err), 0);
    snprintf(file, sizeof file, "%s/cnnc.weights.h5", dir);
    assert_int_equal(cnn_checkpoint_save(file, m, NULL, err, sizeof err), 0);
    size_t size = cnn_input_size(m), K = (size_t)m->n_classes;
    float *x = malloc(sizeof(float) * size * IMAGES);
    for (size_t i = 0; i < size * IMAGES; i++)
        x[i] = (float)cnn_rng_below(&rng, 256) * (1.0f / 255.0f);
    m->ops->forward(m, x, IMAGES, 0, NULL);
    snprintf(file, sizeof file, "%s/inputs.f32", dir);
    write_floats(file, x, size * IMAGES);
    snprintf(file, sizeof file, "%s/cnnc.f32", dir);
    write_floats(file, m->output, K * IMAGES);
    char n[16];
    snprintf(n, sizeof n, "%d", IMAGES);
    char *check[] = {keras_python, SOURCE_DIR "/tests/keras_check.py", (char *)path, dir, n, NULL};
    run_result r = run_program(check);
    if (r.status != 0)
        fail_msg("tests/keras_check.py %s: %s%s", path, r.out, r.err);
    print_message("%s: %s", t.ir.name, r.out);
    run_result_free(&r);
    /* What Keras wrote for its trained model, in both layouts: Keras' outputs. */
    snprintf(file, sizeof file, "%s/keras.f32", dir);
    size_t len;
    float *want = (float *)(void *)read_whole_file(file, &len);
    assert_non_null(want);
    assert_int_equal(len, sizeof(float) * K * IMAGES);
    const char *files[] = {"keras.h5", "keras.weights.h5"};
    for (int k = 0; k < 2; k++) {
        snprintf(file, sizeof file, "%s/%s", dir, files[k]);
        if (cnn_checkpoint_load(file, m, NULL, NULL, err, sizeof err))
            fail_msg("%s", err);
        m->ops->forward(m, x, IMAGES, 0, NULL);
        for (size_t i = 0; i < K * IMAGES; i++)
            if (fabsf(m->output[i] - want[i]) > 1e-5f)
                fail_msg("%s %s: output %zu is %.9g, Keras predicted %.9g", t.ir.name, files[k],
                         i, (double)m->output[i], (double)want[i]);
    }
    free(want);
    free(x);
    cnn_model_destroy(m);
    test_net_free(&t);
}

static int cleanup(void **state)
{
    (void)state;
    if (getenv("CNNC_TEST_KEEP")) {
        fprintf(stderr, "kept %s\n", tmpdir);
        return 0;
    }
    return remove_tree(tmpdir);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    /* Keras from PyPI, made once per build directory. */
    char *venv[] = {SOURCE_DIR "/scripts/keras_venv.sh", "keras-venv", NULL};
    run_result r = run_program(venv);
    if (r.status == 0) {
        snprintf(keras_python, sizeof keras_python, "%s", r.out);
        keras_python[strcspn(keras_python, "\n")] = '\0';
    } else
        snprintf(keras_reason, sizeof keras_reason, "%s", r.err);
    run_result_free(&r);
    static const char *const models[] = {"baseline", "dropout", "l1", "l2", "batchnorm"};
    static char paths[5][256];
    struct CMUnitTest tests[11];
    int n = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(paths[i], sizeof paths[i], SOURCE_DIR "/models/%s.net", models[i]);
        tests[n++] = (struct CMUnitTest){.name = models[i], .test_func = h5py_files,
                                         .initial_state = paths[i]};
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(errors_name_the_layer_and_tensor);
    for (int i = 0; i < 5; i++)
        tests[n++] = (struct CMUnitTest){.name = models[i], .test_func = keras_itself,
                                         .initial_state = paths[i]};
    return _cmocka_run_group_tests("keras", tests, (size_t)n, NULL, cleanup);
}
