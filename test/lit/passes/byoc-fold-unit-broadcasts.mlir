// RUN: byoc-opt %s --split-input-file --byoc-fold-unit-broadcasts | FileCheck %s

// torch's BatchNorm form: a per-channel vector expanded to Cx1x1 and read through a map
// with constant results becomes a plain broadcast read of the vector (a BIAS_ADD form).
// CHECK-DAG: #[[ID:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[CH:.+]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-LABEL: func.func @batchnorm_shift
// CHECK-NOT: tensor.expand_shape
// CHECK: linalg.generic {indexing_maps = [#[[ID]], #[[CH]], #[[ID]]]
// CHECK-SAME: ins(%arg0, %arg1 : tensor<2x4x8x8xf32>, tensor<4xf32>)
func.func @batchnorm_shift(%x: tensor<2x4x8x8xf32>, %beta: tensor<4xf32>) -> tensor<2x4x8x8xf32> {
  %e = tensor.empty() : tensor<2x4x8x8xf32>
  %b = tensor.expand_shape %beta [[0, 1, 2]] output_shape [4, 1, 1] : tensor<4xf32> into tensor<4x1x1xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %b : tensor<2x4x8x8xf32>, tensor<4x1x1xf32>) outs(%e : tensor<2x4x8x8xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<2x4x8x8xf32>
  return %y : tensor<2x4x8x8xf32>
}

// -----

// An expand_shape with other users stays; the generic still reads the vector.
// CHECK-LABEL: func.func @shared_expand
// CHECK: %[[E:.+]] = tensor.expand_shape %arg1
// CHECK: linalg.generic
// CHECK-SAME: ins(%arg0, %arg1 : tensor<2x4x8x8xf32>, tensor<4xf32>)
// CHECK: return %{{.+}}, %[[E]]
func.func @shared_expand(%x: tensor<2x4x8x8xf32>, %beta: tensor<4xf32>) -> (tensor<2x4x8x8xf32>, tensor<4x1x1xf32>) {
  %e = tensor.empty() : tensor<2x4x8x8xf32>
  %b = tensor.expand_shape %beta [[0, 1, 2]] output_shape [4, 1, 1] : tensor<4xf32> into tensor<4x1x1xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %b : tensor<2x4x8x8xf32>, tensor<4x1x1xf32>) outs(%e : tensor<2x4x8x8xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.mulf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<2x4x8x8xf32>
  return %y, %b : tensor<2x4x8x8xf32>, tensor<4x1x1xf32>
}

// -----

// A map that reads a unit dim through a loop dim (not a constant) is left alone.
// CHECK-LABEL: func.func @not_constant
// CHECK: tensor.expand_shape
// CHECK: ins(%arg0, %{{.+}} : tensor<4x1xf32>, tensor<4x1xf32>)
func.func @not_constant(%x: tensor<4x1xf32>, %v: tensor<4xf32>) -> tensor<4x1xf32> {
  %e = tensor.empty() : tensor<4x1xf32>
  %b = tensor.expand_shape %v [[0, 1]] output_shape [4, 1] : tensor<4xf32> into tensor<4x1xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%x, %b : tensor<4x1xf32>, tensor<4x1xf32>) outs(%e : tensor<4x1xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<4x1xf32>
  return %y : tensor<4x1xf32>
}

// -----

