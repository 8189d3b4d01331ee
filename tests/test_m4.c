/* Exports on an emulated microcontroller: built with arm-none-eabi-gcc for a Cortex-M4
 * (QEMU's mps2-an386, semihosting for output), run on test images, each must give the classes
 * the host's build of the same file gives, probabilities to 1e-5 (float) or 1e-6 (int8: only
 * the softmax's expf differs). Its sizes as arm-none-eabi-size reads them must be the plan's:
 * the workspace exactly, the constants within the code's size. The baseline, trained, on 100
 * Fashion-MNIST test images; MLPerf Tiny's ResNet-8 (a graph: residual adds, 1x1 projections)
 * with random weights on 10 random images. Skipped where the cross compiler or QEMU is
 * missing (scripts/deps.sh test installs them). */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "support.h"

#define IMAGES 100
#define PIXELS 784
#define MAX_CLASSES 16
/* What the firmware adds to the export: startup, main, the images and newlib's expf. */
#define M4_CODE_BOUND 16384

static char tmpdir[] = "/tmp/cnnc-m4-XXXXXX";
static uint8_t images[IMAGES][PIXELS];
static char ckpt[600];

/* A network to run: its file and name, its checkpoint and its test images. */
typedef struct m4_net {
    const char *path, *name;
    const char *ckpt;
    int n_images, pixels, classes;
    const uint8_t *images; /* [n_images][pixels] */
} m4_net;

static int have_tools(void)
{
    return access(TEST_ARM_CC, X_OK) == 0 && access(TEST_QEMU, X_OK) == 0;
}

static run_result run_ok(char *const argv[], const char *what)
{
    run_result r = run_program(argv);
    if (r.status != 0)
        fail_msg("%s failed (%d):\n%s%s", what, r.status, r.out ? r.out : "", r.err ? r.err : "");
    return r;
}

static void run_done(char *const argv[], const char *what)
{
    run_result r = run_ok(argv, what);
    run_result_free(&r);
}

/* ResNet-8 with random weights (moving statistics included) and random images. */
#define RESNET_IMAGES 10
#define RESNET_PIXELS (32 * 32 * 3)
static uint8_t resnet_images[RESNET_IMAGES][RESNET_PIXELS];
static char resnet_ckpt[600];

static int setup_resnet8(void)
{
    snprintf(resnet_ckpt, sizeof resnet_ckpt, "%s/resnet8.ckpt", tmpdir);
    cnn_rng rng;
    cnn_rng_seed(&rng, 8);
    for (int i = 0; i < RESNET_IMAGES; i++)
        for (int j = 0; j < RESNET_PIXELS; j++)
            resnet_images[i][j] = (uint8_t)cnn_rng_below(&rng, 256);
    test_net t;
    if (test_net_from_file(&t, SOURCE_DIR "/models/tiny/resnet8.net"))
        return -1;
    cnn_model *m = cnn_reference_new(&t.ir, 1);
    char err[600];
    int status = -1;
    if (m) {
        random_weights(m, &rng, 0.3f);
        status = cnn_checkpoint_save(resnet_ckpt, m, NULL, err, sizeof err);
    }
    cnn_model_destroy(m);
    test_net_free(&t);
    return status;
}

/* The first 100 Fashion-MNIST test images where the data is installed, else random bytes;
 * trained weights (one epoch on 6,000 images) where it is, else random ones. */
static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir) || setup_resnet8())
        return -1;
    snprintf(ckpt, sizeof ckpt, "%s/baseline.ckpt", tmpdir);
    cnn_dataset ds;
    char err[600];
    int have_data = cnn_dataset_load(&ds, TEST_DATA_DIR "/t10k-images-idx3-ubyte.gz", NULL, err,
                                     sizeof err) == 0;
    cnn_rng rng;
    cnn_rng_seed(&rng, 3);
    for (int i = 0; i < IMAGES; i++)
        for (int j = 0; j < PIXELS; j++)
            images[i][j] = have_data ? ds.images[i * PIXELS + j] : (uint8_t)cnn_rng_below(&rng, 256);
    if (have_data) {
        cnn_dataset_free(&ds);
        char *train[] = {TRAINER_PATH, "train", "--data", TEST_DATA_DIR, "--epochs", "1",
                         "--limit", "6000", "--threads", "1", "--save", ckpt, NULL};
        run_result r = run_program(train);
        int ok = r.status == 0;
        run_result_free(&r);
        return ok ? 0 : -1;
    }
    test_net t;
    if (test_net_from_file(&t, SOURCE_DIR "/models/baseline.net"))
        return -1;
    cnn_model *m = cnn_reference_new(&t.ir, 1);
    cnn_init_tensors(m, &rng);
    int status = cnn_checkpoint_save(ckpt, m, NULL, err, sizeof err);
    cnn_model_destroy(m);
    test_net_free(&t);
    return status;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir);
}

