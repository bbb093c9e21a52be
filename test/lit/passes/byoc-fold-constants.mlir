// RUN: byoc-opt %s --split-input-file --byoc-fold-constants | FileCheck %s
// RUN: byoc-opt %s --split-input-file --byoc-fold-constants="max-elements=4" | FileCheck %s --check-prefix=LIMIT

// byoc-fold-constants evaluates ops whose tensor inputs are all constants and replaces
// each by one arith.constant; the ops and constants left without users are erased.

// torch's nn.Linear: the transposed weight becomes a constant the matmul reads directly.
// CHECK-LABEL: func.func @linear_weight
// CHECK-NOT:   linalg.transpose
// CHECK:       [[W:%.+]] = arith.constant dense<
// CHECK-SAME:  {{\[\[}}1.000000e+00, 4.000000e+00], [2.000000e+00, 5.000000e+00], [3.000000e+00, 6.000000e+00]]> : tensor<3x2xf32>
// CHECK-NOT:   arith.constant {{.*}}tensor<2x3xf32>
// CHECK:       linalg.matmul ins(%arg0, [[W]] : tensor<2x3xf32>, tensor<3x2xf32>)
// LIMIT-LABEL: func.func @linear_weight
// LIMIT:       linalg.transpose
func.func @linear_weight(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
  %w = arith.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
  %e = tensor.empty() : tensor<3x2xf32>
  %t = linalg.transpose ins(%w : tensor<2x3xf32>) outs(%e : tensor<3x2xf32>) permutation = [1, 0]
  %z = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<2x2xf32>
  %f = linalg.fill ins(%z : f32) outs(%e2 : tensor<2x2xf32>) -> tensor<2x2xf32>
  %m = linalg.matmul ins(%x, %t : tensor<2x3xf32>, tensor<3x2xf32>) outs(%f : tensor<2x2xf32>) -> tensor<2x2xf32>
  return %m : tensor<2x2xf32>
}

// -----

// torch's BatchNorm scale 1 / sqrt(var + eps): three generics on a vector (eps captured
// from outside the body, 1.0 inside it) fold into one constant.
// CHECK-LABEL: func.func @batchnorm_scale
// CHECK-NEXT:  [[K:%.+]] = arith.constant dense<[5.000000e-01, 2.500000e-01]> : tensor<2xf32>
// CHECK-NEXT:  return [[K]]
func.func @batchnorm_scale() -> tensor<2xf32> {
  %var = arith.constant dense<[3.0, 15.0]> : tensor<2xf32>
  %eps = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<2xf32>
  %a = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%var : tensor<2xf32>) outs(%e : tensor<2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %eps : f32
    linalg.yield %s : f32
  } -> tensor<2xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%a : tensor<2xf32>) outs(%e : tensor<2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = math.sqrt %in : f32
    linalg.yield %s : f32
  } -> tensor<2xf32>
  %k = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%r : tensor<2xf32>) outs(%e : tensor<2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %one = arith.constant 1.0 : f32
    %s = arith.divf %one, %in : f32
    linalg.yield %s : f32
  } -> tensor<2xf32>
  return %k : tensor<2xf32>
}

// -----

// Inputs read through broadcasts, with constant results as IREE's ONNX importer writes
// them: (0, d1, 0, 0) reads a 1x2x1x1 per-channel constant.
// CHECK-LABEL: func.func @broadcast_read
// CHECK-NEXT:  [[R:%.+]] = arith.constant dense<
// CHECK-SAME:  {{\[\[\[\[}}1.000000e+01], [2.000000e+01]], {{\[\[}}3.000000e+02], [4.000000e+02]]]]> : tensor<1x2x2x1xf32>
// CHECK-NEXT:  return [[R]]
func.func @broadcast_read() -> tensor<1x2x2x1xf32> {
  %x = arith.constant dense<[[[[1.0], [2.0]], [[3.0], [4.0]]]]> : tensor<1x2x2x1xf32>
  %k = arith.constant dense<[[[[10.0]], [[100.0]]]]> : tensor<1x2x1x1xf32>
  %e = tensor.empty() : tensor<1x2x2x1xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (0, d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x, %k : tensor<1x2x2x1xf32>, tensor<1x2x1x1xf32>) outs(%e : tensor<1x2x2x1xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %m = arith.mulf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<1x2x2x1xf32>
  return %y : tensor<1x2x2x1xf32>
}

// -----

// Reshapes of constants are constants of the new shape.
// CHECK-LABEL: func.func @reshapes
// CHECK-DAG:   [[A:%.+]] = arith.constant dense<{{\[\[1\.000000e\+00\], \[2\.000000e\+00\]\]}}> : tensor<2x1xf32>
// CHECK-DAG:   [[B:%.+]] = arith.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32>
// CHECK-NOT:   tensor.expand_shape
// CHECK-NOT:   tensor.collapse_shape
// CHECK:       return [[A]], [[B]]
func.func @reshapes() -> (tensor<2x1xf32>, tensor<4xf32>) {
  %v = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %a = tensor.expand_shape %v [[0, 1]] output_shape [2, 1] : tensor<2xf32> into tensor<2x1xf32>
  %m = arith.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %b = tensor.collapse_shape %m [[0, 1]] : tensor<2x2xf32> into tensor<4xf32>
  return %a, %b : tensor<2x1xf32>, tensor<4xf32>
}

// -----

// Results larger than max-elements stay ops.
// CHECK-LABEL: func.func @limit
// CHECK-NOT:   linalg.generic
// LIMIT-LABEL: func.func @limit
// LIMIT:       linalg.generic
func.func @limit() -> tensor<8xf32> {
  %v = arith.constant dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]> : tensor<8xf32>
  %e = tensor.empty() : tensor<8xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%v : tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %n = arith.negf %in : f32
    linalg.yield %n : f32
  } -> tensor<8xf32>
  return %y : tensor<8xf32>
}

