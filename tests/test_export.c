/* The standalone export (cnnc export) against the reference. Every network of tests/nets/
 * and models/, and random ones, with random weights saved as a checkpoint: the float export,
 * built as a user would (-std=c99 -pedantic -Wdouble-promotion -Werror, gcc and clang, and
 * arm-none-eabi-gcc for a Cortex-M4 where it is installed), must give the reference's
 * probabilities to 1e-5; the int8 export must compute exactly what the int8 arithmetic of
 * docs/deploy.md computes, written again here with plain loops. Both files may write no
 * memory but their one workspace and may call nothing but <math.h> (and the memcpy/memset a
 * compiler may put in for loops); the workspace is the size the plan says. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy.h"
#include "memplan.h"
#include "quantize.h"
#include "random_net.h"
#include "reference.h"
#include "support.h"

#define IMAGES 6
#define CALIBRATION 40

static char tmpdir[] = "/tmp/cnnc-export-XXXXXX";

typedef int (*predict_fn)(const float *, float *);
typedef int (*predict_u8_fn)(const unsigned char *, float *);
typedef int (*predict_ws_fn)(void *, const float *, float *);
typedef int (*predict_u8_ws_fn)(void *, const unsigned char *, float *);

typedef struct exported {
    void *so;
    predict_fn predict;
    predict_u8_fn predict_u8;
    predict_ws_fn predict_ws;
    predict_u8_ws_fn predict_u8_ws;
    long workspace_bytes;
} exported;

static void run_ok(char *const argv[], const char *what)
{
    run_result r = run_program(argv);
    if (r.status != 0)
        fail_msg("%s failed (%d):\n%s%s", what, r.status, r.out ? r.out : "", r.err ? r.err : "");
    run_result_free(&r);
}

/* The object's symbols (nm -P): defined ones must carry the network's prefix, the only
 * writable one is the workspace, and nothing outside <math.h> is called. */
static void check_symbols(const char *obj, const char *name, long workspace)
{
    char *nm[] = {TEST_NM, "-P", (char *)obj, NULL};
    run_result r = run_program(nm);
    assert_int_equal(r.status, 0);
    char prefix[96], ws[96];
    snprintf(prefix, sizeof prefix, "%s_", name);
    snprintf(ws, sizeof ws, "%s_workspace", name);
    int saw_ws = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        char sym[256], type;
        unsigned long long value = 0, size = 0;
        int got = sscanf(line, "%255s %c %llx %llx", sym, &type, &value, &size);
        if (got < 2)
            continue;
        if (type == 'U') {
            static const char *const allowed[] = {"expf", "tanhf", "memcpy", "memset", NULL};
            int ok = 0;
            for (int i = 0; allowed[i]; i++)
                ok |= strcmp(sym, allowed[i]) == 0;
            if (!ok)
                fail_msg("%s calls %s", obj, sym);
            continue;
        }
        if (sym[0] == '.') /* the compiler's own labels (.LC0: a constant) */
            continue;
        if (strncmp(sym, prefix, strlen(prefix)) != 0) {
            if (type == 't' || type == 'r' || type == 'b' || type == 'd' || type == 'T' ||
                type == 'R' || type == 'B' || type == 'D')
                fail_msg("%s defines %s without the prefix %s", obj, sym, prefix);
            continue;
        }
        if (type == 'd' || type == 'D')
            fail_msg("%s has writable data %s", obj, sym);
        if (type == 'b' || type == 'B') {
            if (strcmp(sym, ws) != 0)
                fail_msg("%s writes %s besides its workspace", obj, sym);
            if ((long)size != (workspace + 3) / 4 * 4)
                fail_msg("%s: %s has %llu bytes, the plan says %ld", obj, sym, size, workspace);
            saw_ws = 1;
        }
    }
    assert_true(saw_ws);
    run_result_free(&r);
}

