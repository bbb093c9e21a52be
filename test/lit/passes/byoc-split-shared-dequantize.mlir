// RUN: byoc-opt %s --split-input-file --byoc-split-shared-dequantize | FileCheck %s

// A dequantized tensor read by two ops (SqueezeNet's expand convolutions): each reader
// gets its own dequantize, so each quantized unit can take its own.
// CHECK-LABEL: func.func @two_readers
// CHECK: %[[D0:.+]] = linalg.generic {{.*}} ins(%arg0 : tensor<8xi8>)
// CHECK: arith.sitofp
// CHECK: %[[D1:.+]] = linalg.generic {{.*}} ins(%arg0 : tensor<8xi8>)
// CHECK: arith.sitofp
// CHECK: %[[A:.+]] = linalg.generic {{.*}} ins(%[[D0]], %arg1 : tensor<8xf32>, tensor<8xf32>)
// CHECK: %[[B:.+]] = linalg.generic {{.*}} ins(%[[D1]], %arg1 : tensor<8xf32>, tensor<8xf32>)
// CHECK: return %[[A]], %[[B]]
#id = affine_map<(d0) -> (d0)>
func.func @two_readers(%q: tensor<8xi8>, %y: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %s = arith.constant 0.5 : f32
  %e = tensor.empty() : tensor<8xf32>
  %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%q : tensor<8xi8>) outs(%e : tensor<8xf32>) {
  ^bb0(%in: i8, %out: f32):
    %f = arith.sitofp %in : i8 to f32
    %m = arith.mulf %f, %s : f32
    linalg.yield %m : f32
  } -> tensor<8xf32>
  %a = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]} ins(%d, %y : tensor<8xf32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%i: f32, %j: f32, %out: f32):
    %r = arith.addf %i, %j : f32
    linalg.yield %r : f32
  } -> tensor<8xf32>
  %b = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]} ins(%d, %y : tensor<8xf32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%i: f32, %j: f32, %out: f32):
    %r = arith.mulf %i, %j : f32
    linalg.yield %r : f32
  } -> tensor<8xf32>
  return %a, %b : tensor<8xf32>, tensor<8xf32>
}

// -----

// One reader, or a generic that is not a dequantize (a plain cast): left alone.
// CHECK-LABEL: func.func @left_alone
// CHECK-COUNT-1: arith.uitofp
// CHECK-NOT: arith.uitofp
#id = affine_map<(d0) -> (d0)>
func.func @left_alone(%q: tensor<8xi8>) -> (tensor<8xf32>, tensor<8xf32>) {
  %e = tensor.empty() : tensor<8xf32>
  %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%q : tensor<8xi8>) outs(%e : tensor<8xf32>) {
  ^bb0(%in: i8, %out: f32):
    %f = arith.uitofp %in : i8 to f32
    linalg.yield %f : f32
  } -> tensor<8xf32>
  return %d, %d : tensor<8xf32>, tensor<8xf32>
}

// -----

// A dequantize with one reader stays one.
// CHECK-LABEL: func.func @one_reader
// CHECK-COUNT-1: arith.sitofp
// CHECK-NOT: arith.sitofp
#id = affine_map<(d0) -> (d0)>
func.func @one_reader(%q: tensor<8xi8>) -> tensor<8xf32> {
  %s = arith.constant 0.5 : f32
  %e = tensor.empty() : tensor<8xf32>
  %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%q : tensor<8xi8>) outs(%e : tensor<8xf32>) {
  ^bb0(%in: i8, %out: f32):
    %f = arith.sitofp %in : i8 to f32
    %m = arith.mulf %f, %s : f32
    linalg.yield %m : f32
  } -> tensor<8xf32>
  return %d : tensor<8xf32>
}
