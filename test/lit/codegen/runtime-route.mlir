// The runtime route after codegen: the outlined function becomes a bodiless declaration
// (a VM import of module "jsonrt", function "main_0") served at run time from the
// payload stored in the bundle.
// RUN: rm -rf %t && byoc-compile %s --backend jsonrt -o %t --no-cache --quiet
// RUN: FileCheck %s < %t/host.mlir
// RUN: FileCheck %s --check-prefix=MANIFEST < %t/bundle.json
// RUN: byoc-run %t --check | FileCheck %s --check-prefix=EXEC

// CHECK-LABEL: util.func public @main
// CHECK: util.call @jsonrt.main_0(%arg0, %arg1, %arg2) : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
// CHECK: math.tanh
// CHECK: util.func private @jsonrt.main_0(%{{[a-z0-9]+}}: tensor<4x8xf32>, %{{[a-z0-9]+}}: tensor<8x16xf32>, %{{[a-z0-9]+}}: tensor<16xf32>) -> tensor<4x16xf32>
// CHECK-SAME: byoc.target = "jsonrt"
// CHECK-NOT: {
// CHECK-NOT: flow.dispatch

// MANIFEST: "served": [
// MANIFEST: "backend": "jsonrt",
// MANIFEST: "function": "main_0",
// MANIFEST: "payload": "payloads/jsonrt_main_0.bin",

// EXEC: check output 0: max abs error {{.*}} (ok at

#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
func.func @main(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) -> tensor<4x16xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %m = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x16xf32>) outs(%f : tensor<4x16xf32>) -> tensor<4x16xf32>
  %a = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%m, %b : tensor<4x16xf32>, tensor<16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %s = arith.maximumf %p, %zero : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%r : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %s = math.tanh %p : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  return %t : tensor<4x16xf32>
}
