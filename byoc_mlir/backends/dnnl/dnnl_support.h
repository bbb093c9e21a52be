/* byoc_dnnl support: the helpers that generated `dnnl` region code calls (oneDNN 3 C API).
 *
 * Like TVM's dnnl_kernel.h for its DNNL C-source codegen: the generated file for one
 * region is a list of calls to these helpers (one per oneDNN primitive), so it stays
 * short and readable. Everything is static: each region's shared library is one
 * translation unit, `region.c` including this header.
 *
 * A region is built once, at load (`bd_new` ... `bd_output` in `byoc_region_init`):
 * primitive descriptors are created directly (oneDNN 3: no operation descriptors),
 * primitives made, weights reordered once into the layout oneDNN prefers and kept.
 * Each call (`bd_run`) binds the caller's input and output buffers (no copy) and
 * executes the primitives in order. Values carry oneDNN's logical dims (N, C, H, W for
 * activations); their memory format is whatever the producing primitive chose (memory
 * descriptors with `format_tag_any`), or the format the region was asked for, and
 * reorders are inserted only where a consumer needs another one: at region boundaries,
 * in practice.
 *
 * Memory descriptors are opaque in oneDNN 3: every one this file creates or clones is
 * recorded in the region and destroyed by `bd_free`, so values may share them freely.
 *
 * Errors never abort: the first failure is recorded in `R->error` and every later
 * helper returns at once; `byoc_region_init` reports it to the loader.
 */
#ifndef BYOC_DNNL_SUPPORT_H
#define BYOC_DNNL_SUPPORT_H

#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIMS(...) ((const dnnl_dim_t[]){__VA_ARGS__})
#define POSTS(...) ((const bd_post[]){__VA_ARGS__})
#define BD_MAX_ARGS 32
#define BD_MAX_POSTS 16

enum {
    BD_RELU = 1, BD_CLIP, BD_GELU_ERF, BD_GELU_TANH, BD_SUM, BD_LINEAR, BD_EXP, BD_POW, BD_QSUM,
    BD_QSUM_IN_PLACE, BD_ROUND, BD_BIN_ADD, BD_BIN_SUB, BD_BIN_MUL
};

/* One post-op: an eltwise function, or `BD_SUM`: add the value `value`, which is
 * copied into the destination before the primitive runs, or (`alpha` != 0: the value
 * dies here) whose buffer becomes the destination when the formats agree; or
 * `BD_QSUM`: add the quantized value `value` (of the destination's 8-bit type; scale
 * `alpha`, zero point `beta`), copied into the destination first, or with
 * `BD_QSUM_IN_PLACE` (the value dies here), accumulated in its own buffer. */
typedef struct {
    int kind;
    float alpha, beta;
    int value;
} bd_post;

typedef struct {
    const_dnnl_memory_desc_t md; /* owned by the region (R->mds) */
    dnnl_memory_t mem;
} bd_value;

typedef struct {
    dnnl_primitive_t prim;
    int nargs;
    dnnl_exec_arg_t args[BD_MAX_ARGS];
} bd_step;

typedef struct {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    bd_value *values;
    int *reordered_from; /* per value: 1 + the value it is a reordered copy of, or 0 */
    char *constant;      /* per value: 1 for a constant of the weights blob */
    int nvalues, capacity;
    bd_step *steps;
    int nsteps, step_capacity;
    dnnl_memory_t *inputs, *outputs;
    int ninputs, noutputs;
    const char *weights;
    dnnl_memory_t *mems; /* every memory object created, for bd_free */
    int nmems, mem_capacity;
    dnnl_memory_desc_t *mds; /* every memory descriptor created, for bd_free */
    int nmds, md_capacity;
    dnnl_format_tag_t activation_tag; /* dnnl_format_tag_any, or e.g. dnnl_nhwc */
    dnnl_fpmath_mode_t fpmath;        /* dnnl_fpmath_mode_strict, or _bf16 (opt-in) */
    dnnl_data_type_t compute_dt;      /* convs' and matmuls' data: f32, or bf16 with _bf16 */
    dnnl_exec_arg_t post_args[BD_MAX_POSTS]; /* the last bd_attr's binary post-op operands */
    int npost_args;
    char error[512];
} bd_region;

static const char *dnnl_status2str_(dnnl_status_t s) {
    switch (s) {
        case dnnl_out_of_memory: return "out of memory";
        case dnnl_invalid_arguments: return "invalid arguments";
        case dnnl_unimplemented: return "unimplemented (no oneDNN implementation)";
        case dnnl_runtime_error: return "runtime error";
        default: return "error";
    }
}

static void bd_status(bd_region *R, dnnl_status_t s, const char *func, int line, const char *call) {
    if (s != dnnl_success && !R->error[0])
        snprintf(R->error, sizeof(R->error), "%s:%d: %s failed: %s", func, line, call,
                 dnnl_status2str_(s));
}