// -----

// A dense_resource blob (how frontends store weights) is read from the module's text.
// CHECK-LABEL: func.func @resource_blob
// CHECK-NEXT:  [[R:%.+]] = arith.constant dense<[2.000000e+00, 1.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:  return [[R]]
func.func @resource_blob() -> tensor<2xf32> {
  %v = arith.constant dense_resource<blob2> : tensor<2xf32>
  %e = tensor.empty() : tensor<2xf32>
  %t = linalg.transpose ins(%v : tensor<2xf32>) outs(%e : tensor<2xf32>) permutation = [0]
  %y = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%t : tensor<2xf32>) outs(%e : tensor<2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %r = math.rsqrt %in : f32
    linalg.yield %r : f32
  } -> tensor<2xf32>
  return %y : tensor<2xf32>
}
{-#
  dialect_resources: {
    builtin: {
      blob2: "0x040000000000803E0000803F"
    }
  }
#-}

// -----

// A value that cannot be read (an elided blob) is not a constant: the op stays.
// CHECK-LABEL: func.func @elided_blob
// CHECK:       linalg.transpose
func.func @elided_blob() -> tensor<3x2xf32> {
  %w = arith.constant dense_resource<__elided__> : tensor<2x3xf32>
  %e = tensor.empty() : tensor<3x2xf32>
  %t = linalg.transpose ins(%w : tensor<2x3xf32>) outs(%e : tensor<3x2xf32>) permutation = [1, 0]
  return %t : tensor<3x2xf32>
}

// -----

// An input that is not a constant: the op stays.
// CHECK-LABEL: func.func @not_constant
// CHECK:       linalg.generic
func.func @not_constant(%x: tensor<2xf32>) -> tensor<2xf32> {
  %v = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %e = tensor.empty() : tensor<2xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%x, %v : tensor<2xf32>, tensor<2xf32>) outs(%e : tensor<2xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  } -> tensor<2xf32>
  return %y : tensor<2xf32>
}

// -----

// A body op numpy is not asked to evaluate (math.tanh): the op stays.
// CHECK-LABEL: func.func @unsupported_body
// CHECK:       math.tanh
func.func @unsupported_body() -> tensor<2xf32> {
  %v = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %e = tensor.empty() : tensor<2xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%v : tensor<2xf32>) outs(%e : tensor<2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t = math.tanh %in : f32
    linalg.yield %t : f32
  } -> tensor<2xf32>
  return %y : tensor<2xf32>
}

// -----

// A reduction is not elementwise: the op stays.
// CHECK-LABEL: func.func @reduction
// CHECK:       linalg.generic
func.func @reduction() -> tensor<1xf32> {
  %v = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %z = arith.constant dense<0.0> : tensor<1xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%v : tensor<2xf32>) outs(%z : tensor<1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %out : f32
    linalg.yield %s : f32
  } -> tensor<1xf32>
  return %y : tensor<1xf32>
}

// -----

// A body reading the output (its init is not a constant input): the op stays.
// CHECK-LABEL: func.func @reads_output
// CHECK:       linalg.generic
func.func @reads_output(%init: tensor<2xf32>) -> tensor<2xf32> {
  %v = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%v : tensor<2xf32>) outs(%init : tensor<2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %out : f32
    linalg.yield %s : f32
  } -> tensor<2xf32>
  return %y : tensor<2xf32>
}

// -----

// Broadcasting a constant into a larger tensor only makes the module bigger: it stays.
// CHECK-LABEL: func.func @growing_broadcast
// CHECK:       linalg.generic
func.func @growing_broadcast() -> tensor<4x2xf32> {
  %v = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %e = tensor.empty() : tensor<4x2xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%v : tensor<2xf32>) outs(%e : tensor<4x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %n = arith.negf %in : f32
    linalg.yield %n : f32
  } -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// -----

