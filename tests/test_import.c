/* cnnc import against sources nobody here wrote, and against cnnc onnx:
 * - ONNX's own backend test data (Debian's libonnx-testdata, node/ and pytorch-converted/):
 *   every case is imported, its weights bound from its test data; an imported case must give
 *   the expected outputs to 1e-5 through the reference and the compiled code, a refused one
 *   must say why. The counts are printed, passed and refused by reason.
 * - round trips: every network of tests/nets/ and models/ and 40 random ones, with random
 *   weights, written by cnnc onnx and read back by cnnc import, give back the same layers and
 *   the same weights bit for bit. */
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiled.h"
#include "onnx.pb-c.h"
#include "onnx_export.h"
#include "onnx_import.h"
#include "random_net.h"
#include "reference.h"
#include "support.h"

#define ONNX_DATA "/usr/include/onnx/backend/test/data"

static char tmpdir[] = "/tmp/cnnc-import-XXXXXX";

/* ---- round trips ---- */

/* Everything the .net file says about a layer, and its tensors' names, shapes and bits. */
static void same_layer(const cnn_layer *a, const cnn_layer *b)
{
    assert_int_equal(a->type, b->type);
    assert_string_equal(a->name, b->name);
    assert_memory_equal(&a->in, &b->in, sizeof a->in);
    assert_memory_equal(&a->out, &b->out, sizeof a->out);
    assert_int_equal(a->units, b->units);
    assert_int_equal(a->kh, b->kh);
    assert_int_equal(a->kw, b->kw);
    assert_int_equal(a->sh, b->sh);
    assert_int_equal(a->sw, b->sw);
    assert_int_equal(a->pad_same, b->pad_same);
    assert_int_equal(a->use_bias, b->use_bias);
    if (a->act != b->act)
        fail_msg("%s: activation %s, imported as %s", a->name, cnn_act_name(a->act),
                 cnn_act_name(b->act));
    assert_true(a->alpha == b->alpha || a->act != CNN_ACT_LEAKY_RELU);
    assert_int_equal(a->pool, b->pool);
    assert_true(a->rate == b->rate);
    assert_true(a->momentum == b->momentum);
    assert_true(a->eps == b->eps);
    assert_int_equal(a->n_params, b->n_params);
}

static void round_trip(void **state)
{
    const char *path = *state;
    test_net t, u;
    if (test_net_from_file(&t, path)) {
        cnn_diag_print(stderr, &t.src, &t.diag);
        fail_msg("cnnc refuses %s", path);
    }
    cnn_model *a = cnn_reference_new(&t.ir, 1);
    assert_non_null(a);
    cnn_rng rng;
    cnn_rng_seed(&rng, 5);
    random_weights(a, &rng, 0.3f);
    cnn_arena arena = {0};
    uint8_t *bytes;
    size_t len;
    assert_int_equal(cnn_onnx_export(&t.ir, a, "test", &arena, &bytes, &len), 0);
    cnn_import imp;
    char err[800];
    if (cnn_onnx_import(bytes, len, "x.onnx", NULL, 0, "test", &arena, &imp, err, sizeof err))
        fail_msg("%s: cnnc import refuses what cnnc onnx wrote: %s", path, err);
    assert_false(imp.input_nchw); /* cnnc onnx's input is channels last */
    assert_true(imp.classifier);
    if (test_net_from_string(&u, imp.net)) {
        cnn_diag_print(stderr, &u.src, &u.diag);
        fail_msg("%s: the imported .net does not check:\n%s", path, imp.net);
    }
    assert_string_equal(t.ir.name, u.ir.name);
    assert_memory_equal(&t.ir.input, &u.ir.input, sizeof t.ir.input);
    assert_int_equal(t.ir.n_layers, u.ir.n_layers);
    for (int l = 0; l < t.ir.n_layers; l++)
        same_layer(&t.ir.layers[l], &u.ir.layers[l]);
    cnn_model *b = cnn_reference_new(&u.ir, 1);
    assert_non_null(b);
    assert_int_equal(cnn_import_set_tensors(&imp, &u.ir, b, err, sizeof err), 0);
    assert_true(cnn_fingerprint(a) == cnn_fingerprint(b));
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (int k = 0; k < a->n_tensors; k++) {
        assert_string_equal(a->tensors[k].name, b->tensors[k].name);
        assert_int_equal(a->tensors[k].size, b->tensors[k].size);
        assert_memory_equal(a->tensors[k].value, b->tensors[k].value,
                            sizeof(float) * a->tensors[k].size);
    }
    cnn_model_destroy(a);
    cnn_model_destroy(b);
    cnn_arena_free(&arena);
    test_net_free(&u);
    test_net_free(&t);
}

/* ---- ONNX's backend test data ---- */

typedef struct reason {
    char text[160];
    int count;
    char example[96];
} reason;

static reason reasons[400];
static int n_reasons, n_passed, n_refused, n_cases;
static char passed_names[8192];

