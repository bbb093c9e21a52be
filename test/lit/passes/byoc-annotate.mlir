// RUN: byoc-opt %s --split-input-file --backend testing --byoc-annotate | FileCheck %s
// RUN: byoc-opt %s --split-input-file --backend testing --backend testing_matmul --byoc-annotate | FileCheck %s --check-prefix=TWO
// RUN: byoc-opt %s --split-input-file --backend testing_matmul --backend testing --byoc-annotate | FileCheck %s --check-prefix=REV
// RUN: not byoc-opt %s --split-input-file --byoc-annotate 2>&1 | FileCheck %s --check-prefix=NOBACKEND

// byoc-annotate tags every node (not free ops, not the terminator) with the backends
// that accept it alone, in priority order, and a reason per refusing backend.

// NOBACKEND: error: byoc-annotate needs at least one backend (--backend NAME)

// Accepted ops: fill, matmul and the recognised elementwise generics. Constants and
// tensor.empty are free ops: never tagged.

#map = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @accept_f32
// CHECK:      %cst = arith.constant 0.000000e+00 : f32
// CHECK-NEXT: [[E:%.+]] = tensor.empty() : tensor<4x4xf32>
// CHECK-NEXT: [[F:%.+]] = linalg.fill {byoc.accept = ["testing"]} ins(%cst : f32) outs([[E]] : tensor<4x4xf32>)
// CHECK-NEXT: [[M:%.+]] = linalg.matmul {byoc.accept = ["testing"]} ins(%arg0, %arg1 : tensor<4x8xf32>, tensor<8x4xf32>) outs([[F]] : tensor<4x4xf32>)
// CHECK-NEXT: [[A:%.+]] = linalg.generic {{.*}} ins([[M]], %arg2 : {{.*}} attrs = {byoc.accept = ["testing"]} {
// CHECK:      linalg.generic {{.*}} ins([[A]] : {{.*}} attrs = {byoc.accept = ["testing"]} {

// Accept list in priority order; testing_matmul refuses fill and the generics.
// TWO-LABEL: func.func @accept_f32
// TWO:       linalg.fill {byoc.accept = ["testing"], byoc.reject = {testing_matmul = "linalg.fill is not supported"}}
// TWO-NEXT:  linalg.matmul {byoc.accept = ["testing", "testing_matmul"]} ins(
// TWO-NEXT:  linalg.generic {{.*}} attrs = {byoc.accept = ["testing"], byoc.reject = {testing_matmul = "generic:add is not supported"}}
// TWO:       linalg.generic {{.*}} attrs = {byoc.accept = ["testing"], byoc.reject = {testing_matmul = "generic:relu is not supported"}}

// REV-LABEL: func.func @accept_f32
// REV:       linalg.matmul {byoc.accept = ["testing_matmul", "testing"]} ins(
func.func @accept_f32(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>, %c: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x4xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<4x4xf32>) -> tensor<4x4xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%f : tensor<4x4xf32>) -> tensor<4x4xf32>
  %add = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%m, %c : tensor<4x4xf32>, tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x4xf32>
  %relu = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%add : tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
  ^bb0(%x: f32, %o: f32):
    %z = arith.maximumf %x, %cst : f32
    linalg.yield %z : f32
  } -> tensor<4x4xf32>
  return %relu : tensor<4x4xf32>
}

// -----

// Guard: element type f64.

// CHECK-LABEL: func.func @reject_f64
// CHECK:       linalg.matmul {byoc.accept = [], byoc.reject = {testing = "element type f64 is not supported (valid: f32)"}}

// TWO-LABEL: func.func @reject_f64
// TWO:       linalg.matmul {byoc.accept = [], byoc.reject = {testing = "element type f64 is not supported (valid: f32)", testing_matmul = "element type f64 is not supported (valid: f32)"}}
func.func @reject_f64(%a: tensor<4x8xf64>, %b: tensor<8x4xf64>, %c: tensor<4x4xf64>) -> tensor<4x4xf64> {
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf64>, tensor<8x4xf64>) outs(%c : tensor<4x4xf64>) -> tensor<4x4xf64>
  return %m : tensor<4x4xf64>
}

// -----

// Guard: element type i64, on an elementwise add the recogniser itself accepts
// (arith.addi); the dtype check refuses it.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @reject_i64
// CHECK:       linalg.generic {{.*}} attrs = {byoc.accept = [], byoc.reject = {testing = "element type i64 is not supported (valid: f32)"}}

// TWO-LABEL: func.func @reject_i64
// TWO:       byoc.reject = {testing = "element type i64 is not supported (valid: f32)", testing_matmul = "generic:add is not supported"}
func.func @reject_i64(%a: tensor<16xi64>, %b: tensor<16xi64>) -> tensor<16xi64> {
  %e = tensor.empty() : tensor<16xi64>
  %r = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%a, %b : tensor<16xi64>, tensor<16xi64>) outs(%e : tensor<16xi64>) {
  ^bb0(%x: i64, %y: i64, %o: i64):
    %s = arith.addi %x, %y : i64
    linalg.yield %s : i64
  } -> tensor<16xi64>
  return %r : tensor<16xi64>
}

