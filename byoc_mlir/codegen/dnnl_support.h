/* byoc_dnnl support: the helpers that generated `dnnl` region code calls.
 *
 * Like TVM's dnnl_kernel.h for its DNNL C-source codegen: the generated file for one
 * region is a list of calls to these helpers (one per oneDNN primitive), so it stays
 * short and readable. Everything is static: each region's shared library is one
 * translation unit, `region.c` including this header.
 *
 * A region is built once, at load (`bd_new` ... `bd_output` in `byoc_region_init`):
 * primitives are created, weights are reordered once into the layout oneDNN prefers
 * and kept. Each call (`bd_run`) binds the caller's input and output buffers (no copy)
 * and executes the primitives in order. Values carry oneDNN's logical dims (N, C, H, W
 * for activations); their memory format is whatever the producing primitive chose
 * (`any`), or the format the region was asked for, and reorders are inserted only where
 * a consumer needs another one: at region boundaries, in practice.
 *
 * Errors never abort: the first failure is recorded in `R->error` and every later
 * helper returns at once; `byoc_region_init` reports it to the loader.
 */
#ifndef BYOC_DNNL_SUPPORT_H
#define BYOC_DNNL_SUPPORT_H

#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIMS(...) ((const dnnl_dim_t[]){__VA_ARGS__})
#define POSTS(...) ((const bd_post[]){__VA_ARGS__})
#define BD_MAX_ARGS 16
#define BD_MAX_POSTS 8

enum { BD_RELU = 1, BD_CLIP, BD_GELU_ERF, BD_GELU_TANH, BD_SUM, BD_LINEAR, BD_EXP, BD_POW };

/* One post-op: an eltwise function, or `BD_SUM`: add the value `value`, which is
 * copied into the destination before the primitive runs, or (`alpha` != 0: the value
 * dies here) whose buffer becomes the destination when the formats agree. */
typedef struct {
    int kind;
    float alpha, beta;
    int value;
} bd_post;

typedef struct {
    dnnl_memory_desc_t md;
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
    dnnl_format_tag_t activation_tag; /* dnnl_format_tag_any, or e.g. dnnl_nhwc */
    char error[512];
} bd_region;