static long workspace_from_header(const char *h_file, const char *name)
{
    char *text = read_whole_file(h_file, NULL);
    assert_non_null(text);
    char up[96], key[128];
    size_t i = 0;
    for (; name[i]; i++)
        up[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    up[i] = '\0';
    snprintf(key, sizeof key, "#define %s_WORKSPACE_BYTES ", up);
    const char *at = strstr(text, key);
    assert_non_null(at);
    long n = atol(at + strlen(key));
    free(text);
    return n;
}

/* cnnc export, then the builds: the other compiler and the Cortex-M4 one only check, this one
 * makes an object (for its symbols) and a shared object (to run). */
static void export_build(const char *net, const char *name, const char *tag, char **flags,
                         int all_compilers, exported *x)
{
    char c_file[512], h_file[512], obj[512], so[512], ckpt[512];
    snprintf(c_file, sizeof c_file, "%s/%s_%s.c", tmpdir, name, tag);
    snprintf(h_file, sizeof h_file, "%s/%s_%s.h", tmpdir, name, tag);
    snprintf(obj, sizeof obj, "%s/%s_%s.o", tmpdir, name, tag);
    snprintf(so, sizeof so, "%s/%s_%s.so", tmpdir, name, tag);
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", tmpdir, name);
    char *argv[32] = {CNNC_PATH, "export", (char *)net, "--weights", ckpt, "-o", c_file, "-H",
                      h_file};
    int n = 9;
    for (int i = 0; flags && flags[i]; i++)
        argv[n++] = flags[i];
    argv[n] = NULL;
    run_ok(argv, "cnnc export");
    x->workspace_bytes = workspace_from_header(h_file, name);

#define STRICT "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Wdouble-promotion", "-Werror"
    if (all_compilers && access(TEST_OTHER_CC, X_OK) == 0) {
        char *check[] = {TEST_OTHER_CC, STRICT, "-fsyntax-only", c_file, NULL};
        run_ok(check, TEST_OTHER_CC);
        /* The header alone is a valid C99 translation unit too. */
        char *hcheck[] = {TEST_OTHER_CC, STRICT, "-fsyntax-only", "-x", "c", h_file, NULL};
        run_ok(hcheck, "the header");
    }
    if (all_compilers && access(TEST_ARM_CC, X_OK) == 0) {
        char arm_obj[600];
        snprintf(arm_obj, sizeof arm_obj, "%s.arm.o", obj);
        char *arm[] = {TEST_ARM_CC, STRICT, "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
                       "-mfloat-abi=hard", "-Os", "-c", c_file, "-o", arm_obj, NULL};
        run_ok(arm, TEST_ARM_CC);
    }
    char *cc_obj[] = {TEST_CC, STRICT, "-O2", "-c", c_file, "-o", obj, NULL};
    run_ok(cc_obj, TEST_CC);
    check_symbols(obj, name, x->workspace_bytes);
    char *cc_so[] = {TEST_CC, STRICT, "-O2", "-fPIC", "-shared",
                     TEST_SANITIZE[0] ? TEST_SANITIZE : "-DCNNC_UNSANITIZED", c_file, "-o", so,
                     "-lm", NULL};
    run_ok(cc_so, TEST_CC);
    x->so = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!x->so)
        fail_msg("dlopen %s: %s", so, dlerror());
    char sym[128];
    snprintf(sym, sizeof sym, "%s_predict", name);
    x->predict = (predict_fn)(uintptr_t)dlsym(x->so, sym);
    snprintf(sym, sizeof sym, "%s_predict_u8", name);
    x->predict_u8 = (predict_u8_fn)(uintptr_t)dlsym(x->so, sym);
    snprintf(sym, sizeof sym, "%s_predict_ws", name);
    x->predict_ws = (predict_ws_fn)(uintptr_t)dlsym(x->so, sym);
    snprintf(sym, sizeof sym, "%s_predict_u8_ws", name);
    x->predict_u8_ws = (predict_u8_ws_fn)(uintptr_t)dlsym(x->so, sym);
    assert_true(x->predict && x->predict_u8 && x->predict_ws && x->predict_u8_ws);
}

/* ---- the int8 arithmetic of docs/deploy.md, as plain loops over the deploy network ---- */

static int32_t clamp_q(int64_t q, int lo)
{
    return (int32_t)(q < lo ? lo : q > 127 ? 127 : q);
}

/* The value of channel f from its accumulator: requantized, the activation, the batchnorm. */
static int32_t epilogue(const cnn_deploy_op *op, const cnn_quant_op *Q, int f, int32_t acc)
{
    int32_t q = cnn_quant_apply(acc, Q->rq[f]) + Q->pre.zero;
    q = Q->table ? Q->lut[clamp_q(q, -128) + 128] : clamp_q(q, Q->lo);
    if (op->bn)
        q = clamp_q((int64_t)cnn_quant_apply((q - Q->act.zero) * Q->bn_w[f] + Q->bn_b[f],
                                             Q->bn_rq[f]) + Q->out.zero, -128);
    return q;
}

static int32_t conv_acc(const cnn_deploy_op *op, const cnn_quant_op *Q, const int8_t *in, int oy,
                        int ox, int f)
{
    const cnn_layer *L = op->L;
    int32_t acc = Q->bias[f];
    int C = L->in.c, dw = L->type == CNN_LAYER_DWCONV;
    for (int ky = 0; ky < L->kh; ky++)
        for (int kx = 0; kx < L->kw; kx++) {
            int iy = oy * L->sh - L->pad_top + ky, ix = ox * L->sw - L->pad_left + kx;
            if (iy < 0 || iy >= L->in.h || ix < 0 || ix >= L->in.w)
                continue;
            if (dw) /* output channel f reads input channel f / multiplier */
                acc += (in[(iy * L->in.w + ix) * C + f / L->multiplier] - Q->in.zero) *
                       Q->kernel[(f * L->kh + ky) * L->kw + kx];
            else
                for (int c = 0; c < C; c++)
                    acc += (in[(iy * L->in.w + ix) * C + c] - Q->in.zero) *
                           Q->kernel[((f * L->kh + ky) * L->kw + kx) * C + c];
        }
    return acc;
}

/* Max, or the mean rounded half away from zero. */
static int32_t pool_of(const cnn_layer *P, const int32_t *v, int n)
{
    int32_t best = -128, sum = 0;
    for (int i = 0; i < n; i++) {
        best = v[i] > best ? v[i] : best;
        sum += v[i];
    }
    if (P->pool == CNN_POOL_MAX)
        return best;
    return (sum >= 0 ? sum + n / 2 : sum - n / 2) / n;
}

/* add: TFLite's, each (q - z) << 20 rescaled, the terms summed, the sum requantized; concat:
 * each input's values rescaled to the output's scale. */
