// RUN: byoc-opt %s --split-input-file --byoc-trim-conv-inputs | FileCheck %s

// byoc-trim-conv-inputs gives a strided window op whose last window stops short of the
// input's end a slice of exactly what it reads (IREE 3.13 cannot compile the untrimmed
// form: "inferred input/output operand #1 has shape's dimension #2 to be 3, but found 2").

// Kernel 2, stride 2: rows 0-3 of 4 are read, columns 0-1 of 3.
// CHECK-LABEL: func.func @nhwc
// CHECK:       [[S:%.+]] = tensor.extract_slice %arg0[0, 0, 0, 0] [1, 4, 2, 3] [1, 1, 1, 1] : tensor<1x4x3x3xf32> to tensor<1x4x2x3xf32>
// CHECK-NEXT:  linalg.conv_2d_nhwc_hwcf {{.*}} ins([[S]], %arg1 : tensor<1x4x2x3xf32>, tensor<2x2x3x3xf32>)
func.func @nhwc(%x: tensor<1x4x3x3xf32>, %w: tensor<2x2x3x3xf32>) -> tensor<1x2x1x3xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x1x3xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x2x1x3xf32>) -> tensor<1x2x1x3xf32>
  %c = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%x, %w : tensor<1x4x3x3xf32>, tensor<2x2x3x3xf32>) outs(%f : tensor<1x2x1x3xf32>) -> tensor<1x2x1x3xf32>
  return %c : tensor<1x2x1x3xf32>
}

// -----

// NCHW with dilation 2: kernel 2 spans 3 rows; stride 2, 2 outputs read rows 0-4 of 6.
// CHECK-LABEL: func.func @nchw_dilated
// CHECK:       tensor.extract_slice %arg0[0, 0, 0, 0] [1, 2, 5, 5] [1, 1, 1, 1] : tensor<1x2x6x6xf32> to tensor<1x2x5x5xf32>
func.func @nchw_dilated(%x: tensor<1x2x6x6xf32>, %w: tensor<4x2x2x2xf32>) -> tensor<1x4x2x2xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x4x2x2xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<2> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%x, %w : tensor<1x2x6x6xf32>, tensor<4x2x2x2xf32>) outs(%f : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return %c : tensor<1x4x2x2xf32>
}

// -----

// Every input row is read: nothing to do.
// CHECK-LABEL: func.func @exact
// CHECK-NOT:   tensor.extract_slice
func.func @exact(%x: tensor<1x5x5x3xf32>, %w: tensor<3x3x3x4xf32>) -> tensor<1x2x2x4xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x2x4xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x2x2x4xf32>) -> tensor<1x2x2x4xf32>
  %c = linalg.conv_2d_nhwc_hwcf {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%x, %w : tensor<1x5x5x3xf32>, tensor<3x3x3x4xf32>) outs(%f : tensor<1x2x2x4xf32>) -> tensor<1x2x2x4xf32>
  return %c : tensor<1x2x2x4xf32>
}
