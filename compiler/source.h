/* A .net source file held in memory, with its name and line lookup for error messages. */
#ifndef CNN_SOURCE_H
#define CNN_SOURCE_H
#include <stddef.h>

typedef struct cnn_source {
    char *name;  /* as the user gave it, for messages */
    char *text;  /* NUL-terminated contents */
    size_t len;
} cnn_source;

/* Reads a whole file; on failure returns -1 and leaves errno set. */
int cnn_source_read(cnn_source *src, const char *path);
/* Wraps a string (tests, stdin); the text is copied. */
int cnn_source_from_string(cnn_source *src, const char *name, const char *text);
/* The same from len bytes, which may hold NULs. */
int cnn_source_from_bytes(cnn_source *src, const char *name, const char *data, size_t len);
void cnn_source_free(cnn_source *src);
/* Start and length of line `line` (1-based) without its newline; NULL if out of range. */
const char *cnn_source_line(const cnn_source *src, int line, size_t *len);

#endif
