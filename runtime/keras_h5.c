/* Keras weight files through libhdf5: the Keras 2 layout of model.save_weights('w.h5') and
 * Keras 3's '.weights.h5' (docs/interop.md). The network's layers with tensors are matched, in
 * order and kind, to the file's layers with weights, following the file's own lists (Keras 2's
 * layer_names and weight_names) rather than guessing; every shape is checked and a mismatch
 * names the layer and the tensor. Written in memory (HDF5's core driver), then atomically. */
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnrt.h"

/* ---- the network's side: its tensors grouped by layer ("conv2d_1/kernel": conv2d_1) ---- */

typedef struct net_layer {
    char name[96];  /* cnnc's: conv2d_1 */
    char kind[96];  /* conv2d, dense, batch_normalization */
    int index;      /* 1-based instance number of its kind: conv2d_1 is 1 */
    int first, n;   /* its tensors in m */
} net_layer;

static int net_layers(const cnn_model *m, net_layer *out, int cap)
{
    int n = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const char *slash = strchr(m->tensors[t].name, '/');
        size_t len = slash ? (size_t)(slash - m->tensors[t].name) : strlen(m->tensors[t].name);
        if (n > 0 && strlen(out[n - 1].name) == len &&
            strncmp(out[n - 1].name, m->tensors[t].name, len) == 0) {
            out[n - 1].n++;
            continue;
        }
        if (n == cap || len >= sizeof out[n].name)
            return -1;
        net_layer *L = &out[n++];
        memcpy(L->name, m->tensors[t].name, len);
        L->name[len] = '\0';
        L->first = t;
        L->n = 1;
        /* kind_N, as cnnc names layers */
        const char *us = strrchr(L->name, '_');
        L->index = us ? atoi(us + 1) : 0;
        size_t klen = us && L->index > 0 ? (size_t)(us - L->name) : len;
        memcpy(L->kind, L->name, klen);
        L->kind[klen] = '\0';
    }
    return n;
}

/* The tensor's own name after the layer's: "kernel". */
static const char *suffix_of(const char *name)
{
    const char *slash = strrchr(name, '/');
    return slash ? slash + 1 : name;
}

static int fail(char *err, size_t errlen, const char *path, const char *msg)
{
    snprintf(err, errlen, "%s: %s", path, msg);
    return -1;
}

static void dims_text(const hsize_t *d, int rank, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < rank && k + 24 < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? "x%llu" : "%llu", (unsigned long long)d[i]);
    if (rank == 0)
        snprintf(buf, cap, "a scalar");
}

static void tensor_dims_text(const cnn_tensor *T, char *buf, size_t cap)
{
    hsize_t d[4];
    for (int i = 0; i < T->rank; i++)
        d[i] = (hsize_t)T->dims[i];
    dims_text(d, T->rank, buf, cap);
}

/* ---- reading ---- */

/* The strings of attribute `name` of loc, fixed- or variable-length, as Keras and h5py write
 * them; Keras 2 splits a long list into name0, name1, ... (HDF5's 64 KiB attribute limit).
 * Returns how many (into *out, malloc'd, each malloc'd), -1 if the attribute is missing or not
 * strings. */
