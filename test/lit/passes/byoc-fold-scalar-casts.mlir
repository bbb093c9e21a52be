// RUN: byoc-opt %s --split-input-file --byoc-fold-scalar-casts | FileCheck %s

// torch's BatchNorm eps: an f64 constant truncated to f32 inside the generic body. The
// cast becomes an f32 constant beside the original, which goes once nothing reads it.

// CHECK-LABEL: func.func @batchnorm_eps
// CHECK-NEXT:  [[EPS:%.+]] = arith.constant 9.99999974E-6 : f32
// CHECK-NOT:   f64
// CHECK:       arith.addf %{{.+}}, [[EPS]] : f32
// CHECK-NOT:   arith.truncf
func.func @batchnorm_eps(%var: tensor<8xf32>) -> tensor<8xf32> {
  %eps = arith.constant 1.000000e-05 : f64
  %e = tensor.empty() : tensor<8xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]}
      ins(%var : tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t = arith.truncf %eps : f64 to f32
    %s = arith.addf %in, %t : f32
    linalg.yield %s : f32
  } -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

// One constant, two casts to two types, and an f64 use that keeps the original.

// CHECK-LABEL: func.func @shared
// CHECK-DAG:   arith.constant 1.500000e+00 : f16
// CHECK-DAG:   arith.constant 1.500000e+00 : f32
// CHECK-DAG:   [[D:%.+]] = arith.constant 1.500000e+00 : f64
// CHECK-NOT:   arith.truncf
// CHECK:       return {{.*}}[[D]]
func.func @shared() -> (f32, f32, f16, f64) {
  %c = arith.constant 1.5 : f64
  %a = arith.truncf %c : f64 to f32
  %b = arith.truncf %c : f64 to f32
  %h = arith.truncf %c : f64 to f16
  return %a, %b, %h, %c : f32, f32, f16, f64
}

// -----

// A cast of a value that is not a constant stays.

// CHECK-LABEL: func.func @not_constant
// CHECK-NEXT:  arith.extf %arg0 : f32 to f64
func.func @not_constant(%x: f32) -> f64 {
  %y = arith.extf %x : f32 to f64
  return %y : f64
}