static void int8_join(const cnn_deploy *dn, const cnn_deploy_op *op, const cnn_quant_op *Q,
                      const int8_t *const *ins, int8_t *out)
{
    int64_t n = dn->tensors[op->out].elems;
    if (op->kind == CNN_OP_ADD) {
        for (int64_t j = 0; j < n; j++) {
            int32_t acc = 0;
            for (int k = 0; k < op->n_in; k++)
                acc += cnn_quant_apply((ins[k][j] - Q->ins[k].zero) * (1 << 20), Q->in_rq[k]);
            out[j] = (int8_t)epilogue(op, Q, 0, acc);
        }
        return;
    }
    int C = op->L->out.c;
    for (int64_t p = 0; p < n / C; p++)
        for (int k = 0, at = 0; k < op->n_in; k++) {
            int Ck = dn->tensors[op->in[k]].shape.c;
            for (int c = 0; c < Ck; c++)
                out[p * C + at + c] = (int8_t)clamp_q(
                    (int64_t)cnn_quant_apply(ins[k][p * Ck + c] - Q->ins[k].zero, Q->in_rq[k]) +
                        Q->out.zero, -128);
            at += Ck;
        }
}

static void int8_forward(const cnn_deploy *dn, const cnn_quant *q, const uint8_t *pixels,
                         float *probs)
{
    int8_t **t = calloc((size_t)dn->n_tensors, sizeof *t);
    for (int i = 0; i < dn->n_tensors; i++)
        t[i] = calloc((size_t)dn->tensors[i].elems + 1, 1);
    for (int64_t i = 0; i < dn->tensors[0].elems; i++)
        t[0][i] = (int8_t)(pixels[i] - 128);
    for (int i = 0; i < dn->n_ops; i++) {
        const cnn_deploy_op *op = &dn->ops[i];
        const cnn_quant_op *Q = &q->op[i];
        const cnn_layer *L = op->L;
        const int8_t *in = t[op->in[0]];
        int8_t *out = t[op->out];
        if (op->kind == CNN_OP_CONV) {
            int F = L->out.c;
            const cnn_layer *P = op->pool;
            int OH = P ? P->out.h : L->out.h, OW = P ? P->out.w : L->out.w;
            int wh = P ? P->kh : 1, ww = P ? P->kw : 1, sh = P ? P->sh : 1, sw = P ? P->sw : 1;
            int32_t v[1024];
            for (int y = 0; y < OH; y++)
                for (int x = 0; x < OW; x++)
                    for (int f = 0; f < F; f++) {
                        int k = 0;
                        for (int wy = 0; wy < wh; wy++)
                            for (int wx = 0; wx < ww; wx++)
                                v[k++] = epilogue(op, Q, f, conv_acc(op, Q, in, y * sh + wy,
                                                                     x * sw + wx, f));
                        out[(y * OW + x) * F + f] = (int8_t)(P ? pool_of(P, v, k) : v[0]);
                    }
        } else if (op->kind == CNN_OP_DENSE) {
            int I = L->in.c, U = L->out.c;
            float logits[1024];
            for (int f = 0; f < U; f++) {
                int32_t acc = Q->bias[f];
                for (int j = 0; j < I; j++)
                    acc += (in[j] - Q->in.zero) * Q->kernel[f * I + j];
                if (i == dn->n_ops - 1)
                    logits[f] = (float)acc * Q->dequant[f];
                else
                    out[f] = (int8_t)epilogue(op, Q, f, acc);
            }
            if (i == dn->n_ops - 1) {
                float most = logits[0], sum = 0;
                for (int f = 1; f < U; f++)
                    most = logits[f] > most ? logits[f] : most;
                for (int f = 0; f < U; f++)
                    sum += probs[f] = expf(logits[f] - most);
                for (int f = 0; f < U; f++)
                    probs[f] /= sum;
            }
        } else if (op->kind == CNN_OP_POOL) {
            /* Taps in pad=same's padding are no values: left out of the max and the count. */
            int C = L->in.c;
            int32_t v[1024];
            for (int y = 0; y < L->out.h; y++)
                for (int x = 0; x < L->out.w; x++)
                    for (int c = 0; c < C; c++) {
                        int k = 0;
                        for (int wy = 0; wy < L->kh; wy++)
                            for (int wx = 0; wx < L->kw; wx++) {
                                int iy = y * L->sh - L->pad_top + wy;
                                int ix = x * L->sw - L->pad_left + wx;
                                if (iy >= 0 && iy < L->in.h && ix >= 0 && ix < L->in.w)
                                    v[k++] = in[(iy * L->in.w + ix) * C + c];
                            }
                        out[(y * L->out.w + x) * C + c] = (int8_t)pool_of(L, v, k);
                    }
        } else if (op->kind == CNN_OP_ADD || op->kind == CNN_OP_CONCAT) {
            const int8_t *ins[CNN_MAX_INPUTS];
            for (int k = 0; k < op->n_in; k++)
                ins[k] = t[op->in[k]];
            int8_join(dn, op, Q, ins, out);
        } else if (op->kind == CNN_OP_ACTIVATION) {
            for (int64_t j = 0; j < dn->tensors[op->in[0]].elems; j++)
                out[j] = Q->lut[in[j] + 128];
        } else {
            int C = L->in.c;
            for (int64_t j = 0; j < dn->tensors[op->in[0]].elems; j++) {
                int c = (int)(j % C);
                out[j] = (int8_t)clamp_q((int64_t)cnn_quant_apply((in[j] - Q->in.zero) * Q->kernel[c] +
                                                                  Q->bias[c], Q->rq[c]) +
                                             Q->out.zero, -128);
            }
        }
    }
    for (int i = 0; i < dn->n_tensors; i++)
        free(t[i]);
    free(t);
}