#define BD_TRY(R, call)                                                               \
    do {                                                                              \
        dnnl_status_t s_ = (call);                                                    \
        if (s_ != dnnl_success) {                                                     \
            if (!(R)->error[0])                                                       \
                snprintf((R)->error, sizeof((R)->error), "%s:%d: %s failed: %s",      \
                         __func__, __LINE__, #call, dnnl_status2str_(s_));            \
            return;                                                                   \
        }                                                                             \
    } while (0)

static const char *dnnl_status2str_(dnnl_status_t s) {
    switch (s) {
        case dnnl_out_of_memory: return "out of memory";
        case dnnl_invalid_arguments: return "invalid arguments";
        case dnnl_unimplemented: return "unimplemented (no oneDNN implementation)";
        case dnnl_runtime_error: return "runtime error";
        default: return "error";
    }
}

static void bd_fail(bd_region *R, const char *what) {
    if (!R->error[0]) snprintf(R->error, sizeof(R->error), "%s", what);
}

/* dnnl_memory_create, remembered so that bd_free can destroy it. */
static dnnl_status_t bd_mem_create(bd_region *R, dnnl_memory_t *mem,
                                   const dnnl_memory_desc_t *md, dnnl_engine_t eng,
                                   void *handle) {
    if (R->nmems == R->mem_capacity) {
        int cap = R->mem_capacity ? 2 * R->mem_capacity : 64;
        dnnl_memory_t *grown = (dnnl_memory_t *)realloc(R->mems, (size_t)cap * sizeof(dnnl_memory_t));
        if (!grown) return dnnl_out_of_memory;
        R->mems = grown;
        R->mem_capacity = cap;
    }
    dnnl_status_t s = dnnl_memory_create(mem, md, eng, handle);
    if (s == dnnl_success) R->mems[R->nmems++] = *mem;
    return s;
}

/* Destroys everything a region created (NULL is fine). */
static void bd_free(bd_region *R) {
    if (!R) return;
    for (int k = 0; k < R->nsteps; ++k) dnnl_primitive_destroy(R->steps[k].prim);
    for (int m = 0; m < R->nmems; ++m) dnnl_memory_destroy(R->mems[m]);
    if (R->strm) dnnl_stream_destroy(R->strm);
    if (R->eng) dnnl_engine_destroy(R->eng);
    free(R->mems);
    free(R->steps);
    free(R->values);
    free(R->reordered_from);
    free(R->constant);
    free(R->inputs);
    free(R->outputs);
    free(R);
}

static dnnl_format_tag_t bd_plain_tag(int ndims) {
    static const dnnl_format_tag_t tags[] = {dnnl_a,    dnnl_a,     dnnl_ab,
                                             dnnl_abc,  dnnl_abcd,  dnnl_abcde,
                                             dnnl_abcdef};
    return ndims >= 1 && ndims <= 6 ? tags[ndims] : dnnl_format_tag_undef;
}

static bd_region *bd_new(int nvalues, int ninputs, int noutputs, const void *weights,
                         int threads, dnnl_format_tag_t activation_tag) {
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

/* A memory descriptor for logical `dims` in format `tag` (f32). */
static void bd_md(bd_region *R, dnnl_memory_desc_t *md, int ndims, const dnnl_dim_t *dims,
                  dnnl_format_tag_t tag) {
    BD_TRY(R, dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag));
}

static void bd_alloc(bd_region *R, int v, const dnnl_memory_desc_t *md) {
    R->values[v].md = *md;
    BD_TRY(R, bd_mem_create(R, &R->values[v].mem, md, R->eng, DNNL_MEMORY_ALLOCATE));
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
    if (R->nsteps == R->step_capacity) {
        bd_step *grown = (bd_step *)realloc(R->steps, 2 * (size_t)R->step_capacity * sizeof(bd_step));
        if (!grown) {
            bd_fail(R, "out of memory");
            return;
        }
        R->steps = grown;
        R->step_capacity *= 2;
    }
    bd_step *s = &R->steps[R->nsteps++];
    s->prim = prim;
    s->nargs = nargs;
    memcpy(s->args, args, (size_t)nargs * sizeof(dnnl_exec_arg_t));
}

static void bd_create(bd_region *R, dnnl_primitive_t *prim, const_dnnl_op_desc_t desc,
                      const_dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd) {
    BD_TRY(R, dnnl_primitive_desc_create(pd, desc, attr, R->eng, NULL));
    BD_TRY(R, dnnl_primitive_create(prim, *pd));
}

/* A step copying `src` into memory `dst` (any formats, same logical dims). */
static void bd_reorder_step(bd_region *R, dnnl_memory_t src, const dnnl_memory_desc_t *src_md,
                            dnnl_memory_t dst, const dnnl_memory_desc_t *dst_md) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    BD_TRY(R, dnnl_reorder_primitive_desc_create(&pd, src_md, R->eng, dst_md, R->eng, NULL));
    BD_TRY(R, dnnl_primitive_create(&prim, pd));
    dnnl_primitive_desc_destroy(pd);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    bd_step_add(R, prim, 2, args);
}

/* Value `v` in format `md`: `v` itself when it already is, else a reordered temporary. */
static int bd_as(bd_region *R, int v, const dnnl_memory_desc_t *md) {
    if (R->error[0]) return v;
    if (dnnl_memory_desc_equal(&R->values[v].md, md)) return v;
    /* Values are immutable: a second reader wanting the same format shares the copy. */
    for (int t = 0; t < R->nvalues; ++t)
        if (R->reordered_from[t] == v + 1 && dnnl_memory_desc_equal(&R->values[t].md, md))
            return t;
    int t = bd_temp(R);
    bd_alloc(R, t, md);
    if (R->error[0]) return v;
    bd_reorder_step(R, R->values[v].mem, &R->values[v].md, R->values[t].mem, md);
    R->reordered_from[t] = v + 1;
    return t;
}

/* Value `v` in the plain (row-major) format of its logical dims. */
static int bd_plain(bd_region *R, int v) {
    dnnl_memory_desc_t md;
    bd_md(R, &md, R->values[v].md.ndims, R->values[v].md.dims, bd_plain_tag(R->values[v].md.ndims));
    return bd_as(R, v, &md);
}

