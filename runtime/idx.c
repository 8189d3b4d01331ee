/* IDX data files (MNIST's format: unsigned bytes, or float32 for loss mse's data), gzip-compressed
 * or plain, read through zlib. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cnnrt.h"

/* Refuses files whose data would exceed this (a corrupt header could claim terabytes). */
#define IDX_MAX_BYTES ((size_t)1 << 32)

typedef struct idx_file {
    int ndim;
    uint32_t dims[4];
    size_t count; /* product of dims */
    int is_float; /* type 0x0D: count big-endian float32, read into values */
    uint8_t *data;
    float *values;
} idx_file;

static int fail(char *err, size_t errlen, const char *path, const char *what)
{
    snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

/* Reads exactly n bytes; a short read is reported as truncation. */
static int read_exact(gzFile f, void *buf, size_t n, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        unsigned chunk = n - done > (1u << 30) ? (1u << 30) : (unsigned)(n - done);
        int r = gzread(f, (char *)buf + done, chunk);
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return done == n ? 0 : -1;
}

/* Reads the count bytes the header announced into a buffer that grows with what actually
 * arrives: a truncated file whose header claims gigabytes fails without allocating them.
 * Returns -1 when out of memory; *got tells how much was read. */
static int read_data(gzFile f, idx_file *out, size_t *got)
{
    size_t cap = out->count < ((size_t)1 << 20) ? out->count : (size_t)1 << 20;
    *got = 0;
    out->data = malloc(cap ? cap : 1);
    if (!out->data)
        return -1;
    for (;;) {
        size_t n;
        read_exact(f, out->data + *got, cap - *got, &n);
        *got += n;
        if (*got < cap || cap == out->count)
            return 0;
        size_t bigger = cap * 2 < out->count ? cap * 2 : out->count;
        uint8_t *p = realloc(out->data, bigger);
        if (!p)
            return -1;
        out->data = p;
        cap = bigger;
    }
}

/* Reads an IDX file of min_dim to max_dim dimensions: unsigned bytes, or with floats set also
 * float32 (converted from big-endian, every value finite). */
static int idx_read(idx_file *out, const char *path, int min_dim, int max_dim, int floats,
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot open: %s", strerror(errno ? errno : ENOENT));
        return fail(err, errlen, path, msg);
    }
    uint8_t head[4];
    size_t got;
    char msg[256];
    int rc = -1;
    if (read_exact(f, head, 4, &got)) {
        fail(err, errlen, path, "truncated: no IDX header");
        goto done;
    }
    out->is_float = floats && head[0] == 0 && head[1] == 0 && head[2] == 0x0D;
    if (head[0] != 0 || head[1] != 0 || (head[2] != 0x08 && !out->is_float)) {
        snprintf(msg, sizeof msg,
                 "not an %s IDX file (magic %02x %02x %02x %02x, expected 00 00 08 0N%s)",
                 floats ? "unsigned-byte or float32" : "unsigned-byte", head[0], head[1],
                 head[2], head[3], floats ? " or 00 00 0d 0N" : "");
        fail(err, errlen, path, msg);
        goto done;
    }
    out->ndim = head[3];
    if (out->ndim < min_dim || out->ndim > max_dim) {
        snprintf(msg, sizeof msg, "has %d dimensions, expected %s", out->ndim,
                 min_dim == max_dim ? "1 (labels)"
                 : min_dim == 2     ? "2 (n x features), 3 (n x h x w) or 4 (n x h x w x c)"
                                    : "3 (n x h x w) or 4 (n x h x w x c)");
        fail(err, errlen, path, msg);
        goto done;
    }
    out->count = 1;
    for (int i = 0; i < out->ndim; i++) {
        uint8_t b[4];
        if (read_exact(f, b, 4, &got)) {
            fail(err, errlen, path, "truncated: incomplete IDX header");
            goto done;
        }
        out->dims[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (out->dims[i] == 0 || out->dims[i] > (1u << 30)) {
            snprintf(msg, sizeof msg, "dimension %d has size %u", i, out->dims[i]);
            fail(err, errlen, path, msg);
            goto done;
        }
        out->count *= out->dims[i];
        if (out->count * (out->is_float ? 4 : 1) > IDX_MAX_BYTES) {
            fail(err, errlen, path, "header claims more than 4 GiB of data");
            goto done;
        }
    }
    size_t elements = out->count;
    if (out->is_float)
        out->count *= 4; /* bytes, while reading */
    if (read_data(f, out, &got) < 0) {
        fail(err, errlen, path, "out of memory");
        goto done;
    }
    if (got < out->count) {
        int zerr;
        const char *zmsg = gzerror(f, &zerr);
        if (zerr != Z_OK && zerr != Z_BUF_ERROR)
            snprintf(msg, sizeof msg, "corrupt compressed data after %zu of %zu bytes (%s)", got,
                     out->count, zmsg);
        else
            snprintf(msg, sizeof msg, "truncated: %zu of %zu data bytes", got, out->count);
        fail(err, errlen, path, msg);
        goto done;
    }
    uint8_t extra;
    if (gzread(f, &extra, 1) > 0) {
        fail(err, errlen, path, "has data beyond what its header describes");
        goto done;
    }
    out->count = elements;
    if (out->is_float) {
        out->values = malloc(sizeof(float) * (elements ? elements : 1));
        if (!out->values) {
            fail(err, errlen, path, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < elements; i++) {
            const uint8_t *b = out->data + 4 * i;
            uint32_t u = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
            memcpy(&out->values[i], &u, 4);
            if (!isfinite(out->values[i])) {
                snprintf(msg, sizeof msg, "value %zu is not a finite number", i);
                fail(err, errlen, path, msg);
                goto done;
            }
        }
        free(out->data);
        out->data = NULL;
    }
    rc = 0;
done:
    gzclose(f);
    if (rc) {
        free(out->data);
        free(out->values);
        out->data = NULL;
        out->values = NULL;
    }
    return rc;
}

int cnn_dataset_load(cnn_dataset *ds, const char *images_path, const char *labels_path,
                     char *err, size_t errlen)
{
    memset(ds, 0, sizeof *ds);
    idx_file img, lab;
    if (idx_read(&img, images_path, 2, 4, 1, err, errlen))
        return -1;
    if (!labels_path) {
        lab = (idx_file){.ndim = 1, .dims = {img.dims[0]}, .count = img.dims[0]};
        lab.data = calloc(img.dims[0], 1);
        if (!lab.data) {
            free(img.data);
            snprintf(err, errlen, "%s: out of memory", images_path);
            return -1;
        }
    } else if (idx_read(&lab, labels_path, 1, 1, 0, err, errlen)) {
        free(img.data);
        free(img.values);
        return -1;
    }
    if (img.dims[0] != lab.dims[0]) {
        snprintf(err, errlen, "%s: has %u labels but %s has %u images", labels_path, lab.dims[0],
                 images_path, img.dims[0]);
        free(img.data);
        free(img.values);
        free(lab.data);
        return -1;
    }
    ds->n = (int)img.dims[0];
    if (img.ndim == 2) { /* n x features: vectors, as `input F` takes them */
        ds->h = ds->w = 1;
        ds->c = (int)img.dims[1];
    } else {
        ds->h = (int)img.dims[1];
        ds->w = (int)img.dims[2];
        ds->c = img.ndim == 4 ? (int)img.dims[3] : 1;
    }
    ds->images = img.data;
    ds->values = img.values;
    ds->labels = lab.data;
    snprintf(ds->images_path, sizeof ds->images_path, "%s", images_path);
    snprintf(ds->labels_path, sizeof ds->labels_path, "%s", labels_path ? labels_path : "(none)");
    return 0;
}

int cnn_dataset_load_targets(cnn_dataset *ds, const char *path, char *err, size_t errlen)
{
    idx_file t;
    if (idx_read(&t, path, 1, 4, 1, err, errlen))
        return -1;
    if ((int)t.dims[0] != ds->n) {
        snprintf(err, errlen, "%s: has %u targets but %s has %d images", path, t.dims[0],
                 ds->images_path, ds->n);
        free(t.data);
        free(t.values);
        return -1;
    }
    if (!t.values) { /* bytes, scaled as images are */
        t.values = malloc(sizeof(float) * t.count);
        if (!t.values) {
            free(t.data);
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        for (size_t i = 0; i < t.count; i++)
            t.values[i] = t.data[i] * (1.0f / 255.0f);
        free(t.data);
    }
    free(ds->targets);
    ds->targets = t.values;
    ds->target_size = (int)(t.count / t.dims[0]);
    snprintf(ds->targets_path, sizeof ds->targets_path, "%s", path);
    return 0;
}

int cnn_dataset_check(const cnn_dataset *ds, const cnn_model *m, char *err, size_t errlen)
{
    if (ds->h != m->in_h || ds->w != m->in_w || ds->c != m->in_c) {
        snprintf(err, errlen, "%s: images are %dx%dx%d but network '%s' takes %dx%dx%d",
                 ds->images_path, ds->h, ds->w, ds->c, m->name, m->in_h, m->in_w, m->in_c);
        return -1;
    }
    if (m->train.loss == CNN_LOSS_MSE) {
        int size = ds->targets ? ds->target_size : ds->h * ds->w * ds->c;
        if (size != m->n_classes) {
            if (ds->targets)
                snprintf(err, errlen, "%s: targets of %d values, and network '%s' has %d outputs",
                         ds->targets_path, size, m->name, m->n_classes);
            else
                snprintf(err, errlen, "%s: no targets file, and the images (%d values) cannot "
                         "be the targets of network '%s', which has %d outputs (loss mse "
                         "needs --train-targets and --test-targets)", ds->images_path, size,
                         m->name, m->n_classes);
            return -1;
        }
        return 0;
    }
    for (int i = 0; i < ds->n; i++)
        if (ds->labels[i] >= m->n_classes) {
            snprintf(err, errlen, "%s: label %d of item %d is out of range for %d classes",
                     ds->labels_path, ds->labels[i], i, m->n_classes);
            return -1;
        }
    return 0;
}

void cnn_dataset_free(cnn_dataset *ds)
{
    free(ds->images);
    free(ds->values);
    free(ds->labels);
    free(ds->targets);
    ds->images = ds->labels = NULL;
    ds->values = ds->targets = NULL;
}

void cnn_dataset_batch(const cnn_dataset *ds, const int *idx, int n, float *x, int *labels)
{
    size_t size = (size_t)ds->h * ds->w * ds->c;
    for (int b = 0; b < n; b++) {
        if (ds->values)
            memcpy(x + (size_t)b * size, ds->values + (size_t)idx[b] * size, sizeof(float) * size);
        else {
            const uint8_t *src = ds->images + (size_t)idx[b] * size;
            for (size_t i = 0; i < size; i++)
                x[(size_t)b * size + i] = src[i] * (1.0f / 255.0f);
        }
        if (labels)
            labels[b] = ds->labels[idx[b]];
    }
}

void cnn_dataset_targets(const cnn_dataset *ds, const int *idx, int n, float *t)
{
    if (!ds->targets) {
        cnn_dataset_batch(ds, idx, n, t, NULL);
        return;
    }
    size_t size = (size_t)ds->target_size;
    for (int b = 0; b < n; b++)
        memcpy(t + (size_t)b * size, ds->targets + (size_t)idx[b] * size, sizeof(float) * size);
}

const char *const cnn_fashion_mnist_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                   "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                   "Bag",         "Ankle boot"};

void cnn_kfold_split(int n, int k, int fold, uint64_t seed, int *train, int *n_train, int *val,
                     int *n_val)
{
    /* The same permutation for every fold of one seed, so that the folds partition the items.
     * It is built in train, the fold copied out, and the rest closed up in place. */
    cnn_rng rng;
    cnn_rng_seed(&rng, seed ^ 0x4b464f4c44ULL);
    for (int i = 0; i < n; i++)
        train[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cnn_rng_below(&rng, (uint32_t)i + 1);
        int t = train[i];
        train[i] = train[j];
        train[j] = t;
    }
    int lo = (int)((long)n * fold / k), hi = (int)((long)n * (fold + 1) / k);
    *n_val = hi - lo;
    memcpy(val, train + lo, sizeof(int) * (size_t)*n_val);
    memmove(train + lo, train + hi, sizeof(int) * (size_t)(n - hi));
    *n_train = n - *n_val;
}

char **cnn_class_names_load(const char *path, int k, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char **names = calloc((size_t)k + 1, sizeof *names);
    int n = 0, failed = !names;
    char line[256];
    while (!failed && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (n >= k) {
            n++;
            break;
        }
        if (!(names[n++] = strdup(line)))
            failed = 1;
    }
    fclose(f);
    if (failed)
        snprintf(err, errlen, "%s: out of memory reading it", path);
    else if (n != k)
        snprintf(err, errlen, "%s: names %s%d classes, the network has %d", path,
                 n > k ? "more than " : "", n > k ? k : n, k);
    if (failed || n != k) {
        cnn_class_names_free(names);
        return NULL;
    }
    return names;
}

void cnn_class_names_free(char **names)
{
    for (int i = 0; names && names[i]; i++)
        free(names[i]);
    free(names);
}
