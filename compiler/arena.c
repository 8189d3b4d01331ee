/* A bump allocator: everything the front end builds for one file is freed in one call. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

struct cnn_arena_block {
    cnn_arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

void *cnn_arena_alloc(cnn_arena *a, size_t size)
{
    size_t align = sizeof(max_align_t);
    size = (size + align - 1) / align * align;
    cnn_arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > 16384 ? size : 16384;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *cnn_arena_strndup(cnn_arena *a, const char *s, size_t n)
{
    char *p = cnn_arena_alloc(a, n + 1);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *cnn_arena_strdup(cnn_arena *a, const char *s)
{
    return cnn_arena_strndup(a, s, strlen(s));
}

void cnn_arena_free(cnn_arena *a)
{
    cnn_arena_block *b = a->head;
    while (b) {
        cnn_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}