static void write_images_header(const char *path, const m4_net *net)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#define N_IMAGES %d\nstatic const unsigned char test_images[%d][%d] = {\n",
            net->n_images, net->n_images, net->pixels);
    for (int i = 0; i < net->n_images; i++) {
        fputc('{', f);
        for (int j = 0; j < net->pixels; j++)
            fprintf(f, "%d,", net->images[i * net->pixels + j]);
        fputs("},\n", f);
    }
    fputs("};\n", f);
    assert_int_equal(fclose(f), 0);
}

/* "text data bss" of an object, from arm-none-eabi-size's Berkeley format. */
static void arm_size(const char *obj, long *text, long *data, long *bss)
{
    char *argv[] = {TEST_ARM_SIZE, (char *)obj, NULL};
    run_result r = run_ok(argv, "arm-none-eabi-size");
    const char *line = strchr(r.out, '\n');
    assert_non_null(line);
    assert_int_equal(sscanf(line + 1, "%ld %ld %ld", text, data, bss), 3);
    run_result_free(&r);
}

static long plan_number(const char *plan, const char *after)
{
    const char *at = strstr(plan, after);
    assert_non_null(at);
    at += strlen(after);
    while (*at && (*at < '0' || *at > '9'))
        at++;
    return atol(at);
}

static void on_m4(const m4_net *net, const char *tag, char **flags)
{
    if (!have_tools()) {
        print_message("skipped: %s or %s is not installed (scripts/deps.sh test)\n", TEST_ARM_CC,
                      TEST_QEMU);
        skip();
    }
    char c_file[700], obj[700], elf[700], so[700], hdr[700];
    snprintf(c_file, sizeof c_file, "%s/%s_%s.c", tmpdir, net->name, tag);
    snprintf(obj, sizeof obj, "%s/%s_%s.o", tmpdir, net->name, tag);
    snprintf(elf, sizeof elf, "%s/%s_%s.elf", tmpdir, net->name, tag);
    snprintf(so, sizeof so, "%s/%s_%s.so", tmpdir, net->name, tag);
    snprintf(hdr, sizeof hdr, "%s/images.h", tmpdir);
    write_images_header(hdr, net);
    char *argv[24] = {CNNC_PATH, "export", (char *)net->path, "--weights", (char *)net->ckpt,
                      "-o", c_file, "--plan"};
    int n = 8;
    for (int i = 0; flags && flags[i]; i++)
        argv[n++] = flags[i];
    argv[n] = NULL;
    run_result plan = run_ok(argv, "cnnc export");

#define M4 "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-Os"
    char *cc_obj[] = {TEST_ARM_CC, "-std=c99", "-Wall", "-Wextra", "-pedantic",
                      "-Wdouble-promotion", "-Werror", M4, "-c", c_file, "-o", obj, NULL};
    run_done(cc_obj, "arm-none-eabi-gcc");
    /* The plan is what the object holds: the workspace exactly, the constants and the code. */
    long text, data, bss;
    arm_size(obj, &text, &data, &bss);
    long consts = plan_number(plan.out, "total:"), arena = plan_number(plan.out, "constants (flash");
    assert_int_equal(data, 0);
    assert_int_equal(bss, arena);
    if (text < consts || text > consts + M4_CODE_BOUND)
        fail_msg("%s: text %ld bytes, the plan's constants %ld: more than %d bytes of code", tag,
                 text, consts, M4_CODE_BOUND);
    print_message("%s %s on the Cortex-M4: %ld bytes of flash (%ld of constants), %ld of RAM\n",
                  net->name, tag, text, consts, bss);
    run_result_free(&plan);

    char inc_tmp[720], inc_m4[720];
    snprintf(inc_tmp, sizeof inc_tmp, "-I%s", tmpdir);
    snprintf(inc_m4, sizeof inc_m4, "-I%s", SOURCE_DIR "/tests/m4");
    char predict_def[160], classes_def[32], predict_name[128];
    snprintf(predict_name, sizeof predict_name, "%s_predict_u8", net->name);
    snprintf(predict_def, sizeof predict_def, "-DPREDICT_U8=%s", predict_name);
    snprintf(classes_def, sizeof classes_def, "-DCLASSES=%d", net->classes);
    char *link[] = {TEST_ARM_CC, "-std=c99", "-Wall", "-Wextra", "-Werror", M4, inc_tmp, inc_m4,
                    predict_def, classes_def, "-nostartfiles",
                    "-T", SOURCE_DIR "/tests/m4/mps2_an386.ld",
                    SOURCE_DIR "/tests/m4/startup.c", SOURCE_DIR "/tests/m4/main.c", obj, "-lm",
                    "-o", elf, NULL};
    run_done(link, "linking the firmware");
    /* Semihosting's console into a file: without one QEMU writes it to its stderr. */
    char out_file[720], chardev[800];
    snprintf(out_file, sizeof out_file, "%s/m4-%s-%s.txt", tmpdir, net->name, tag);
    snprintf(chardev, sizeof chardev, "file,id=out,path=%s", out_file);
    char *qemu[] = {TEST_QEMU, "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial",
                    "none", "-chardev", chardev, "-semihosting-config",
                    "enable=on,target=native,chardev=out", "-kernel", elf, NULL};
    run_done(qemu, "qemu-system-arm");
    char *m4_out = read_whole_file(out_file, NULL);
    assert_non_null(m4_out);

    /* The host's build of the same file. */
    char *cc_so[] = {TEST_CC, "-std=c99", "-O2", "-fPIC", "-shared", c_file, "-o", so, "-lm", NULL};
    run_done(cc_so, TEST_CC);
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    int (*predict_u8)(const unsigned char *, float *) =
        (int (*)(const unsigned char *, float *))(uintptr_t)dlsym(h, predict_name);
    assert_non_null(predict_u8);

    int int8 = flags != NULL, same_bits = 0, lines = 0;
    double worst = 0;
    const char *at = m4_out;
    int K = net->classes;
    assert_true(K <= MAX_CLASSES);
    for (int i = 0; i < net->n_images; i++, lines++) {
        unsigned top, bits[MAX_CLASSES];
        int used;
        if (sscanf(at, "%x%n", &top, &used) != 1)
            fail_msg("%s: the firmware printed %d lines, then: %.60s", tag, lines, at);
        at += used;
        for (int k = 0; k < K; k++) {
            assert_int_equal(sscanf(at, "%x%n", &bits[k], &used), 1);
            at += used;
        }
        float host[MAX_CLASSES], arm[MAX_CLASSES];
        int host_top = predict_u8(net->images + (size_t)i * net->pixels, host);
        memcpy(arm, bits, sizeof(float) * (size_t)K);
        if ((int)top != host_top)
            fail_msg("%s %s image %d: class %u on the Cortex-M4, %d on the host", net->name, tag,
                     i, top, host_top);
        same_bits += memcmp(host, arm, sizeof(float) * (size_t)K) == 0;
        for (int k = 0; k < K; k++)
            worst = fmax(worst, fabs((double)host[k] - arm[k]));
    }
    assert_non_null(strstr(at, "done"));
    print_message("%s %s: %d images, the same classes; %d with the same probabilities' bits, the "
                  "largest difference %.3g\n", net->name, tag, net->n_images, same_bits, worst);
    /* int8: every layer is integer arithmetic, bit for bit; only the softmax's expf is each
     * platform's (newlib's, glibc's), so the probabilities may differ in their last bits. */
    assert_true(worst <= (int8 ? 1e-6 : 1e-5));
    dlclose(h);
    free(m4_out);
}