/* The reason without the node's own name, so that cases group: "(Conv): attribute ...". */
static void count_refusal(const char *name, const char *err)
{
    const char *p = strstr(err, "' (");
    const char *key = p && strncmp(err, "node '", 6) == 0 ? p + 2 : err;
    /* Quoted names and numbers vary by case: the words before the first number, with the
     * quoted names left out, make the reason. */
    char text[160];
    size_t k = 0;
    int quoted = 0;
    for (const char *q = key; *q && k + 1 < sizeof text; q++) {
        if (*q == '\'') {
            quoted = !quoted;
            if (quoted)
                text[k++] = '_';
            continue;
        }
        if (!quoted && ((*q >= '0' && *q <= '9') || *q == '[' || *q == '-'))
            break;
        if (!quoted)
            text[k++] = *q;
    }
    text[k] = '\0';
    n_refused++;
    for (int i = 0; i < n_reasons; i++)
        if (strcmp(reasons[i].text, text) == 0) {
            reasons[i].count++;
            return;
        }
    if (n_reasons < (int)(sizeof reasons / sizeof reasons[0])) {
        memcpy(reasons[n_reasons].text, text, sizeof text);
        snprintf(reasons[n_reasons].example, sizeof reasons[n_reasons].example, "%.95s", name);
        reasons[n_reasons++].count = 1;
    }
}

static Onnx__TensorProto *read_tensor(const char *path, uint8_t **bytes, size_t *len)
{
    *bytes = (uint8_t *)read_whole_file(path, len);
    return *bytes ? onnx__tensor_proto__unpack(NULL, *len, *bytes) : NULL;
}

static const float *tensor_floats(const Onnx__TensorProto *t, int64_t *n)
{
    *n = 1;
    for (size_t i = 0; i < t->n_dims; i++)
        *n *= t->dims[i];
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return NULL;
    if (t->has_raw_data && t->raw_data.len == (size_t)*n * 4)
        return (const float *)(const void *)t->raw_data.data;
    return t->n_float_data == (size_t)*n ? t->float_data : NULL;
}

/* The model's output for the case's input, through model m (batch n): compared with the
 * expected output (in ONNX's layout) to 1e-5. */