/* Region input `i`, read in place as value `v` (format `tag`, bound at each call). */
static void bd_input(bd_region *R, int i, int v, int ndims, const dnnl_dim_t *dims,
                     dnnl_format_tag_t tag) {
    if (R->error[0]) return;
    bd_md(R, &R->values[v].md, ndims, dims, tag);
    BD_TRY(R, bd_mem_create(R, &R->values[v].mem, &R->values[v].md, R->eng, NULL));
    R->inputs[i] = R->values[v].mem;
}

/* A constant: `bytes_offset` into the weights blob, read in place (never written). */
static dnnl_memory_t bd_prepack(bd_region *R, int v, const dnnl_memory_desc_t *md);

static void bd_const(bd_region *R, int v, int ndims, const dnnl_dim_t *dims,
                     dnnl_format_tag_t tag, long bytes_offset) {
    if (R->error[0]) return;
    bd_md(R, &R->values[v].md, ndims, dims, tag);
    BD_TRY(R, bd_mem_create(R, &R->values[v].mem, &R->values[v].md, R->eng,
                                 (void *)(R->weights + bytes_offset)));
    R->constant[v] = 1;
}

/* Weights in format `md`: a constant is reordered once, now; weights that arrive at run
 * time (a region input: function arguments, parameter files) are reordered per call. */
static dnnl_memory_t bd_weights(bd_region *R, int w, const dnnl_memory_desc_t *md) {
    if (R->constant[w]) return bd_prepack(R, w, md);
    int t = bd_as(R, w, md);
    return R->error[0] ? NULL : R->values[t].mem;
}

/* Region output `o`: value `v` written in format `tag` into the caller's buffer. */
static void bd_output(bd_region *R, int o, int v, int ndims, const dnnl_dim_t *dims,
                      dnnl_format_tag_t tag) {
    if (R->error[0]) return;
    dnnl_memory_desc_t md;
    bd_md(R, &md, ndims, dims, tag);
    BD_TRY(R, bd_mem_create(R, &R->outputs[o], &md, R->eng, NULL));
    bd_reorder_step(R, R->values[v].mem, &R->values[v].md, R->outputs[o], &md);
}

/* Reorders a constant once, now, into `md`; returns the new memory. */
static dnnl_memory_t bd_prepack(bd_region *R, int v, const dnnl_memory_desc_t *md) {
    dnnl_memory_t packed = NULL;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    if (R->error[0]) return NULL;
    if (bd_mem_create(R, &packed, md, R->eng, DNNL_MEMORY_ALLOCATE) != dnnl_success ||
        dnnl_reorder_primitive_desc_create(&pd, &R->values[v].md, R->eng, md, R->eng, NULL) !=
            dnnl_success ||
        dnnl_primitive_create(&prim, pd) != dnnl_success) {
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

/* Post-ops as a primitive attribute; sums are returned in `*sum_value` (one at most,
 * and only first: oneDNN requires the sum to be the first post-op to be fast). */
static dnnl_primitive_attr_t bd_attr(bd_region *R, const bd_post *posts, int nposts,
                                     int *sum_value, int *sum_in_place) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    *sum_value = -1;
    *sum_in_place = 0;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success ||
        dnnl_post_ops_create(&po) != dnnl_success) {
        bd_fail(R, "cannot create post-ops");
        return attr;
    }
    for (int k = 0; k < nposts; ++k) {
        const bd_post *p = &posts[k];
        dnnl_status_t s = dnnl_success;
        switch (p->kind) {
            case BD_RELU: s = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, 0.f, 0.f); break;
            case BD_CLIP: s = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_clip_v2, p->alpha, p->beta); break;
            case BD_GELU_ERF: s = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_gelu_erf, 0.f, 0.f); break;
            case BD_GELU_TANH: s = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_gelu_tanh, 0.f, 0.f); break;
            case BD_LINEAR: s = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_linear, p->alpha, p->beta); break;
            case BD_EXP: s = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_exp, 0.f, 0.f); break;
            case BD_POW: s = dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_pow, p->alpha, p->beta); break;
            case BD_SUM:
                *sum_value = p->value;
                *sum_in_place = p->alpha != 0.f;
                s = dnnl_post_ops_append_sum(po, 1.f);
                break;
            default: s = dnnl_invalid_arguments;
        }
        if (s != dnnl_success) bd_fail(R, "a post-op is not supported by this oneDNN");
    }
    if (dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success) bd_fail(R, "cannot set post-ops");
    dnnl_post_ops_destroy(po);
    return attr;
}

