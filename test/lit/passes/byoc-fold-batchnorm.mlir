// RUN: byoc-opt %s --split-input-file --byoc-fold-batchnorm | FileCheck %s

// byoc-fold-batchnorm: conv -> per-channel (x - c, x * c, x + c, x / c, c - x) chain ->
// conv with weights scaled per output channel, then one bias add read through (d1).

// torch's conv(bias) -> BatchNorm -> relu after byoc-split-bias-inits and
// byoc-fold-constants: bias add, sub mean, mul 1/sqrt(var+eps), mul gamma, add beta.
// Channel 0: scale 0.5 * 2 = 1, shift (1 - 3) * 1 + 0.5 = -1.5;
// channel 1: scale 4 * -1 = -4, shift (2 + 1) * -4 + 1 = -11.
// CHECK-DAG:   #[[ID:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG:   #[[CH:.+]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-LABEL: func.func @torch_conv_bn_relu
// CHECK:       [[W:%.+]] = arith.constant dense<
// CHECK-SAME:  {{\[\[\[\[}}1.000000e+00]], {{\[\[}}2.000000e+00]]], {{\[\[\[}}-1.200000e+01]], {{\[\[}}-1.600000e+01]]]]> : tensor<2x2x1x1xf32>
// CHECK-NEXT:  [[C:%.+]] = linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, [[W]] :
// CHECK-NEXT:  [[B:%.+]] = arith.constant dense<[-1.500000e+00, -1.100000e+01]> : tensor<2xf32>
// CHECK-NEXT:  [[Y:%.+]] = linalg.generic {indexing_maps = [#[[ID]], #[[CH]], #[[ID]]]
// CHECK-SAME:  ins([[C]], [[B]] : tensor<1x2x3x3xf32>, tensor<2xf32>)
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    arith.addf
// CHECK-NEXT:    linalg.yield
// CHECK-NEXT:  } -> tensor<1x2x3x3xf32>
// CHECK-NEXT:  linalg.generic {{.*}} ins([[Y]] : tensor<1x2x3x3xf32>)
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:    arith.maximumf
// CHECK-NOT:   arith.subf
// CHECK-NOT:   arith.mulf
func.func @torch_conv_bn_relu(%x: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %w = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>
  %bias = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %mean = arith.constant dense<[3.0, -1.0]> : tensor<2xf32>
  %k = arith.constant dense<[0.5, 4.0]> : tensor<2xf32>
  %gamma = arith.constant dense<[2.0, -1.0]> : tensor<2xf32>
  %beta = arith.constant dense<[0.5, 1.0]> : tensor<2xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x3x3xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) outs(%f : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %b = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %bias : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.addf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%b, %mean : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.subf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  %m = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%s, %k : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.mulf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  %g = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%m, %gamma : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.mulf %v, %i : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  %a = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%g, %beta : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.addf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%a : tensor<1x2x3x3xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %o: f32):
    %r = arith.maximumf %i, %zero : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  return %y : tensor<1x2x3x3xf32>
}

// -----

// IREE's ONNX BatchNorm: 1xCx1x1 constants read through (d0, d1, 0, 0); the bias becomes
// a vector read through (d1). Scale 0.5 * 3 = 1.5 and 2 * -0.5 = -1; shift
// -0.5 * 0.5 * 3 + 0.25 = -0.5 and 1 * 2 * -0.5 + 4 = 3.
// CHECK-DAG:   #[[CH:.+]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-LABEL: func.func @onnx_conv_bn
// CHECK:       [[W:%.+]] = arith.constant dense<
// CHECK-SAME:  {{\[\[\[\[}}1.500000e+00]], {{\[\[}}3.000000e+00]]], {{\[\[\[}}1.000000e+00]], {{\[\[}}-2.000000e+00]]]]> : tensor<2x2x1x1xf32>
// CHECK-NEXT:  [[C:%.+]] = linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, [[W]] :
// CHECK-NEXT:  [[B:%.+]] = arith.constant dense<[-5.000000e-01, 3.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:  [[Y:%.+]] = linalg.generic {indexing_maps = [#{{.+}}, #[[CH]], #{{.+}}]
// CHECK-SAME:  ins([[C]], [[B]] :
// CHECK:       return [[Y]]
func.func @onnx_conv_bn(%x: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %w = arith.constant dense<[[[[1.0]], [[2.0]]], [[[-1.0]], [[2.0]]]]> : tensor<2x2x1x1xf32>
  %mean = arith.constant dense<[[[[0.5]], [[-1.0]]]]> : tensor<1x2x1x1xf32>
  %k = arith.constant dense<[[[[0.5]], [[2.0]]]]> : tensor<1x2x1x1xf32>
  %g = arith.constant dense<[[[[3.0]], [[-0.5]]]]> : tensor<1x2x1x1xf32>
  %beta = arith.constant dense<[[[[0.25]], [[4.0]]]]> : tensor<1x2x1x1xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x3x3xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) outs(%f : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %mean : tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.subf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  %m = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%s, %k : tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.mulf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  %m2 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%m, %g : tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.mulf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, 0)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%m2, %beta : tensor<1x2x3x3xf32>, tensor<1x2x1x1xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.addf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  return %y : tensor<1x2x3x3xf32>
}