/* The deploy network of t with ref's weights, calibrated by cal (a reference model holding
 * them) on the first CALIBRATION images of the IDX file `images`, and quantized: what cnnc
 * export --int8 computes, for the checks to hold its file to. */
static void quantize_as_cnnc_does(test_net *t, cnn_model *ref, cnn_model *cal, const char *images,
                                  cnn_arena *arena, cnn_deploy *dn, cnn_quant *q)
{
    char err[600];
    cnn_dataset ds;
    cnn_quant_ranges ranges;
    assert_int_equal(cnn_dataset_load(&ds, images, NULL, err, sizeof err), 0);
    assert_int_equal(cnn_deploy_build(dn, &t->ir, ref, arena), 0);
    assert_int_equal(cnn_quant_calibrate(&ranges, &t->ir, cal, &ds, CALIBRATION, arena), 0);
    assert_int_equal(cnn_quantize(q, dn, &ranges, arena), 0);
    cnn_dataset_free(&ds);
}

/* ---- the test of one network ---- */

static void exported_close(exported *x)
{
    if (x->so)
        dlclose(x->so);
}

static void check_network(const char *path, int all_compilers)
{
    test_net t;
    if (test_net_from_file(&t, path)) {
        cnn_diag_print(stderr, &t.src, &t.diag);
        fail_msg("cnnc refuses %s", path);
    }
    const char *name = t.ir.name;
    cnn_model *ref = cnn_reference_new(&t.ir, IMAGES);
    assert_non_null(ref);
    cnn_rng rng;
    cnn_rng_seed(&rng, 5);
    random_weights(ref, &rng, 0.2f);
    char ckpt[512], images[512], err[600];
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", tmpdir, name);
    snprintf(images, sizeof images, "%s/%s-images", tmpdir, name);
    assert_int_equal(cnn_checkpoint_save(ckpt, ref, NULL, err, sizeof err), 0);

    /* Test images as bytes, as the trainers get them. */
    size_t size = cnn_input_size(ref);
    uint8_t *bytes = malloc(size * IMAGES);
    float *x = malloc(sizeof(float) * size * IMAGES);
    for (size_t i = 0; i < size * IMAGES; i++) {
        bytes[i] = (uint8_t)cnn_rng_below(&rng, 256);
        x[i] = bytes[i] * (1.0f / 255.0f);
    }
    int K = ref->n_classes;
    float *probs = malloc(sizeof(float) * (size_t)K), *again = malloc(sizeof(float) * (size_t)K);

    /* Float: the reference's probabilities to 1e-5. */
    exported fx = {0};
    export_build(path, name, "float", NULL, all_compilers, &fx);
    ref->ops->forward(ref, x, IMAGES, 0, NULL);
    void *ws = malloc((size_t)fx.workspace_bytes + 4);
    int bad = 0;
    for (int b = 0; b < IMAGES; b++) {
        int top = fx.predict(x + b * size, probs);
        for (int k = 0; k < K; k++)
            if (fabsf(probs[k] - ref->output[b * K + k]) > 1e-5f) {
                if (bad++ < 5)
                    print_error("%s image %d class %d: reference %.9g, export %.9g\n", name, b,
                                k, ref->output[b * K + k], probs[k]);
            }
        for (int k = 0; k < K; k++)
            if (probs[k] > probs[top])
                fail_msg("%s: predict returned %d, not the top class %d", name, top, k);
        /* The other three entry points give the same bits. */
        assert_int_equal(fx.predict_u8(bytes + b * size, again), top);
        assert_memory_equal(probs, again, sizeof(float) * (size_t)K);
        assert_int_equal(fx.predict_ws(ws, x + b * size, again), top);
        assert_memory_equal(probs, again, sizeof(float) * (size_t)K);
        assert_int_equal(fx.predict_u8_ws(ws, bytes + b * size, again), top);
        assert_memory_equal(probs, again, sizeof(float) * (size_t)K);
    }
    if (bad)
        fail_msg("%s: %d probabilities differ from the reference by more than 1e-5", name, bad);
    exported_close(&fx);

    if (t.ir.train.loss != CNN_LOSS_CROSSENTROPY) { /* int8 exports classifiers */
        char *argv[] = {CNNC_PATH, "export", (char *)path, "--weights", ckpt, "--int8", "-o",
                        "/nonexistent/x.c", NULL};
        run_result r = run_program(argv);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.err, "--int8 exports classifiers"));
        run_result_free(&r);
        free(ws), free(probs), free(again), free(bytes), free(x);
        cnn_model_destroy(ref);
        test_net_free(&t);
        return;
    }
    /* int8: calibrated on random images; the same arithmetic as the loops above. */
    cnn_rng_seed(&rng, 9);
    assert_int_equal(write_idx_images(images, CALIBRATION, t.ir.input.h, t.ir.input.w,
                                      t.ir.input.c, NULL, &rng), 0);
    char n_cal[16];
    snprintf(n_cal, sizeof n_cal, "%d", CALIBRATION);
    char *flags[] = {"--int8", "--calibrate", n_cal, "--train-images", images, NULL};
    exported qx = {0};
    export_build(path, name, "int8", flags, all_compilers, &qx);
    cnn_arena arena = {0};
    cnn_deploy dn;
    cnn_quant q;
    cnn_model *cal = cnn_reference_new(&t.ir, 100);
    assert_non_null(cal);
    assert_int_equal(cnn_copy_tensors(cal, ref), 0);
    quantize_as_cnnc_does(&t, ref, cal, images, &arena, &dn, &q);
    /* The plan's arena: no smaller than what is alive at once. */
    assert_true(qx.workspace_bytes >= dn.tensors[0].elems);
    bad = 0;
    float *want = malloc(sizeof(float) * (size_t)K);
    for (int b = 0; b < IMAGES; b++) {
        int top = qx.predict_u8(bytes + b * size, probs);
        int8_forward(&dn, &q, bytes + b * size, want);
        for (int k = 0; k < K; k++)
            if (fabsf(probs[k] - want[k]) > 1e-6f) {
                if (bad++ < 5)
                    print_error("%s int8 image %d class %d: the arithmetic %.9g, export %.9g\n",
                                name, b, k, want[k], probs[k]);
            }
        /* Bytes / 255 as floats quantize back to the same bytes: the same answer. */
        assert_int_equal(qx.predict(x + b * size, again), top);
        assert_memory_equal(probs, again, sizeof(float) * (size_t)K);
        assert_int_equal(qx.predict_ws(ws, x + b * size, again), top);
        assert_memory_equal(probs, again, sizeof(float) * (size_t)K);
    }
    if (bad)
        fail_msg("%s: %d int8 probabilities differ from the int8 arithmetic", name, bad);
    exported_close(&qx);
    cnn_model_destroy(cal);
    cnn_arena_free(&arena);
    free(want), free(ws), free(probs), free(again), free(bytes), free(x);
    cnn_model_destroy(ref);
    test_net_free(&t);
}