/* A primitive with post-ops; returns its descriptor (the caller destroys it) or NULL. */
static dnnl_primitive_desc_t bd_make(bd_region *R, const_dnnl_op_desc_t desc,
                                     const bd_post *posts, int nposts, dnnl_primitive_t *prim,
                                     int *sum_value, int *sum_in_place) {
    dnnl_primitive_attr_t attr = bd_attr(R, posts, nposts, sum_value, sum_in_place);
    dnnl_primitive_desc_t pd = NULL;
    bd_create(R, prim, desc, attr, &pd);
    dnnl_primitive_attr_destroy(attr);
    return R->error[0] ? NULL : pd;
}

static int bd_is_input(const bd_region *R, int v) {
    for (int i = 0; i < R->ninputs; ++i)
        if (R->inputs[i] == R->values[v].mem) return 1;
    return 0;
}

static void bd_attr_destroy_(dnnl_primitive_attr_t attr) {
    if (attr) dnnl_primitive_attr_destroy(attr);
}

static dnnl_primitive_desc_t bd_try_layout_(bd_region *R, const dnnl_convolution_desc_t *desc,
                                            const bd_post *posts, int nposts,
                                            dnnl_primitive_t *prim);

/* The convolution `desc` with its source in format `src_md` instead, if oneDNN runs that
 * with a JIT kernel (not a reference one); NULL otherwise. Never records an error. */
static dnnl_primitive_desc_t bd_try_layout(bd_region *R, const dnnl_convolution_desc_t *desc,
                                           const dnnl_memory_desc_t *src_md, const bd_post *posts,
                                           int nposts, dnnl_primitive_t *prim) {
    dnnl_convolution_desc_t d = *desc;
    d.src_desc = *src_md;
    if (R->activation_tag == dnnl_format_tag_any && d.dst_desc.ndims == 4) {
        /* the destination in NHWC, the layout brgconv uses downstream, if fast */
        dnnl_convolution_desc_t nhwc = d;
        dnnl_memory_desc_init_by_tag(&nhwc.dst_desc, 4, d.dst_desc.dims, dnnl_f32, dnnl_nhwc);
        dnnl_primitive_desc_t pd = bd_try_layout_(R, &nhwc, posts, nposts, prim);
        if (pd) return pd;
    }
    return bd_try_layout_(R, &d, posts, nposts, prim);
}

