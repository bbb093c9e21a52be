// RUN: byoc-opt %s --split-input-file --byoc-strip-asserts | FileCheck %s
// RUN: byoc-opt %s --split-input-file --byoc-strip-asserts --backend testing --byoc-annotate | FileCheck %s --check-prefix=ANNOTATE

// byoc-strip-asserts erases cf.assert ops and the pure arith conditions only they use.

// The BatchNorm reciprocal torch lowers to: the assert inside the generic goes, and
// with it the cmpf that only fed it; the division stays. Without the assert the body is
// plain arithmetic again (the testing backend then names divf, not cf.assert).

// CHECK-LABEL: func.func @batchnorm_reciprocal
// CHECK:       linalg.generic
// CHECK-NEXT:  ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT:    [[D:%.+]] = arith.divf %{{.+}}, %[[IN]] : f32
// CHECK-NEXT:    linalg.yield [[D]] : f32
// CHECK-NOT:   cf.assert
// CHECK-NOT:   arith.cmpf
// ANNOTATE-LABEL: func.func @batchnorm_reciprocal
// ANNOTATE:       byoc.reject = {testing = "linalg.generic computing arith.divf is not supported"}
func.func @batchnorm_reciprocal(%x: tensor<8xf32>) -> tensor<8xf32> {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<8xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]}
      ins(%x : tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %nonzero = arith.cmpf one, %in, %zero : f32
    cf.assert %nonzero, "unimplemented: tensor with zero element"
    %d = arith.divf %one, %in : f32
    linalg.yield %d : f32
  } -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

// A condition something else still uses stays; so do non-arith producers. Asserts at
// function level go too, in util.func (what IREE's input phase produces) as well.

// CHECK-LABEL: util.func public @shared_condition
// CHECK-NEXT:  [[C:%.+]] = arith.cmpi slt, %arg0, %arg1 : i32
// CHECK-NEXT:  [[S:%.+]] = arith.select [[C]], %arg0, %arg1 : i32
// CHECK-NEXT:  util.return [[S]] : i32
util.func public @shared_condition(%a: i32, %b: i32) -> i32 {
  %c = arith.cmpi slt, %a, %b : i32
  cf.assert %c, "a must be less than b"
  %s = arith.select %c, %a, %b : i32
  util.return %s : i32
}

// -----

// A chain of pure ops that only feeds the assert goes as a whole; a block argument
// condition is left alone.

// CHECK-LABEL: func.func @chain
// CHECK-NEXT:  return %arg0 : i1
// CHECK-NOT:   cf.assert
func.func @chain(%flag: i1, %x: i32) -> i1 {
  %zero = arith.constant 0 : i32
  %nz = arith.cmpi ne, %x, %zero : i32
  %both = arith.andi %nz, %flag : i1
  cf.assert %both, "x is zero or flag is off"
  cf.assert %flag, "flag is off"
  return %flag : i1
}

// -----

// Nothing to strip: the module is unchanged.

// CHECK-LABEL: func.func @no_asserts
// CHECK-NEXT:  [[A:%.+]] = arith.addf %arg0, %arg0 : f32
// CHECK-NEXT:  return [[A]] : f32
func.func @no_asserts(%x: f32) -> f32 {
  %a = arith.addf %x, %x : f32
  return %a : f32
}

// -----

// One condition feeding two asserts and reaching its producer along two paths (ONNX
// ReduceSum/ReduceMean with keepdims lower this way): every dead op is decided before the
// first erase, so nothing erased is touched again (the bindings segfault, they do not raise).

// CHECK-LABEL: func.func @shared_condition
// CHECK-NEXT:  return %arg0 : i32
func.func @shared_condition(%a: i32, %b: i32) -> i32 {
  %c = arith.cmpi eq, %a, %b : i32
  %d = arith.andi %c, %c : i1
  cf.assert %d, "one"
  cf.assert %c, "two"
  %e = arith.xori %d, %c : i1
  cf.assert %e, "three"
  return %a : i32
}

// -----

// A condition something else still reads stays.

// CHECK-LABEL: func.func @condition_still_used
// CHECK-NEXT:  [[C:%.+]] = arith.cmpi eq
// CHECK-NEXT:  return [[C]] : i1
func.func @condition_still_used(%a: i32, %b: i32) -> i1 {
  %c = arith.cmpi eq, %a, %b : i32
  cf.assert %c, "kept"
  return %c : i1
}
