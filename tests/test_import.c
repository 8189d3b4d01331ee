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
    assert_int_equal(a->n_inputs, b->n_inputs); /* the same graph: what each layer reads */
    for (int k = 0; k < a->n_inputs; k++)
        assert_int_equal(a->inputs[k], b->inputs[k]);
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
    assert_int_equal(imp.classifier, t.ir.train.loss == CNN_LOSS_CROSSENTROPY);
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

/* ---- the command line ---- */

/* cnnc onnx, then cnnc import with a checkpoint, as a user runs them: the same weights; and
 * what import refuses, it refuses with status 1, a reason naming the file, and no output. */
static void import_command_line(void **state)
{
    (void)state;
    const char *net = SOURCE_DIR "/models/batchnorm.net";
    test_net t;
    assert_int_equal(test_net_from_file(&t, net), 0);
    cnn_model *a = cnn_reference_new(&t.ir, 1);
    cnn_rng rng;
    cnn_rng_seed(&rng, 3);
    random_weights(a, &rng, 0.3f);
    char ckpt[512], model[512], out_net[512], out_ckpt[512], err[600];
    snprintf(ckpt, sizeof ckpt, "%s/bn.ckpt", tmpdir);
    snprintf(model, sizeof model, "%s/bn.onnx", tmpdir);
    snprintf(out_net, sizeof out_net, "%s/bn-imported.net", tmpdir);
    snprintf(out_ckpt, sizeof out_ckpt, "%s/bn-imported.ckpt", tmpdir);
    assert_int_equal(cnn_checkpoint_save(ckpt, a, NULL, err, sizeof err), 0);
    char *to_onnx[] = {CNNC_PATH, "onnx", (char *)net, "--weights", ckpt, "-o", model, NULL};
    run_result r = run_program(to_onnx);
    assert_int_equal(r.status, 0);
    run_result_free(&r);
    char *import[] = {CNNC_PATH, "import", model, "-o", out_net, "--weights", out_ckpt, NULL};
    r = run_program(import);
    if (r.status != 0)
        fail_msg("cnnc import: %s", r.err);
    run_result_free(&r);
    test_net u;
    assert_int_equal(test_net_from_file(&u, out_net), 0);
    cnn_model *b = cnn_reference_new(&u.ir, 1);
    assert_int_equal(cnn_checkpoint_load(out_ckpt, b, NULL, NULL, err, sizeof err), 0);
    for (int k = 0; k < a->n_tensors; k++)
        assert_memory_equal(a->tensors[k].value, b->tensors[k].value,
                            sizeof(float) * a->tensors[k].size);

    /* Refusals. */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.net", tmpdir);
    struct {
        char *file;
        int status;
        const char *message;
    } cases[] = {
        {ckpt, 1, "not an ONNX model"},
        {"/nonexistent/m.onnx", 1, "/nonexistent/m.onnx: cannot read the file"},
        {SOURCE_DIR "/../nonexistent.onnx", 1, "cannot read the file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[] = {CNNC_PATH, "import", cases[i].file, "-o", bad, NULL};
        r = run_program(argv);
        assert_int_equal(r.status, cases[i].status);
        if (!strstr(r.err, cases[i].message))
            fail_msg("cnnc import %s: expected '%s' in: %s", cases[i].file, cases[i].message,
                     r.err);
        assert_int_equal(access(bad, F_OK), -1); /* no output */
        run_result_free(&r);
    }
    char *no_out[] = {CNNC_PATH, "import", model, NULL};
    r = run_program(no_out);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "no output file"));
    run_result_free(&r);
    /* A node cnnc has no layer for: ONNX's own test case, named with its op. */
    char *unsupported[] = {CNNC_PATH, "import", ONNX_DATA "/node/test_abs/model.onnx", "-o", bad,
                           NULL};
    if (access(unsupported[2], R_OK) == 0) {
        r = run_program(unsupported);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "test_abs/model.onnx: "));
        run_result_free(&r);
    }
    cnn_model_destroy(a);
    cnn_model_destroy(b);
    test_net_free(&u);
    test_net_free(&t);
}

/* A network without a loss: train and eval refuse it, predict prints every output, the
 * reference's. */