static dnnl_primitive_desc_t bd_try_layout_(bd_region *R, const dnnl_convolution_desc_t *desc,
                                            const bd_post *posts, int nposts,
                                            dnnl_primitive_t *prim) {
    dnnl_convolution_desc_t d = *desc;
    int sum_value, sum_in_place;
    char saved[sizeof(R->error)];
    memcpy(saved, R->error, sizeof(saved));
    dnnl_primitive_attr_t attr = bd_attr(R, posts, nposts, &sum_value, &sum_in_place);
    memcpy(R->error, saved, sizeof(saved));
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    if (dnnl_primitive_desc_create(&pd, &d, attr, R->eng, NULL) != dnnl_success) pd = NULL;
    bd_attr_destroy_(attr);
    if (pd && (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success ||
               !impl || (strncmp(impl, "jit", 3) && strncmp(impl, "brg", 3)))) {
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    if (pd && dnnl_primitive_create(prim, pd) != dnnl_success) {
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    return pd;
}

/* The destination memory of a primitive; with a sum post-op, a step first copies the
 * summed value into it. */
static void bd_destination(bd_region *R, int dst, const dnnl_memory_desc_t *md, int sum_value,
                           int sum_in_place) {
    if (sum_value >= 0 && sum_in_place && dnnl_memory_desc_equal(&R->values[sum_value].md, md)) {
        R->values[dst] = R->values[sum_value]; /* accumulate into the dying tensor */
        return;
    }
    bd_alloc(R, dst, md);
    if (sum_value >= 0 && !R->error[0])
        bd_reorder_step(R, R->values[sum_value].mem, &R->values[sum_value].md,
                        R->values[dst].mem, md);
}

/* 2-D convolution. `w` (a constant, logical dims [G,] O, I, KH, KW) is reordered once;
 * `b` (a constant vector, or -1) is the fused bias. `groups` > 1: grouped/depthwise. */
static void bd_conv(bd_region *R, int dst, int src, int w, int b, int groups,
                    const dnnl_dim_t *dst_dims, const dnnl_dim_t *strides,
                    const dnnl_dim_t *dilations, const dnnl_dim_t *pad_l,
                    const dnnl_dim_t *pad_r, const bd_post *posts, int nposts) {
    if (R->error[0]) return;
    dnnl_memory_desc_t src_any, w_any, b_md, dst_any;
    dnnl_format_tag_t act = R->activation_tag;
    const bd_value *S = &R->values[src], *W = &R->values[w];
    bd_md(R, &src_any, 4, S->md.dims, act);
    bd_md(R, &w_any, W->md.ndims, W->md.dims, dnnl_format_tag_any);
    bd_md(R, &dst_any, 4, dst_dims, act);
    if (b >= 0) b_md = R->values[b].md;
    dnnl_dim_t dil[2] = {dilations[0] - 1, dilations[1] - 1};
    dnnl_convolution_desc_t desc;
    BD_TRY(R, dnnl_dilated_convolution_forward_desc_init(
                  &desc, dnnl_forward_inference, dnnl_convolution_direct, &src_any, &w_any,
                  b >= 0 ? &b_md : NULL, &dst_any, strides, dil, pad_l, pad_r));
    (void)groups;
    int sum_value, sum_in_place;
    dnnl_primitive_t prim;
    /* A region input is read in its own (plain) layout when oneDNN has a fast kernel for
     * it (the first conv of a network: 3 channels, NCHW): that saves a reorder per call. */
    dnnl_primitive_desc_t pd = bd_is_input(R, src) ? bd_try_layout(R, &desc, &S->md, posts, nposts, &prim) : NULL;
    if (pd == NULL)
        pd = bd_make(R, &desc, posts, nposts, &prim, &sum_value, &sum_in_place);
    else
        bd_attr_destroy_(bd_attr(R, posts, nposts, &sum_value, &sum_in_place));
    if (pd == NULL) return;
    int s = bd_as(R, src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0));
    dnnl_memory_t wmem = bd_weights(R, w, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0));
    bd_destination(R, dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), sum_value, sum_in_place);
    dnnl_primitive_desc_destroy(pd);
    if (R->error[0]) return;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, R->values[s].mem},
                               {DNNL_ARG_WEIGHTS, wmem},
                               {DNNL_ARG_DST, R->values[dst].mem},
                               {DNNL_ARG_BIAS, b >= 0 ? R->values[b].mem : NULL}};
    bd_step_add(R, prim, b >= 0 ? 4 : 3, args);
}

/* Max or average pooling (`alg`), with padding (excluded from max; counted by avg). */
static void bd_pool(bd_region *R, int dst, int src, dnnl_alg_kind_t alg,
                    const dnnl_dim_t *dst_dims, const dnnl_dim_t *kernel,
                    const dnnl_dim_t *strides, const dnnl_dim_t *dilations,
                    const dnnl_dim_t *pad_l, const dnnl_dim_t *pad_r, const bd_post *posts,
                    int nposts) {
    if (R->error[0]) return;
    dnnl_memory_desc_t dst_any;
    bd_md(R, &dst_any, 4, dst_dims, R->activation_tag == dnnl_format_tag_any
                                        ? dnnl_format_tag_any : R->activation_tag);
    dnnl_dim_t dil[2] = {dilations[0] - 1, dilations[1] - 1};
    dnnl_pooling_v2_desc_t desc;
    BD_TRY(R, dnnl_pooling_v2_forward_desc_init(&desc, dnnl_forward_inference, alg,
                                                &R->values[src].md, &dst_any, strides, kernel,
                                                dil, pad_l, pad_r));
    int sum_value, sum_in_place;
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t pd = bd_make(R, &desc, posts, nposts, &prim, &sum_value, &sum_in_place);
    if (pd == NULL) return;
    bd_destination(R, dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), sum_value, sum_in_place);
    const dnnl_memory_desc_t *ws = dnnl_primitive_desc_query_md(pd, dnnl_query_workspace_md, 0);
    dnnl_primitive_desc_destroy(pd);
    if (R->error[0]) return;
    if (ws && ws->ndims) {
        bd_fail(R, "pooling needs a workspace (training only)");
        return;
    }
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, R->values[src].mem},
                               {DNNL_ARG_DST, R->values[dst].mem}};
    bd_step_add(R, prim, 2, args);
}

