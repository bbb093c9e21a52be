// The linked route after codegen: the outlined function keeps its signature, its body
// becomes one flow.dispatch per ccompiler kernel into a stream.executable that links the
// built object through hal.import.static functions (base pointer + offset per binding,
// then workgroup id and count).
// RUN: rm -rf %t && byoc-compile %s --backend ccompiler -o %t --no-cache --quiet
// RUN: FileCheck %s < %t/host.mlir
// RUN: byoc-run %t --check | FileCheck %s --check-prefix=EXEC

// CHECK: #[[TARGET:.+]] = #hal.executable.target<"llvm-cpu", "embedded-elf-x86_64">
// CHECK-LABEL: util.func public @main
// CHECK: %[[R:.+]] = util.call @ccompiler.main_0(%arg0, %arg1, %arg2)
// CHECK: linalg.generic
// CHECK-SAME: byoc.reason = "rejected: ccompiler: linalg.generic computing math.tanh is not supported"
// CHECK: stream.executable private @ccompiler_main_0_exe attributes {hal.executable.objects = #hal.executable.objects<{#[[TARGET]] = [#hal.executable.object<{path = "{{.*}}/artifacts/ccompiler_main_0.o"}>]}>}
// CHECK: stream.executable.export public @ccompiler_main_0_k0_entry workgroups() -> (index, index, index)
// CHECK: func.func private @ccompiler_main_0_k0(memref<f32>, index, memref<f32>, index, memref<f32>, index, memref<f32>, index, index, index) attributes {hal.import.static, llvm.bareptr = true}
// CHECK: func.func @ccompiler_main_0_k0_entry(%{{.+}}: !stream.binding, %{{.+}}: !stream.binding, %{{.+}}: !stream.binding, %{{.+}}: !stream.binding)
// CHECK: stream.dispatch.workgroup.id[0]
// CHECK: stream.dispatch.workgroup.count[0]
// CHECK: call @ccompiler_main_0_k0(
// CHECK-LABEL: util.func private @ccompiler.main_0(
// CHECK-SAME: byoc.composites = ["matmul_bias_relu"], byoc.region = 0 : i64, byoc.target = "ccompiler"
// CHECK-NEXT: %[[D:.+]] = flow.dispatch @ccompiler_main_0_exe::@ccompiler_main_0_k0_entry(%arg0, %arg1, %arg2) : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
// CHECK-NEXT: util.return %[[D]] : tensor<4x16xf32>

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