// A rank-0 result stays rank 0 (ONNX Gelu's sqrt(2)): folding it to tensor<1xf32> left a
// generic whose operand rank no longer matched its indexing map.
// CHECK-LABEL: func.func @rank_zero
// CHECK:       [[C:%.+]] = arith.constant dense<1.41421354> : tensor<f32>
// CHECK:       linalg.generic {{.*}} ins(%arg0, [[C]] : tensor<3xf32>, tensor<f32>)
func.func @rank_zero(%x: tensor<3xf32>) -> tensor<3xf32> {
  %two = arith.constant dense<2.0> : tensor<f32>
  %e0 = tensor.empty() : tensor<f32>
  %s = linalg.generic {indexing_maps = [affine_map<() -> ()>, affine_map<() -> ()>], iterator_types = []} ins(%two : tensor<f32>) outs(%e0 : tensor<f32>) {
  ^bb0(%in: f32, %out: f32):
    %r = math.sqrt %in : f32
    linalg.yield %r : f32
  } -> tensor<f32>
  %e = tensor.empty() : tensor<3xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> ()>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%x, %s : tensor<3xf32>, tensor<f32>) outs(%e : tensor<3xf32>) {
  ^bb0(%in: f32, %d: f32, %out: f32):
    %q = arith.divf %in, %d : f32
    linalg.yield %q : f32
  } -> tensor<3xf32>
  return %y : tensor<3xf32>
}

// -----

// A quantized model's per-channel dequantization of its int8 weights (as IREE imports
// ONNX's DequantizeLinear: the zero point subtracted in i16, then scaled): folded into
// f32 weights. Row 0: (-2 - 1) * 0.5, (3 - 1) * 0.5; row 1: (-128 - 0) * 0.25, (127 - 0) * 0.25.
// CHECK-LABEL: func.func @per_channel_dequantize
// CHECK-NOT:   arith.extsi
// CHECK:       arith.constant dense<{{\[\[}}-1.500000e+00, 1.000000e+00], [-3.200000e+01, 3.175000e+01]]> : tensor<2x2xf32>
// CHECK-NOT:   linalg.generic
func.func @per_channel_dequantize() -> tensor<2x2xf32> {
  %w = arith.constant dense<[[-2, 3], [-128, 127]]> : tensor<2x2xi8>
  %s = arith.constant dense<[0.5, 0.25]> : tensor<2xf32>
  %z = arith.constant dense<[1, 0]> : tensor<2xi8>
  %e = tensor.empty() : tensor<2x2xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%w, %s, %z : tensor<2x2xi8>, tensor<2xf32>, tensor<2xi8>) outs(%e : tensor<2x2xf32>) {
  ^bb0(%in: i8, %sc: f32, %zp: i8, %out: f32):
    %a = arith.extsi %zp : i8 to i16
    %b = arith.extsi %in : i8 to i16
    %c = arith.subi %b, %a : i16
    %f = arith.sitofp %c : i16 to f32
    %m = arith.mulf %f, %sc : f32
    linalg.yield %m : f32
  } -> tensor<2x2xf32>
  return %r : tensor<2x2xf32>
}

// -----

// uint8 read as unsigned (extui / uitofp): 255 is 255, not -1.
// CHECK-LABEL: func.func @unsigned_dequantize
// CHECK:       arith.constant dense<[1.275000e+02, 0.000000e+00]> : tensor<2xf32>
func.func @unsigned_dequantize() -> tensor<2xf32> {
  %w = arith.constant dense<[-1, 0]> : tensor<2xi8>
  %s = arith.constant 0.5 : f32
  %e = tensor.empty() : tensor<2xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%w : tensor<2xi8>) outs(%e : tensor<2xf32>) {
  ^bb0(%in: i8, %out: f32):
    %f = arith.uitofp %in : i8 to f32
    %m = arith.mulf %f, %s : f32
    linalg.yield %m : f32
  } -> tensor<2xf32>
  return %r : tensor<2xf32>
}

// -----

// Integer arithmetic wraps at its width, as the op does: 100 + 100 in i8 is -56.
// CHECK-LABEL: func.func @wrapping_add
// CHECK:       arith.constant dense<[-5.600000e+01, 2.000000e+00]> : tensor<2xf32>
func.func @wrapping_add() -> tensor<2xf32> {
  %w = arith.constant dense<[100, 1]> : tensor<2xi8>
  %e = tensor.empty() : tensor<2xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%w : tensor<2xi8>) outs(%e : tensor<2xf32>) {
  ^bb0(%in: i8, %out: f32):
    %s = arith.addi %in, %in : i8
    %f = arith.sitofp %s : i8 to f32
    linalg.yield %f : f32
  } -> tensor<2xf32>
  return %r : tensor<2xf32>
}