static int read_one_string_attr(hid_t loc, const char *name, char ***out)
{
    *out = NULL;
    if (H5Aexists(loc, name) <= 0)
        return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t type = a >= 0 ? H5Aget_type(a) : -1, space = a >= 0 ? H5Aget_space(a) : -1;
    int n = -1;
    if (type >= 0 && space >= 0 && H5Tget_class(type) == H5T_STRING) {
        hssize_t count = H5Sget_simple_extent_npoints(space);
        char **s = count >= 0 && count < (1 << 20) ? calloc((size_t)count + 1, sizeof *s) : NULL;
        if (s && H5Tis_variable_str(type) > 0) {
            hid_t mem = H5Tcopy(H5T_C_S1);
            H5Tset_size(mem, H5T_VARIABLE);
            H5Tset_cset(mem, H5Tget_cset(type)); /* h5py's are UTF-8: no conversion */
            char **v = calloc((size_t)count + 1, sizeof *v);
            if (v && H5Aread(a, mem, v) >= 0) {
                n = (int)count;
                for (int i = 0; i < n; i++)
                    s[i] = strdup(v[i] ? v[i] : "");
                H5Dvlen_reclaim(mem, space, H5P_DEFAULT, v);
            }
            free(v);
            H5Tclose(mem);
        } else if (s) {
            size_t size = H5Tget_size(type);
            hid_t mem = H5Tcopy(H5T_C_S1);
            H5Tset_size(mem, size);
            H5Tset_strpad(mem, H5T_STR_NULLPAD); /* all `size` bytes are the string's */
            H5Tset_cset(mem, H5Tget_cset(type));
            char *buf = calloc((size_t)count * size + 1, 1);
            if (buf && H5Aread(a, mem, buf) >= 0) {
                n = (int)count;
                for (int i = 0; i < n; i++) {
                    s[i] = calloc(size + 1, 1);
                    if (s[i])
                        memcpy(s[i], buf + (size_t)i * size, size);
                }
            }
            free(buf);
            H5Tclose(mem);
        }
        for (int i = 0; i < n; i++)
            if (!s[i])
                n = -1;
        if (n < 0 && s) {
            for (hssize_t i = 0; i < count; i++)
                free(s[i]);
            free(s);
            s = NULL;
        }
        *out = s;
    }
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (a >= 0)
        H5Aclose(a);
    return n;
}

static void free_strings(char **s, int n)
{
    for (int i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

static int read_string_attr(hid_t loc, const char *name, char ***out)
{
    int n = read_one_string_attr(loc, name, out);
    if (n >= 0)
        return n;
    /* name0, name1, ...: concatenated */
    char **all = NULL;
    int total = 0;
    for (int chunk = 0;; chunk++) {
        char part_name[128], **part;
        snprintf(part_name, sizeof part_name, "%s%d", name, chunk);
        int k = read_one_string_attr(loc, part_name, &part);
        if (k < 0)
            break;
        char **bigger = realloc(all, sizeof *all * (size_t)(total + k + 1));
        if (!bigger) {
            free_strings(part, k);
            free_strings(all, total);
            return -1;
        }
        all = bigger;
        memcpy(all + total, part, sizeof *part * (size_t)k);
        total += k;
        free(part);
    }
    *out = all;
    return all ? total : -1;
}

/* Reads dataset `name` of loc into T (named what in messages), checking its shape. */
static int read_tensor(hid_t loc, const char *name, cnn_tensor *T, const char *path,
                       const char *layer, char *err, size_t errlen)
{
    char msg[700];
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) {
        snprintf(msg, sizeof msg, "layer '%s' lists the weight '%s', and the file has no such "
                                  "dataset", layer, name);
        return fail(err, errlen, path, msg);
    }
    hid_t space = H5Dget_space(d), type = H5Dget_type(d);
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1, rc = -1;
    hsize_t dims[8] = {0};
    if (rank >= 0 && rank <= 8)
        H5Sget_simple_extent_dims(space, dims, NULL);
    int same = rank == T->rank;
    for (int i = 0; same && i < rank; i++)
        same = dims[i] == (hsize_t)T->dims[i];
    char have[96], want[96];
    if (type < 0 || H5Tget_class(type) != H5T_FLOAT) {
        snprintf(msg, sizeof msg, "layer '%s' weight '%s' is not floating point", layer, name);
        fail(err, errlen, path, msg);
    } else if (!same) {
        dims_text(dims, rank < 0 || rank > 8 ? 0 : rank, have, sizeof have);
        tensor_dims_text(T, want, sizeof want);
        snprintf(msg, sizeof msg, "layer '%s' weight '%s' has shape %s, and the network's %s "
                                  "is %s", layer, name, have, T->name, want);
        fail(err, errlen, path, msg);
    } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, T->value) < 0) {
        snprintf(msg, sizeof msg, "cannot read layer '%s' weight '%s'", layer, name);
        fail(err, errlen, path, msg);
    } else
        rc = 0;
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    H5Dclose(d);
    return rc;
}

/* A weight's name as Keras 2 lists it ("conv2d_1/kernel:0", or "kernel:0"): the tensor kind. */
static void weight_kind(const char *weight, char *kind, size_t cap)
{
    snprintf(kind, cap, "%s", suffix_of(weight));
    char *colon = strchr(kind, ':');
    if (colon)
        *colon = '\0';
}