/* Records the first failing oneDNN call (`call` is evaluated once) and returns. */
#define BD_TRY(R, call)                                                   \
    do {                                                                  \
        dnnl_status_t s_ = (call);                                        \
        if (s_ != dnnl_success) {                                         \
            bd_status((R), s_, __func__, __LINE__, #call);                \
            return;                                                       \
        }                                                                 \
    } while (0)

/* The same for a primitive descriptor creation: `*pd` is NULL after a failure. */
#define BD_PD(R, pd, call)                                                \
    do {                                                                  \
        dnnl_status_t s_ = (call);                                        \
        if (s_ != dnnl_success) {                                         \
            bd_status((R), s_, __func__, __LINE__, #call);                \
            *(pd) = NULL;                                                 \
        }                                                                 \
    } while (0)

/* `*pd` made by `create`, an expression of `attr_`: the attribute with `posts` (a sum
 * is returned in `*sum_value`, see bd_attr) and the region's precision mode. */
#define BD_CREATE(R, pd, posts, nposts, sum_value, sum_in_place, create)                 \
    do {                                                                                \
        dnnl_primitive_attr_t attr_ = bd_attr((R), posts, nposts, sum_value, sum_in_place); \
        *(pd) = NULL;                                                                   \
        if (!(R)->error[0]) BD_PD(R, pd, create);                                       \
        if (attr_) dnnl_primitive_attr_destroy(attr_);                                  \
    } while (0)

static void bd_fail(bd_region *R, const char *what) {
    if (!R->error[0]) snprintf(R->error, sizeof(R->error), "%s", what);
}

/* Grows `*array` (of `*capacity` items of `size` bytes) to hold one more item. */
static int bd_grow(void **array, int *capacity, int count, size_t size, int initial) {
    if (count < *capacity) return 1;
    int cap = *capacity ? 2 * *capacity : initial;
    void *grown = realloc(*array, (size_t)cap * size);
    if (!grown) return 0;
    *array = grown;
    *capacity = cap;
    return 1;
}

/* Keeps memory descriptor `md` for bd_free (destroys it at once if there is no room). */
static const_dnnl_memory_desc_t bd_keep(bd_region *R, dnnl_memory_desc_t md) {
    if (!bd_grow((void **)&R->mds, &R->md_capacity, R->nmds, sizeof(dnnl_memory_desc_t), 64)) {
        dnnl_memory_desc_destroy(md);
        bd_fail(R, "out of memory");
        return NULL;
    }
    R->mds[R->nmds++] = md;
    return md;
}

/* A copy of `md` (a primitive descriptor's query result dies with it) kept by the region. */
static const_dnnl_memory_desc_t bd_clone(bd_region *R, const_dnnl_memory_desc_t md) {
    dnnl_memory_desc_t copy = NULL;
    if (R->error[0]) return NULL;
    if (md == NULL || dnnl_memory_desc_clone(&copy, md) != dnnl_success) {
        bd_fail(R, "cannot copy a oneDNN memory descriptor");
        return NULL;
    }
    return bd_keep(R, copy);
}

/* dnnl_memory_create, remembered so that bd_free can destroy it. */
static dnnl_status_t bd_mem_create(bd_region *R, dnnl_memory_t *mem,
                                   const_dnnl_memory_desc_t md, void *handle) {
    if (!bd_grow((void **)&R->mems, &R->mem_capacity, R->nmems, sizeof(dnnl_memory_t), 64))
        return dnnl_out_of_memory;
    dnnl_status_t s = dnnl_memory_create(mem, md, R->eng, handle);
    if (s == dnnl_success) R->mems[R->nmems++] = *mem;
    return s;
}

/* Destroys everything a region created (NULL is fine). */
static void bd_free(bd_region *R) {
    if (!R) return;
    for (int k = 0; k < R->nsteps; ++k) dnnl_primitive_destroy(R->steps[k].prim);
    for (int m = 0; m < R->nmems; ++m) dnnl_memory_destroy(R->mems[m]);
    for (int m = 0; m < R->nmds; ++m) dnnl_memory_desc_destroy(R->mds[m]);
    if (R->strm) dnnl_stream_destroy(R->strm);
    if (R->eng) dnnl_engine_destroy(R->eng);
    free(R->mds);
    free(R->mems);
    free(R->steps);
    free(R->values);
    free(R->reordered_from);
    free(R->constant);
    free(R->inputs);
    free(R->outputs);
    free(R);
}

static int bd_ndims(const_dnnl_memory_desc_t md) {
    int n = 0;
    if (md == NULL || dnnl_memory_desc_query(md, dnnl_query_ndims_s32, &n) != dnnl_success)
        return 0;
    return n;
}

/* The logical dims of `md` (valid while `md` lives). */
static const dnnl_dim_t *bd_dims(const_dnnl_memory_desc_t md) {
    static const dnnl_dim_t none[DNNL_MAX_NDIMS] = {0};
    const dnnl_dims_t *dims = NULL;
    if (md == NULL || dnnl_memory_desc_query(md, dnnl_query_dims, &dims) != dnnl_success ||
        dims == NULL)
        return none;
    return *dims;
}

static int bd_same_dims(const_dnnl_memory_desc_t a, const_dnnl_memory_desc_t b) {
    int n = bd_ndims(a);
    return n == bd_ndims(b) && !memcmp(bd_dims(a), bd_dims(b), (size_t)n * sizeof(dnnl_dim_t));
}

static dnnl_format_tag_t bd_plain_tag(int ndims) {
    static const dnnl_format_tag_t tags[] = {dnnl_a,    dnnl_a,     dnnl_ab,
                                             dnnl_abc,  dnnl_abcd,  dnnl_abcde,
                                             dnnl_abcdef};
    return ndims >= 1 && ndims <= 6 ? tags[ndims] : dnnl_format_tag_undef;
}

static bd_region *bd_new(int nvalues, int ninputs, int noutputs, const void *weights,
                         int threads, dnnl_format_tag_t activation_tag,
                         dnnl_fpmath_mode_t fpmath) {
    bd_region *R = (bd_region *)calloc(1, sizeof(bd_region));
    if (!R) return NULL;
    if (threads > 0) omp_set_num_threads(threads);
    R->capacity = 2 * nvalues + 64; /* room for reorder temporaries */
    R->values = (bd_value *)calloc((size_t)R->capacity, sizeof(bd_value));
    R->reordered_from = (int *)calloc((size_t)R->capacity, sizeof(int));
    R->constant = (char *)calloc((size_t)R->capacity, 1);
    R->nvalues = nvalues;
    R->step_capacity = 64;
    R->steps = (bd_step *)calloc((size_t)R->step_capacity, sizeof(bd_step));
    R->inputs = (dnnl_memory_t *)calloc((size_t)ninputs + 1, sizeof(dnnl_memory_t));
    R->outputs = (dnnl_memory_t *)calloc((size_t)noutputs + 1, sizeof(dnnl_memory_t));
    R->ninputs = ninputs;
    R->noutputs = noutputs;
    R->weights = (const char *)weights;
    R->activation_tag = activation_tag;
    R->fpmath = fpmath;
    /* bf16: convolutions and matmuls read, write and keep their weights in bf16 (f32
     * accumulation, f32 bias); the ops between them follow their inputs; region inputs
     * and outputs stay f32 (converted by the boundary reorders). */
    R->compute_dt = fpmath == dnnl_fpmath_mode_bf16 ? dnnl_bf16 : dnnl_f32;
    if (!R->values || !R->reordered_from || !R->constant || !R->steps || !R->inputs ||
        !R->outputs) {
        bd_fail(R, "out of memory");
        return R;
    }
    if (dnnl_engine_create(&R->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&R->strm, R->eng, dnnl_stream_default_flags) != dnnl_success)
        bd_fail(R, "cannot create a oneDNN CPU engine and stream");
    return R;
}

/* A memory descriptor for logical `dims` in format `tag` of type `dt`, kept by the region. */
static const_dnnl_memory_desc_t bd_md_dt(bd_region *R, int ndims, const dnnl_dim_t *dims,
                                         dnnl_format_tag_t tag, dnnl_data_type_t dt) {
    dnnl_memory_desc_t md = NULL;
    if (R->error[0]) return NULL;
    dnnl_status_t s = dnnl_memory_desc_create_with_tag(&md, ndims, dims, dt, tag);
    if (s != dnnl_success) {
        bd_status(R, s, __func__, __LINE__, "dnnl_memory_desc_create_with_tag");
        return NULL;
    }
    return bd_keep(R, md);
}

static dnnl_data_type_t bd_dt(const_dnnl_memory_desc_t md) {
    dnnl_data_type_t dt = dnnl_f32;
    if (md) dnnl_memory_desc_query(md, dnnl_query_data_type, &dt);
    return dt;
}

/* A new descriptor like value `v`'s type, with `dims` in format `tag`. */
static const_dnnl_memory_desc_t bd_md_like(bd_region *R, int v, int ndims,
                                           const dnnl_dim_t *dims, dnnl_format_tag_t tag) {
    return bd_md_dt(R, ndims, dims, tag, bd_dt(R->values[v].md));
}

/* Value `v`, a new buffer in format `md` (a copy of `md` is kept: it may be a query's). */
static void bd_alloc(bd_region *R, int v, const_dnnl_memory_desc_t md) {
    R->values[v].md = bd_clone(R, md);
    if (R->error[0]) return;
    BD_TRY(R, bd_mem_create(R, &R->values[v].mem, R->values[v].md, DNNL_MEMORY_ALLOCATE));
}

static int bd_temp(bd_region *R) {
    if (R->nvalues >= R->capacity) {
        bd_fail(R, "too many temporaries");
        return 0;
    }
    return R->nvalues++;
}

static void bd_step_add(bd_region *R, dnnl_primitive_t prim, int nargs,
                        const dnnl_exec_arg_t *args) {
    if (!bd_grow((void **)&R->steps, &R->step_capacity, R->nsteps, sizeof(bd_step), 64)) {
        dnnl_primitive_destroy(prim);
        bd_fail(R, "out of memory");
        return;
    }
    bd_step *s = &R->steps[R->nsteps++];
    s->prim = prim;
    s->nargs = nargs;
    memcpy(s->args, args, (size_t)nargs * sizeof(dnnl_exec_arg_t));
}

/* The primitive of descriptor `pd` (NULL: an earlier failure); NULL after a failure. */
static dnnl_primitive_t bd_primitive(bd_region *R, const_dnnl_primitive_desc_t pd) {
    dnnl_primitive_t prim = NULL;
    if (pd == NULL || R->error[0]) return NULL;
    dnnl_status_t s = dnnl_primitive_create(&prim, pd);
    if (s != dnnl_success) {
        bd_status(R, s, __func__, __LINE__, "dnnl_primitive_create");
        return NULL;
    }
    return prim;
}

/* A step copying `src` into memory `dst` (any formats, same logical dims). */
static void bd_reorder_step(bd_region *R, dnnl_memory_t src, const_dnnl_memory_desc_t src_md,
                            dnnl_memory_t dst, const_dnnl_memory_desc_t dst_md) {
    dnnl_primitive_desc_t pd = NULL;
    if (R->error[0]) return;
    BD_TRY(R, dnnl_reorder_primitive_desc_create(&pd, src_md, R->eng, dst_md, R->eng, NULL));
    dnnl_primitive_t prim = bd_primitive(R, pd);
    dnnl_primitive_desc_destroy(pd);
    if (prim == NULL) return;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    bd_step_add(R, prim, 2, args);
}

/* Value `v` in format `md`: `v` itself when it already is, else a reordered temporary. */
static int bd_as(bd_region *R, int v, const_dnnl_memory_desc_t md) {
    if (R->error[0]) return v;
    if (dnnl_memory_desc_equal(R->values[v].md, md)) return v;
    /* Values are immutable: a second reader wanting the same format shares the copy. */
    for (int t = 0; t < R->nvalues; ++t)
        if (R->reordered_from[t] == v + 1 && dnnl_memory_desc_equal(R->values[t].md, md))
            return t;
    int t = bd_temp(R);
    bd_alloc(R, t, md);
    if (R->error[0]) return v;
    bd_reorder_step(R, R->values[v].mem, R->values[v].md, R->values[t].mem, R->values[t].md);
    R->reordered_from[t] = v + 1;
    return t;
}

/* Value `v` in the plain (row-major) format of its logical dims. */
static int bd_plain(bd_region *R, int v) {
    int nd = bd_ndims(R->values[v].md);
    const_dnnl_memory_desc_t md = bd_md_like(R, v, nd, bd_dims(R->values[v].md), bd_plain_tag(nd));
    return R->error[0] ? v : bd_as(R, v, md);
}

/* Value `v` plain and of type `dt`. */
static int bd_plain_dt(bd_region *R, int v, dnnl_data_type_t dt) {
    int nd = bd_ndims(R->values[v].md);
    const_dnnl_memory_desc_t md = bd_md_dt(R, nd, bd_dims(R->values[v].md), bd_plain_tag(nd), dt);
    return R->error[0] ? v : bd_as(R, v, md);
}

/* Region input `i`, read in place as value `v` (format `tag`, type `dt`, bound at each
 * call). */
static void bd_input(bd_region *R, int i, int v, int ndims, const dnnl_dim_t *dims,
                     dnnl_format_tag_t tag, dnnl_data_type_t dt) {
    R->values[v].md = bd_md_dt(R, ndims, dims, tag, dt);
    if (R->error[0]) return;
    BD_TRY(R, bd_mem_create(R, &R->values[v].mem, R->values[v].md, NULL));
    R->inputs[i] = R->values[v].mem;
}

/* A constant of type `dt`: `bytes_offset` into the weights blob, read in place (never
 * written). */
static void bd_const(bd_region *R, int v, int ndims, const dnnl_dim_t *dims,
                     dnnl_format_tag_t tag, dnnl_data_type_t dt, long bytes_offset) {
    R->values[v].md = bd_md_dt(R, ndims, dims, tag, dt);
    if (R->error[0]) return;
    BD_TRY(R, bd_mem_create(R, &R->values[v].mem, R->values[v].md,
                            (void *)(R->weights + bytes_offset)));
    R->constant[v] = 1;
}

/* A tensor of `value` (a fill read as data, its dims known only now: dynamic), filled
 * once, at init, and never written after. */
static void bd_fill(bd_region *R, int v, int ndims, const dnnl_dim_t *dims, float value) {
    if (R->error[0]) return;
    bd_alloc(R, v, bd_md_dt(R, ndims, dims, bd_plain_tag(ndims), dnnl_f32));
    if (R->error[0]) return;
    float *data = NULL;
    BD_TRY(R, dnnl_memory_get_data_handle(R->values[v].mem, (void **)&data));
    size_t n = 1;
    for (int k = 0; k < ndims; ++k) n *= (size_t)dims[k];
    for (size_t k = 0; k < n; ++k) data[k] = value;
}

/* Reorders a constant once, now, into `md`; returns the new memory. */
static dnnl_memory_t bd_prepack(bd_region *R, int v, const_dnnl_memory_desc_t md) {
    dnnl_memory_t packed = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    if (R->error[0]) return NULL;
    if (dnnl_memory_desc_equal(R->values[v].md, md)) return R->values[v].mem;
    if (bd_mem_create(R, &packed, md, DNNL_MEMORY_ALLOCATE) != dnnl_success ||
        dnnl_reorder_primitive_desc_create(&pd, R->values[v].md, R->eng, md, R->eng, NULL) !=
            dnnl_success ||
        dnnl_primitive_create(&prim, pd) != dnnl_success) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        bd_fail(R, "cannot reorder a weight into oneDNN's layout");
        return NULL;
    }
    dnnl_primitive_desc_destroy(pd);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, R->values[v].mem}, {DNNL_ARG_TO, packed}};
    if (dnnl_primitive_execute(prim, R->strm, 2, args) != dnnl_success ||
        dnnl_stream_wait(R->strm) != dnnl_success)
        bd_fail(R, "weight reorder failed");
    dnnl_primitive_destroy(prim);
    return packed;
}