static void tree_network(void **state)
{
    check_network(*state, 1);
}

static void random_network(void **state)
{
    check_network(*state, 0);
}

/* Add and concat in int8 against the reference's real values, each op alone: its inputs
 * quantized from what the reference computed for them, the op run in the int8 arithmetic,
 * its output dequantized. Quantizing an input moves it by at most half its step; the output's
 * rounding and the fixed-point rescaling by at most one output step (with the activation of an
 * add in between: its Lipschitz constant times the rest, plus the table's step). The images
 * are the calibration's own, so no value lies outside a range. */
static void int8_joins_within_rounding(void **state)
{
    (void)state;
    static const char *const nets[] = {"residual", "fanout", "concat", "separable", "vector",
                                       "pool_same"};
    int checked = 0;
    for (size_t ni = 0; ni < sizeof nets / sizeof *nets; ni++) {
        char path[512], images[512];
        snprintf(path, sizeof path, "%s/tests/graphs/%s.net", SOURCE_DIR, nets[ni]);
        snprintf(images, sizeof images, "%s/joins-%s-images", tmpdir, nets[ni]);
        test_net t;
        assert_int_equal(test_net_from_file(&t, path), 0);
        cnn_model *ref = cnn_reference_new(&t.ir, CALIBRATION);
        assert_non_null(ref);
        cnn_rng rng;
        cnn_rng_seed(&rng, 21 + ni);
        random_weights(ref, &rng, 0.3f);
        size_t size = cnn_input_size(ref);
        uint8_t *bytes = malloc(size * CALIBRATION);
        float *x = malloc(sizeof(float) * size * CALIBRATION);
        for (size_t i = 0; i < size * CALIBRATION; i++)
            x[i] = (bytes[i] = (uint8_t)cnn_rng_below(&rng, 256)) * (1.0f / 255.0f);
        assert_int_equal(write_idx_images(images, CALIBRATION, t.ir.input.h, t.ir.input.w,
                                          t.ir.input.c, bytes, NULL), 0);
        cnn_arena arena = {0};
        cnn_deploy dn;
        cnn_quant q;
        quantize_as_cnnc_does(&t, ref, ref, images, &arena, &dn, &q);
        ref->ops->forward(ref, x, CALIBRATION, 0, NULL);
        /* Each tensor's real values: the reference's output of the layer the op that writes
         * it ends with (the input: the images). */
        const double **real = calloc((size_t)dn.n_tensors, sizeof *real);
        size_t *stride = calloc((size_t)dn.n_tensors, sizeof *stride);
        double *input = malloc(sizeof(double) * size * CALIBRATION);
        for (size_t i = 0; i < size * CALIBRATION; i++)
            input[i] = x[i];
        real[0] = input;
        stride[0] = size;
        for (int i = 0; i < dn.n_ops; i++) {
            const cnn_layer *last = dn.ops[i].layers[dn.ops[i].n_layers - 1];
            real[dn.ops[i].out] = cnn_reference_values(ref, (int)(last - t.ir.layers), 0);
            stride[dn.ops[i].out] = (size_t)cnn_shape_size(last->out);
        }
        for (int i = 0; i < dn.n_ops; i++) {
            const cnn_deploy_op *op = &dn.ops[i];
            const cnn_quant_op *Q = &q.op[i];
            if (op->kind != CNN_OP_ADD && op->kind != CNN_OP_CONCAT)
                continue;
            int64_t n = dn.tensors[op->out].elems;
            int8_t *ins[CNN_MAX_INPUTS], *out = malloc((size_t)n);
            for (int k = 0; k < op->n_in; k++)
                ins[k] = malloc((size_t)dn.tensors[op->in[k]].elems);
            double lip = op->act == CNN_ACT_LEAKY_RELU ? fmax(1, fabs(op->alpha)) : 1;
            for (int b = 0; b < CALIBRATION; b++) {
                double in_error = 0; /* add: the inputs' rounding, summed */
                for (int k = 0; k < op->n_in; k++) {
                    int tk = op->in[k];
                    cnn_qparams P = q.tensor[tk];
                    for (int64_t j = 0; j < dn.tensors[tk].elems; j++)
                        ins[k][j] = (int8_t)fmin(127, fmax(-128, lround(real[tk][b * stride[tk] + j] /
                                                                        P.scale) + P.zero));
                    in_error += P.scale / 2;
                }
                int8_join(&dn, op, Q, (const int8_t *const *)ins, out);
                const double *want = real[op->out] + b * stride[op->out];
                int C = op->L->out.c;
                for (int64_t j = 0; j < n; j++) {
                    double bound = Q->out.scale;
                    if (op->kind == CNN_OP_ADD)
                        bound += lip * (in_error + (Q->table ? Q->pre.scale : 0));
                    else { /* the input channel j comes from */
                        int c = (int)(j % C), k = 0;
                        while (c >= dn.tensors[op->in[k]].shape.c)
                            c -= dn.tensors[op->in[k++]].shape.c;
                        bound += q.tensor[op->in[k]].scale / 2;
                    }
                    double got = Q->out.scale * (out[j] - Q->out.zero);
                    if (fabs(got - want[j]) > bound * (1 + 1e-9))
                        fail_msg("%s %s image %d value %ld: int8 %.6g, reference %.6g, more than "
                                 "%.3g apart", nets[ni], op->L->name, b, (long)j, got, want[j],
                                 bound);
                    checked++;
                }
            }
            for (int k = 0; k < op->n_in; k++)
                free(ins[k]);
            free(out);
        }
        free(real), free(stride), free(input), free(bytes), free(x);
        cnn_arena_free(&arena);
        cnn_model_destroy(ref);
        test_net_free(&t);
    }
    print_message("%d int8 values of add and concat within their rounding bound\n", checked);
    assert_true(checked > 1000);
}