static void a_network_without_a_loss_is_only_run(void **state)
{
    (void)state;
    const char *net = SOURCE_DIR "/tests/run_only/dense_outputs.net";
    test_net t;
    assert_int_equal(test_net_from_file(&t, net), 0);
    cnn_model *m = cnn_reference_new(&t.ir, 3);
    cnn_rng rng;
    cnn_rng_seed(&rng, 8);
    random_weights(m, &rng, 0.3f);
    char ckpt[512], images[512], err[600];
    snprintf(ckpt, sizeof ckpt, "%s/dense_outputs.ckpt", tmpdir);
    snprintf(images, sizeof images, "%s/dense_outputs-images", tmpdir);
    assert_int_equal(cnn_checkpoint_save(ckpt, m, NULL, err, sizeof err), 0);
    uint8_t bytes[3 * 12];
    for (int i = 0; i < 3 * 12; i++)
        bytes[i] = (uint8_t)(i * 7 + 3);
    assert_int_equal(write_idx_images(images, 3, 1, 1, 12, bytes, NULL), 0);
    const char *cmds[] = {"train", "eval"};
    for (int i = 0; i < 2; i++) {
        char *argv[] = {CNNC_PATH, "run", (char *)net, (char *)cmds[i], "--test-images", images,
                        "--train-images", images, NULL};
        run_result r = run_program(argv);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "has no training loss"));
        run_result_free(&r);
    }
    char *predict[] = {CNNC_PATH, "run", (char *)net, "predict", "--load", ckpt, "--test-images",
                       images, NULL};
    run_result r = run_program(predict);
    if (r.status != 0)
        fail_msg("predict: %s", r.err);
    /* The images as libcnnrt reads them for every command. */
    cnn_dataset ds;
    assert_int_equal(cnn_dataset_load(&ds, images, NULL, err, sizeof err), 0);
    float x[3 * 12];
    int labels[3];
    cnn_dataset_batch(&ds, (int[]){0, 1, 2}, 3, x, labels);
    cnn_dataset_free(&ds);
    m->ops->forward(m, x, 3, 0, NULL);
    const char *line = strchr(r.out, '\n');
    assert_non_null(line);
    assert_int_equal(strncmp(r.out, "index,output_0,output_1,output_2\n", 33), 0);
    for (int b = 0; b < 3; b++) {
        int index;
        float v[3];
        assert_int_equal(sscanf(line + 1, "%d,%g,%g,%g", &index, &v[0], &v[1], &v[2]), 4);
        assert_int_equal(index, b);
        for (int j = 0; j < 3; j++)
            if (v[j] != m->output[b * 3 + j]) /* printed with 9 digits: exact */
                fail_msg("image %d output %d: predict printed %.9g, the reference %.9g", b, j,
                         (double)v[j], (double)m->output[b * 3 + j]);
        line = strchr(line + 1, '\n');
        assert_non_null(line);
    }
    run_result_free(&r);
    cnn_model_destroy(m);
    test_net_free(&t);
}

/* ---- networks from PyTorch ---- */

static void check_outputs(const char *name, const char *backend, cnn_model *m,
                          const cnn_import *imp, const float *x_onnx, int n, const float *want,
                          int64_t n_want, const cnn_ir *ir);

static float *read_floats(const char *path, size_t n)
{
    size_t len;
    char *bytes = read_whole_file(path, &len);
    if (!bytes || len != n * sizeof(float))
        fail_msg("%s: %zu bytes, expected %zu", path, bytes ? len : 0, n * sizeof(float));
    return (float *)(void *)bytes;
}

/* tests/pytorch_models.py's networks, exported by torch.onnx.export and imported by `cnnc
 * import` as a user runs it: the reference and the compiled code predict what PyTorch
 * predicted, to 1e-5; the network PyTorch pads as TensorFlow's same padding does not is
 * refused. */