/* Weights in format `md`: a constant is reordered once, now; weights that arrive at run
 * time (a region input: function arguments, parameter files) are reordered per call. */
static dnnl_memory_t bd_weights(bd_region *R, int w, const_dnnl_memory_desc_t md) {
    if (R->error[0]) return NULL;
    if (R->constant[w]) return bd_prepack(R, w, md);
    int t = bd_as(R, w, md);
    return R->error[0] ? NULL : R->values[t].mem;
}

/* Region output `o`: value `v` written in format `tag`, type `dt`, into the caller's
 * buffer. */
static void bd_output(bd_region *R, int o, int v, int ndims, const dnnl_dim_t *dims,
                      dnnl_format_tag_t tag, dnnl_data_type_t dt) {
    const_dnnl_memory_desc_t md = bd_md_dt(R, ndims, dims, tag, dt);
    if (R->error[0]) return;
    BD_TRY(R, bd_mem_create(R, &R->outputs[o], md, NULL));
    bd_reorder_step(R, R->values[v].mem, R->values[v].md, R->outputs[o], md);
}

/* One quantized operand of a primitive: `real = (q - zp) * scale`. `scales` (a value
 * id, or -1) holds per-channel scales instead of `scale` (weights: `mask` says which
 * dims). */
typedef struct {
    float scale;
    int zp;
} bd_q;

/* A quantized convolution or matmul: its source's and destination's quantization (a
 * destination of type f32 is not requantized) and its weights' per-channel scales. */