/* ---- the pieces, against hand computation ---- */

static void requantization_rounds_half_up(void **state)
{
    (void)state;
    cnn_requant half = cnn_quant_multiplier(0.5);
    assert_int_equal(half.mult, 1 << 30);
    assert_int_equal(half.shift, 31);
    assert_int_equal(cnn_quant_apply(100, half), 50);
    assert_int_equal(cnn_quant_apply(3, half), 2);   /* 1.5 */
    assert_int_equal(cnn_quant_apply(-3, half), -1); /* -1.5 */
    assert_int_equal(cnn_quant_apply(-5, half), -2); /* -2.5 */
    assert_int_equal(cnn_quant_apply(-2, half), -1);
    cnn_requant third = cnn_quant_multiplier(1.0 / 3.0);
    assert_int_equal(cnn_quant_apply(300, third), 100);
    assert_int_equal(cnn_quant_apply(-301, third), -100);
    assert_int_equal(cnn_quant_apply(1000000, cnn_quant_multiplier(0.25)), 250000);
    assert_int_equal(cnn_quant_apply(-7, cnn_quant_multiplier(0.25)), -2); /* -1.75 */
    cnn_requant tiny = cnn_quant_multiplier(1e-30);
    assert_int_equal(cnn_quant_apply(INT32_MAX, tiny), 0);
    cnn_qparams p = cnn_quant_params(0.0, 2.55);
    assert_true(fabs(p.scale - 0.01) < 1e-12);
    assert_int_equal(p.zero, -128);
    p = cnn_quant_params(-1.0, 1.0); /* -128 + 1 / (2/255) = -0.5, rounded away from zero */
    assert_int_equal(p.zero, -1);
    p = cnn_quant_params(1.0, 3.0); /* widened down to 0 */
    assert_int_equal(p.zero, -128);
    assert_true(fabs(p.scale - 3.0 / 255) < 1e-12);
}

/* The baseline's arena by hand: conv1 + pool (13x13x32 floats) alive with the input (28x28)
 * and then with conv2 + pool's 5x5x64: 21632 + 6400 bytes. */
static void baseline_plan_is_the_sum_of_the_two_largest_neighbours(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_file(&t, SOURCE_DIR "/models/baseline.net"), 0);
    cnn_model *m = cnn_reference_new(&t.ir, 1);
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    cnn_init_tensors(m, &rng);
    cnn_arena arena = {0};
    cnn_deploy dn;
    assert_int_equal(cnn_deploy_build(&dn, &t.ir, m, &arena), 0);
    assert_int_equal(dn.n_ops, 5); /* two fused conv+pool, conv, dense, dense */
    assert_int_equal(cnn_deploy_plan(&dn, 4), (13 * 13 * 32 + 5 * 5 * 64) * 4);
    assert_int_equal(cnn_deploy_plan(&dn, 1), 13 * 13 * 32 + 5 * 5 * 64);
    cnn_arena_free(&arena);
    cnn_model_destroy(m);
    test_net_free(&t);
}