/* Keras 2: layer_names in order; each group's weight_names; the layers with weights, in order,
 * are the network's layers with tensors. */
static int load_keras2(hid_t f, cnn_model *m, const net_layer *L, int n_layers,
                       const char *path, char *err, size_t errlen)
{
    char **names, msg[900];
    int n = read_string_attr(f, "layer_names", &names);
    if (n < 0)
        return fail(err, errlen, path, "no 'layer_names' attribute: not a Keras weight file "
                                       "(model.save_weights in the h5 format)");
    int at = 0, rc = -1;
    for (int i = 0; i < n; i++) {
        hid_t g = H5Gopen2(f, names[i], H5P_DEFAULT);
        if (g < 0) {
            snprintf(msg, sizeof msg, "layer_names lists '%s', and the file has no such group",
                     names[i]);
            fail(err, errlen, path, msg);
            goto done;
        }
        char **weights;
        /* Keras' own writer leaves it out for a layer without weights (HDF5 has no empty
         * attributes in h5py's hands). */
        int nw = read_string_attr(g, "weight_names", &weights);
        if (nw < 0)
            nw = 0, weights = NULL;
        if (nw == 0) {
            H5Gclose(g);
            free_strings(weights, nw);
            continue;
        }
        int bad = 0;
        if (at >= n_layers) {
            snprintf(msg, sizeof msg, "layer '%s' is its layer with weights number %d, and the "
                                      "network has %d", names[i], at + 1, n_layers);
            bad = 1;
        } else if (nw != L[at].n) {
            snprintf(msg, sizeof msg, "layer '%s' has %d weights, and the network's %s %d",
                     names[i], nw, L[at].name, L[at].n);
            bad = 1;
        }
        for (int k = 0; !bad && k < nw; k++) {
            cnn_tensor *T = &m->tensors[L[at].first + k];
            char kind[128];
            weight_kind(weights[k], kind, sizeof kind);
            if (strcmp(kind, suffix_of(T->name)) != 0) {
                snprintf(msg, sizeof msg, "layer '%s' weight '%s' is a %s, and the network's "
                                          "%s a %s", names[i], weights[k], kind, T->name,
                         suffix_of(T->name));
                bad = 1;
            } else if (read_tensor(g, weights[k], T, path, names[i], err, errlen))
                bad = 2;
        }
        free_strings(weights, nw);
        H5Gclose(g);
        if (bad) {
            if (bad == 1)
                fail(err, errlen, path, msg);
            goto done;
        }
        at++;
    }
    if (at != n_layers) {
        snprintf(msg, sizeof msg, "the file has %d layers with weights, and the network %d "
                                  "(%s first without)", at, n_layers, L[at].name);
        fail(err, errlen, path, msg);
        goto done;
    }
    rc = 0;
done:
    free_strings(names, n);
    return rc;
}

/* Keras 3 names a layer kind's instances kind, kind_1, kind_2, ...; cnnc kind_1, kind_2, ...:
 * the k-th (from 1) is "kind" when k is 1, else "kind_(k-1)". */
static void keras3_name(const net_layer *L, char *buf, size_t cap)
{
    if (L->index <= 1)
        snprintf(buf, cap, "%s", L->kind);
    else
        snprintf(buf, cap, "%s_%d", L->kind, L->index - 1);
}

