/* The files libcnnrt reads and writes: IDX data (plain and gzip; every corrupt case gets an
 * error naming the file) and checkpoints (round trip, truncation at every length, corruption,
 * another network's, and a writer killed mid-write leaving the old checkpoint intact). */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "reference.h"
#include "support.h"

static char dir[] = "/tmp/cnnc-files-XXXXXX";

static char *path_of(const char *name)
{
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *name, const void *data, size_t n, int gzip)
{
    if (gzip) {
        gzFile f = gzopen(path_of(name), "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        gzclose(f);
        return;
    }
    FILE *f = fopen(path_of(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Three 2x2 images (pixels 0..11) and their labels 2, 0, 1. */
static const unsigned char images3[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const unsigned char labels3[] = {0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1};

static void expect_error(const char *images, const char *labels, const char *message)
{
    cnn_dataset ds;
    char err[1200];
    assert_int_equal(cnn_dataset_load(&ds, path_of(images), labels ? path_of(labels) : NULL, err,
                                      sizeof err), -1);
    if (!strstr(err, message))
        fail_msg("error '%s' does not say '%s'", err, message);
}

static void idx_plain_and_gzip(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        write_bytes("img", images3, sizeof images3, gz);
        write_bytes("lab", labels3, sizeof labels3, gz);
        cnn_dataset ds;
        char err[1200];
        assert_int_equal(cnn_dataset_load(&ds, path_of("img"), path_of("lab"), err, sizeof err), 0);
        assert_int_equal(ds.n, 3);
        assert_int_equal(ds.h, 2);
        assert_int_equal(ds.w, 2);
        assert_int_equal(ds.c, 1);
        assert_memory_equal(ds.images, images3 + 16, 12);
        assert_memory_equal(ds.labels, labels3 + 8, 3);
        int idx[] = {2, 0}, lab[2];
        float x[8];
        cnn_dataset_batch(&ds, idx, 2, x, lab);
        assert_true(close_enough(x[0], 8 / 255.0, 1e-6, 0) && x[4] == 0.0f &&
                    close_enough(x[7], 3 / 255.0, 1e-6, 0));
        assert_int_equal(lab[0], 1);
        assert_int_equal(lab[1], 2);
        cnn_dataset_free(&ds);
    }
}

static void idx4_has_channels(void **state)
{
    (void)state;
    /* 2 images of 1x2x3 */
    unsigned char img[] = {0, 0, 8, 4, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
                           1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    unsigned char lab[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 1};
    write_bytes("img4", img, sizeof img, 0);
    write_bytes("lab4", lab, sizeof lab, 0);
    cnn_dataset ds;
    char err[1200];
    assert_int_equal(cnn_dataset_load(&ds, path_of("img4"), path_of("lab4"), err, sizeof err), 0);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.h, 1);
    assert_int_equal(ds.w, 2);
    assert_int_equal(ds.c, 3);
    cnn_dataset_free(&ds);
}

/* float32 IDX (type 0x0D, big-endian): images used as they are, targets for loss mse, and a
 * value that is not a number refused with the file and the value's index. */
static void idx_floats(void **state)
{
    (void)state;
    float v[3 * 4] = {0.5f, -1.25f, 3e-8f, 1e30f, 0, 1, 2, 3, -0.0f, 7.75f, 100, -3};
    char path[600], err[1200];
    snprintf(path, sizeof path, "%s", path_of("floats.idx"));
    assert_int_equal(write_idx_floats(path, 3, 4, v), 0);
    /* The file's bytes as IDX defines them: the header, then big-endian float32. */
    size_t len;
    unsigned char *raw = (unsigned char *)read_whole_file(path, &len);
    assert_int_equal(len, 12 + 4 * 12);
    unsigned char head[12] = {0, 0, 0x0D, 2, 0, 0, 0, 3, 0, 0, 0, 4};
    assert_memory_equal(raw, head, 12);
    unsigned char second[4] = {0xBF, 0xA0, 0, 0}; /* -1.25 */
    assert_memory_equal(raw + 16, second, 4);
    free(raw);
    cnn_dataset ds;
    assert_int_equal(cnn_dataset_load(&ds, path, NULL, err, sizeof err), 0);
    assert_int_equal(ds.n, 3);
    assert_true(ds.h == 1 && ds.w == 1 && ds.c == 4); /* n x features: vectors */
    assert_null(ds.images);
    float x[12];
    int labels[3], idx[3] = {2, 0, 1};
    cnn_dataset_batch(&ds, idx, 3, x, labels);
    assert_memory_equal(x, v + 8, 4 * sizeof(float));
    assert_memory_equal(x + 4, v, 4 * sizeof(float));
    /* As targets: the same rows; bytes as targets are scaled as images are. */
    assert_int_equal(cnn_dataset_load_targets(&ds, path, err, sizeof err), 0);
    assert_int_equal(ds.target_size, 4);
    float t[12];
    cnn_dataset_targets(&ds, idx, 3, t);
    assert_memory_equal(t, x, sizeof t);
    char bytes_path[600];
    snprintf(bytes_path, sizeof bytes_path, "%s", path_of("bytes.idx"));
    uint8_t b[3 * 2 * 2 * 1] = {0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(write_idx_images(bytes_path, 3, 2, 2, 1, b, NULL), 0);
    assert_int_equal(cnn_dataset_load_targets(&ds, bytes_path, err, sizeof err), 0);
    cnn_dataset_targets(&ds, idx, 1, t); /* row 2 */
    assert_true(t[0] == 5 * (1.0f / 255.0f) && t[3] == 8 * (1.0f / 255.0f));
    cnn_dataset_free(&ds);
    v[6] = NAN;
    assert_int_equal(write_idx_floats(path, 3, 4, v), 0);
    assert_int_equal(cnn_dataset_load(&ds, path, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "floats.idx: value 6 is not a finite number"));
}

static void idx_corrupt_cases(void **state)
{
    (void)state;
    unsigned char bad[64];
    write_bytes("lab", labels3, sizeof labels3, 0);

    memcpy(bad, images3, sizeof images3);
    bad[2] = 0x0B; /* int16 data: neither bytes nor float32 */
    write_bytes("magic", bad, sizeof images3, 0);
    expect_error("magic", "lab", "magic: not an unsigned-byte or float32 IDX file (magic 00 00 0b "
                                 "03, expected 00 00 08 0N or 00 00 0d 0N)");

    memcpy(bad, images3, sizeof images3);
    bad[2] = 0x0D; /* float32: the same header wants 4 bytes a value */
    write_bytes("floats", bad, sizeof images3, 0);
    expect_error("floats", "lab", "floats: truncated: 12 of 48 data bytes");

    write_bytes("short", images3, sizeof images3 - 4, 0);
    expect_error("short", "lab", "short: truncated: 8 of 12 data bytes");

    write_bytes("header", images3, 10, 0);
    expect_error("header", "lab", "header: truncated: incomplete IDX header");

    write_bytes("empty", images3, 0, 0);
    expect_error("empty", "lab", "empty: truncated: no IDX header");

    memcpy(bad, images3, sizeof images3);
    bad[sizeof images3] = 99;
    write_bytes("long", bad, sizeof images3 + 1, 0);
    expect_error("long", "lab", "long: has data beyond what its header describes");

    memcpy(bad, images3, sizeof images3);
    bad[3] = 5; /* five dimensions */
    write_bytes("dims", bad, sizeof images3, 0);
    expect_error("dims", "lab", "dims: has 5 dimensions, expected 2 (n x features), 3 (n x h x w) "
                                "or 4");

    memcpy(bad, images3, sizeof images3);
    bad[4] = 0x7f; /* 2 billion images claimed */
    write_bytes("huge", bad, sizeof images3, 0);
    expect_error("huge", "lab", "huge: dimension 0 has size");

    unsigned char lab2[] = {0, 0, 8, 1, 0, 0, 0, 2, 0, 1};
    write_bytes("lab2", lab2, sizeof lab2, 0);
    write_bytes("img", images3, sizeof images3, 0);
    expect_error("img", "lab2", "lab2: has 2 labels but");

    expect_error("img", "img", "img: has 3 dimensions, expected 1 (labels)");
    expect_error("missing", "lab", "missing: cannot open: No such file or directory");

    /* A gzip stream cut short, and one with garbage inside. */
    write_bytes("gz", images3, sizeof images3, 1);
    FILE *f = fopen(path_of("gz"), "rb");
    unsigned char z[256];
    size_t zn = fread(z, 1, sizeof z, f);
    fclose(f);
    write_bytes("gzcut", z, zn - 12, 0);
    expect_error("gzcut", "lab", "gzcut: ");
    z[zn / 2] ^= 0xff;
    z[zn / 2 + 1] ^= 0xff;
    write_bytes("gzbad", z, zn, 0);
    expect_error("gzbad", "lab", "gzbad: ");
}

static void labels_and_shapes_checked_against_the_network(void **state)
{
    (void)state;
    test_net t;
    assert_int_equal(test_net_from_string(&t, "input 2x2x1\nflatten\ndense 2 softmax\n"), 0);
    cnn_model *m = cnn_reference_new(&t.ir, 4);
    write_bytes("img", images3, sizeof images3, 0);
    write_bytes("lab", labels3, sizeof labels3, 0); /* label 2 with 2 classes */
    cnn_dataset ds;
    char err[1200];
    assert_int_equal(cnn_dataset_load(&ds, path_of("img"), path_of("lab"), err, sizeof err), 0);
    assert_int_equal(cnn_dataset_check(&ds, m, err, sizeof err), -1);
    assert_non_null(strstr(err, "lab: label 2 of item 0 is out of range for 2 classes"));
    cnn_dataset_free(&ds);
    cnn_model_destroy(m);
    test_net_free(&t);

    assert_int_equal(test_net_from_string(&t, "input 3x3x1\nflatten\ndense 3 softmax\n"), 0);
    m = cnn_reference_new(&t.ir, 4);
    assert_int_equal(cnn_dataset_load(&ds, path_of("img"), path_of("lab"), err, sizeof err), 0);
    assert_int_equal(cnn_dataset_check(&ds, m, err, sizeof err), -1);
    assert_non_null(strstr(err, "img: images are 2x2x1 but network 'test' takes 3x3x1"));
    cnn_dataset_free(&ds);
    cnn_model_destroy(m);
    test_net_free(&t);
}

/* ---- checkpoints ---- */

static cnn_model *model_of(test_net *t, const char *net)
{
    char path[256];
    snprintf(path, sizeof path, "%s/tests/nets/%s.net", SOURCE_DIR, net);
    assert_int_equal(test_net_from_file(t, path), 0);
    cnn_model *m = cnn_reference_new(&t->ir, 4);
    assert_non_null(m);
    cnn_rng r;
    cnn_rng_seed(&r, 3);
    cnn_init_tensors(m, &r);
    for (int i = 0; i < m->n_tensors; i++) /* non-zero optimizer state too */
        for (int k = 0; k < 2; k++)
            if (m->tensors[i].slot[k])
                for (size_t j = 0; j < m->tensors[i].size; j++)
                    m->tensors[i].slot[k][j] = cnn_rng_uniform(&r);
    return m;
}

/* Every value and slot of a equals b's. */
static int same_tensors(const cnn_model *a, const cnn_model *b, int slots)
{
    for (int i = 0; i < a->n_tensors; i++) {
        size_t n = a->tensors[i].size * sizeof(float);
        if (memcmp(a->tensors[i].value, b->tensors[i].value, n))
            return 0;
        for (int k = 0; slots && k < 2; k++)
            if (a->tensors[i].slot[k] && memcmp(a->tensors[i].slot[k], b->tensors[i].slot[k], n))
                return 0;
    }
    return 1;
}

static void checkpoint_round_trip(void **state)
{
    (void)state;
    test_net t1, t2;
    cnn_model *a = model_of(&t1, "batchnorm_dense"), *b = model_of(&t2, "batchnorm_dense");
    cnn_rng r;
    cnn_rng_seed(&r, 4);
    cnn_init_tensors(b, &r); /* different weights */
    cnn_zero_slots(b);
    assert_false(same_tensors(a, b, 1));
    cnn_train_state st = {.epoch = 3, .step = 1234};
    cnn_rng_seed(&st.shuffle, 5);
    cnn_rng_seed(&st.dropout, 6);
    char err[1200];
    assert_int_equal(cnn_checkpoint_save(path_of("ck"), a, &st, err, sizeof err), 0);
    cnn_train_state got;
    int has_state = 0;
    assert_int_equal(cnn_checkpoint_load(path_of("ck"), b, &got, &has_state, err, sizeof err), 0);
    assert_true(same_tensors(a, b, 1)); /* moving statistics and optimizer slots included */
    assert_int_equal(has_state, 1);
    assert_int_equal(got.epoch, 3);
    assert_int_equal(got.step, 1234);
    assert_memory_equal(&got.shuffle, &st.shuffle, sizeof st.shuffle);
    assert_memory_equal(&got.dropout, &st.dropout, sizeof st.dropout);

    /* Weights only: no slots, no state. */
    assert_int_equal(cnn_checkpoint_save(path_of("w"), a, NULL, err, sizeof err), 0);
    cnn_init_tensors(b, &r);
    assert_int_equal(cnn_checkpoint_load(path_of("w"), b, NULL, &has_state, err, sizeof err), 0);
    assert_int_equal(has_state, 0);
    assert_true(same_tensors(a, b, 0));
    struct stat s1, s2;
    stat(path_of("ck"), &s1);
    stat(path_of("w"), &s2);
    assert_true(s2.st_size < s1.st_size);
    cnn_model_destroy(a);
    cnn_model_destroy(b);
    test_net_free(&t1);
    test_net_free(&t2);
}

/* The documented layout, read independently: magic, version, then the first tensor's name. */
static void checkpoint_layout_is_documented(void **state)
{
    (void)state;
    test_net t;
    cnn_model *m = model_of(&t, "dense_only");
    char err[1200];
    assert_int_equal(cnn_checkpoint_save(path_of("doc"), m, NULL, err, sizeof err), 0);
    FILE *f = fopen(path_of("doc"), "rb");
    unsigned char h[64];
    assert_int_equal(fread(h, 1, sizeof h, f), sizeof h);
    fclose(f);
    assert_memory_equal(h, "CNNCKPT\0", 8);
    assert_int_equal(h[8], 1); /* version 1, little-endian */
    assert_int_equal(h[9] | h[10] | h[11], 0);
    /* fingerprint (8), name length (2) "dense_only" (10), flags (4), count (4) */
    assert_int_equal(h[20], 10);
    assert_memory_equal(h + 22, "dense_only", 10);
    assert_int_equal(h[32], 0); /* no training state */
    assert_int_equal(h[36], 6); /* 3 dense layers x (kernel, bias) */
    assert_int_equal(h[40], 14); /* the first record: "dense_1/kernel", rank 2, 12 x 5 */
    assert_memory_equal(h + 42, "dense_1/kernel", 14);
    assert_int_equal(h[56], 2);
    assert_int_equal(h[57], 12);
    assert_int_equal(h[61], 5);

    /* The fingerprint as docs/checkpoint.md defines it, computed here from the text: FNV-1a
     * over the name and NUL, then per tensor its name and NUL, rank, and 4-byte dimensions. */
    uint64_t fp = 0xcbf29ce484222325ULL;
#define FNV_BYTE(byte) (fp = (fp ^ (unsigned char)(byte)) * 0x100000001b3ULL)
    for (const char *c = "dense_only";; c++) {
        FNV_BYTE(*c);
        if (!*c)
            break;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        for (const char *c = m->tensors[i].name;; c++) {
            FNV_BYTE(*c);
            if (!*c)
                break;
        }
        FNV_BYTE(m->tensors[i].rank);
        for (int d = 0; d < m->tensors[i].rank; d++)
            for (int k = 0; k < 4; k++)
                FNV_BYTE((uint32_t)m->tensors[i].dims[d] >> (8 * k));
    }
#undef FNV_BYTE
    uint64_t stored = 0;
    for (int k = 0; k < 8; k++)
        stored |= (uint64_t)h[12 + k] << (8 * k);
    assert_true(stored == fp);
    cnn_model_destroy(m);
    test_net_free(&t);
}

static void checkpoint_truncated_at_every_length(void **state)
{
    (void)state;
    test_net t1, t2;
    cnn_model *a = model_of(&t1, "dense_only"), *b = model_of(&t2, "dense_only");
    cnn_rng r;
    cnn_rng_seed(&r, 8);
    cnn_init_tensors(b, &r);
    char err[1200];
    assert_int_equal(cnn_checkpoint_save(path_of("full"), a, &(cnn_train_state){0}, err,
                                         sizeof err), 0);
    FILE *f = fopen(path_of("full"), "rb");
    unsigned char data[65536];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    assert_true(n > 100 && n < sizeof data);
    float before = b->tensors[0].value[0];
    for (size_t len = 0; len < n; len++) {
        write_bytes("cut", data, len, 0);
        if (cnn_checkpoint_load(path_of("cut"), b, NULL, NULL, err, sizeof err) != -1)
            fail_msg("a checkpoint cut to %zu of %zu bytes was accepted", len, n);
        if (!strstr(err, path_of("cut")) ||
            (!strstr(err, "truncated") && !strstr(err, "not a cnnc checkpoint")))
            fail_msg("cut to %zu bytes: unclear error '%s'", len, err);
    }
    assert_true(b->tensors[0].value[0] == before); /* untouched by every failure */
    /* One flipped bit anywhere in the data is caught by the checksum. */
    data[n / 2] ^= 0x10;
    write_bytes("flipped", data, n, 0);
    assert_int_equal(cnn_checkpoint_load(path_of("flipped"), b, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "corrupt: the checksum does not match"));
    cnn_model_destroy(a);
    cnn_model_destroy(b);
    test_net_free(&t1);
    test_net_free(&t2);
}

static void checkpoint_of_another_network(void **state)
{
    (void)state;
    test_net t1, t2, t3;
    cnn_model *a = model_of(&t1, "dense_only"), *b = model_of(&t2, "leaky_dense");
    char err[1200];
    assert_int_equal(cnn_checkpoint_save(path_of("other"), a, NULL, err, sizeof err), 0);
    assert_int_equal(cnn_checkpoint_load(path_of("other"), b, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "other: is a checkpoint of network 'dense_only', not of "
                                "'leaky_dense'"));
    /* Same name, other shapes. */
    assert_int_equal(test_net_from_string(&t3, "network dense_only\ninput 12\ndense 6 sigmoid\n"
                                               "dense 4 sigmoid\ndense 3 softmax\n"), 0);
    cnn_model *c = cnn_reference_new(&t3.ir, 4);
    assert_int_equal(cnn_checkpoint_load(path_of("other"), c, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "another version of network 'dense_only'"));
    write_bytes("notckpt", images3, sizeof images3, 0);
    assert_int_equal(cnn_checkpoint_load(path_of("notckpt"), a, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "notckpt: not a cnnc checkpoint"));
    cnn_model_destroy(a);
    cnn_model_destroy(b);
    cnn_model_destroy(c);
    test_net_free(&t1);
    test_net_free(&t2);
    test_net_free(&t3);
}

/* A model of one 16 MB tensor filled with one value: a write takes long enough to be killed
 * in the middle, and what survives shows which write it came from. */
typedef struct big {
    cnn_model m;
    cnn_tensor t;
} big;

static void big_init(big *b, float value)
{
    size_t n = 4u << 20;
    memset(b, 0, sizeof *b);
    b->t = (cnn_tensor){.name = "big/kernel", .rank = 1, .dims = {(int)n}, .size = n,
                        .value = malloc(n * sizeof(float))};
    for (size_t i = 0; i < n; i++)
        b->t.value[i] = value;
    b->m.name = "big";
    b->m.n_tensors = 1;
    b->m.tensors = &b->t;
}

static void checkpoint_survives_an_interrupted_write(void **state)
{
    (void)state;
    big old, probe;
    big_init(&old, 1.0f);
    big_init(&probe, 0.0f);
    char err[1200];
    int outcomes[3] = {0};
    for (int trial = 0; trial < 12; trial++) {
        assert_int_equal(cnn_checkpoint_save(path_of("live"), &old.m, NULL, err, sizeof err), 0);
        pid_t pid = fork();
        if (pid == 0) { /* keeps overwriting the checkpoint with 2.0 */
            big fresh;
            big_init(&fresh, 2.0f);
            for (;;)
                cnn_checkpoint_save(path_of("live"), &fresh.m, NULL, err, sizeof err);
        }
        struct timespec d = {0, (long)(1 + trial * 7) * 1000000L}; /* 1 to 78 ms */
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        /* Whatever moment it died at, the checkpoint is whole: the old one or a new one. */
        if (cnn_checkpoint_load(path_of("live"), &probe.m, NULL, NULL, err, sizeof err) != 0)
            fail_msg("after a kill at %d ms: %s", 1 + trial * 7, err);
        float v = probe.t.value[0];
        assert_true(v == 1.0f || v == 2.0f);
        for (size_t i = 0; i < probe.t.size; i += 4099)
            assert_true(probe.t.value[i] == v);
        outcomes[(int)v]++;
        /* The killed write's temporary file may remain beside it; it is never the checkpoint. */
        char cmd[320];
        snprintf(cmd, sizeof cmd, "rm -f %s/live.tmp.*", dir);
        assert_int_equal(system(cmd), 0);
    }
    print_message("interrupted writes: %d left the old checkpoint, %d a complete new one\n",
                  outcomes[1], outcomes[2]);
    free(old.t.value);
    free(probe.t.value);
}

static int cleanup(void **state)
{
    (void)state;
    return remove_tree(dir);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idx_plain_and_gzip),
        cmocka_unit_test(idx4_has_channels),
        cmocka_unit_test(idx_floats),
        cmocka_unit_test(idx_corrupt_cases),
        cmocka_unit_test(labels_and_shapes_checked_against_the_network),
        cmocka_unit_test(checkpoint_round_trip),
        cmocka_unit_test(checkpoint_layout_is_documented),
        cmocka_unit_test(checkpoint_truncated_at_every_length),
        cmocka_unit_test(checkpoint_of_another_network),
        cmocka_unit_test(checkpoint_survives_an_interrupted_write),
    };
    return cmocka_run_group_tests_name("files", tests, NULL, cleanup);
}