static void pytorch_networks(void **state)
{
    (void)state;
    char dir[512], index[600];
    snprintf(dir, sizeof dir, "%s/pytorch", tmpdir);
    char *make[] = {TEST_PYTHON, SOURCE_DIR "/tests/pytorch_models.py", dir, NULL};
    run_result r = run_program(make);
    if (r.status == 77) {
        print_message("skipped: %s", r.err);
        run_result_free(&r);
        skip();
    }
    if (r.status != 0)
        fail_msg("tests/pytorch_models.py: %s", r.err);
    print_message("%s", r.out);
    run_result_free(&r);
    snprintf(index, sizeof index, "%s/index.txt", dir);
    FILE *f = fopen(index, "r");
    assert_non_null(f);
    char name[64], expect[16];
    int rank, n_nets = 0;
    while (fscanf(f, "%63s %d", name, &rank) == 2) {
        int64_t dims[4] = {1, 1, 1, 1}, total = 1;
        for (int i = 0; i < rank; i++) {
            long long d;
            assert_int_equal(fscanf(f, "%lld", &d), 1);
            dims[i] = d;
            total *= d;
        }
        assert_int_equal(fscanf(f, "%15s", expect), 1);
        char model[700], net[700], ckpt[700], in[700], out[700];
        snprintf(model, sizeof model, "%s/%s.onnx", dir, name);
        snprintf(net, sizeof net, "%s/%s.net", dir, name);
        snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", dir, name);
        snprintf(in, sizeof in, "%s/%s.in", dir, name);
        snprintf(out, sizeof out, "%s/%s.out", dir, name);
        char *import[] = {CNNC_PATH, "import", model, "-o", net, "--weights", ckpt, NULL};
        r = run_program(import);
        if (strcmp(expect, "refuse") == 0) {
            if (r.status != 1 || !strstr(r.err, "(Conv): pads"))
                fail_msg("%s: cnnc import should refuse its padding (status %d): %s", name,
                         r.status, r.err);
            run_result_free(&r);
            continue;
        }
        if (r.status != 0)
            fail_msg("%s: cnnc import: %s", name, r.err);
        run_result_free(&r);
        test_net t;
        if (test_net_from_file(&t, net)) {
            cnn_diag_print(stderr, &t.src, &t.diag);
            fail_msg("%s: the imported network does not check", name);
        }
        int n = (int)dims[0];
        float *x = read_floats(in, (size_t)total);
        size_t n_out = (size_t)n * (size_t)cnn_shape_size(t.ir.layers[t.ir.n_layers - 1].out);
        float *want = read_floats(out, n_out);
        /* The importer's own layout flags: the test re-reads them from the model. */
        size_t len;
        uint8_t *bytes = (uint8_t *)read_whole_file(model, &len);
        cnn_arena arena = {0};
        cnn_import imp;
        char err[800];
        assert_int_equal(cnn_onnx_import(bytes, len, name, NULL, 0, "test", &arena, &imp, err,
                                         sizeof err), 0);
        cnn_model *ref = cnn_reference_new(&t.ir, n);
        assert_non_null(ref);
        assert_int_equal(cnn_checkpoint_load(ckpt, ref, NULL, NULL, err, sizeof err), 0);
        check_outputs(name, "reference", ref, &imp, x, n, want, (int64_t)n_out, &t.ir);
        void *so;
        char cname[80];
        snprintf(cname, sizeof cname, "%s", t.ir.name);
        char gen_dir[600];
        snprintf(gen_dir, sizeof gen_dir, "%s/%s-build", dir, name);
        mkdir(gen_dir, 0777);
        cnn_model *gen = compiled_load(net, gen_dir, cname, n, &so);
        assert_int_equal(cnn_copy_tensors(gen, ref), 0);
        check_outputs(name, "compiled", gen, &imp, x, n, want, (int64_t)n_out, &t.ir);
        dlclose(so);
        cnn_model_destroy(ref);
        cnn_arena_free(&arena);
        free(bytes), free(x), free(want);
        test_net_free(&t);
        n_nets++;
    }
    fclose(f);
    print_message("PyTorch: %d networks imported, predicting what PyTorch predicted to 1e-5\n",
                  n_nets);
    assert_true(n_nets >= 6);
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
static void check_outputs(const char *name, const char *backend, cnn_model *m,
                          const cnn_import *imp, const float *x_onnx, int n, const float *want,
                          int64_t n_want, const cnn_ir *ir)
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
    char **run_only = run_only_nets(), **graphs = graph_nets(), **models = graph_models();
    int n = network_tests(round_trip,
                          44 + count_names(run_only) + count_names(graphs) + count_names(models),
                          &tests, &paths);
    n += append_tests(tests + n, round_trip, run_only);
    n += append_tests(tests + n, round_trip, graphs);
    n += append_tests(tests + n, round_trip, models);
    char **random = random_net_files("import", 404, 40);
    for (int i = 0; i < 40; i++)
        tests[n++] = (struct CMUnitTest)cmocka_unit_test_prestate(round_trip, random[i]);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(import_command_line);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(pytorch_networks);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(a_network_without_a_loss_is_only_run);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(onnx_backend_test_data);
    int failed = _cmocka_run_group_tests("import", tests, (size_t)n, NULL, cleanup);
    free_names(random);
    free_names(run_only);
    free_names(graphs);
    free_names(models);
    free_names(paths);
    free(tests);
    cnn_set_threads(1, err, sizeof err);
    return failed;
}