/* Keras 3: layers/NAME/vars/0, 1, ... in the variables' order. */
static int load_keras3(hid_t f, cnn_model *m, const net_layer *L, int n_layers,
                       const char *path, char *err, size_t errlen)
{
    char msg[700];
    if (H5Lexists(f, "layers", H5P_DEFAULT) <= 0)
        return fail(err, errlen, path, "no 'layers' group: not a Keras 3 weight file "
                                       "(model.save_weights('w.weights.h5'))");
    hid_t layers = H5Gopen2(f, "layers", H5P_DEFAULT);
    int rc = 0;
    for (int i = 0; i < n_layers && rc == 0; i++) {
        char name[128], vars[160];
        keras3_name(&L[i], name, sizeof name);
        snprintf(vars, sizeof vars, "%s/vars", name);
        if (H5Lexists(layers, name, H5P_DEFAULT) <= 0 || H5Lexists(layers, vars, H5P_DEFAULT) <= 0) {
            snprintf(msg, sizeof msg, "no group 'layers/%s/vars' for the network's %s", name,
                     L[i].name);
            rc = fail(err, errlen, path, msg);
            break;
        }
        hid_t g = H5Gopen2(layers, vars, H5P_DEFAULT);
        H5G_info_t info;
        if (H5Gget_info(g, &info) < 0 || info.nlinks != (hsize_t)L[i].n) {
            snprintf(msg, sizeof msg, "'layers/%s/vars' holds %llu variables, and the "
                                      "network's %s has %d", name,
                     (unsigned long long)info.nlinks, L[i].name, L[i].n);
            rc = fail(err, errlen, path, msg);
        }
        for (int k = 0; rc == 0 && k < L[i].n; k++) {
            char index[16], where[200];
            snprintf(index, sizeof index, "%d", k);
            snprintf(where, sizeof where, "layers/%s", name);
            rc = read_tensor(g, index, &m->tensors[L[i].first + k], path, where, err, errlen);
        }
        H5Gclose(g);
    }
    H5Gclose(layers);
    return rc;
}

int cnn_keras_is_h5(const char *path)
{
    size_t n = strlen(path);
    return n > 3 && strcmp(path + n - 3, ".h5") == 0;
}

static int is_keras3(const char *path)
{
    size_t n = strlen(path);
    return n > 11 && strcmp(path + n - 11, ".weights.h5") == 0;
}

int cnn_keras_load(const char *path, cnn_model *m, char *err, size_t errlen)
{
    net_layer L[256];
    int n_layers = net_layers(m, L, 256);
    if (n_layers < 0)
        return fail(err, errlen, path, "the network has too many layers for a Keras file");
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot open: %s", strerror(errno));
        return fail(err, errlen, path, msg);
    }
    fclose(probe);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are ours to report */
    hid_t f = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f < 0) {
        H5close();
        return fail(err, errlen, path, "not an HDF5 file");
    }
    /* Read into a copy: a failure halfway leaves m as it was. */
    float **keep = calloc((size_t)m->n_tensors + 1, sizeof *keep);
    int rc = keep ? 0 : fail(err, errlen, path, "out of memory");
    for (int t = 0; rc == 0 && t < m->n_tensors; t++) {
        keep[t] = malloc(sizeof(float) * m->tensors[t].size + 1);
        if (!keep[t])
            rc = fail(err, errlen, path, "out of memory");
        else
            memcpy(keep[t], m->tensors[t].value, sizeof(float) * m->tensors[t].size);
    }
    if (rc == 0)
        rc = is_keras3(path) ? load_keras3(f, m, L, n_layers, path, err, errlen)
                             : load_keras2(f, m, L, n_layers, path, err, errlen);
    for (int t = 0; keep && t < m->n_tensors; t++) {
        if (rc != 0 && keep[t])
            memcpy(m->tensors[t].value, keep[t], sizeof(float) * m->tensors[t].size);
        free(keep[t]);
    }
    free(keep);
    H5Fclose(f);
    H5close(); /* the library's own memory back: it starts again on the next call */
    return rc;
}

/* ---- writing ---- */

/* A fixed-length string attribute (numpy's 'S' strings, as Keras 2 writes them): n strings,
 * or a scalar when n is 0. */
static int write_strings(hid_t loc, const char *name, const char *const *s, int n)
{
    size_t size = 1;
    for (int i = 0; i < (n ? n : 1); i++)
        if (strlen(s[i]) > size)
            size = strlen(s[i]);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, size);
    H5Tset_strpad(type, H5T_STR_NULLPAD);
    hsize_t dim = (hsize_t)n;
    hid_t space = n ? H5Screate_simple(1, &dim, NULL) : H5Screate(H5S_SCALAR);
    char *buf = calloc((size_t)(n ? n : 1) * size + 1, 1);
    int rc = -1;
    if (buf && type >= 0 && space >= 0) {
        for (int i = 0; i < (n ? n : 1); i++)
            memcpy(buf + (size_t)i * size, s[i], strlen(s[i]));
        hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0) {
            rc = H5Awrite(a, type, buf) < 0 ? -1 : 0;
            H5Aclose(a);
        }
    }
    free(buf);
    if (space >= 0)
        H5Sclose(space);
    H5Tclose(type);
    return rc;
}