/* A step of a one-source primitive (`desc`, no post-ops) writing a new value `dst`. */
static void bd_src_dst_step(bd_region *R, int dst, int src, const_dnnl_op_desc_t desc) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    bd_create(R, &prim, desc, NULL, &pd);
    if (R->error[0]) return;
    bd_alloc(R, dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0));
    dnnl_primitive_desc_destroy(pd);
    if (R->error[0]) return;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, R->values[src].mem},
                               {DNNL_ARG_DST, R->values[dst].mem}};
    bd_step_add(R, prim, 2, args);
}

/* Elementwise `alg(alpha, beta)` of `src`, in `src`'s format. */
static void bd_eltwise(bd_region *R, int dst, int src, dnnl_alg_kind_t alg, float alpha,
                       float beta) {
    if (R->error[0]) return;
    dnnl_eltwise_desc_t desc;
    BD_TRY(R, dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, alg,
                                             &R->values[src].md, alpha, beta));
    bd_src_dst_step(R, dst, src, &desc);
}

/* `a alg b` (add, sub, mul, div); `b` may broadcast (dims of 1). The result takes
 * `a`'s format; a full-size `b` in another format is reordered to it first. */
static void bd_binary(bd_region *R, int dst, int a, int b, dnnl_alg_kind_t alg,
                      const bd_post *posts, int nposts) {
    if (R->error[0]) return;
    const dnnl_memory_desc_t *amd = &R->values[a].md;
    int same_dims = R->values[b].md.ndims == amd->ndims &&
                    !memcmp(R->values[b].md.dims, amd->dims, (size_t)amd->ndims * sizeof(dnnl_dim_t));
    if (same_dims) b = bd_as(R, b, amd);
    dnnl_binary_desc_t desc;
    BD_TRY(R, dnnl_binary_desc_init(&desc, alg, amd, &R->values[b].md, amd));
    int sum_value, sum_in_place;
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t pd = bd_make(R, &desc, posts, nposts, &prim, &sum_value, &sum_in_place);
    if (pd == NULL) return;
    bd_destination(R, dst, amd, sum_value, sum_in_place);
    dnnl_primitive_desc_destroy(pd);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC_0, R->values[a].mem},
                               {DNNL_ARG_SRC_1, R->values[b].mem},
                               {DNNL_ARG_DST, R->values[dst].mem}};
    bd_step_add(R, prim, 3, args);
}

/* Matmul (2-D or batched 3-D, row-major): `dst = a @ b (+ bias)`. A constant `b` is
 * reordered once into oneDNN's preferred layout. `bias` (-1: none) broadcasts. */
static void bd_matmul(bd_region *R, int dst, int a, int b, int b_is_const, int bias,
                      const dnnl_dim_t *dst_dims, const bd_post *posts, int nposts) {
    if (R->error[0]) return;
    a = bd_plain(R, a);
    if (!b_is_const) b = bd_plain(R, b);
    int nd = R->values[a].md.ndims;
    dnnl_memory_desc_t w_md, dst_md;
    if (b_is_const)
        bd_md(R, &w_md, nd, R->values[b].md.dims, dnnl_format_tag_any);
    else
        w_md = R->values[b].md;
    bd_md(R, &dst_md, nd, dst_dims, bd_plain_tag(nd));
    dnnl_matmul_desc_t desc;
    BD_TRY(R, dnnl_matmul_desc_init(&desc, &R->values[a].md, &w_md,
                                    bias >= 0 ? &R->values[bias].md : NULL, &dst_md));
    int sum_value, sum_in_place;
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t pd = bd_make(R, &desc, posts, nposts, &prim, &sum_value, &sum_in_place);
    if (pd == NULL) return;
    dnnl_memory_t wmem = b_is_const
                             ? bd_prepack(R, b, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0))
                             : R->values[b].mem;
    bd_destination(R, dst, &dst_md, sum_value, sum_in_place);
    dnnl_primitive_desc_destroy(pd);
    if (R->error[0]) return;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, R->values[a].mem},
                               {DNNL_ARG_WEIGHTS, wmem},
                               {DNNL_ARG_DST, R->values[dst].mem},
                               {DNNL_ARG_BIAS, bias >= 0 ? R->values[bias].mem : NULL}};
    bd_step_add(R, prim, bias >= 0 ? 4 : 3, args);
}

/* A buffer with a fixed address holding value `v`: `v` itself, or for a region input
 * (bound only at each call) a copy made at each call. */