/* cnnc export's errors: a clear message, the right status, and no output file. */
static void refuse(char **argv, int status, const char *message, const char *out)
{
    run_result r = run_program(argv);
    if (r.status != status || !strstr(r.err, message))
        fail_msg("cnnc export: status %d, stderr '%s'; expected %d and '%s'", r.status, r.err,
                 status, message);
    run_result_free(&r);
    if (out && access(out, F_OK) == 0)
        fail_msg("cnnc export left %s after an error", out);
}

static void export_errors_and_class_names(void **state)
{
    (void)state;
    char ckpt[512], other[512], out[512], names[512], bad_names[512], so[512];
    snprintf(ckpt, sizeof ckpt, "%s/errs.ckpt", tmpdir);
    snprintf(other, sizeof other, "%s/errs-other.ckpt", tmpdir);
    snprintf(out, sizeof out, "%s/errs.c", tmpdir);
    snprintf(names, sizeof names, "%s/names.txt", tmpdir);
    snprintf(bad_names, sizeof bad_names, "%s/bad-names.txt", tmpdir);
    snprintf(so, sizeof so, "%s/errs.so", tmpdir);
    const char *net = SOURCE_DIR "/tests/nets/dense_only.net";
    test_net t, u;
    assert_int_equal(test_net_from_file(&t, net), 0);
    assert_int_equal(test_net_from_file(&u, SOURCE_DIR "/tests/nets/leaky_dense.net"), 0);
    cnn_model *m = cnn_reference_new(&t.ir, 1), *mu = cnn_reference_new(&u.ir, 1);
    cnn_rng rng;
    cnn_rng_seed(&rng, 2);
    cnn_init_tensors(m, &rng);
    cnn_init_tensors(mu, &rng);
    char err[600];
    assert_int_equal(cnn_checkpoint_save(ckpt, m, NULL, err, sizeof err), 0);
    assert_int_equal(cnn_checkpoint_save(other, mu, NULL, err, sizeof err), 0);
    FILE *f = fopen(names, "w");
    assert_non_null(f);
    fputs("cat\nquote \" and back\\slash\n\ndog\n", f); /* a blank line is skipped */
    assert_int_equal(fclose(f), 0);
    f = fopen(bad_names, "w");
    assert_non_null(f);
    fputs("one\ntwo\n", f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(t.ir.n_classes, 3);

    char *no_weights[] = {CNNC_PATH, "export", (char *)net, "-o", out, NULL};
    refuse(no_weights, 2, "no weights (--weights W.ckpt)", out);
    char *wrong_net[] = {CNNC_PATH, "export", (char *)net, "--weights", other, "-o", out, NULL};
    refuse(wrong_net, 1, other, out);
    char *missing[] = {CNNC_PATH, "export", (char *)net, "--weights", "/nonexistent.ckpt", "-o",
                       out, NULL};
    refuse(missing, 1, "/nonexistent.ckpt", out);
    char *few_names[] = {CNNC_PATH, "export", (char *)net, "--weights", ckpt, "--classes",
                         bad_names, "-o", out, NULL};
    refuse(few_names, 1, "names 2 classes, the network has 3", out);
    char *calib[] = {CNNC_PATH, "export", (char *)net, "--weights", ckpt, "--calibrate", "10",
                     "-o", out, NULL};
    refuse(calib, 2, "are for --int8", out);
    char *no_data[] = {CNNC_PATH, "export", (char *)net, "--weights", ckpt, "--int8",
                       "--train-images", "/nonexistent-images", "-o", out, NULL};
    refuse(no_data, 1, "/nonexistent-images", out);
    char *bad_n[] = {CNNC_PATH, "export", (char *)net, "--weights", ckpt, "--int8",
                     "--calibrate", "many", "-o", out, NULL};
    refuse(bad_n, 2, "--calibrate needs a number of images", out);

    /* The class names, escaped, in the file. */
    char *ok[] = {CNNC_PATH, "export", (char *)net, "--weights", ckpt, "--classes", names, "-o",
                  out, NULL};
    run_ok(ok, "cnnc export --classes");
    char *cc[] = {TEST_CC, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-fPIC",
                  "-shared", out, "-o", so, "-lm", NULL};
    run_ok(cc, TEST_CC);
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    /* char [3][width]: width is the longest name and its NUL. */
    const char *quoted = "quote \" and back\\slash", *cls = dlsym(h, "dense_only_class_names");
    size_t width = strlen(quoted) + 1;
    assert_non_null(cls);
    assert_string_equal(cls, "cat");
    assert_string_equal(cls + width, quoted);
    assert_string_equal(cls + 2 * width, "dog");
    dlclose(h);
    cnn_model_destroy(m);
    cnn_model_destroy(mu);
    test_net_free(&t);
    test_net_free(&u);
}

/* The planner by hand: a chain where greedy placement is worse than the bound, and one where
 * a small tensor fits in a gap. */
static void plan_by_hand(void **state)
{
    (void)state;
    /* A chain 10, 5, 9, 10 (no alignment): T0 and T3 share offset 0, T2 goes above T3 at
     * 10, T1 above both at 19: 24 bytes, where the bound is 9 + 10 = 19. */
    cnn_plan_tensor t[4] = {{10, 0, 1, 0}, {5, 1, 2, 0}, {9, 2, 3, 0}, {10, 3, 3, 0}};
    assert_int_equal(cnn_plan_arena(t, 4, 1), 24);
    assert_int_equal(t[0].offset, 0);
    assert_int_equal(t[3].offset, 0);
    assert_int_equal(t[2].offset, 10);
    assert_int_equal(t[1].offset, 19);
    assert_int_equal(cnn_plan_lower_bound(t, 4), 19);
    /* Three tensors alive at once, then a fourth after the first dies: it reuses its bytes. */
    cnn_plan_tensor u[4] = {{100, 0, 1, 0}, {50, 0, 2, 0}, {30, 1, 2, 0}, {60, 2, 3, 0}};
    assert_int_equal(cnn_plan_arena(u, 4, 16), 208); /* u[2] ends at 206 */
    assert_int_equal(u[0].offset, 0);   /* largest first */
    assert_int_equal(u[3].offset, 0);   /* after u[0] is dead: the same bytes */
    assert_int_equal(u[1].offset, 112); /* above u[0], aligned */
    assert_int_equal(u[2].offset, 176); /* above u[1] and u[0], not over u[3] */
    cnn_plan_tensor bad = {1, 2, 1, 0};
    assert_int_equal(cnn_plan_arena(&bad, 1, 16), -1);
}

/* Random graphs of tensors: no two that are alive at once overlap, and the arena is no
 * smaller than the bound. */
static void plan_never_overlaps(void **state)
{
    (void)state;
    cnn_rng rng;
    cnn_rng_seed(&rng, 17);
    for (int trial = 0; trial < 2000; trial++) {
        cnn_plan_tensor t[24];
        int n = 1 + (int)cnn_rng_below(&rng, 24);
        for (int i = 0; i < n; i++) {
            int first = (int)cnn_rng_below(&rng, 20);
            t[i] = (cnn_plan_tensor){(int64_t)cnn_rng_below(&rng, 5000), first,
                                     first + (int)cnn_rng_below(&rng, 6), -1};
        }
        int64_t size = cnn_plan_arena(t, n, 16);
        assert_true(size >= cnn_plan_lower_bound(t, n));
        for (int i = 0; i < n; i++) {
            assert_true(t[i].offset >= 0 && t[i].offset % 16 == 0);
            assert_true(t[i].offset + t[i].bytes <= size);
            for (int j = 0; j < i; j++) {
                int live = t[i].first <= t[j].last && t[j].first <= t[i].last;
                int bytes = t[i].offset < t[j].offset + t[j].bytes &&
                            t[j].offset < t[i].offset + t[i].bytes;
                if (live && bytes)
                    fail_msg("trial %d: tensors %d and %d are alive together and overlap",
                             trial, i, j);
            }
        }
    }
}

static int cleanup(void **state)
{
    (void)state;
    if (getenv("CNNC_TEST_KEEP")) { /* for reading what failed */
        fprintf(stderr, "kept %s\n", tmpdir);
        return 0;
    }
    return remove_tree(tmpdir);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    struct CMUnitTest *tests;
    char **paths;
    /* CNNC_EXPORT_RANDOM_NETS random networks (default 40) of CNNC_EXPORT_RANDOM_SEED (7)
     * beside the tree's. */
    const char *count_env = getenv("CNNC_EXPORT_RANDOM_NETS");
    const char *seed_env = getenv("CNNC_EXPORT_RANDOM_SEED");
    int n_random = count_env ? atoi(count_env) : 40;
    unsigned long seed = seed_env ? strtoul(seed_env, NULL, 10) : 7;
    char **run_only = run_only_nets(), **graphs = graph_nets(), **models = graph_models();
    int n = network_tests(tree_network,
                          6 + n_random + count_names(run_only) + count_names(graphs) +
                              count_names(models),
                          &tests, &paths);
    n += append_tests(tests + n, tree_network, run_only);
    n += append_tests(tests + n, tree_network, graphs);
    n += append_tests(tests + n, tree_network, models);
    char **random_paths = random_net_files("export", seed, n_random);
    if (!random_paths)
        return 1;
    for (int i = 0; i < n_random; i++) {
        tests[n].name = strrchr(random_paths[i], '/') + 1;
        tests[n].test_func = random_network;
        tests[n].initial_state = random_paths[i];
        n++;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(requantization_rounds_half_up);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(int8_joins_within_rounding);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(plan_by_hand);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(export_errors_and_class_names);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(plan_never_overlaps);
    tests[n++] =
        (struct CMUnitTest)cmocka_unit_test(baseline_plan_is_the_sum_of_the_two_largest_neighbours);
    int failed = _cmocka_run_group_tests("export vs reference", tests, (size_t)n, NULL, cleanup);
    free(tests);
    free_names(paths);
    free_names(random_paths);
    free_names(run_only);
    free_names(graphs);
    free_names(models);
    return failed;
}
