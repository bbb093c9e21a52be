// RUN: byoc-opt %s --split-input-file --byoc-guard-data-tiling | FileCheck %s

// byoc-guard-data-tiling materialises (util.optimization_barrier) the left operand of a
// batched matmul that IREE 3.13's data tiling miscompiles: produced, through elementwise
// ops and reshapes, by an op that broadcasts, with a row count not a multiple of 8.

#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#vec = affine_map<(d0, d1, d2) -> (d2)>

// The smallest reproducer: 2x3x8 minus an 8-vector, times 2x8x4.
// CHECK-LABEL: func.func @broadcast_sub
// CHECK:       [[S:%.+]] = linalg.generic
// CHECK-NEXT:  ^bb0
// CHECK:       [[B:%.+]] = util.optimization_barrier [[S]] : tensor<2x3x8xf32>
// CHECK-NEXT:  linalg.batch_matmul ins([[B]], %arg2
func.func @broadcast_sub(%a: tensor<2x3x8xf32>, %b: tensor<8xf32>, %w: tensor<2x8x4xf32>) -> tensor<2x3x4xf32> {
  %e = tensor.empty() : tensor<2x3x8xf32>
  %s = linalg.generic {indexing_maps = [#id, #vec, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%a, %b : tensor<2x3x8xf32>, tensor<8xf32>) outs(%e : tensor<2x3x8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %d = arith.subf %x, %y : f32
    linalg.yield %d : f32
  } -> tensor<2x3x8xf32>
  %z = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<2x3x4xf32>
  %f = linalg.fill ins(%z : f32) outs(%e2 : tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %r = linalg.batch_matmul ins(%s, %w : tensor<2x3x8xf32>, tensor<2x8x4xf32>) outs(%f : tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  return %r : tensor<2x3x4xf32>
}

// -----

#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

// Through an elementwise op and a reshape: still guarded (IREE fuses the whole chain).
// CHECK-LABEL: func.func @through_tanh_and_reshape
// CHECK:       [[X:%.+]] = tensor.expand_shape
// CHECK:       [[B:%.+]] = util.optimization_barrier [[X]] : tensor<2x12x64xf32>
// CHECK:       linalg.batch_matmul ins([[B]],
func.func @through_tanh_and_reshape(%a: tensor<24x64xf32>, %b: tensor<24xf32>, %w: tensor<2x64x64xf32>) -> tensor<2x12x64xf32> {
  %e = tensor.empty() : tensor<24x64xf32>
  %s = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]} ins(%a, %b : tensor<24x64xf32>, tensor<24xf32>) outs(%e : tensor<24x64xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %d = arith.subf %x, %y : f32
    linalg.yield %d : f32
  } -> tensor<24x64xf32>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%s : tensor<24x64xf32>) outs(%e : tensor<24x64xf32>) {
  ^bb0(%x: f32, %o: f32):
    %d = math.tanh %x : f32
    linalg.yield %d : f32
  } -> tensor<24x64xf32>
  %x = tensor.expand_shape %t [[0, 1], [2]] output_shape [2, 12, 64] : tensor<24x64xf32> into tensor<2x12x64xf32>
  %z = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<2x12x64xf32>
  %f = linalg.fill ins(%z : f32) outs(%e2 : tensor<2x12x64xf32>) -> tensor<2x12x64xf32>
  %r = linalg.batch_matmul ins(%x, %w : tensor<2x12x64xf32>, tensor<2x64x64xf32>) outs(%f : tensor<2x12x64xf32>) -> tensor<2x12x64xf32>
  return %r : tensor<2x12x64xf32>
}

// -----

#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#vec = affine_map<(d0, d1, d2) -> (d2)>
#perm = affine_map<(d0, d1, d2) -> (d1, d0, d2)>
#mid = affine_map<(d0, d1, d2) -> (d1)>

// Left alone: a row count that is a multiple of 8, a transpose on the way, a
// producer that does not broadcast, and a broadcast on the right-hand side.
// CHECK-LABEL: func.func @unguarded
// CHECK-NOT:   util.optimization_barrier
// CHECK:       return
func.func @unguarded(%a: tensor<2x16x8xf32>, %a3: tensor<3x2x8xf32>, %b: tensor<8xf32>, %w: tensor<2x8x4xf32>) -> (tensor<2x16x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>) {
  %e = tensor.empty() : tensor<2x16x8xf32>
  %s = linalg.generic {indexing_maps = [#id, #vec, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%a, %b : tensor<2x16x8xf32>, tensor<8xf32>) outs(%e : tensor<2x16x8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %d = arith.subf %x, %y : f32
    linalg.yield %d : f32
  } -> tensor<2x16x8xf32>
  %e3 = tensor.empty() : tensor<3x2x8xf32>
  %s3 = linalg.generic {indexing_maps = [#id, #vec, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%a3, %b : tensor<3x2x8xf32>, tensor<8xf32>) outs(%e3 : tensor<3x2x8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %d = arith.subf %x, %y : f32
    linalg.yield %d : f32
  } -> tensor<3x2x8xf32>
  %et = tensor.empty() : tensor<2x3x8xf32>
  %t = linalg.generic {indexing_maps = [#perm, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%s3 : tensor<3x2x8xf32>) outs(%et : tensor<2x3x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<2x3x8xf32>
  %n = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%t : tensor<2x3x8xf32>) outs(%et : tensor<2x3x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %d = math.tanh %x : f32
    linalg.yield %d : f32
  } -> tensor<2x3x8xf32>
  %ew = tensor.empty() : tensor<2x8x4xf32>
  %wb = linalg.generic {indexing_maps = [#id, #mid, #id], iterator_types = ["parallel", "parallel", "parallel"]} ins(%w, %b : tensor<2x8x4xf32>, tensor<8xf32>) outs(%ew : tensor<2x8x4xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %d = arith.subf %x, %y : f32
    linalg.yield %d : f32
  } -> tensor<2x8x4xf32>
  %z = arith.constant 0.0 : f32
  %e16 = tensor.empty() : tensor<2x16x4xf32>
  %f16 = linalg.fill ins(%z : f32) outs(%e16 : tensor<2x16x4xf32>) -> tensor<2x16x4xf32>
  %r16 = linalg.batch_matmul ins(%s, %w : tensor<2x16x8xf32>, tensor<2x8x4xf32>) outs(%f16 : tensor<2x16x4xf32>) -> tensor<2x16x4xf32>
  %e4 = tensor.empty() : tensor<2x3x4xf32>
  %f4 = linalg.fill ins(%z : f32) outs(%e4 : tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %rt = linalg.batch_matmul ins(%t, %w : tensor<2x3x8xf32>, tensor<2x8x4xf32>) outs(%f4 : tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %rn = linalg.batch_matmul ins(%n, %w : tensor<2x3x8xf32>, tensor<2x8x4xf32>) outs(%f4 : tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %rw = linalg.batch_matmul ins(%n, %wb : tensor<2x3x8xf32>, tensor<2x8x4xf32>) outs(%f4 : tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  return %r16, %rt, %rn, %rw : tensor<2x16x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>
}