typedef struct {
    bd_q src;
    int wscales;
    dnnl_data_type_t dst_dt;
    bd_q dst;
} bd_quant;

#define QUANT(...) (&(const bd_quant){__VA_ARGS__})

/* The extra execution arguments of a quantized primitive (scales, zero points). */
typedef struct {
    int n;
    dnnl_exec_arg_t args[6];
} bd_qargs; /* at most 5: source scale and zero point, weight scales, destination's */

/* A small buffer of `n` 4-byte values of type `dt` (f32 scales, s32 zero points). */
static dnnl_memory_t bd_small(bd_region *R, dnnl_data_type_t dt, int n, const void *data) {
    dnnl_dim_t dims[1] = {n};
    dnnl_memory_t mem = NULL;
    void *handle = NULL;
    const_dnnl_memory_desc_t md = bd_md_dt(R, 1, dims, dnnl_a, dt);
    if (R->error[0]) return NULL;
    if (bd_mem_create(R, &mem, md, DNNL_MEMORY_ALLOCATE) != dnnl_success ||
        dnnl_memory_get_data_handle(mem, &handle) != dnnl_success || handle == NULL) {
        bd_fail(R, "cannot allocate a quantization scale");
        return NULL;
    }
    memcpy(handle, data, (size_t)n * 4);
    return mem;
}

/* Declares argument `arg`'s quantization on `attr`: its scales (`scales`: a memory of
 * per-channel scales for `mask`, or NULL: `q->scale` for all) and, when not 0, its zero
 * point; their buffers are appended to `qa` for execution. */
static void bd_quant_arg(bd_region *R, dnnl_primitive_attr_t attr, bd_qargs *qa, int arg,
                         const bd_q *q, int mask, dnnl_memory_t scales) {
    if (R->error[0] || attr == NULL) return;
    if (dnnl_primitive_attr_set_scales_mask(attr, arg, mask) != dnnl_success) {
        bd_fail(R, "oneDNN refused a quantization scale");
        return;
    }
    qa->args[qa->n].arg = DNNL_ARG_ATTR_SCALES | arg;
    qa->args[qa->n++].memory = scales ? scales : bd_small(R, dnnl_f32, 1, &q->scale);
    if (scales || q->zp == 0) return; /* per-channel scales: symmetric weights */
    if (dnnl_primitive_attr_set_zero_points_mask(attr, arg, 0) != dnnl_success) {
        bd_fail(R, "oneDNN refused a zero point");
        return;
    }
    qa->args[qa->n].arg = DNNL_ARG_ATTR_ZERO_POINTS | arg;
    qa->args[qa->n++].memory = bd_small(R, dnnl_s32, 1, &q->zp);
}

/* The attributes of a quantized convolution or matmul: source scale and zero point,
 * per-channel weight scales over `weights_mask`, and the destination's when it is an
 * integer. */
static void bd_quant_attrs(bd_region *R, dnnl_primitive_attr_t attr, bd_qargs *qa,
                           const bd_quant *q, int weights_mask) {
    bd_quant_arg(R, attr, qa, DNNL_ARG_SRC, &q->src, 0, NULL);
    bd_quant_arg(R, attr, qa, DNNL_ARG_WEIGHTS, NULL, weights_mask, R->values[q->wscales].mem);
    if (q->dst_dt != dnnl_f32) bd_quant_arg(R, attr, qa, DNNL_ARG_DST, &q->dst, 0, NULL);
}

/* `md` with data type `dt`: the same strides for a plain (unblocked) format, else the
 * row-major format of its dims. */
static const_dnnl_memory_desc_t bd_retyped(bd_region *R, const_dnnl_memory_desc_t md,
                                           dnnl_data_type_t dt) {
    int nd = bd_ndims(md), nblks = -1;
    const dnnl_dims_t *strides = NULL;
    dnnl_memory_desc_t out = NULL;
    if (R->error[0]) return NULL;
    if (dnnl_memory_desc_query(md, dnnl_query_inner_nblks_s32, &nblks) == dnnl_success &&
        nblks == 0 && dnnl_memory_desc_query(md, dnnl_query_strides, &strides) == dnnl_success &&
        strides && dnnl_memory_desc_create_with_strides(&out, nd, bd_dims(md), dt, *strides) ==
                       dnnl_success)
        return bd_keep(R, out);
    return bd_md_dt(R, nd, bd_dims(md), bd_plain_tag(nd), dt);
}

/* Post-ops (and the precision mode) as a primitive attribute; sums are returned in
 * `*sum_value` (one at most, and only first: oneDNN requires the sum to be the first
 * post-op to be fast). NULL `posts`: no post-ops. The caller destroys the attribute. */
static dnnl_primitive_attr_t bd_attr(bd_region *R, const bd_post *posts, int nposts,
                                     int *sum_value, int *sum_in_place) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    *sum_value = -1;
    *sum_in_place = 0;
    R->npost_args = 0;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success ||
        dnnl_post_ops_create(&po) != dnnl_success) {
        bd_fail(R, "cannot create post-ops");
        return attr;
    }
    if (R->fpmath != dnnl_fpmath_mode_strict &&
        dnnl_primitive_attr_set_fpmath_mode(attr, R->fpmath) != dnnl_success)
        bd_fail(R, "cannot set the floating-point math mode");
    for (int k = 0; k < nposts; ++k) {
        const bd_post *p = &posts[k];
        dnnl_status_t s = dnnl_success;
        switch (p->kind) {
            case BD_RELU: s = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_relu, 0.f, 0.f); break;
            case BD_CLIP: s = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_clip_v2, p->alpha, p->beta); break;
            case BD_GELU_ERF: s = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_gelu_erf, 0.f, 0.f); break;
            case BD_GELU_TANH: s = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_gelu_tanh, 0.f, 0.f); break;
            case BD_LINEAR: s = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_linear, p->alpha, p->beta); break;
            case BD_EXP: s = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_exp, 0.f, 0.f); break;
            case BD_POW: s = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_pow, p->alpha, p->beta); break;
            case BD_ROUND: s = dnnl_post_ops_append_eltwise(po, dnnl_eltwise_round, 0.f, 0.f); break;
            case BD_BIN_ADD:
            case BD_BIN_SUB:
            case BD_BIN_MUL: { /* `value` (a constant or earlier value) broadcast */
                dnnl_alg_kind_t alg = p->kind == BD_BIN_ADD   ? dnnl_binary_add
                                      : p->kind == BD_BIN_SUB ? dnnl_binary_sub
                                                              : dnnl_binary_mul;
                s = dnnl_post_ops_append_binary(po, alg, R->values[p->value].md);
                R->post_args[R->npost_args].arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(k) | DNNL_ARG_SRC_1;
                R->post_args[R->npost_args++].memory = R->values[p->value].mem;
                break;
            }
            case BD_SUM:
                *sum_value = p->value;
                *sum_in_place = p->alpha != 0.f;
                s = dnnl_post_ops_append_sum(po, 1.f, 0, dnnl_data_type_undef);
                break;
            case BD_QSUM:
            case BD_QSUM_IN_PLACE:
                *sum_value = p->value;
                *sum_in_place = p->kind == BD_QSUM_IN_PLACE;
                s = dnnl_post_ops_append_sum(po, p->alpha, (int32_t)p->beta,
                                             bd_dt(R->values[p->value].md));
                break;
            default: s = dnnl_invalid_arguments;
        }
        if (s != dnnl_success) bd_fail(R, "a post-op is not supported by this oneDNN");
    }
    if (dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success) bd_fail(R, "cannot set post-ops");
    dnnl_post_ops_destroy(po);
    return attr;
}

