// RUN: byoc-opt %s --split-input-file --byoc-split-bias-inits | FileCheck %s

// torch's Conv2d(bias=True): the bias broadcast into the conv's init becomes a zero fill
// and a bias add after the conv, which the conv+bias(+relu) composites then match.
// CHECK-DAG: #[[ID:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[CH:.+]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-LABEL: func.func @conv_bias
// CHECK-NOT: linalg.broadcast
// CHECK: %[[Z:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[F:.+]] = linalg.fill ins(%[[Z]] : f32) outs(%[[E:.+]] : tensor<1x4x6x6xf32>)
// CHECK: %[[C:.+]] = linalg.conv_2d_nchw_fchw {{.*}} outs(%[[F]] : tensor<1x4x6x6xf32>)
// CHECK-NEXT: %[[B:.+]] = linalg.generic {indexing_maps = [#[[ID]], #[[CH]], #[[ID]]]
// CHECK-SAME: ins(%[[C]], %arg2 : tensor<1x4x6x6xf32>, tensor<4xf32>)
// CHECK: arith.addf
// CHECK: return %[[B]]
func.func @conv_bias(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>) -> tensor<1x4x6x6xf32> {
  %e = tensor.empty() : tensor<1x4x6x6xf32>
  %bb = linalg.broadcast ins(%b : tensor<4xf32>) outs(%e : tensor<1x4x6x6xf32>) dimensions = [0, 2, 3]
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) outs(%bb : tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
  return %c : tensor<1x4x6x6xf32>
}

// -----

// A broadcast init with another user is left alone (the other user needs it).
// CHECK-LABEL: func.func @shared
// CHECK: linalg.broadcast
// CHECK-NOT: arith.addf
func.func @shared(%x: tensor<2x3xf32>, %w: tensor<3x4xf32>, %b: tensor<4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %e = tensor.empty() : tensor<2x4xf32>
  %bb = linalg.broadcast ins(%b : tensor<4xf32>) outs(%e : tensor<2x4xf32>) dimensions = [0]
  %m = linalg.matmul ins(%x, %w : tensor<2x3xf32>, tensor<3x4xf32>) outs(%bb : tensor<2x4xf32>) -> tensor<2x4xf32>
  return %m, %bb : tensor<2x4xf32>, tensor<2x4xf32>
}