static const m4_net baseline = {SOURCE_DIR "/models/baseline.net", "baseline", ckpt, IMAGES,
                                 PIXELS, 10, &images[0][0]};
static const m4_net resnet8 = {SOURCE_DIR "/models/tiny/resnet8.net", "resnet8", resnet_ckpt,
                               RESNET_IMAGES, RESNET_PIXELS, 10, &resnet_images[0][0]};

static void float_export_on_cortex_m4(void **state)
{
    (void)state;
    on_m4(&baseline, "float", NULL);
}

static void int8_export_on_cortex_m4(void **state)
{
    (void)state;
    static char *flags[] = {"--int8", "--calibrate", "1000", "--data", TEST_DATA_DIR, NULL};
    if (access(TEST_DATA_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        /* No Fashion-MNIST: calibrate on the random test images. */
        static char path[720];
        snprintf(path, sizeof path, "%s/calibration", tmpdir);
        assert_int_equal(write_idx_images(path, IMAGES, 28, 28, 1, &images[0][0], NULL), 0);
        static char n_img[8];
        snprintf(n_img, sizeof n_img, "%d", IMAGES);
        static char *random_flags[] = {"--int8", "--calibrate", n_img, "--train-images", path, NULL};
        on_m4(&baseline, "int8", random_flags);
        return;
    }
    on_m4(&baseline, "int8", flags);
}

static void resnet8_float_on_cortex_m4(void **state)
{
    (void)state;
    on_m4(&resnet8, "float", NULL);
}

/* Calibrated on its ten random images. */
static void resnet8_int8_on_cortex_m4(void **state)
{
    (void)state;
    static char path[720];
    snprintf(path, sizeof path, "%s/resnet8-calibration", tmpdir);
    assert_int_equal(write_idx_images(path, RESNET_IMAGES, 32, 32, 3, &resnet_images[0][0], NULL),
                     0);
    static char *flags[] = {"--int8", "--calibrate", "10", "--train-images", path, NULL};
    on_m4(&resnet8, "int8", flags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(float_export_on_cortex_m4),
        cmocka_unit_test(int8_export_on_cortex_m4),
        cmocka_unit_test(resnet8_float_on_cortex_m4),
        cmocka_unit_test(resnet8_int8_on_cortex_m4),
    };
    return cmocka_run_group_tests_name("export on a Cortex-M4", tests, setup, teardown);
}