/* Appends to `args` (`nargs` of them) the buffers the last `bd_attr` call's binary
 * post-ops read, then those of `qa` (NULL: none); returns the new count. */
static int bd_attr_args(const bd_region *R, dnnl_exec_arg_t *args, int nargs,
                        const bd_qargs *qa) {
    for (int k = 0; qa && k < qa->n; ++k) args[nargs++] = qa->args[k];
    for (int k = 0; k < R->npost_args; ++k) args[nargs++] = R->post_args[k];
    return nargs;
}

static int bd_is_input(const bd_region *R, int v) {
    for (int i = 0; i < R->ninputs; ++i)
        if (R->inputs[i] == R->values[v].mem) return 1;
    return 0;
}

/* The destination memory of a primitive; with a sum post-op, a step first copies the
 * summed value into it. */
static void bd_destination(bd_region *R, int dst, const_dnnl_memory_desc_t md, int sum_value,
                           int sum_in_place) {
    if (R->error[0]) return;
    if (sum_value >= 0 && sum_in_place && dnnl_memory_desc_equal(R->values[sum_value].md, md)) {
        R->values[dst] = R->values[sum_value]; /* accumulate into the dying tensor */
        return;
    }
    bd_alloc(R, dst, md);
    if (sum_value >= 0 && !R->error[0])
        bd_reorder_step(R, R->values[sum_value].mem, R->values[sum_value].md,
                        R->values[dst].mem, R->values[dst].md);
}

/* A convolution's geometry (oneDNN's dilations: 0 = dense). */
typedef struct {
    const dnnl_dim_t *strides, *pad_l, *pad_r;
    dnnl_dim_t dil[2];
} bd_geom;

static dnnl_status_t bd_conv_pd(bd_region *R, dnnl_primitive_desc_t *pd,
                                const_dnnl_memory_desc_t src, const_dnnl_memory_desc_t w,
                                const_dnnl_memory_desc_t b, const_dnnl_memory_desc_t dst,
                                const bd_geom *g, const_dnnl_primitive_attr_t attr) {
    return dnnl_convolution_forward_primitive_desc_create(
        pd, R->eng, dnnl_forward_inference, dnnl_convolution_direct, src, w, b, dst,
        g->strides, g->dil, g->pad_l, g->pad_r, attr);
}

/* The convolution with source `src` (and destination `dst`), if oneDNN runs it with a
 * JIT kernel (not a reference one); NULL otherwise. Never records an error. */
static dnnl_primitive_desc_t bd_try_layout_(bd_region *R, const_dnnl_memory_desc_t src,
                                            const_dnnl_memory_desc_t w,
                                            const_dnnl_memory_desc_t b,
                                            const_dnnl_memory_desc_t dst, const bd_geom *g,
                                            const_dnnl_primitive_attr_t attr) {
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    if (src == NULL || dst == NULL || bd_conv_pd(R, &pd, src, w, b, dst, g, attr) != dnnl_success)
        return NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success ||
        !impl || (strncmp(impl, "jit", 3) && strncmp(impl, "brg", 3))) {
        dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    return pd;
}

/* A region input's convolution reading the input in its own (plain) layout: first with
 * an NHWC destination (the layout brgconv uses downstream), then with `dst_any`. */
static dnnl_primitive_desc_t bd_try_layout(bd_region *R, const_dnnl_memory_desc_t src,
                                           const_dnnl_memory_desc_t w,
                                           const_dnnl_memory_desc_t b,
                                           const_dnnl_memory_desc_t dst_any,
                                           const bd_geom *g, const_dnnl_primitive_attr_t attr) {
    dnnl_primitive_desc_t pd = NULL;
    if (R->activation_tag == dnnl_format_tag_any && bd_ndims(dst_any) == 4) {
        dnnl_memory_desc_t nhwc = NULL;
        if (dnnl_memory_desc_create_with_tag(&nhwc, 4, bd_dims(dst_any), bd_dt(dst_any), dnnl_nhwc) ==
            dnnl_success) {
            pd = bd_try_layout_(R, src, w, b, nhwc, g, attr);
            dnnl_memory_desc_destroy(nhwc);
        }
        if (pd) return pd;
    }
    return bd_try_layout_(R, src, w, b, dst_any, g, attr);
}

/* 2-D convolution. `w` (a constant, logical dims [G,] O, I, KH, KW) is reordered once;
 * `b` (a constant vector, or -1) is the fused bias. `groups` > 1: grouped/depthwise.
 * `q` (NULL: floating point): an int8 convolution reading a u8/s8 source and s8 weights
 * with their scales, accumulating in s32, writing f32 or a requantized u8/s8. */
static void bd_conv_(bd_region *R, int dst, int src, int w, int b, const dnnl_dim_t *dst_dims,
                     const dnnl_dim_t *strides, const dnnl_dim_t *dilations,
                     const dnnl_dim_t *pad_l, const dnnl_dim_t *pad_r, const bd_quant *q,
                     const bd_post *posts, int nposts) {
    if (R->error[0]) return;
    dnnl_format_tag_t act = R->activation_tag;
    const bd_value *S = &R->values[src], *W = &R->values[w];
    dnnl_data_type_t dt = R->compute_dt;
    dnnl_data_type_t src_dt = q ? bd_dt(S->md) : dt, w_dt = q ? dnnl_s8 : dt;
    const_dnnl_memory_desc_t src_any = bd_md_dt(R, 4, bd_dims(S->md), act, src_dt);
    const_dnnl_memory_desc_t w_any =
        bd_md_dt(R, bd_ndims(W->md), bd_dims(W->md), dnnl_format_tag_any, w_dt);
    const_dnnl_memory_desc_t dst_any = bd_md_dt(R, 4, dst_dims, act, q ? q->dst_dt : dt);
    const_dnnl_memory_desc_t b_md = b >= 0 ? R->values[b].md : NULL;
    bd_geom g = {strides, pad_l, pad_r, {dilations[0] - 1, dilations[1] - 1}};
    int sum_value, sum_in_place;
    bd_qargs qa = {0};
    dnnl_primitive_attr_t attr = bd_attr(R, posts, nposts, &sum_value, &sum_in_place);
    if (q) bd_quant_attrs(R, attr, &qa, q, bd_ndims(W->md) == 5 ? 3 : 1); /* grouped: G, O/G */
    if (R->error[0]) {
        if (attr) dnnl_primitive_attr_destroy(attr);
        return;
    }
    /* A region input is read in its own (plain) layout when oneDNN has a fast kernel for
     * it (the first conv of a network: 3 channels, NCHW): that saves a reorder per call. */
    dnnl_primitive_desc_t pd =
        bd_is_input(R, src) && dt == dnnl_f32 && !q
            ? bd_try_layout(R, S->md, w_any, b_md, dst_any, &g, attr)
            : NULL;
    if (pd == NULL) BD_PD(R, &pd, bd_conv_pd(R, &pd, src_any, w_any, b_md, dst_any, &g, attr));
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_t prim = bd_primitive(R, pd);
    if (prim == NULL) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        return;
    }
    int s = bd_as(R, src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0));
    dnnl_memory_t wmem = bd_weights(R, w, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0));
    bd_destination(R, dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), sum_value, sum_in_place);
    dnnl_primitive_desc_destroy(pd);
    if (R->error[0]) {
        dnnl_primitive_destroy(prim);
        return;
    }
    dnnl_exec_arg_t args[BD_MAX_ARGS] = {{DNNL_ARG_SRC, R->values[s].mem},
                                         {DNNL_ARG_WEIGHTS, wmem},
                                         {DNNL_ARG_DST, R->values[dst].mem},
                                         {DNNL_ARG_BIAS, b >= 0 ? R->values[b].mem : NULL}};
    bd_step_add(R, prim, bd_attr_args(R, args, b >= 0 ? 4 : 3, &qa), args);
}

