/* The baseline's export on an emulated microcontroller: built with arm-none-eabi-gcc for a
 * Cortex-M4 (QEMU's mps2-an386, semihosting for output), run on 100 test images, it must give
 * the classes the host's build of the same file gives, probabilities to 1e-5 (float) or the
 * same bits (int8). Its sizes as arm-none-eabi-size reads them must be the plan's: the
 * workspace exactly, the constants within the code's size. Skipped where the cross compiler
 * or QEMU is missing (scripts/deps.sh test installs them). */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reference.h"
#include "support.h"

#define IMAGES 100
#define CLASSES 10
#define PIXELS 784
/* What the firmware adds to the export: startup, main, the images and newlib's expf. */
#define M4_CODE_BOUND 16384

static char tmpdir[] = "/tmp/cnnc-m4-XXXXXX";
static uint8_t images[IMAGES][PIXELS];
static char ckpt[600];

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

/* The first 100 Fashion-MNIST test images where the data is installed, else random bytes;
 * trained weights (one epoch on 6,000 images) where it is, else random ones. */
static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
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

static void write_images_header(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#define N_IMAGES %d\nstatic const unsigned char test_images[%d][%d] = {\n", IMAGES,
            IMAGES, PIXELS);
    for (int i = 0; i < IMAGES; i++) {
        fputc('{', f);
        for (int j = 0; j < PIXELS; j++)
            fprintf(f, "%d,", images[i][j]);
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

static void on_m4(const char *tag, char **flags)
{
    if (!have_tools()) {
        print_message("skipped: %s or %s is not installed (scripts/deps.sh test)\n", TEST_ARM_CC,
                      TEST_QEMU);
        skip();
    }
    char c_file[700], obj[700], elf[700], so[700], hdr[700];
    snprintf(c_file, sizeof c_file, "%s/baseline_%s.c", tmpdir, tag);
    snprintf(obj, sizeof obj, "%s/baseline_%s.o", tmpdir, tag);
    snprintf(elf, sizeof elf, "%s/baseline_%s.elf", tmpdir, tag);
    snprintf(so, sizeof so, "%s/baseline_%s.so", tmpdir, tag);
    snprintf(hdr, sizeof hdr, "%s/images.h", tmpdir);
    write_images_header(hdr);
    char *argv[24] = {CNNC_PATH, "export", SOURCE_DIR "/models/baseline.net", "--weights", ckpt,
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
    print_message("%s on the Cortex-M4: %ld bytes of flash (%ld of constants), %ld of RAM\n", tag,
                  text, consts, bss);
    run_result_free(&plan);

    char inc_tmp[720], inc_m4[720];
    snprintf(inc_tmp, sizeof inc_tmp, "-I%s", tmpdir);
    snprintf(inc_m4, sizeof inc_m4, "-I%s", SOURCE_DIR "/tests/m4");
    char *link[] = {TEST_ARM_CC, "-std=c99", "-Wall", "-Wextra", "-Werror", M4, inc_tmp, inc_m4,
                    "-DPREDICT_U8=baseline_predict_u8", "-DCLASSES=10", "-nostartfiles",
                    "-T", SOURCE_DIR "/tests/m4/mps2_an386.ld",
                    SOURCE_DIR "/tests/m4/startup.c", SOURCE_DIR "/tests/m4/main.c", obj, "-lm",
                    "-o", elf, NULL};
    run_done(link, "linking the firmware");
    /* Semihosting's console into a file: without one QEMU writes it to its stderr. */
    char out_file[720], chardev[800];
    snprintf(out_file, sizeof out_file, "%s/m4-%s.txt", tmpdir, tag);
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
        (int (*)(const unsigned char *, float *))(uintptr_t)dlsym(h, "baseline_predict_u8");
    assert_non_null(predict_u8);

    int int8 = flags != NULL, same_bits = 0, lines = 0;
    double worst = 0;
    const char *at = m4_out;
    for (int i = 0; i < IMAGES; i++, lines++) {
        unsigned top, bits[CLASSES];
        int used;
        if (sscanf(at, "%x%n", &top, &used) != 1)
            fail_msg("%s: the firmware printed %d lines, then: %.60s", tag, lines, at);
        at += used;
        for (int k = 0; k < CLASSES; k++) {
            assert_int_equal(sscanf(at, "%x%n", &bits[k], &used), 1);
            at += used;
        }
        float host[CLASSES], arm[CLASSES];
        int host_top = predict_u8(images[i], host);
        memcpy(arm, bits, sizeof arm);
        if ((int)top != host_top)
            fail_msg("%s image %d: class %u on the Cortex-M4, %d on the host", tag, i, top,
                     host_top);
        same_bits += memcmp(host, arm, sizeof arm) == 0;
        for (int k = 0; k < CLASSES; k++)
            worst = fmax(worst, fabs((double)host[k] - arm[k]));
    }
    assert_non_null(strstr(at, "done"));
    print_message("%s: %d images, the same classes; %d with the same probabilities' bits, the "
                  "largest difference %.3g\n", tag, IMAGES, same_bits, worst);
    /* int8: every layer is integer arithmetic, bit for bit; only the softmax's expf is each
     * platform's (newlib's, glibc's), so the probabilities may differ in their last bits. */
    assert_true(worst <= (int8 ? 1e-6 : 1e-5));
    dlclose(h);
    free(m4_out);
}

static void float_export_on_cortex_m4(void **state)
{
    (void)state;
    on_m4("float", NULL);
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
        on_m4("int8", random_flags);
        return;
    }
    on_m4("int8", flags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(float_export_on_cortex_m4),
        cmocka_unit_test(int8_export_on_cortex_m4),
    };
    return cmocka_run_group_tests_name("export on a Cortex-M4", tests, setup, teardown);
}
