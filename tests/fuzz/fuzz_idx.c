/* libFuzzer target: the IDX reader, plain and gzip. The input is an image file and a label
 * file: its first byte says which to compress (bit 0 images, bit 1 labels), the next two where
 * the images end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cnnrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_file(const char *path, const uint8_t *data, size_t size, int gzip)
{
    if (gzip) {
        gzFile g = gzopen(path, "wb");
        if (!g || (size && gzwrite(g, data, (unsigned)size) != (int)size) || gzclose(g) != Z_OK)
            abort();
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 1 << 16)
        return 0;
    int mode = data[0];
    size_t split = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (split > size)
        split = size;
    char images[64], labels[64];
    snprintf(images, sizeof images, "/tmp/cnnc-fuzz-images-%d", (int)getpid());
    snprintf(labels, sizeof labels, "/tmp/cnnc-fuzz-labels-%d", (int)getpid());
    write_file(images, data, split, mode & 1);
    write_file(labels, data + split, size - split, mode & 2);
    cnn_dataset ds;
    char err[1200];
    if (cnn_dataset_load(&ds, images, (mode & 4) ? NULL : labels, err, sizeof err) == 0) {
        /* What loaded is whole: every byte of every image and label can be read. */
        unsigned sum = 0;
        size_t n = (size_t)ds.n * ds.h * ds.w * ds.c;
        for (size_t i = 0; i < n; i++)
            sum += ds.values ? (ds.values[i] != ds.values[i]) : ds.images[i]; /* floats: no NaN */
        for (int i = 0; i < ds.n; i++)
            sum += ds.labels[i];
        /* The same bytes as a targets file: every value read, each finite. */
        if ((mode & 8) && cnn_dataset_load_targets(&ds, labels, err, sizeof err) == 0)
            for (size_t i = 0; i < (size_t)ds.n * ds.target_size; i++)
                if (!(ds.targets[i] == ds.targets[i]))
                    abort();
        if (ds.n < 1 || ds.h < 1 || ds.w < 1 || ds.c < 1 || sum == 0xFFFFFFFFu)
            abort();
        cnn_dataset_free(&ds);
    } else if (!strstr(err, "/tmp/cnnc-fuzz-"))
        abort(); /* every refusal names the file */
    unlink(images);
    unlink(labels);
    return 0;
}