static int bd_stable(bd_region *R, int v) {
    void *handle = NULL;
    if (R->error[0] || dnnl_memory_get_data_handle(R->values[v].mem, &handle) != dnnl_success)
        return v;
    if (handle != NULL) return v;
    int t = bd_temp(R);
    bd_alloc(R, t, &R->values[v].md);
    if (!R->error[0])
        bd_reorder_step(R, R->values[v].mem, &R->values[v].md, R->values[t].mem, &R->values[t].md);
    return t;
}

/* A reshape: `src` made plain, viewed with new dims (no copy beyond that). */
static void bd_reshape(bd_region *R, int dst, int src, int ndims, const dnnl_dim_t *dims) {
    if (R->error[0]) return;
    int p = bd_stable(R, bd_plain(R, src));
    if (R->error[0]) return;
    void *handle = NULL;
    BD_TRY(R, dnnl_memory_get_data_handle(R->values[p].mem, &handle));
    bd_md(R, &R->values[dst].md, ndims, dims, bd_plain_tag(ndims));
    BD_TRY(R, bd_mem_create(R, &R->values[dst].mem, &R->values[dst].md, R->eng, handle));
}

/* A reduction (`alg`: sum or max) of `src` (made plain) to `dst_dims`: src's rank,
 * 1 on the reduced dims. */
static void bd_reduce(bd_region *R, int dst, int src, dnnl_alg_kind_t alg,
                      const dnnl_dim_t *dst_dims) {
    if (R->error[0]) return;
    int p = bd_plain(R, src);
    int nd = R->values[p].md.ndims;
    dnnl_memory_desc_t md;
    bd_md(R, &md, nd, dst_dims, bd_plain_tag(nd));
    dnnl_reduction_desc_t desc;
    BD_TRY(R, dnnl_reduction_desc_init(&desc, alg, &R->values[p].md, &md, 0.f, 0.f));
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    bd_create(R, &prim, &desc, NULL, &pd);
    if (R->error[0]) return;
    dnnl_primitive_desc_destroy(pd);
    bd_alloc(R, dst, &md);
    if (R->error[0]) return;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, R->values[p].mem},
                               {DNNL_ARG_DST, R->values[dst].mem}};
    bd_step_add(R, prim, 2, args);
}

/* Softmax of `src` along logical dim `axis` (recognised from its decomposed form). */
static void bd_softmax(bd_region *R, int dst, int src, int axis) {
    if (R->error[0]) return;
    dnnl_softmax_v2_desc_t desc;
    const dnnl_memory_desc_t *md = &R->values[src].md;
    BD_TRY(R, dnnl_softmax_v2_forward_desc_init(&desc, dnnl_forward_inference,
                                                dnnl_softmax_accurate, md, md, axis));
    bd_src_dst_step(R, dst, src, &desc);
}

/* Layer normalisation of `src` over its last dim, `eps` inside the square root, with
 * optional constant `scale` and `shift` vectors (-1: none); recognised from its
 * decomposed form. Mean and variance are computed per call (scratch outputs). */
static void bd_layernorm(bd_region *R, int dst, int src, float eps, int scale, int shift) {
    if (R->error[0]) return;
    const dnnl_memory_desc_t *md = &R->values[src].md;
    unsigned flags = (scale >= 0 ? dnnl_use_scale : 0) | (shift >= 0 ? dnnl_use_shift : 0);
    dnnl_layer_normalization_desc_t desc;
    BD_TRY(R, dnnl_layer_normalization_forward_desc_init(&desc, dnnl_forward_inference, md,
                                                         NULL, eps, flags));
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    bd_create(R, &prim, &desc, NULL, &pd);
    if (R->error[0]) return;
    bd_alloc(R, dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0));
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, R->values[src].mem},
                               {DNNL_ARG_DST, R->values[dst].mem}};
    int nargs = 2;
    const int stat_args[2] = {DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
    for (int k = 0; k < 2; ++k) { /* inference may still write the statistics */
        const dnnl_memory_desc_t *stat = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 1 + k);
        if (stat == NULL || stat->ndims == 0) continue;
        int t = bd_temp(R);
        bd_alloc(R, t, stat);
        args[nargs].arg = stat_args[k];
        args[nargs++].memory = R->values[t].mem;
    }
    dnnl_primitive_desc_destroy(pd);
    if (R->error[0]) return;
    if (scale >= 0) {
        args[nargs].arg = DNNL_ARG_SCALE;
        args[nargs++].memory = R->values[scale].mem;
    }
    if (shift >= 0) {
        args[nargs].arg = DNNL_ARG_SHIFT;
        args[nargs++].memory = R->values[shift].mem;
    }
    bd_step_add(R, prim, nargs, args);
}