// -----

// NHWC (conv_2d_nhwc_hwcf): the output channel is the weight's last dim, the vectors are
// read through (d3); c - x negates the scale, / c and a scalar constant work too.
// Scale -1 / 2 * 3 = -1.5 (both channels); shift (1 - 0) / 2 * 3 = 1.5 and (2 - 0) / 2 * 3 = 3.
// CHECK-DAG:   #[[CH:.+]] = affine_map<(d0, d1, d2, d3) -> (d3)>
// CHECK-LABEL: func.func @nhwc
// CHECK:       [[W:%.+]] = arith.constant dense<
// CHECK-SAME:  {{\[\[\[\[}}-1.500000e+00, -3.000000e+00], [-4.500000e+00, -6.000000e+00]]]]> : tensor<1x1x2x2xf32>
// CHECK-NEXT:  [[C:%.+]] = linalg.conv_2d_nhwc_hwcf {{.*}} ins(%arg0, [[W]] :
// CHECK-NEXT:  [[B:%.+]] = arith.constant dense<[1.500000e+00, 3.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:  [[Y:%.+]] = linalg.generic {indexing_maps = [#{{.+}}, #[[CH]], #{{.+}}]
// CHECK-SAME:  ins([[C]], [[B]] :
// CHECK:       return [[Y]]
func.func @nhwc(%x: tensor<1x3x3x2xf32>) -> tensor<1x3x3x2xf32> {
  %w = arith.constant dense<[[[[1.0, 2.0], [3.0, 4.0]]]]> : tensor<1x1x2x2xf32>
  %v = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %two = arith.constant 2.0 : f32
  %three = arith.constant 3.0 : f32
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x3x3x2xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x3x3x2xf32>) -> tensor<1x3x3x2xf32>
  %c = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x3x3x2xf32>, tensor<1x1x2x2xf32>) outs(%f : tensor<1x3x3x2xf32>) -> tensor<1x3x3x2xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %v : tensor<1x3x3x2xf32>, tensor<2xf32>) outs(%e : tensor<1x3x3x2xf32>) {
  ^bb0(%i: f32, %c2: f32, %o: f32):
    %r = arith.subf %c2, %i : f32
    linalg.yield %r : f32
  } -> tensor<1x3x3x2xf32>
  %d = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%s : tensor<1x3x3x2xf32>) outs(%e : tensor<1x3x3x2xf32>) {
  ^bb0(%i: f32, %o: f32):
    %r = arith.divf %i, %two : f32
    linalg.yield %r : f32
  } -> tensor<1x3x3x2xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%d : tensor<1x3x3x2xf32>) outs(%e : tensor<1x3x3x2xf32>) {
  ^bb0(%i: f32, %o: f32):
    %r = arith.mulf %i, %three : f32
    linalg.yield %r : f32
  } -> tensor<1x3x3x2xf32>
  return %y : tensor<1x3x3x2xf32>
}

// -----

// Depthwise (depthwise_conv_2d_nchw_chw): the weight's channel axis is its first.
// CHECK-LABEL: func.func @depthwise
// CHECK:       [[W:%.+]] = arith.constant dense<
// CHECK-SAME:  {{\[\[\[}}2.000000e+00]], {{\[\[}}-6.000000e+00]]]> : tensor<2x1x1xf32>
// CHECK-NEXT:  linalg.depthwise_conv_2d_nchw_chw {{.*}} ins(%arg0, [[W]] :
// CHECK-NOT:   arith.mulf
func.func @depthwise(%x: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %w = arith.constant dense<[[[1.0]], [[3.0]]]> : tensor<2x1x1xf32>
  %k = arith.constant dense<[2.0, -2.0]> : tensor<2xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x3x3xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x3x3xf32>, tensor<2x1x1xf32>) outs(%f : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %k : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.mulf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  return %y : tensor<1x2x3x3xf32>
}