static void check_outputs(const char *name, const char *backend, cnn_model *m, const cnn_import *imp,
                          const float *x_onnx, int n, const float *want, int64_t n_want,
                          const cnn_ir *ir)
{
    size_t size = cnn_input_size(m);
    float *x = malloc(sizeof(float) * size * (size_t)n);
    assert_non_null(x);
    int H = ir->input.h, W = ir->input.w, C = ir->input.c;
    for (int b = 0; b < n; b++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                for (int c = 0; c < C; c++) {
                    size_t hwc = (((size_t)b * H + y) * W + xx) * C + c;
                    size_t chw = (((size_t)b * C + c) * H + y) * W + xx;
                    x[hwc] = x_onnx[imp->input_nchw ? chw : hwc];
                }
    m->ops->forward(m, x, n, 0, NULL);
    const cnn_shape o = ir->layers[ir->n_layers - 1].out;
    assert_int_equal((int64_t)n * m->n_classes, n_want);
    for (int b = 0; b < n; b++)
        for (int y = 0; y < o.h; y++)
            for (int xx = 0; xx < o.w; xx++)
                for (int c = 0; c < o.c; c++) {
                    size_t hwc = (((size_t)b * o.h + y) * o.w + xx) * o.c + c;
                    size_t chw = (((size_t)b * o.c + c) * o.h + y) * o.w + xx;
                    float got = m->output[hwc], exp = want[imp->output_nchw ? chw : hwc];
                    if (!close_enough(got, exp, 1e-5, 1e-5))
                        fail_msg("%s (%s): output %zu is %.9g, ONNX's test data says %.9g", name,
                                 backend, hwc, (double)got, (double)exp);
                }
    free(x);
}

static void backend_case(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
    size_t len;
    uint8_t *bytes = (uint8_t *)read_whole_file(path, &len);
    if (!bytes)
        return;
    n_cases++;
    Onnx__ModelProto *model = onnx__model_proto__unpack(NULL, len, bytes);
    assert_non_null(model);
    /* The graph's inputs without an initializer, in order: input_K.pb of test_data_set_0. */
    const Onnx__GraphProto *g = model->graph;
    cnn_onnx_binding bind[16];
    uint8_t *bind_bytes[16] = {0};
    int n_bind = 0, k = 0;
    for (size_t i = 0; i < g->n_input; i++) {
        int init = 0;
        for (size_t j = 0; j < g->n_initializer; j++)
            init |= strcmp(g->initializer[j]->name, g->input[i]->name) == 0;
        if (init)
            continue;
        if (k > 0 && n_bind < 16) {
            char p[1100];
            snprintf(p, sizeof p, "%s/%s/test_data_set_0/input_%d.pb", dir, name, k);
            bind[n_bind].name = g->input[i]->name;
            bind_bytes[n_bind] = (uint8_t *)read_whole_file(p, &bind[n_bind].len);
            bind[n_bind].bytes = bind_bytes[n_bind];
            if (bind_bytes[n_bind])
                n_bind++;
        }
        k++;
    }
    cnn_arena arena = {0};
    cnn_import imp;
    char err[800];
    if (cnn_onnx_import(bytes, len, "model.onnx", bind, n_bind, "test", &arena, &imp, err,
                        sizeof err)) {
        count_refusal(name, err);
        goto done;
    }
    char net[1100];
    snprintf(net, sizeof net, "%s/%s.net", tmpdir, name);
    FILE *f = fopen(net, "w");
    assert_non_null(f);
    fputs(imp.net, f);
    assert_int_equal(fclose(f), 0);
    test_net t;
    if (test_net_from_file(&t, net)) {
        cnn_diag_print(stderr, &t.src, &t.diag);
        fail_msg("%s/%s: imported, and the .net made of it does not check:\n%s", dir, name,
                 imp.net);
    }
    /* The case's data input and expected output. */
    char p[1100];
    uint8_t *in_bytes, *out_bytes;
    size_t in_len, out_len;
    snprintf(p, sizeof p, "%s/%s/test_data_set_0/input_0.pb", dir, name);
    Onnx__TensorProto *xin = read_tensor(p, &in_bytes, &in_len);
    snprintf(p, sizeof p, "%s/%s/test_data_set_0/output_0.pb", dir, name);
    Onnx__TensorProto *xout = read_tensor(p, &out_bytes, &out_len);
    assert_non_null(xin);
    assert_non_null(xout);
    int64_t n_in, n_out;
    const float *xv = tensor_floats(xin, &n_in), *want = tensor_floats(xout, &n_out);
    assert_non_null(xv);
    assert_non_null(want);
    int n = (int)xin->dims[0];
    assert_int_equal((int64_t)n * (int64_t)cnn_shape_size(t.ir.input), n_in);

    cnn_model *ref = cnn_reference_new(&t.ir, n);
    assert_non_null(ref);
    if (cnn_import_set_tensors(&imp, &t.ir, ref, err, sizeof err))
        fail_msg("%s: %s", name, err);
    check_outputs(name, "reference", ref, &imp, xv, n, want, n_out, &t.ir);

    void *so;
    cnn_model *gen = compiled_load(net, tmpdir, t.ir.name, n, &so);
    assert_int_equal(cnn_copy_tensors(gen, ref), 0);
    check_outputs(name, "compiled", gen, &imp, xv, n, want, n_out, &t.ir);
    dlclose(so);
    cnn_model_destroy(ref);
    onnx__tensor_proto__free_unpacked(xin, NULL);
    onnx__tensor_proto__free_unpacked(xout, NULL);
    free(in_bytes);
    free(out_bytes);
    test_net_free(&t);
    n_passed++;
    size_t used = strlen(passed_names);
    snprintf(passed_names + used, sizeof passed_names - used, "%s%s", used ? " " : "", name);
done:
    for (int i = 0; i < n_bind; i++)
        free(bind_bytes[i]);
    cnn_arena_free(&arena);
    onnx__model_proto__free_unpacked(model, NULL);
    free(bytes);
}

static int by_count(const void *a, const void *b)
{
    return ((const reason *)b)->count - ((const reason *)a)->count;
}

static void onnx_backend_test_data(void **state)
{
    (void)state;
    struct stat st;
    if (stat(ONNX_DATA "/node", &st) != 0)
        skip(); /* Debian's libonnx-testdata: scripts/deps.sh test installs it */
    const char *dirs[] = {ONNX_DATA "/node", ONNX_DATA "/pytorch-converted"};
    for (int d = 0; d < 2; d++) {
        char **cases = list_files(dirs[d], "");
        for (int i = 0; cases && cases[i]; i++) {
            const char *base = strrchr(cases[i], '/') + 1;
            if (base[0] != '.')
                backend_case(dirs[d], base);
        }
        free_names(cases);
    }
    qsort(reasons, (size_t)n_reasons, sizeof reasons[0], by_count);
    printf("ONNX backend test data: %d cases, %d imported and matched (reference and compiled "
           "code, 1e-5), %d refused:\n", n_cases, n_passed, n_refused);
    for (int i = 0; i < n_reasons; i++)
        printf("  %4d  %s (e.g. %s)\n", reasons[i].count, reasons[i].text, reasons[i].example);
    printf("imported: %s\n", passed_names);
    assert_int_equal(n_passed + n_refused, n_cases);
    assert_true(n_passed > 0);
}

static int cleanup(void **state)
{
    (void)state;
    if (!getenv("CNNC_TEST_KEEP"))
        remove_tree(tmpdir);
    return 0;
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    /* The compiled cases run on two threads (and the test links libcnnrt's pool for them). */
    char err[160];
    if (cnn_set_threads(2, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct CMUnitTest *tests;
    char **paths;
    int n = network_tests(round_trip, 41, &tests, &paths);
    char **random = random_net_files("import", 404, 40);
    for (int i = 0; i < 40; i++)
        tests[n++] = (struct CMUnitTest)cmocka_unit_test_prestate(round_trip, random[i]);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(onnx_backend_test_data);
    int failed = _cmocka_run_group_tests("import", tests, (size_t)n, NULL, cleanup);
    free_names(random);
    free_names(paths);
    free(tests);
    cnn_set_threads(1, err, sizeof err);
    return failed;
}