/* Concatenation of `n` values (n < BD_MAX_ARGS) along logical dim `axis`; the result
 * takes the format oneDNN picks from the sources (e.g. NHWC after NHWC convs). */
static void bd_concat(bd_region *R, int dst, int axis, int n, const int *srcs) {
    if (R->error[0]) return;
    if (n < 1 || n >= BD_MAX_ARGS) {
        bd_fail(R, "concat of too many tensors");
        return;
    }
    dnnl_memory_desc_t mds[BD_MAX_ARGS];
    for (int i = 0; i < n; ++i) mds[i] = R->values[srcs[i]].md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    BD_TRY(R, dnnl_concat_primitive_desc_create(&pd, NULL, n, axis, mds, NULL, R->eng));
    BD_TRY(R, dnnl_primitive_create(&prim, pd));
    bd_alloc(R, dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0));
    dnnl_primitive_desc_destroy(pd);
    if (R->error[0]) return;
    dnnl_exec_arg_t args[BD_MAX_ARGS];
    for (int i = 0; i < n; ++i) {
        args[i].arg = DNNL_ARG_MULTIPLE_SRC + i;
        args[i].memory = R->values[srcs[i]].mem;
    }
    args[n].arg = DNNL_ARG_DST;
    args[n].memory = R->values[dst].mem;
    bd_step_add(R, prim, n + 1, args);
}

/* A transpose: dst dim i is src dim perm[i] (linalg.transpose), one reorder into a
 * plain buffer viewed in src's dim order. */
static void bd_transpose(bd_region *R, int dst, int src, const int *perm) {
    if (R->error[0]) return;
    const dnnl_memory_desc_t *smd = &R->values[src].md;
    int nd = smd->ndims;
    dnnl_dim_t dims[DNNL_MAX_NDIMS];
    for (int i = 0; i < nd; ++i) dims[i] = smd->dims[perm[i]];
    dnnl_memory_desc_t md, view;
    bd_md(R, &md, nd, dims, bd_plain_tag(nd));
    bd_alloc(R, dst, &md);
    if (R->error[0]) return;
    void *data = NULL;
    BD_TRY(R, dnnl_memory_get_data_handle(R->values[dst].mem, &data));
    BD_TRY(R, dnnl_memory_desc_permute_axes(&view, &md, perm));
    dnnl_memory_t viewed;
    BD_TRY(R, bd_mem_create(R, &viewed, &view, R->eng, data));
    bd_reorder_step(R, R->values[src].mem, smd, viewed, &view);
}

/* A constant pad: `src` copied into the interior of a buffer filled with `value`. */
static void bd_pad(bd_region *R, int dst, int src, const dnnl_dim_t *dst_dims,
                   const dnnl_dim_t *low, float value) {
    if (R->error[0]) return;
    int p = bd_plain(R, src);
    int nd = R->values[p].md.ndims;
    dnnl_memory_desc_t md, sub;
    bd_md(R, &md, nd, dst_dims, bd_plain_tag(nd));
    bd_alloc(R, dst, &md);
    if (R->error[0]) return;
    float *data = NULL;
    BD_TRY(R, dnnl_memory_get_data_handle(R->values[dst].mem, (void **)&data));
    size_t n = dnnl_memory_desc_get_size(&md) / sizeof(float);
    for (size_t i = 0; i < n; ++i) data[i] = value; /* the interior is overwritten per call */
    BD_TRY(R, dnnl_memory_desc_init_submemory(&sub, &md, R->values[p].md.dims, low));
    dnnl_memory_t interior; /* the interior of the same buffer */
    BD_TRY(R, bd_mem_create(R, &interior, &sub, R->eng, data));
    bd_reorder_step(R, R->values[p].mem, &R->values[p].md, interior, &sub);
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

/* The exported ABI every generated region library has (see dnnl_runtime.py). */
#define BD_EXPORT __attribute__((visibility("default")))

#endif /* BYOC_DNNL_SUPPORT_H */