static void bd_conv(bd_region *R, int dst, int src, int w, int b, int groups,
                    const dnnl_dim_t *dst_dims, const dnnl_dim_t *strides,
                    const dnnl_dim_t *dilations, const dnnl_dim_t *pad_l,
                    const dnnl_dim_t *pad_r, const bd_post *posts, int nposts) {
    (void)groups;
    bd_conv_(R, dst, src, w, b, dst_dims, strides, dilations, pad_l, pad_r, NULL, posts, nposts);
}

static void bd_qconv(bd_region *R, int dst, int src, int w, int b, int groups,
                     const dnnl_dim_t *dst_dims, const dnnl_dim_t *strides,
                     const dnnl_dim_t *dilations, const dnnl_dim_t *pad_l,
                     const dnnl_dim_t *pad_r, const bd_quant *q, const bd_post *posts,
                     int nposts) {
    (void)groups;
    bd_conv_(R, dst, src, w, b, dst_dims, strides, dilations, pad_l, pad_r, q, posts, nposts);
}

/* The primitive of `pd` as a step reading `args` (its destination filled in from `dst`
 * once it exists); destroys `pd`. */
static void bd_finish(bd_region *R, dnnl_primitive_desc_t pd, int dst, int sum_value,
                      int sum_in_place, int nargs, dnnl_exec_arg_t *args) {
    dnnl_primitive_t prim = bd_primitive(R, pd);
    if (prim != NULL)
        bd_destination(R, dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
                       sum_value, sum_in_place);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (prim == NULL) return;
    if (R->error[0]) {
        dnnl_primitive_destroy(prim);
        return;
    }
    for (int k = 0; k < nargs; ++k)
        if (args[k].arg == DNNL_ARG_DST) args[k].memory = R->values[dst].mem;
    bd_step_add(R, prim, nargs, args);
}

/* `src` converted to type `dt` in the same layout (where oneDNN allows): a quantize
 * (f32 -> u8/s8), a dequantize (u8/s8 -> f32) or a requantize, `src_q` and `dst_q`
 * describing the integer sides, rounding half to even and saturating. */
static void bd_requant(bd_region *R, int dst, int src, dnnl_data_type_t dt, const bd_q *src_q,
                       const bd_q *dst_q) {
    if (R->error[0]) return;
    const_dnnl_memory_desc_t smd = R->values[src].md;
    const_dnnl_memory_desc_t dmd = bd_retyped(R, smd, dt);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    bd_qargs qa = {0};
    BD_TRY(R, dnnl_primitive_attr_create(&attr));
    if (bd_dt(smd) != dnnl_f32) bd_quant_arg(R, attr, &qa, DNNL_ARG_FROM, src_q, 0, NULL);
    if (dt != dnnl_f32) bd_quant_arg(R, attr, &qa, DNNL_ARG_TO, dst_q, 0, NULL);
    if (!R->error[0])
        BD_PD(R, &pd, dnnl_reorder_primitive_desc_create(&pd, smd, R->eng, dmd, R->eng, attr));
    dnnl_primitive_attr_destroy(attr);
    dnnl_exec_arg_t args[2 + 6] = {{DNNL_ARG_FROM, R->values[src].mem}, {DNNL_ARG_TO, NULL}};
    for (int k = 0; k < qa.n; ++k) args[2 + k] = qa.args[k];
    bd_finish(R, pd, dst, -1, 0, 2 + qa.n, args);
}

/* Max or average pooling (`alg`), with padding (excluded from max; counted by avg). */
static void bd_pool(bd_region *R, int dst, int src, dnnl_alg_kind_t alg,
                    const dnnl_dim_t *dst_dims, const dnnl_dim_t *kernel,
                    const dnnl_dim_t *strides, const dnnl_dim_t *dilations,
                    const dnnl_dim_t *pad_l, const dnnl_dim_t *pad_r, const bd_post *posts,
                    int nposts) {
    if (R->error[0]) return;
    /* oneDNN pools 8-bit integers in plain NCHW with its reference kernel only (tens of
     * times slower): such a source is read in NHWC. */
    const_dnnl_memory_desc_t nchw = bd_md_like(R, src, 4, bd_dims(R->values[src].md), dnnl_abcd);
    if (bd_dt(R->values[src].md) != dnnl_f32 && !R->error[0] &&
        dnnl_memory_desc_equal(R->values[src].md, nchw))
        src = bd_as(R, src, bd_md_like(R, src, 4, bd_dims(R->values[src].md), dnnl_acdb));
    const_dnnl_memory_desc_t dst_any = bd_md_like(R, src, 4, dst_dims, R->activation_tag);
    dnnl_dim_t dil[2] = {dilations[0] - 1, dilations[1] - 1};
    int sum_value, sum_in_place;
    dnnl_primitive_desc_t pd;
    BD_CREATE(R, &pd, posts, nposts, &sum_value, &sum_in_place,
              dnnl_pooling_forward_primitive_desc_create(
                  &pd, R->eng, dnnl_forward_inference, alg, R->values[src].md, dst_any,
                  strides, kernel, dil, pad_l, pad_r, attr_));
    if (pd && bd_ndims(dnnl_primitive_desc_query_md(pd, dnnl_query_workspace_md, 0))) {
        dnnl_primitive_desc_destroy(pd);
        bd_fail(R, "pooling needs a workspace (training only)");
        return;
    }
    dnnl_exec_arg_t args[2 + BD_MAX_POSTS] = {{DNNL_ARG_SRC, R->values[src].mem},
                                              {DNNL_ARG_DST, NULL}};
    bd_finish(R, pd, dst, sum_value, sum_in_place, bd_attr_args(R, args, 2, NULL), args);
}

/* Elementwise `alg(alpha, beta)` of `src`, in `src`'s format. */
static void bd_eltwise(bd_region *R, int dst, int src, dnnl_alg_kind_t alg, float alpha,
                       float beta) {
    if (R->error[0]) return;
    const_dnnl_memory_desc_t md = R->values[src].md;
    int sum_value, sum_in_place;
    dnnl_primitive_desc_t pd;
    BD_CREATE(R, &pd, NULL, 0, &sum_value, &sum_in_place,
              dnnl_eltwise_forward_primitive_desc_create(
                  &pd, R->eng, dnnl_forward_inference, alg, md, md, alpha, beta, attr_));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, R->values[src].mem}, {DNNL_ARG_DST, NULL}};
    bd_finish(R, pd, dst, -1, 0, 2, args);
}

/* `a alg b` (add, sub, mul, div); `b` may broadcast (dims of 1). The result takes
 * `a`'s format; a full-size `b` in another format is reordered to it first. */
