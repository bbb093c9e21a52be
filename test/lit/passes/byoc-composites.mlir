// RUN: byoc-opt %s --split-input-file --backend testing --byoc-composites | FileCheck %s

// byoc-composites tags every member of an accepted match with the same
// byoc.composite = {backend, name, id, benefit}. Overlapping matches: higher benefit
// first. A match is refused when an intermediate result is used outside it, or when
// its check refuses it.

// matmul -> bias-add (broadcast generic) -> relu: one composite of three ops. The fill
// feeding the matmul's init is not a data input, so it stays out.

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @matmul_bias_relu
// CHECK:       linalg.fill ins(
// CHECK-NEXT:  [[M:%.+]] = linalg.matmul {byoc.composite = {backend = "testing", benefit = 3 : i64, id = [[ID:[0-9]+]] : i64, name = "matmul_bias_relu"}}
// CHECK-NEXT:  [[B:%.+]] = linalg.generic {{.*}} ins([[M]], %arg2 : {{.*}} attrs = {byoc.composite = {backend = "testing", benefit = 3 : i64, id = [[ID]] : i64, name = "matmul_bias_relu"}}
// CHECK:       [[R:%.+]] = linalg.generic {{.*}} ins([[B]] : {{.*}} attrs = {byoc.composite = {backend = "testing", benefit = 3 : i64, id = [[ID]] : i64, name = "matmul_bias_relu"}}
// CHECK:       return [[R]]
func.func @matmul_bias_relu(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %bias: tensor<16xf32>) -> tensor<4x16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%f : tensor<4x16xf32>) -> tensor<4x16xf32>
  %ba = linalg.generic {indexing_maps = [#map, #bcast, #map], iterator_types = ["parallel", "parallel"]} ins(%m, %bias : tensor<4x16xf32>, tensor<16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%ba : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %z = arith.maximumf %x, %cst : f32
    linalg.yield %z : f32
  } -> tensor<4x16xf32>
  return %r : tensor<4x16xf32>
}

// -----

