// RUN: byoc-opt %s --backend testing --partition | FileCheck %s

// Two quantized convolutions (dequantize → [pad →] conv → bias → quantize, as ONNX QDQ
// models import): each unit is one composite, the two merge into one region, and the
// region's edges are the quantized tensors (i8), not their float values.
// CHECK-LABEL: func.func @qdq_convs
// CHECK: %[[R:.+]] = call @testing.qdq_convs_0(%arg0, %arg1, %arg2, %arg3, %arg4)
// CHECK-SAME: (tensor<1x2x4x4xi8>, tensor<3x2x3x3xf32>, tensor<3xf32>, tensor<3x3x1x1xf32>, tensor<3xf32>) -> tensor<1x3x4x4xi8>
// CHECK-NEXT: return %[[R]]
// CHECK-LABEL: func.func private @testing.qdq_convs_0
// CHECK-SAME: byoc.composites = ["qconv2d_bias_pad_nchw_fchw", "qconv2d_bias_nchw_fchw"]
// CHECK-SAME: byoc.target = "testing"
// CHECK: arith.uitofp
// CHECK: arith.fptoui
// CHECK: arith.uitofp
// CHECK: arith.fptoui
// CHECK: return {{.*}} : tensor<1x3x4x4xi8>

// A quantize or dequantize alone is not a unit: the testing backend takes no int8 op
// by itself, so a lone dequantize stays on the host with its reason.
// RUN: byoc-opt %s --backend testing --byoc-annotate | FileCheck %s --check-prefix=ALONE
// ALONE: byoc.reject = {testing = "generic:dequantize is not supported"}
// ALONE: byoc.reject = {testing = "generic:quantize is not supported"}
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d1)>
func.func @qdq_convs(%x: tensor<1x2x4x4xi8>, %w0: tensor<3x2x3x3xf32>, %b0: tensor<3xf32>, %w1: tensor<3x3x1x1xf32>, %b1: tensor<3xf32>) -> tensor<1x3x4x4xi8> {
  %s = arith.constant 0.05 : f32
  %zero = arith.constant 0.0 : f32
  %hi = arith.constant 255.0 : f32
  %ex = tensor.empty() : tensor<1x2x4x4xf32>
  %d0 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x2x4x4xi8>) outs(%ex : tensor<1x2x4x4xf32>) {
  ^bb0(%in: i8, %out: f32):
    %f = arith.uitofp %in : i8 to f32
    %m = arith.mulf %f, %s : f32
    linalg.yield %m : f32
  } -> tensor<1x2x4x4xf32>
  %p = tensor.pad %d0 low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %zero : f32
  } : tensor<1x2x4x4xf32> to tensor<1x2x6x6xf32>
  %e = tensor.empty() : tensor<1x3x4x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %w0 : tensor<1x2x6x6xf32>, tensor<3x2x3x3xf32>) outs(%z : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %a0 = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c0, %b0 : tensor<1x3x4x4xf32>, tensor<3xf32>) outs(%e : tensor<1x3x4x4xf32>) {
  ^bb0(%i: f32, %b: f32, %out: f32):
    %r = arith.addf %i, %b : f32
    linalg.yield %r : f32
  } -> tensor<1x3x4x4xf32>
  %eq = tensor.empty() : tensor<1x3x4x4xi8>
  %q0 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%a0 : tensor<1x3x4x4xf32>) outs(%eq : tensor<1x3x4x4xi8>) {
  ^bb0(%in: f32, %out: i8):
    %v = arith.divf %in, %s : f32
    %r = math.roundeven %v : f32
    %lo = arith.maximumf %r, %zero : f32
    %up = arith.minimumf %lo, %hi : f32
    %i = arith.fptoui %up : f32 to i8
    linalg.yield %i : i8
  } -> tensor<1x3x4x4xi8>
  %d1 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%q0 : tensor<1x3x4x4xi8>) outs(%e : tensor<1x3x4x4xf32>) {
  ^bb0(%in: i8, %out: f32):
    %f = arith.uitofp %in : i8 to f32
    %m = arith.mulf %f, %s : f32
    linalg.yield %m : f32
  } -> tensor<1x3x4x4xf32>
  %z1 = linalg.fill ins(%zero : f32) outs(%e : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%d1, %w1 : tensor<1x3x4x4xf32>, tensor<3x3x1x1xf32>) outs(%z1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %a1 = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c1, %b1 : tensor<1x3x4x4xf32>, tensor<3xf32>) outs(%e : tensor<1x3x4x4xf32>) {
  ^bb0(%i: f32, %b: f32, %out: f32):
    %r = arith.addf %i, %b : f32
    linalg.yield %r : f32
  } -> tensor<1x3x4x4xf32>
  %q1 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%a1 : tensor<1x3x4x4xf32>) outs(%eq : tensor<1x3x4x4xi8>) {
  ^bb0(%in: f32, %out: i8):
    %v = arith.divf %in, %s : f32
    %r = math.roundeven %v : f32
    %lo = arith.maximumf %r, %zero : f32
    %up = arith.minimumf %lo, %hi : f32
    %i = arith.fptoui %up : f32 to i8
    linalg.yield %i : i8
  } -> tensor<1x3x4x4xi8>
  return %q1 : tensor<1x3x4x4xi8>
}