static void bd_binary(bd_region *R, int dst, int a, int b, dnnl_alg_kind_t alg,
                      const bd_post *posts, int nposts) {
    if (R->error[0]) return;
    const_dnnl_memory_desc_t amd = R->values[a].md;
    if (bd_same_dims(R->values[b].md, amd)) b = bd_as(R, b, amd);
    int sum_value, sum_in_place;
    dnnl_primitive_desc_t pd;
    BD_CREATE(R, &pd, posts, nposts, &sum_value, &sum_in_place,
              dnnl_binary_primitive_desc_create(&pd, R->eng, alg, amd,
                  R->values[b].md, amd, attr_));
    dnnl_exec_arg_t args[3 + BD_MAX_POSTS] = {{DNNL_ARG_SRC_0, R->values[a].mem},
                                              {DNNL_ARG_SRC_1, R->values[b].mem},
                                              {DNNL_ARG_DST, NULL}};
    bd_finish(R, pd, dst, sum_value, sum_in_place, bd_attr_args(R, args, 3, NULL), args);
}

/* Matmul (2-D or batched 3-D, row-major): `dst = a @ b (+ bias)`. A constant `b` is
 * reordered once into oneDNN's preferred layout. `bias` (-1: none) broadcasts. `q` (NULL:
 * floating point): an int8 matmul of a u8/s8 `a` and a constant s8 `b` with per-column
 * scales, writing f32 or a requantized u8/s8. */
static void bd_matmul_(bd_region *R, int dst, int a, int b, int b_is_const, int bias,
                       const dnnl_dim_t *dst_dims, const bd_quant *q, const bd_post *posts,
                       int nposts) {
    if (R->error[0]) return;
    dnnl_data_type_t dt = R->compute_dt;
    a = q ? bd_plain(R, a) : bd_plain_dt(R, a, dt);
    if (!b_is_const) b = bd_plain_dt(R, b, dt);
    int nd = bd_ndims(R->values[a].md);
    const_dnnl_memory_desc_t w_md =
        b_is_const ? bd_md_dt(R, nd, bd_dims(R->values[b].md), dnnl_format_tag_any,
                              q ? dnnl_s8 : dt)
                   : R->values[b].md;
    const_dnnl_memory_desc_t dst_md =
        bd_md_dt(R, nd, dst_dims, bd_plain_tag(nd), q ? q->dst_dt : dt);
    int sum_value, sum_in_place;
    bd_qargs qa = {0};
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = bd_attr(R, posts, nposts, &sum_value, &sum_in_place);
    if (q) bd_quant_attrs(R, attr, &qa, q, 1 << (nd - 1)); /* per column */
    if (!R->error[0])
        BD_PD(R, &pd, dnnl_matmul_primitive_desc_create(
                          &pd, R->eng, R->values[a].md, w_md,
                          bias >= 0 ? R->values[bias].md : NULL, dst_md, attr));
    if (attr) dnnl_primitive_attr_destroy(attr);
    dnnl_memory_t wmem = NULL;
    if (pd)
        wmem = b_is_const
                   ? bd_prepack(R, b, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0))
                   : R->values[b].mem;
    dnnl_exec_arg_t args[BD_MAX_ARGS] = {{DNNL_ARG_SRC, R->values[a].mem},
                                         {DNNL_ARG_WEIGHTS, wmem},
                                         {DNNL_ARG_DST, NULL},
                                         {DNNL_ARG_BIAS, bias >= 0 ? R->values[bias].mem : NULL}};
    int nargs = bd_attr_args(R, args, bias >= 0 ? 4 : 3, &qa);
    bd_finish(R, pd, dst, sum_value, sum_in_place, nargs, args);
}

static void bd_matmul(bd_region *R, int dst, int a, int b, int b_is_const, int bias,
                      const dnnl_dim_t *dst_dims, const bd_post *posts, int nposts) {
    bd_matmul_(R, dst, a, b, b_is_const, bias, dst_dims, NULL, posts, nposts);
}

static void bd_qmatmul(bd_region *R, int dst, int a, int b, int b_is_const, int bias,
                       const dnnl_dim_t *dst_dims, const bd_quant *q, const bd_post *posts,
                       int nposts) {
    bd_matmul_(R, dst, a, b, b_is_const, bias, dst_dims, q, posts, nposts);
}

/* A buffer with a fixed address holding value `v`: `v` itself, or for a region input
 * (bound only at each call) a copy made at each call. */
static int bd_stable(bd_region *R, int v) {
    void *handle = NULL;
    if (R->error[0] || dnnl_memory_get_data_handle(R->values[v].mem, &handle) != dnnl_success)
        return v;
    if (handle != NULL) return v;
    int t = bd_temp(R);
    bd_alloc(R, t, R->values[v].md);
    if (!R->error[0])
        bd_reorder_step(R, R->values[v].mem, R->values[v].md, R->values[t].mem, R->values[t].md);
    return t;
}

/* A reshape: `src` made plain, viewed with new dims (no copy beyond that). */
static void bd_reshape(bd_region *R, int dst, int src, int ndims, const dnnl_dim_t *dims) {
    if (R->error[0]) return;
    int p = bd_stable(R, bd_plain(R, src));
    if (R->error[0]) return;
    void *handle = NULL;
    BD_TRY(R, dnnl_memory_get_data_handle(R->values[p].mem, &handle));
    R->values[dst].md = bd_md_like(R, p, ndims, dims, bd_plain_tag(ndims));
    if (R->error[0]) return;
    BD_TRY(R, bd_mem_create(R, &R->values[dst].mem, R->values[dst].md, handle));
}

/* A reduction (`alg`: sum or max) of `src` (made plain) to `dst_dims`: src's rank,
 * 1 on the reduced dims. */
static void bd_reduce(bd_region *R, int dst, int src, dnnl_alg_kind_t alg,
                      const dnnl_dim_t *dst_dims) {
    if (R->error[0]) return;
    int p = bd_plain(R, src);
    int nd = bd_ndims(R->values[p].md);
    const_dnnl_memory_desc_t md = bd_md_like(R, p, nd, dst_dims, bd_plain_tag(nd));
    if (!R->error[0] && bd_same_dims(R->values[p].md, md)) {
        /* only dims of 1 reduced (a dynamic dim that is 1 in this call): a copy, which
         * oneDNN's reduction refuses to be */
        bd_alloc(R, dst, md);
        if (!R->error[0])
            bd_reorder_step(R, R->values[p].mem, R->values[p].md, R->values[dst].mem, md);
        return;
    }
    int sum_value, sum_in_place;
    dnnl_primitive_desc_t pd;
    BD_CREATE(R, &pd, NULL, 0, &sum_value, &sum_in_place,
              dnnl_reduction_primitive_desc_create(&pd, R->eng, alg, R->values[p].md,
                  md, 0.f, 0.f, attr_));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, R->values[p].mem}, {DNNL_ARG_DST, NULL}};
    bd_finish(R, pd, dst, -1, 0, 2, args);
}

/* Softmax of `src` along logical dim `axis` (recognised from its decomposed form). */
static void bd_softmax(bd_region *R, int dst, int src, int axis) {
    if (R->error[0]) return;
    const_dnnl_memory_desc_t md = R->values[src].md;
    int sum_value, sum_in_place;
    dnnl_primitive_desc_t pd;
    BD_CREATE(R, &pd, NULL, 0, &sum_value, &sum_in_place,
              dnnl_softmax_forward_primitive_desc_create(
                  &pd, R->eng, dnnl_forward_inference, dnnl_softmax_accurate, md, md,
                  axis, attr_));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, R->values[src].mem}, {DNNL_ARG_DST, NULL}};
    bd_finish(R, pd, dst, -1, 0, 2, args);
}

/* Layer normalisation of `src` over its last dim, `eps` inside the square root, with
 * optional constant `scale` and `shift` vectors (-1: none); recognised from its
 * decomposed form. Mean and variance are computed per call (scratch outputs). */
