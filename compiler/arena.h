/* A bump allocator: everything the front end builds for one file is freed in one call. */
#ifndef CNN_ARENA_H
#define CNN_ARENA_H
#include <stddef.h>

typedef struct cnn_arena_block cnn_arena_block;
typedef struct cnn_arena {
    cnn_arena_block *head;
} cnn_arena;

/* Returns zeroed memory, or NULL when out of memory. */
void *cnn_arena_alloc(cnn_arena *a, size_t size);
char *cnn_arena_strndup(cnn_arena *a, const char *s, size_t n);
char *cnn_arena_strdup(cnn_arena *a, const char *s);
void cnn_arena_free(cnn_arena *a);

#endif
