// The example backend, installed as a plugin (pip install -e examples/mynpu), partitions
// the bundled MLP: both layers in one region (the first as its matmul_bias_relu
// composite), the tanh on the host.
// RUN: byoc-opt %S/../../mlp.mlir --backend mynpu --partition | FileCheck %s
// And compiles and runs it: the hook out of process (a plugin), the result checked.
// RUN: rm -rf %t && byoc-compile %S/../../mlp.mlir --backend mynpu --no-cache -o %t --quiet
// RUN: byoc-run %t --check | FileCheck %s --check-prefix=OUT
// RUN: FileCheck %s --check-prefix=REPORT < %t/report.json

// CHECK-LABEL: func.func @main
// CHECK: call @mynpu.main_0
// CHECK: math.tanh
// CHECK: func.func private @mynpu.main_0
// CHECK-SAME: byoc.composites = ["matmul_bias_relu"]
// CHECK: linalg.matmul
// CHECK: linalg.matmul

// OUT: check output 0: {{.*}} (ok at rtol=0.0001, atol=0.0001)

// REPORT: "name": "mynpu.main_0"
// REPORT: "status": "offloaded"
// REPORT: "codegen": {
// REPORT-NEXT: "mode": "process"
