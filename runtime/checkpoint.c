/* Checkpoints: every tensor of a network (and optionally its training state) in one versioned,
 * checksummed little-endian file, written atomically. The format is in docs/checkpoint.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cnnrt.h"

#define MAGIC "CNNCKPT\0"
#define VERSION 1u
#define FLAG_STATE 1u

/* ---- a growing byte buffer, little-endian writers ---- */

typedef struct buf {
    unsigned char *data;
    size_t len, cap;
    int failed;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *bigger = realloc(b->data, cap);
        if (!bigger) {
            b->failed = 1;
            return;
        }
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u(buf *b, uint64_t v, int bytes)
{
    unsigned char le[8];
    for (int i = 0; i < bytes; i++)
        le[i] = (unsigned char)(v >> (8 * i));
    put(b, le, (size_t)bytes);
}

static void put_floats(buf *b, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        put_u(b, bits, 4);
    }
}

static void put_name(buf *b, const char *name)
{
    size_t n = strlen(name);
    put_u(b, n, 2);
    put(b, name, n);
}

/* ---- a bounded reader ---- */

typedef struct reader {
    const unsigned char *p, *end;
    int short_read;
} reader;

static uint64_t get_u(reader *r, int bytes)
{
    if (r->end - r->p < bytes) {
        r->short_read = 1;
        r->p = r->end;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    return v;
}

static const unsigned char *get_bytes(reader *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->short_read = 1;
        r->p = r->end;
        return NULL;
    }
    const unsigned char *at = r->p;
    r->p += n;
    return at;
}

/* ---- the network's identity ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t cnn_fingerprint(const cnn_model *m)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, m->name, strlen(m->name) + 1);
    for (int t = 0; t < m->n_tensors; t++) {
        const cnn_tensor *T = &m->tensors[t];
        h = fnv(h, T->name, strlen(T->name) + 1);
        unsigned char shape[1 + 4 * 4] = {(unsigned char)T->rank};
        for (int i = 0; i < T->rank; i++)
            for (int k = 0; k < 4; k++)
                shape[1 + 4 * i + k] = (unsigned char)((uint32_t)T->dims[i] >> (8 * k));
        h = fnv(h, shape, 1 + 4 * (size_t)T->rank);
    }
    return h;
}

/* A tensor record: the model's tensor t itself (slot < 0) or one of its optimizer slots. */
static void slot_name(char *out, size_t cap, const char *tensor, int slot)
{
    if (slot < 0)
        snprintf(out, cap, "%s", tensor);
    else
        snprintf(out, cap, "optimizer/%s/%s", tensor, slot == 0 ? "m" : "v");
}

static void put_state(buf *b, const cnn_train_state *s)
{
    put_u(b, (uint32_t)s->epoch, 4);
    put_u(b, (uint64_t)s->step, 8);
    for (int i = 0; i < 4; i++)
        put_u(b, s->shuffle.s[i], 8);
    for (int i = 0; i < 4; i++)
        put_u(b, s->dropout.s[i], 8);
}

