/* Fault injection for cnnc (test only): linked into cnnc_faults with -Wl,--wrap for each call
 * below, it counts the allocations and writes of cnnc's own code and fails the Nth, with
 * CNNC_FAIL_AT=N in the environment. With CNNC_FAIL_COUNT set it prints how many there were
 * ("faults: N calls") at exit, so that a test can fail each one in turn. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
int __real_fputs(const char *s, FILE *f);
int __real_fputc(int c, FILE *f);
int __real_vfprintf(FILE *f, const char *fmt, va_list ap);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
ssize_t __real_write(int fd, const void *p, size_t n);
FILE *__real_open_memstream(char **buf, size_t *len);
int __real_fflush(FILE *f);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
int __wrap_fputs(const char *s, FILE *f);
int __wrap_fputc(int c, FILE *f);
int __wrap_vfprintf(FILE *f, const char *fmt, va_list ap);
int __wrap_fprintf(FILE *f, const char *fmt, ...);
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f);
ssize_t __wrap_write(int fd, const void *p, size_t n);
FILE *__wrap_open_memstream(char **buf, size_t *len);
int __wrap_fflush(FILE *f);

static long calls, fail_at = -1;

/* Whether this call is the one to fail. Reads the environment once, on the first call. */
static int fails(void)
{
    if (fail_at < 0) {
        const char *v = getenv("CNNC_FAIL_AT");
        fail_at = v ? atol(v) : 0;
    }
    return ++calls == fail_at;
}

static void report(void) __attribute__((destructor));
static void report(void)
{
    if (getenv("CNNC_FAIL_COUNT")) {
        char line[64];
        int n = snprintf(line, sizeof line, "faults: %ld calls\n", calls);
        if (__real_write(2, line, (size_t)n) < 0)
            _exit(3);
    }
}

void *__wrap_malloc(size_t n)
{
    return fails() ? (errno = ENOMEM, NULL) : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fails() ? (errno = ENOMEM, NULL) : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fails() ? (errno = ENOMEM, NULL) : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fails() ? (errno = ENOMEM, NULL) : __real_strdup(s);
}

FILE *__wrap_open_memstream(char **buf, size_t *len)
{
    return fails() ? (errno = ENOMEM, NULL) : __real_open_memstream(buf, len);
}

int __wrap_fputs(const char *s, FILE *f)
{
    return fails() ? (errno = ENOSPC, EOF) : __real_fputs(s, f);
}

int __wrap_fputc(int c, FILE *f)
{
    return fails() ? (errno = ENOSPC, EOF) : __real_fputc(c, f);
}

int __wrap_vfprintf(FILE *f, const char *fmt, va_list ap)
{
    return fails() ? (errno = ENOSPC, -1) : __real_vfprintf(f, fmt, ap);
}

int __wrap_fprintf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = __wrap_vfprintf(f, fmt, ap);
    va_end(ap);
    return rc;
}

size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    return fails() ? (errno = ENOSPC, 0) : __real_fwrite(p, size, n, f);
}

ssize_t __wrap_write(int fd, const void *p, size_t n)
{
    return fails() ? (errno = ENOSPC, -1) : __real_write(fd, p, n);
}

int __wrap_fflush(FILE *f)
{
    return fails() ? (errno = ENOSPC, EOF) : __real_fflush(f);
}
