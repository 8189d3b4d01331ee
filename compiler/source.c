/* A .net source file held in memory, with its name and line lookup for error messages. */
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A UTF-8 byte-order mark (editors on Windows write one) is not part of the text: dropped, so
 * that columns count from the first character. */
static size_t bom_length(const char *text, size_t len)
{
    return len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

int cnn_source_from_bytes(cnn_source *src, const char *name, const char *data, size_t len)
{
    size_t bom = bom_length(data, len);
    src->len = len - bom;
    src->name = strdup(name);
    src->text = malloc(src->len + 1);
    if (!src->name || !src->text) {
        cnn_source_free(src);
        errno = ENOMEM;
        return -1;
    }
    memcpy(src->text, data + bom, src->len);
    src->text[src->len] = '\0';
    return 0;
}

int cnn_source_from_string(cnn_source *src, const char *name, const char *text)
{
    return cnn_source_from_bytes(src, name, text, strlen(text));
}

int cnn_source_read(cnn_source *src, const char *path)
{
    memset(src, 0, sizeof *src);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int failed = !buf || ferror(f);
    int saved = buf ? EIO : ENOMEM;
    if (ferror(f))
        saved = errno ? errno : EIO;
    fclose(f);
    if (failed) {
        free(buf);
        errno = saved;
        return -1;
    }
    buf[len] = '\0';
    size_t bom = bom_length(buf, len);
    memmove(buf, buf + bom, len + 1 - bom);
    len -= bom;
    src->text = buf;
    src->len = len;
    src->name = strdup(path);
    if (!src->name) {
        cnn_source_free(src);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void cnn_source_free(cnn_source *src)
{
    free(src->name);
    free(src->text);
    src->name = src->text = NULL;
    src->len = 0;
}

const char *cnn_source_line(const cnn_source *src, int line, size_t *len)
{
    if (!src->text || line < 1)
        return NULL;
    const char *p = src->text, *end = src->text + src->len;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n > 0 && p[n - 1] == '\r')
        n--;
    *len = n;
    return p;
}
