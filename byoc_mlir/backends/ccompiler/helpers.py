"""The C helpers a ``ccompiler`` file may include (`byoc_mlir.backends.ccompiler.writer.CFile`
adds those its kernels use): register tiles, workgroup chunks, NaN-correct min/max."""

from __future__ import annotations

HELPERS = {
    "tiles": """\
/* Register tiles. The matmul and convolution kernels compute their output in tiles of
 * TILE_M rows x TILE_N columns, held in a local array `acc` for the whole reduction:
 * each scalar read from the row operand feeds TILE_N multiply-adds, each vector read
 * from the column operand TILE_M. The compiler vectorises the loops over the TILE_N
 * columns and keeps acc in registers, so TILE_M x TILE_N / 8 vectors must fit: 24 of
 * the 32 AVX-512 registers, 12 of the 16 of AVX2 (gcc uses 8-float vectors for both).
 * Keep TILE_N >= 24: gcc fully unrolls a 16-column loop before vectorising it, then
 * leaves acc in scalars. Override with -DTILE_M=.. -DTILE_N=.. (any sizes >= 1 work). */
#if !defined(TILE_M) || !defined(TILE_N)
#if defined(__AVX512F__)
#define TILE_M 6
#define TILE_N 32
#else
#define TILE_M 4
#define TILE_N 24
#endif
#endif

/* Where the tile of `size` items meant to start at i0 starts, for tiles that must end
 * by `end`: a last tile that would cross end moves back to end exactly there. It then
 * overlaps the tile before it, and computes and stores the shared items again (the same
 * values, in the same workgroup). */
static inline size_t tile_start(size_t i0, size_t size, size_t end) {
  return i0 + size <= end ? i0 : end - size;
}""",
    "chunk": """\
/* Workgroup `id` of `count` takes the contiguous range [*begin, *end) of [0, total):
 * the first total % count workgroups take one item more than the others. */
static inline void chunk(size_t total, size_t id, size_t count, size_t* begin, size_t* end) {
  const size_t base = total / count, extra = total % count;
  *begin = id * base + (id < extra ? id : extra);
  *end = *begin + base + (id < extra ? 1 : 0);
}""",
    "chunk_tiles": """\
/* chunk() in whole tiles of `tile` items: only the share that ends at total may end
 * with a partial tile. */
static inline void chunk_tiles(size_t total, size_t tile, size_t id, size_t count,
                               size_t* begin, size_t* end) {
  chunk((total + tile - 1) / tile, id, count, begin, end);
  *begin = *begin * tile < total ? *begin * tile : total;
  *end = *end * tile < total ? *end * tile : total;
}""",
    "max_f32": """\
/* arith.maximumf: NaN if either operand is NaN. */
static inline float max_f32(float a, float b) { return (a != a || a > b) ? a : b; }""",
    "min_f32": """\
/* arith.minimumf: NaN if either operand is NaN. */
static inline float min_f32(float a, float b) { return (a != a || a < b) ? a : b; }""",
    "maxnum_f32": """\
/* arith.maxnumf: the other operand if one is NaN. */
static inline float maxnum_f32(float a, float b) { return (b != b || a > b) ? a : b; }""",
    "minnum_f32": """\
/* arith.minnumf: the other operand if one is NaN. */
static inline float minnum_f32(float a, float b) { return (b != b || a < b) ? a : b; }""",
}