static int write_dataset(hid_t loc, const char *name, const cnn_tensor *T, hid_t lcpl)
{
    hsize_t dims[4];
    for (int i = 0; i < T->rank; i++)
        dims[i] = (hsize_t)T->dims[i];
    hid_t space = H5Screate_simple(T->rank, dims, NULL);
    hid_t d = space >= 0 ? H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT,
                                      H5P_DEFAULT) : -1;
    int rc = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, T->value) >= 0
                 ? 0 : -1;
    if (d >= 0)
        H5Dclose(d);
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

static int save_keras2(hid_t f, const cnn_model *m, const net_layer *L, int n_layers, hid_t lcpl)
{
    const char **names = calloc((size_t)n_layers + 1, sizeof *names);
    if (!names)
        return -1;
    for (int i = 0; i < n_layers; i++)
        names[i] = L[i].name;
    const char *backend = "tensorflow", *version = "2.15.0";
    int rc = write_strings(f, "layer_names", names, n_layers) ||
             write_strings(f, "backend", &backend, 0) ||
             write_strings(f, "keras_version", &version, 0);
    free(names);
    for (int i = 0; rc == 0 && i < n_layers; i++) {
        hid_t g = H5Gcreate2(f, L[i].name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0)
            return -1;
        char w[8][128]; /* a layer has at most 4 tensors (batchnorm) */
        const char *wp[8];
        int n = L[i].n < 8 ? L[i].n : 8;
        for (int k = 0; k < n; k++) {
            /* "conv2d_1/kernel:0", a dataset kernel:0 in a group conv2d_1 in the layer's */
            snprintf(w[k], sizeof w[k], "%s:0", m->tensors[L[i].first + k].name);
            wp[k] = w[k];
            if (write_dataset(g, w[k], &m->tensors[L[i].first + k], lcpl))
                rc = -1;
        }
        if (rc == 0)
            rc = write_strings(g, "weight_names", wp, n);
        H5Gclose(g);
    }
    return rc;
}

static int save_keras3(hid_t f, const cnn_model *m, const net_layer *L, int n_layers, hid_t lcpl)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < n_layers; i++) {
        char name[160];
        keras3_name(&L[i], name, sizeof name);
        for (int k = 0; rc == 0 && k < L[i].n; k++) {
            char where[200];
            snprintf(where, sizeof where, "layers/%s/vars/%d", name, k);
            rc = write_dataset(f, where, &m->tensors[L[i].first + k], lcpl);
        }
    }
    return rc;
}

int cnn_keras_save(const char *path, const cnn_model *m, char *err, size_t errlen)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    net_layer L[256];
    int n_layers = net_layers(m, L, 256);
    if (n_layers < 0)
        return fail(err, errlen, path, "the network has too many layers for a Keras file");
    /* In memory (the core driver, no backing file), then written atomically. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_fapl_core(fapl, 1 << 20, 0);
    H5Pset_create_intermediate_group(lcpl, 1);
    char mem_name[64];
    snprintf(mem_name, sizeof mem_name, "cnnc-keras-%p", (const void *)m);
    hid_t f = H5Fcreate(mem_name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    int rc = f < 0 ? -1 : is_keras3(path) ? save_keras3(f, m, L, n_layers, lcpl)
                                          : save_keras2(f, m, L, n_layers, lcpl);
    void *image = NULL;
    ssize_t size = -1;
    if (rc == 0 && H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0) {
        size = H5Fget_file_image(f, NULL, 0);
        image = size > 0 ? malloc((size_t)size) : NULL;
        if (!image || H5Fget_file_image(f, image, (size_t)size) != size)
            rc = -1;
    } else
        rc = -1;
    if (f >= 0)
        H5Fclose(f);
    H5Pclose(fapl);
    H5Pclose(lcpl);
    H5close();
    if (rc != 0) {
        free(image);
        return fail(err, errlen, path, "cannot make the HDF5 file (out of memory?)");
    }
    rc = cnn_write_atomically(path, image, (size_t)size, err, errlen);
    free(image);
    return rc;
}