// conv_2d_nchw_fchw -> bias-add over the channel dim -> relu.

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#chan = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-LABEL: func.func @conv_nchw_bias_relu
// CHECK:       [[C:%.+]] = linalg.conv_2d_nchw_fchw {byoc.composite = {backend = "testing", benefit = 3 : i64, id = [[ID:[0-9]+]] : i64, name = "conv2d_bias_relu_nchw_fchw"}
// CHECK:       [[B:%.+]] = linalg.generic {{.*}} ins([[C]], %arg2 : {{.*}} attrs = {byoc.composite = {backend = "testing", benefit = 3 : i64, id = [[ID]] : i64, name = "conv2d_bias_relu_nchw_fchw"}}
// CHECK:       linalg.generic {{.*}} ins([[B]] : {{.*}} attrs = {byoc.composite = {backend = "testing", benefit = 3 : i64, id = [[ID]] : i64, name = "conv2d_bias_relu_nchw_fchw"}}
func.func @conv_nchw_bias_relu(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %bias: tensor<4xf32>) -> tensor<1x4x6x6xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x4x6x6xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%x, %w : tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>) outs(%f : tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
  %ba = linalg.generic {indexing_maps = [#map, #chan, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %bias : tensor<1x4x6x6xf32>, tensor<4xf32>) outs(%e : tensor<1x4x6x6xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<1x4x6x6xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%ba : tensor<1x4x6x6xf32>) outs(%e : tensor<1x4x6x6xf32>) {
  ^bb0(%p: f32, %o: f32):
    %z = arith.maximumf %p, %cst : f32
    linalg.yield %z : f32
  } -> tensor<1x4x6x6xf32>
  return %r : tensor<1x4x6x6xf32>
}

// -----

// conv_2d_nhwc_hwcf -> bias-add with no relu: the two-op pattern (benefit 2).

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#chan = affine_map<(d0, d1, d2, d3) -> (d3)>
// CHECK-LABEL: func.func @conv_nhwc_bias
// CHECK:       linalg.conv_2d_nhwc_hwcf {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID:[0-9]+]] : i64, name = "conv2d_bias_nhwc_hwcf"}
// CHECK:       linalg.generic {{.*}} attrs = {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID]] : i64, name = "conv2d_bias_nhwc_hwcf"}}
func.func @conv_nhwc_bias(%x: tensor<1x8x8x3xf32>, %w: tensor<3x3x3x4xf32>, %init: tensor<1x6x6x4xf32>, %bias: tensor<4xf32>) -> tensor<1x6x6x4xf32> {
  %e = tensor.empty() : tensor<1x6x6x4xf32>
  %c = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%x, %w : tensor<1x8x8x3xf32>, tensor<3x3x3x4xf32>) outs(%init : tensor<1x6x6x4xf32>) -> tensor<1x6x6x4xf32>
  %ba = linalg.generic {indexing_maps = [#map, #chan, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %bias : tensor<1x6x6x4xf32>, tensor<4xf32>) outs(%e : tensor<1x6x6x4xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<1x6x6x4xf32>
  return %ba : tensor<1x6x6x4xf32>
}

// -----

// Guard: a leaking intermediate. The bias-add result is also returned, so the 3-op
// match is refused; the next-best match, matmul_bias (benefit 2), has no leaking
// intermediate (the matmul only feeds the bias-add) and is taken. The relu stays out.

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @leak_returned
// CHECK:       [[M:%.+]] = linalg.matmul {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID:[0-9]+]] : i64, name = "matmul_bias"}}
// CHECK:       [[B:%.+]] = linalg.generic {{.*}} ins([[M]], %arg2 : {{.*}} attrs = {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID]] : i64, name = "matmul_bias"}}
// CHECK:       [[R:%.+]] = linalg.generic
// CHECK-NOT:   byoc.composite
// CHECK-SAME:  ins([[B]] :
// CHECK-NOT:   byoc.composite
// CHECK:       return [[R]], [[B]]
func.func @leak_returned(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %bias: tensor<16xf32>, %init: tensor<4x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%init : tensor<4x16xf32>) -> tensor<4x16xf32>
  %ba = linalg.generic {indexing_maps = [#map, #bcast, #map], iterator_types = ["parallel", "parallel"]} ins(%m, %bias : tensor<4x16xf32>, tensor<16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%ba : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %z = arith.maximumf %x, %cst : f32
    linalg.yield %z : f32
  } -> tensor<4x16xf32>
  return %r, %ba : tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// Guard: the same leak through another op (a tanh reading the bias-add result).

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @leak_to_op
// CHECK:       linalg.matmul {byoc.composite = {{{.*}}name = "matmul_bias"}}
// CHECK:       [[B:%.+]] = linalg.generic {{.*}}name = "matmul_bias"}}
// CHECK:       linalg.generic
// CHECK-NOT:   byoc.composite
// CHECK-SAME:  ins([[B]] :
// CHECK:       linalg.generic
// CHECK-NOT:   byoc.composite
// CHECK-SAME:  ins([[B]] :
// CHECK-NOT:   byoc.composite
// CHECK:       return
func.func @leak_to_op(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %bias: tensor<16xf32>, %init: tensor<4x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%init : tensor<4x16xf32>) -> tensor<4x16xf32>
  %ba = linalg.generic {indexing_maps = [#map, #bcast, #map], iterator_types = ["parallel", "parallel"]} ins(%m, %bias : tensor<4x16xf32>, tensor<16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%ba : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %z = arith.maximumf %x, %cst : f32
    linalg.yield %z : f32
  } -> tensor<4x16xf32>
  %t = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%ba : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = math.tanh %x : f32
    linalg.yield %y : f32
  } -> tensor<4x16xf32>
  return %r, %t : tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// Guard: when the matmul result itself leaks, neither matmul pattern can match (both
// have the matmul as an intermediate): no composite at all.

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @leak_matmul
// CHECK-NOT:   byoc.composite
// CHECK:       return
func.func @leak_matmul(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %bias: tensor<16xf32>, %init: tensor<4x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%init : tensor<4x16xf32>) -> tensor<4x16xf32>
  %ba = linalg.generic {indexing_maps = [#map, #bcast, #map], iterator_types = ["parallel", "parallel"]} ins(%m, %bias : tensor<4x16xf32>, tensor<16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%ba : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %z = arith.maximumf %x, %cst : f32
    linalg.yield %z : f32
  } -> tensor<4x16xf32>
  return %r, %m : tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// Guard: the composite's check refuses f64 (the pattern matches, the check does not
// accept it): no composite.

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @check_refuses_f64
// CHECK-NOT:   byoc.composite
// CHECK:       return
func.func @check_refuses_f64(%a: tensor<4x8xf64>, %b: tensor<8x16xf64>, %bias: tensor<16xf64>, %init: tensor<4x16xf64>) -> tensor<4x16xf64> {
  %cst = arith.constant 0.0 : f64
  %e = tensor.empty() : tensor<4x16xf64>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf64>, tensor<8x16xf64>) outs(%init : tensor<4x16xf64>) -> tensor<4x16xf64>
  %ba = linalg.generic {indexing_maps = [#map, #bcast, #map], iterator_types = ["parallel", "parallel"]} ins(%m, %bias : tensor<4x16xf64>, tensor<16xf64>) outs(%e : tensor<4x16xf64>) {
  ^bb0(%x: f64, %y: f64, %o: f64):
    %s = arith.addf %x, %y : f64
    linalg.yield %s : f64
  } -> tensor<4x16xf64>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%ba : tensor<4x16xf64>) outs(%e : tensor<4x16xf64>) {
  ^bb0(%x: f64, %o: f64):
    %z = arith.maximumf %x, %cst : f64
    linalg.yield %z : f64
  } -> tensor<4x16xf64>
  return %r : tensor<4x16xf64>
}

// -----

// Relu written the way torch lowers it (cmpf ugt + select), and the bias-add with its
// operands commuted (bias first): still matmul_bias_relu.

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @torch_style
// CHECK:       [[M:%.+]] = linalg.matmul {byoc.composite = {backend = "testing", benefit = 3 : i64, id = [[ID:[0-9]+]] : i64, name = "matmul_bias_relu"}}
// CHECK:       [[B:%.+]] = linalg.generic {{.*}} ins(%arg2, [[M]] : {{.*}}id = [[ID]] : i64, name = "matmul_bias_relu"}}
// CHECK:       linalg.generic {{.*}} ins([[B]] : {{.*}}id = [[ID]] : i64, name = "matmul_bias_relu"}}
// CHECK:       arith.cmpf ugt
// CHECK-NEXT:  arith.select
func.func @torch_style(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %bias: tensor<16xf32>, %init: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%init : tensor<4x16xf32>) -> tensor<4x16xf32>
  %ba = linalg.generic {indexing_maps = [#bcast, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%bias, %m : tensor<16xf32>, tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%y: f32, %x: f32, %o: f32):
    %s = arith.addf %y, %x : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%ba : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %gt = arith.cmpf ugt, %x, %cst : f32
    %z = arith.select %gt, %x, %cst : f32
    linalg.yield %z : f32
  } -> tensor<4x16xf32>
  return %r : tensor<4x16xf32>
}

// -----

// Two independent matches get two ids; a relu after a matmul without a bias-add
// matches no pattern.

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @two_matches
// CHECK:       [[M0:%.+]] = linalg.matmul {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID0:[0-9]+]] : i64, name = "matmul_bias"}}
// CHECK:       [[B0:%.+]] = linalg.generic {{.*}} ins([[M0]], %arg2 : {{.*}}id = [[ID0]] : i64, name = "matmul_bias"}}
// CHECK:       [[M1:%.+]] = linalg.matmul {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID1:[0-9]+]] : i64, name = "matmul_bias"}} ins([[B0]],
// CHECK-NOT:   id = [[ID0]] :
// CHECK:       linalg.generic {{.*}} ins([[M1]], %arg2 : {{.*}}id = [[ID1]] : i64, name = "matmul_bias"}}
// CHECK:       [[M2:%.+]] = linalg.matmul ins(
// CHECK-NEXT:  linalg.generic {{.*}} ins([[M2]] : {{.*}} outs({{.*}}) {
func.func @two_matches(%a: tensor<16x16xf32>, %b: tensor<16x16xf32>, %bias: tensor<16xf32>, %init: tensor<16x16xf32>) -> tensor<16x16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16x16xf32>
  %m0 = linalg.matmul ins(%a, %b : tensor<16x16xf32>, tensor<16x16xf32>) outs(%init : tensor<16x16xf32>) -> tensor<16x16xf32>
  %b0 = linalg.generic {indexing_maps = [#map, #bcast, #map], iterator_types = ["parallel", "parallel"]} ins(%m0, %bias : tensor<16x16xf32>, tensor<16xf32>) outs(%e : tensor<16x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<16x16xf32>
  %m1 = linalg.matmul ins(%b0, %b : tensor<16x16xf32>, tensor<16x16xf32>) outs(%init : tensor<16x16xf32>) -> tensor<16x16xf32>
  %b1 = linalg.generic {indexing_maps = [#map, #bcast, #map], iterator_types = ["parallel", "parallel"]} ins(%m1, %bias : tensor<16x16xf32>, tensor<16xf32>) outs(%e : tensor<16x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<16x16xf32>
  %m2 = linalg.matmul ins(%b1, %b : tensor<16x16xf32>, tensor<16x16xf32>) outs(%init : tensor<16x16xf32>) -> tensor<16x16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%m2 : tensor<16x16xf32>) outs(%e : tensor<16x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %z = arith.maximumf %x, %cst : f32
    linalg.yield %z : f32
  } -> tensor<16x16xf32>
  return %r : tensor<16x16xf32>
}

// -----

// Tags from an earlier run are kept and never re-claimed; new ids continue after them.

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @keeps_earlier_tags
// CHECK:       [[M0:%.+]] = linalg.matmul {byoc.composite = {backend = "testing", benefit = 2 : i64, id = 4 : i64, name = "matmul_bias"}}
// CHECK:       linalg.generic {{.*}} ins([[M0]], %arg2 : {{.*}} attrs = {byoc.composite = {backend = "testing", benefit = 2 : i64, id = 4 : i64, name = "matmul_bias"}}
// CHECK:       linalg.matmul {byoc.composite = {backend = "testing", benefit = 2 : i64, id = 5 : i64, name = "matmul_bias"}}
// CHECK:       linalg.generic {{.*}}id = 5 : i64, name = "matmul_bias"}}
func.func @keeps_earlier_tags(%a: tensor<16x16xf32>, %b: tensor<16x16xf32>, %bias: tensor<16xf32>, %init: tensor<16x16xf32>) -> tensor<16x16xf32> {
  %e = tensor.empty() : tensor<16x16xf32>
  %m0 = linalg.matmul {byoc.composite = {backend = "testing", benefit = 2 : i64, id = 4 : i64, name = "matmul_bias"}} ins(%a, %b : tensor<16x16xf32>, tensor<16x16xf32>) outs(%init : tensor<16x16xf32>) -> tensor<16x16xf32>
  %b0 = linalg.generic {indexing_maps = [#map, #bcast, #map], iterator_types = ["parallel", "parallel"]} ins(%m0, %bias : tensor<16x16xf32>, tensor<16xf32>) outs(%e : tensor<16x16xf32>) attrs = {byoc.composite = {backend = "testing", benefit = 2 : i64, id = 4 : i64, name = "matmul_bias"}} {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<16x16xf32>
  %m1 = linalg.matmul ins(%b0, %b : tensor<16x16xf32>, tensor<16x16xf32>) outs(%init : tensor<16x16xf32>) -> tensor<16x16xf32>
  %b1 = linalg.generic {indexing_maps = [#map, #bcast, #map], iterator_types = ["parallel", "parallel"]} ins(%m1, %bias : tensor<16x16xf32>, tensor<16xf32>) outs(%e : tensor<16x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<16x16xf32>
  return %b1 : tensor<16x16xf32>
}

// -----

// TOSA: conv2d (TOSA 1.0 form, zero points as operands) -> clamp is one composite;
// the zero-point constants are free ops and stay untagged.

// CHECK-LABEL: func.func @tosa_conv_clamp
// CHECK:       [[ZP:%.+]] = tosa.const values(dense<0.000000e+00> : tensor<1xf32>) : () -> tensor<1xf32>
// CHECK-NEXT:  [[C:%.+]] = tosa.conv2d %arg0, %arg1, %arg2, [[ZP]], [[ZP]] {{.*}} {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID:[0-9]+]] : i64, name = "tosa_conv2d_clamp"}}
// CHECK-NEXT:  tosa.clamp [[C]] {{.*}} {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID]] : i64, name = "tosa_conv2d_clamp"}}
func.func @tosa_conv_clamp(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>) -> tensor<1x6x6x4xf32> {
  %zp = "tosa.const"() <{values = dense<0.0> : tensor<1xf32>}> : () -> tensor<1xf32>
  %c = tosa.conv2d %x, %w, %b, %zp, %zp pad([0, 0, 0, 0]) stride([1, 1]) dilation([1, 1]) acc_type(f32) : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x6x6x4xf32>
  %r = tosa.clamp %c min_val(0.0 : f32) max_val(3.4e38 : f32) : (tensor<1x6x6x4xf32>) -> tensor<1x6x6x4xf32>
  return %r : tensor<1x6x6x4xf32>
}

// -----

// TOSA matmul -> add (tosa.add is commutative: the matmul may be either operand).

// CHECK-LABEL: func.func @tosa_matmul_add
// CHECK:       [[M:%.+]] = tosa.matmul {{.*}} {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID:[0-9]+]] : i64, name = "tosa_matmul_add"}}
// CHECK-NEXT:  tosa.add %arg2, [[M]] {byoc.composite = {backend = "testing", benefit = 2 : i64, id = [[ID]] : i64, name = "tosa_matmul_add"}}
func.func @tosa_matmul_add(%a: tensor<1x4x8xf32>, %b: tensor<1x8x4xf32>, %bias: tensor<1x1x4xf32>) -> tensor<1x4x4xf32> {
  %zp = "tosa.const"() <{values = dense<0.0> : tensor<1xf32>}> : () -> tensor<1xf32>
  %m = tosa.matmul %a, %b, %zp, %zp : (tensor<1x4x8xf32>, tensor<1x8x4xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x4x4xf32>
  %r = tosa.add %bias, %m : (tensor<1x1x4xf32>, tensor<1x4x4xf32>) -> tensor<1x4x4xf32>
  return %r : tensor<1x4x4xf32>
}