// ONNX/torch keepdim forms read a tensor with unit dims through constant-0 map results
// (softmax's row sums, attention masks): the operand is collapsed to drop those dims and
// the map reads it as a plain broadcast (BROADCAST_SUB, BIAS_ADD recognise that).
// CHECK-DAG: #[[ROWS:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-DAG: #[[MASK:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d3)>
// CHECK-LABEL: func.func @keepdim
// CHECK: %[[R:.+]] = tensor.collapse_shape %arg1 {{\[}}[0], [1], [2, 3]] : tensor<1x4x8x1xf32> into tensor<1x4x8xf32>
// CHECK: linalg.generic {indexing_maps = [#{{.+}}, #[[ROWS]], #{{.+}}]
// CHECK-SAME: ins(%arg0, %[[R]] : tensor<1x4x8x8xf32>, tensor<1x4x8xf32>)
// CHECK: %[[M:.+]] = tensor.collapse_shape %arg2 {{\[}}[0, 1, 2], [3]] : tensor<1x1x1x8xf32> into tensor<1x8xf32>
// CHECK: linalg.generic {indexing_maps = [#{{.+}}, #[[MASK]], #{{.+}}]
// CHECK-SAME: tensor<1x8xf32>
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#kd = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, 0)>
#mk = affine_map<(d0, d1, d2, d3) -> (d0, 0, 0, d3)>
func.func @keepdim(%x: tensor<1x4x8x8xf32>, %m: tensor<1x4x8x1xf32>, %k: tensor<1x1x1x8xf32>) -> tensor<1x4x8x8xf32> {
  %e = tensor.empty() : tensor<1x4x8x8xf32>
  %0 = linalg.generic {indexing_maps = [#id, #kd, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %m : tensor<1x4x8x8xf32>, tensor<1x4x8x1xf32>) outs(%e : tensor<1x4x8x8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.subf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<1x4x8x8xf32>
  %1 = linalg.generic {indexing_maps = [#id, #mk, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%0, %k : tensor<1x4x8x8xf32>, tensor<1x1x1x8xf32>) outs(%e : tensor<1x4x8x8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<1x4x8x8xf32>
  return %1 : tensor<1x4x8x8xf32>
}

// -----

// The same with dynamic sizes (a dynamically shaped BERT's softmax): the expand that
// adds the unit dim takes its sizes as index values, which a region cannot take; the
// generic reads the tensor before it, and the expand goes. A keepdim read of a
// dynamically shaped tensor is collapsed the same way (a collapse needs no sizes).
// CHECK-DAG: #[[ROWS:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @dynamic_keepdim
// CHECK-NOT: tensor.expand_shape
// CHECK: linalg.generic {indexing_maps = [#{{.+}}, #[[ROWS]], #{{.+}}]
// CHECK-SAME: ins(%arg0, %arg1 : tensor<?x?x?xf32>, tensor<?x?xf32>)
// CHECK: %[[R:.+]] = tensor.collapse_shape %arg2 {{\[}}[0], [1, 2]] : tensor<?x?x1xf32> into tensor<?x?xf32>
// CHECK: linalg.generic {indexing_maps = [#{{.+}}, #[[ROWS]], #{{.+}}]
// CHECK-SAME: tensor<?x?xf32>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#kd3 = affine_map<(d0, d1, d2) -> (d0, d1, 0)>
func.func @dynamic_keepdim(%x: tensor<?x?x?xf32>, %m: tensor<?x?xf32>, %s: tensor<?x?x1xf32>, %a: index, %b: index, %c: index) -> tensor<?x?x?xf32> {
  %mx = tensor.expand_shape %m [[0], [1, 2]] output_shape [%a, %b, 1] : tensor<?x?xf32> into tensor<?x?x1xf32>
  %e = tensor.empty(%a, %b, %c) : tensor<?x?x?xf32>
  %0 = linalg.generic {indexing_maps = [#id3, #kd3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%x, %mx : tensor<?x?x?xf32>, tensor<?x?x1xf32>) outs(%e : tensor<?x?x?xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %r = arith.subf %p, %q : f32
    linalg.yield %r : f32
  } -> tensor<?x?x?xf32>
  %1 = linalg.generic {indexing_maps = [#id3, #kd3, #id3], iterator_types = ["parallel", "parallel", "parallel"]} ins(%0, %s : tensor<?x?x?xf32>, tensor<?x?x1xf32>) outs(%e : tensor<?x?x?xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %r = arith.divf %p, %q : f32
    linalg.yield %r : f32
  } -> tensor<?x?x?xf32>
  return %1 : tensor<?x?x?xf32>
}