// -----

// Guard: element type, found on a scalar operand (the value a fill writes).

// CHECK-LABEL: func.func @reject_f64_fill
// CHECK:       linalg.fill {byoc.accept = [], byoc.reject = {testing = "element type f64 is not supported (valid: f32)"}}
func.func @reject_f64_fill(%v: f64) -> tensor<4xf64> {
  %e = tensor.empty() : tensor<4xf64>
  %f = linalg.fill ins(%v : f64) outs(%e : tensor<4xf64>) -> tensor<4xf64>
  return %f : tensor<4xf64>
}

// -----

// Dynamic dimensions: testing takes them (IREE compiles its regions, at any size);
// testing_matmul takes static shapes only (the first dynamic tensor is named).

// CHECK-LABEL: func.func @reject_dynamic
// CHECK:       linalg.matmul {byoc.accept = ["testing"]}
// TWO-LABEL:   func.func @reject_dynamic
// TWO:         linalg.matmul {byoc.accept = ["testing"], byoc.reject = {testing_matmul = "dynamic shape tensor<?x8xf32> is not supported (static shapes only)"}}
func.func @reject_dynamic(%a: tensor<?x8xf32>, %b: tensor<8x4xf32>, %c: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %m = linalg.matmul ins(%a, %b : tensor<?x8xf32>, tensor<8x4xf32>) outs(%c : tensor<?x4xf32>) -> tensor<?x4xf32>
  return %m : tensor<?x4xf32>
}

// -----

// Guard: transcendental generics (tanh, exp) are no recognised kind; the reason names
// the body's ops.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @reject_transcendental
// CHECK:       [[T:%.+]] = linalg.generic {{.*}} ins(%arg0 : {{.*}} attrs = {byoc.accept = [], byoc.reject = {testing = "linalg.generic computing math.tanh is not supported"}}
// CHECK:       linalg.generic {{.*}} ins([[T]] : {{.*}} attrs = {byoc.accept = [], byoc.reject = {testing = "generic:exp is not supported"}}
func.func @reject_transcendental(%a: tensor<16xf32>) -> tensor<16xf32> {
  %e = tensor.empty() : tensor<16xf32>
  %t = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%a : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = math.tanh %x : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  %x = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%t : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = math.exp %x : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  return %x : tensor<16xf32>
}

// -----

// Guard: op kinds no backend declares.

// CHECK-LABEL: func.func @reject_unsupported_ops
// CHECK:       [[T:%.+]] = linalg.transpose ins(%arg0 : tensor<4x8xf32>) {{.*}} {byoc.accept = [], byoc.reject = {testing = "linalg.transpose is not supported"}}
// CHECK:       tensor.pad [[T]] {{.*}} {
// CHECK:       } {byoc.accept = [], byoc.reject = {testing = "tensor.pad is not supported"}}

// TWO-LABEL: func.func @reject_unsupported_ops
// TWO:       byoc.reject = {testing = "linalg.transpose is not supported", testing_matmul = "linalg.transpose is not supported"}
// TWO:       byoc.reject = {testing = "tensor.pad is not supported", testing_matmul = "tensor.pad is not supported"}
func.func @reject_unsupported_ops(%a: tensor<4x8xf32>) -> tensor<10x6xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.transpose ins(%a : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>) permutation = [1, 0]
  %p = tensor.pad %t low[1, 1] high[1, 1] {
  ^bb0(%i: index, %j: index):
    tensor.yield %cst : f32
  } : tensor<8x4xf32> to tensor<10x6xf32>
  return %p : tensor<10x6xf32>
}

// -----

// TOSA ops: tosa.add is accepted, tosa.tanh is not. The integer shift operand of
// tosa.mul is not data and does not trip the f32 check.

// CHECK-LABEL: func.func @tosa_ops
// CHECK:       [[S:%.+]] = tosa.const values(dense<0> : tensor<1xi8>) : () -> tensor<1xi8>
// CHECK-NEXT:  [[A:%.+]] = tosa.add %arg0, %arg1 {byoc.accept = ["testing"]}
// CHECK-NEXT:  [[M:%.+]] = tosa.mul [[A]], %arg1, [[S]] {byoc.accept = ["testing"]}
// CHECK-NEXT:  tosa.tanh [[M]] {byoc.accept = [], byoc.reject = {testing = "tosa.tanh is not supported"}}
func.func @tosa_ops(%a: tensor<2x8xf32>, %b: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %shift = "tosa.const"() <{values = dense<0> : tensor<1xi8>}> : () -> tensor<1xi8>
  %s = tosa.add %a, %b : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %m = tosa.mul %s, %b, %shift : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<1xi8>) -> tensor<2x8xf32>
  %t = tosa.tanh %m : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return %t : tensor<2x8xf32>
}

// -----

// Re-running annotate with other backends replaces both tags: no stale reject survives.

// CHECK-LABEL: func.func @reannotate
// CHECK:       linalg.matmul {byoc.accept = ["testing"]} ins(
func.func @reannotate(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>, %c: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %m = linalg.matmul {byoc.accept = [], byoc.reject = {testing = "stale"}} ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%c : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %m : tensor<4x4xf32>
}