static int fail(char *err, size_t errlen, const char *path, const char *what)
{
    snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

int cnn_write_atomically(const char *path, const void *bytes, size_t len, char *err,
                         size_t errlen)
{
    const unsigned char *data = bytes;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return fail(err, errlen, path, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    /* mkstemp makes the file 0600; what is written is the user's, as with any other program:
     * 0666 less the umask (which can only be read by setting it). */
    mode_t mask = umask(0);
    umask(mask);
    if (fd >= 0 && fchmod(fd, 0666 & ~mask) != 0) {
        close(fd);
        unlink(tmp);
        fd = -1;
    }
    if (fd < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot create a temporary file beside it: %s", strerror(errno));
        free(tmp);
        return fail(err, errlen, path, msg);
    }
    size_t done = 0;
    int saved = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            saved = errno;
            break;
        }
        done += (size_t)w;
    }
    if (!saved && fsync(fd) != 0)
        saved = errno;
    if (close(fd) != 0 && !saved)
        saved = errno;
    if (!saved && rename(tmp, path) != 0)
        saved = errno;
    if (saved) {
        unlink(tmp);
        free(tmp);
        char msg[256];
        snprintf(msg, sizeof msg, "cannot write: %s", strerror(saved));
        return fail(err, errlen, path, msg);
    }
    free(tmp);
    /* Make the rename itself durable. */
    char *dir = strdup(path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = '\0';
        int dfd = open(slash ? dir : ".", O_RDONLY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return 0;
}

int cnn_checkpoint_save(const char *path, const cnn_model *m, const cnn_train_state *state,
                        char *err, size_t errlen)
{
    if (cnn_keras_is_h5(path)) /* weights only: Keras' files hold no training state */
        return cnn_keras_save(path, m, err, errlen);
    buf b = {0};
    put(&b, MAGIC, 8);
    put_u(&b, VERSION, 4);
    put_u(&b, cnn_fingerprint(m), 8);
    put_name(&b, m->name);
    put_u(&b, state ? FLAG_STATE : 0, 4);
    if (state)
        put_state(&b, state);
    uint32_t count = 0;
    for (int t = 0; t < m->n_tensors; t++)
        count += 1 + (state && m->tensors[t].slot[0] ? 2 : 0);
    put_u(&b, count, 4);
    for (int t = 0; t < m->n_tensors; t++) {
        const cnn_tensor *T = &m->tensors[t];
        for (int slot = -1; slot < (state && T->slot[0] ? 2 : 0); slot++) {
            char name[256];
            slot_name(name, sizeof name, T->name, slot);
            put_name(&b, name);
            put_u(&b, (uint32_t)T->rank, 1);
            for (int i = 0; i < T->rank; i++)
                put_u(&b, (uint32_t)T->dims[i], 4);
            put_floats(&b, slot < 0 ? T->value : T->slot[slot], T->size);
        }
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < b.len;) {
        uInt chunk = b.len - off > (1u << 30) ? (1u << 30) : (uInt)(b.len - off);
        crc = crc32(crc, b.data + off, chunk);
        off += chunk;
    }
    put_u(&b, (uint32_t)crc, 4);
    if (b.failed) {
        free(b.data);
        return fail(err, errlen, path, "out of memory");
    }
    int rc = cnn_write_atomically(path, b.data, b.len, err, errlen);
    free(b.data);
    return rc;
}

static unsigned char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot open: %s", strerror(errno));
        fail(err, errlen, path, msg);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *data = malloc(cap);
    size_t got;
    while (data && (got = fread(data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *bigger = realloc(data, cap * 2);
            if (!bigger) {
                free(data);
                data = NULL;
                break;
            }
            data = bigger;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!data || bad) {
        free(data);
        fail(err, errlen, path, bad ? "read error" : "out of memory");
        return NULL;
    }
    *len = n;
    return data;
}

static cnn_tensor *find_tensor(cnn_model *m, const char *name, size_t len, int *slot)
{
    char want[256];
    for (int t = 0; t < m->n_tensors; t++)
        for (int s = -1; s < (m->tensors[t].slot[0] ? 2 : 0); s++) {
            slot_name(want, sizeof want, m->tensors[t].name, s);
            if (strlen(want) == len && memcmp(want, name, len) == 0) {
                *slot = s;
                return &m->tensors[t];
            }
        }
    return NULL;
}

int cnn_checkpoint_load(const char *path, cnn_model *m, cnn_train_state *state, int *has_state,
                        char *err, size_t errlen)
{
    if (cnn_keras_is_h5(path)) {
        if (has_state)
            *has_state = 0;
        return cnn_keras_load(path, m, err, errlen);
    }
    size_t len;
    unsigned char *data = slurp(path, &len, err, errlen);
    if (!data)
        return -1;
    char msg[512];
    int rc = -1;
    /* Every record's data, checked before anything is copied into m. */
    const unsigned char **at = calloc((size_t)m->n_tensors * 3 + 1, sizeof *at);
    reader r = {data, data + len, 0};
    if (!at) {
        fail(err, errlen, path, "out of memory");
        goto done;
    }
    const unsigned char *magic = get_bytes(&r, 8);
    if (!magic || memcmp(magic, MAGIC, 8) != 0) {
        fail(err, errlen, path, "not a cnnc checkpoint (wrong magic)");
        goto done;
    }
    uint32_t version = (uint32_t)get_u(&r, 4);
    if (!r.short_read && version != VERSION) {
        snprintf(msg, sizeof msg, "checkpoint format version %u; this cnnc reads version %u",
                 version, VERSION);
        fail(err, errlen, path, msg);
        goto done;
    }
    uint64_t fingerprint = get_u(&r, 8);
    size_t name_len = (size_t)get_u(&r, 2);
    const unsigned char *name = get_bytes(&r, name_len);
    uint32_t flags = (uint32_t)get_u(&r, 4);
    cnn_train_state st = {0};
    if (flags & FLAG_STATE) {
        st.epoch = (int)get_u(&r, 4);
        st.step = (long)get_u(&r, 8);
        for (int i = 0; i < 4; i++)
            st.shuffle.s[i] = get_u(&r, 8);
        for (int i = 0; i < 4; i++)
            st.dropout.s[i] = get_u(&r, 8);
    }
    uint32_t count = (uint32_t)get_u(&r, 4);
    if (r.short_read) {
        fail(err, errlen, path, "truncated: the header is incomplete");
        goto done;
    }
    if (fingerprint != cnn_fingerprint(m)) {
        if (name_len != strlen(m->name) || memcmp(name, m->name, name_len) != 0)
            snprintf(msg, sizeof msg, "is a checkpoint of network '%.*s', not of '%.100s'",
                     (int)(name_len > 64 ? 64 : name_len), (const char *)name, m->name);
        else
            snprintf(msg, sizeof msg, "is a checkpoint of another version of network '%.100s' "
                                      "(its layers or shapes differ)", m->name);
        fail(err, errlen, path, msg);
        goto done;
    }
    for (uint32_t i = 0; i < count; i++) {
        size_t tl = (size_t)get_u(&r, 2);
        const unsigned char *tn = get_bytes(&r, tl);
        int rank = (int)get_u(&r, 1);
        if (r.short_read)
            break;
        int slot;
        cnn_tensor *T = find_tensor(m, (const char *)tn, tl, &slot);
        if (!T || rank != T->rank) {
            snprintf(msg, sizeof msg, "tensor '%.*s' does not belong to network '%.100s'",
                     (int)(tl > 100 ? 100 : tl), (const char *)tn, m->name);
            fail(err, errlen, path, msg);
            goto done;
        }
        for (int d = 0; d < rank; d++)
            if ((int)get_u(&r, 4) != T->dims[d] && !r.short_read) {
                snprintf(msg, sizeof msg, "tensor '%.200s' has another shape than the network's",
                         T->name);
                fail(err, errlen, path, msg);
                goto done;
            }
        const unsigned char *values = get_bytes(&r, T->size * 4);
        if (r.short_read) {
            snprintf(msg, sizeof msg, "truncated: ends inside tensor '%.*s'",
                     (int)(tl > 100 ? 100 : tl), (const char *)tn);
            fail(err, errlen, path, msg);
            goto done;
        }
        at[(T - m->tensors) * 3 + (size_t)(slot + 1)] = values;
    }
    if (r.short_read) {
        fail(err, errlen, path, "truncated: ends inside a tensor record");
        goto done;
    }
    size_t body = (size_t)(r.p - data);
    uint32_t stored = (uint32_t)get_u(&r, 4);
    if (r.short_read) {
        fail(err, errlen, path, "truncated: the checksum is missing");
        goto done;
    }
    if (r.p != r.end) {
        fail(err, errlen, path, "has data after its checksum");
        goto done;
    }
    if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)body) != stored) {
        fail(err, errlen, path, "corrupt: the checksum does not match the contents");
        goto done;
    }
    for (int t = 0; t < m->n_tensors; t++) {
        int need_slots = (flags & FLAG_STATE) && m->tensors[t].slot[0];
        for (int s = 0; s < (need_slots ? 3 : 1); s++)
            if (!at[t * 3 + s]) {
                char want[256];
                slot_name(want, sizeof want, m->tensors[t].name, s - 1);
                snprintf(msg, sizeof msg, "tensor '%.200s' is missing", want);
                fail(err, errlen, path, msg);
                goto done;
            }
    }
    /* Everything checked: copy. */
    for (int t = 0; t < m->n_tensors; t++) {
        cnn_tensor *T = &m->tensors[t];
        for (int s = 0; s < 3; s++) {
            const unsigned char *src = at[t * 3 + s];
            float *dst = s == 0 ? T->value : T->slot[s - 1];
            if (!src || !dst)
                continue;
            for (size_t i = 0; i < T->size; i++) {
                uint32_t bits = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                                (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
                memcpy(&dst[i], &bits, 4);
            }
        }
    }
    if (state)
        *state = st;
    if (has_state)
        *has_state = (flags & FLAG_STATE) != 0;
    rc = 0;
done:
    free(at);
    free(data);
    return rc;
}