static void bd_layernorm(bd_region *R, int dst, int src, float eps, int scale, int shift) {
    if (R->error[0]) return;
    const_dnnl_memory_desc_t md = R->values[src].md;
    unsigned flags = (scale >= 0 ? dnnl_use_scale : 0) | (shift >= 0 ? dnnl_use_shift : 0);
    int sum_value, sum_in_place;
    dnnl_primitive_desc_t pd;
    BD_CREATE(R, &pd, NULL, 0, &sum_value, &sum_in_place,
              dnnl_layer_normalization_forward_primitive_desc_create(
                  &pd, R->eng, dnnl_forward_inference, md, md, NULL, eps, flags, attr_));
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, R->values[src].mem}, {DNNL_ARG_DST, NULL}};
    int nargs = 2;
    const int stat_args[2] = {DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
    for (int k = 0; pd && k < 2; ++k) { /* inference may still write the statistics */
        const_dnnl_memory_desc_t stat = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 1 + k);
        if (bd_ndims(stat) == 0) continue;
        int t = bd_temp(R);
        bd_alloc(R, t, stat);
        args[nargs].arg = stat_args[k];
        args[nargs++].memory = R->values[t].mem;
    }
    if (scale >= 0) {
        args[nargs].arg = DNNL_ARG_SCALE;
        args[nargs++].memory = R->values[scale].mem;
    }
    if (shift >= 0) {
        args[nargs].arg = DNNL_ARG_SHIFT;
        args[nargs++].memory = R->values[shift].mem;
    }
    bd_finish(R, pd, dst, -1, 0, nargs, args);
}

/* Concatenation of `n` values (n < BD_MAX_ARGS) along logical dim `axis`; the result
 * takes the format oneDNN picks from the sources (e.g. NHWC after NHWC convs). */
static void bd_concat(bd_region *R, int dst, int axis, int n, const int *srcs) {
    if (R->error[0]) return;
    if (n < 1 || n >= BD_MAX_ARGS) {
        bd_fail(R, "concat of too many tensors");
        return;
    }
    const_dnnl_memory_desc_t mds[BD_MAX_ARGS];
    int vals[BD_MAX_ARGS];
    int mixed = 0; /* sources of several types (bf16 mode): all made bf16 first */
    for (int i = 0; i < n; ++i) mixed |= bd_dt(R->values[srcs[i]].md) != bd_dt(R->values[srcs[0]].md);
    for (int i = 0; i < n; ++i) {
        vals[i] = mixed ? bd_plain_dt(R, srcs[i], R->compute_dt) : srcs[i];
        mds[i] = R->values[vals[i]].md;
    }
    dnnl_primitive_desc_t pd = NULL;
    BD_PD(R, &pd, dnnl_concat_primitive_desc_create(&pd, R->eng, NULL, n, axis, mds, NULL));
    dnnl_exec_arg_t args[BD_MAX_ARGS];
    for (int i = 0; i < n; ++i) {
        args[i].arg = DNNL_ARG_MULTIPLE_SRC + i;
        args[i].memory = R->values[vals[i]].mem;
    }
    args[n].arg = DNNL_ARG_DST;
    args[n].memory = NULL;
    bd_finish(R, pd, dst, -1, 0, n + 1, args);
}

/* A transpose: dst dim i is src dim perm[i] (linalg.transpose), one reorder into a
 * plain buffer viewed in src's dim order. */
static void bd_transpose(bd_region *R, int dst, int src, const int *perm) {
    if (R->error[0]) return;
    const_dnnl_memory_desc_t smd = R->values[src].md;
    int nd = bd_ndims(smd);
    const dnnl_dim_t *sdims = bd_dims(smd);
    dnnl_dim_t dims[DNNL_MAX_NDIMS];
    for (int i = 0; i < nd; ++i) dims[i] = sdims[perm[i]];
    const_dnnl_memory_desc_t md = bd_md_like(R, src, nd, dims, bd_plain_tag(nd));
    if (R->error[0]) return;
    bd_alloc(R, dst, md);
    if (R->error[0]) return;
    void *data = NULL;
    dnnl_memory_desc_t view = NULL;
    BD_TRY(R, dnnl_memory_get_data_handle(R->values[dst].mem, &data));
    BD_TRY(R, dnnl_memory_desc_permute_axes(&view, md, perm));
    if (bd_keep(R, view) == NULL) return;
    dnnl_memory_t viewed;
    BD_TRY(R, bd_mem_create(R, &viewed, view, data));
    bd_reorder_step(R, R->values[src].mem, smd, viewed, view);
}

/* A constant pad: `src` copied into the interior of a buffer filled with `value`. */
static void bd_pad(bd_region *R, int dst, int src, const dnnl_dim_t *dst_dims,
                   const dnnl_dim_t *low, float value) {
    if (R->error[0]) return;
    int p = bd_plain(R, src);
    int nd = bd_ndims(R->values[p].md);
    const_dnnl_memory_desc_t md = bd_md_like(R, p, nd, dst_dims, bd_plain_tag(nd));
    if (R->error[0]) return;
    bd_alloc(R, dst, md);
    if (R->error[0]) return;
    void *data = NULL;
    BD_TRY(R, dnnl_memory_get_data_handle(R->values[dst].mem, &data));
    /* the interior is overwritten per call; the border keeps `value` */
    if (bd_dt(md) == dnnl_bf16) {
        unsigned int bits;
        memcpy(&bits, &value, sizeof(bits));
        bits += 0x7fffu + ((bits >> 16) & 1u); /* round to nearest even */
        unsigned short half = (unsigned short)(bits >> 16);
        size_t n = dnnl_memory_desc_get_size(md) / sizeof(half);
        for (size_t i = 0; i < n; ++i) ((unsigned short *)data)[i] = half;
    } else {
        size_t n = dnnl_memory_desc_get_size(md) / sizeof(float);
        for (size_t i = 0; i < n; ++i) ((float *)data)[i] = value;
    }
    dnnl_memory_desc_t sub = NULL;
    BD_TRY(R, dnnl_memory_desc_create_submemory(&sub, md, bd_dims(R->values[p].md), low));
    if (bd_keep(R, sub) == NULL) return;
    dnnl_memory_t interior; /* the interior of the same buffer */
    BD_TRY(R, bd_mem_create(R, &interior, sub, data));
    bd_reorder_step(R, R->values[p].mem, R->values[p].md, interior, sub);
}

/* One call: binds the buffers, runs every step. Returns 0, or -1 with `R->error`. */
static int bd_run(bd_region *R, void *const *inputs, void *const *outputs) {
    for (int i = 0; i < R->ninputs; ++i) /* an input no step reads has no memory */
        if (R->inputs[i] && dnnl_memory_set_data_handle(R->inputs[i], inputs[i]) != dnnl_success)
            return -1;
    for (int o = 0; o < R->noutputs; ++o)
        if (dnnl_memory_set_data_handle(R->outputs[o], outputs[o]) != dnnl_success) return -1;
    for (int k = 0; k < R->nsteps; ++k) {
        bd_step *s = &R->steps[k];
        if (dnnl_primitive_execute(s->prim, R->strm, s->nargs, s->args) != dnnl_success) {
            snprintf(R->error, sizeof(R->error), "step %d failed", k);
            return -1;
        }
    }
    return dnnl_stream_wait(R->strm) == dnnl_success ? 0 : -1;
}

/* The exported ABI every generated region library has (see runtime.py). */
#define BD_EXPORT __attribute__((visibility("default")))

#endif /* BYOC_DNNL_SUPPORT_H */