// -----

// A chain value with a second user: that op is needed unscaled, nothing is folded.
// CHECK-LABEL: func.func @shared_intermediate
// CHECK:       linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, %cst :
// CHECK:       arith.mulf
// CHECK:       arith.addf
func.func @shared_intermediate(%x: tensor<1x2x3x3xf32>) -> (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>) {
  %w = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>
  %k = arith.constant dense<[2.0, -2.0]> : tensor<2xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x3x3xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) outs(%f : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %m = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %k : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.mulf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  %a = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %m : tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %r = arith.addf %i, %j : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  return %m, %a : tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>
}

// -----

// A conv accumulating onto a non-zero init: scaling the weight would not scale the init.
// CHECK-LABEL: func.func @nonzero_init
// CHECK:       linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, %cst :
// CHECK:       arith.mulf
func.func @nonzero_init(%x: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %w = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>
  %k = arith.constant dense<[2.0, -2.0]> : tensor<2xf32>
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<1x2x3x3xf32>
  %f = linalg.fill ins(%one : f32) outs(%e : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) outs(%f : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %k : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.mulf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  return %y : tensor<1x2x3x3xf32>
}

// -----

// A weight that is not a constant (a function argument) cannot be scaled at compile time.
// CHECK-LABEL: func.func @weight_not_constant
// CHECK:       linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, %arg1 :
// CHECK:       arith.mulf
func.func @weight_not_constant(%x: tensor<1x2x3x3xf32>, %w: tensor<2x2x1x1xf32>) -> tensor<1x2x3x3xf32> {
  %k = arith.constant dense<[2.0, -2.0]> : tensor<2xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x3x3xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) outs(%f : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %k : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.mulf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  return %y : tensor<1x2x3x3xf32>
}

// -----

// A constant that varies along more than the channel (a full tensor) is not per-channel.
// CHECK-LABEL: func.func @not_per_channel
// CHECK:       linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, %cst :
// CHECK:       arith.mulf
func.func @not_per_channel(%x: tensor<1x2x1x2xf32>) -> tensor<1x2x1x2xf32> {
  %w = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>
  %k = arith.constant dense<[[[[1.0, 2.0]], [[3.0, 4.0]]]]> : tensor<1x2x1x2xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x1x2xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x1x2xf32>) -> tensor<1x2x1x2xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x1x2xf32>, tensor<2x2x1x1xf32>) outs(%f : tensor<1x2x1x2xf32>) -> tensor<1x2x1x2xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %k : tensor<1x2x1x2xf32>, tensor<1x2x1x2xf32>) outs(%e : tensor<1x2x1x2xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.mulf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x1x2xf32>
  return %y : tensor<1x2x1x2xf32>
}

// -----

// c / x is not affine in x: the chain is empty, nothing changes.
// CHECK-LABEL: func.func @divide_by_x
// CHECK:       linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, %cst :
// CHECK:       arith.divf
func.func @divide_by_x(%x: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %w = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>
  %one = arith.constant 1.0 : f32
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x3x3xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) outs(%f : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c : tensor<1x2x3x3xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %o: f32):
    %r = arith.divf %one, %i : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  return %y : tensor<1x2x3x3xf32>
}

// -----

// A conv followed by its bias add alone is already canonical: left as it is.
// CHECK-LABEL: func.func @bias_only
// CHECK:       linalg.conv_2d_nchw_fchw {{.*}} ins(%arg0, %cst :
// CHECK-NEXT:  linalg.generic {{.*}} ins(%{{.+}}, %cst_0 :
func.func @bias_only(%x: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %w = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>
  %b = arith.constant dense<[2.0, -2.0]> : tensor<2xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x3x3xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x2x3x3xf32>, tensor<2x2x1x1xf32>) outs(%f : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %b : tensor<1x2x3x3xf32>, tensor<2xf32>) outs(%e : tensor<1x2x3x3xf32>) {
  ^bb0(%i: f32, %v: f32, %o: f32):
    %r = arith.addf %i, %v : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x3xf32>
  return %y : tensor<1x2x3x3xf32>
}
