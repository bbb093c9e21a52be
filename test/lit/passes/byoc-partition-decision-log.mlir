// RUN: byoc-opt %s --backend testing --partition --decision-log %t.json | FileCheck %s && FileCheck %s --check-prefix=LOG < %t.json
// RUN: byoc-opt %s --split-input-file --backend testing --partition --decision-log %t.split.json && FileCheck %s --check-prefix=LOG < %t.split.json
// RUN: byoc-opt --backend testing --partition --decision-log %t.stdin.json < %s && FileCheck %s --check-prefix=STDIN < %t.stdin.json
// RUN: byoc-opt %s --backend testing --partition --report 2>&1 >/dev/null | FileCheck %s --check-prefix=REPORT
// RUN: byoc-opt %s --backend testing --byoc-annotate --byoc-composites --byoc-merge-regions="min-size=2" --byoc-outline --decision-log %t.min.json && FileCheck %s --check-prefix=MIN < %t.min.json

// --decision-log writes report.json's schema (version 1), read back from the
// partitioned IR: one entry per region, one per op left on the host, with its reason
// and its location in this file (also in split mode, where the text is parsed from a
// string).

// CHECK-LABEL: func.func @main
// CHECK:       [[R:%.+]] = call @testing.main_0(%arg0, %arg1, %arg2)
// CHECK-NEXT:  [[T:%.+]] = linalg.generic {{.*}} ins([[R]] : {{.*}}byoc.reason = "rejected: testing: linalg.generic computing math.tanh is not supported"}
// CHECK:       [[S:%.+]] = call @testing.main_1([[T]], [[R]])
// CHECK-NEXT:  return [[S]]

// LOG:      {
// LOG-NEXT:   "version": 1,
// LOG-NEXT:   "regions": [
// LOG-NEXT:     {
// LOG-NEXT:       "name": "testing.main_0",
// LOG-NEXT:       "backend": "testing",
// LOG-NEXT:       "function": "main",
// LOG-NEXT:       "region": 0,
// LOG-NEXT:       "composites": [
// LOG-NEXT:         "matmul_bias_relu"
// LOG-NEXT:       ],
// LOG-NEXT:       "ops": [
// LOG-NEXT:         "linalg.fill",
// LOG-NEXT:         "linalg.matmul",
// LOG-NEXT:         "linalg.generic",
// LOG-NEXT:         "linalg.generic"
// LOG-NEXT:       ],
// LOG-NEXT:       "inputs": [
// LOG-NEXT:         "tensor<4x8xf32>",
// LOG-NEXT:         "tensor<8x16xf32>",
// LOG-NEXT:         "tensor<16xf32>"
// LOG-NEXT:       ],
// LOG-NEXT:       "outputs": [
// LOG-NEXT:         "tensor<4x16xf32>"
// LOG-NEXT:       ],
// LOG-NEXT:       "route": null,
// LOG-NEXT:       "artifact": null,
// LOG-NEXT:       "status": "partitioned"
// LOG-NEXT:     },
// LOG-NEXT:     {
// LOG-NEXT:       "name": "testing.main_1",
// LOG-NEXT:       "backend": "testing",
// LOG-NEXT:       "function": "main",
// LOG-NEXT:       "region": 1,
// LOG-NEXT:       "composites": [],
// LOG-NEXT:       "ops": [
// LOG-NEXT:         "linalg.generic"
// LOG-NEXT:       ],
// LOG:            "status": "partitioned"
// LOG-NEXT:     }
// LOG-NEXT:   ],
// LOG-NEXT:   "host_ops": [
// LOG-NEXT:     {
// LOG-NEXT:       "op": "linalg.generic",
// LOG-NEXT:       "function": "main",
// LOG-NEXT:       "location": "{{.*}}byoc-partition-decision-log.mlir:[[# @LINE + 39]]:8",
// LOG-NEXT:       "reason": "rejected: testing: linalg.generic computing math.tanh is not supported"
// LOG-NEXT:     }
// LOG-NEXT:   ],
// LOG-NEXT:   "ops": [

// Read from stdin, locations name <stdin>.
// STDIN: "location": "<stdin>:[[# @LINE + 32]]:8",

// min-size=2: the mul after the tanh could not join region 0 (region 0 -> tanh -> mul
// would be a cycle), so it was a one-op region; it goes back to the host and is logged
// with that reason. Only one region is left.
// MIN:      "regions": [
// MIN:        "name": "testing.main_0",
// MIN-NOT:    "name": "testing.main_1"
// MIN:      "host_ops": [
// MIN:        "reason": "rejected: testing: linalg.generic computing math.tanh is not supported"
// MIN:        "op": "linalg.generic",
// MIN-NEXT:   "function": "main",
// MIN-NEXT:   "location": "{{.*}}byoc-partition-decision-log.mlir:[[# @LINE + 25]]:9",
// MIN-NEXT:   "reason": "dropped: cycle (merging into a neighbouring testing region would create a cycle; alone it has 1 op(s) < min-size 2)"

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %bias: tensor<16xf32>) -> tensor<4x16xf32> {
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
  %t = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%r : tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = math.tanh %x : f32
    linalg.yield %y : f32
  } -> tensor<4x16xf32>
  %sq = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%t, %r : tensor<4x16xf32>, tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.mulf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  return %sq : tensor<4x16xf32>
}

// With --partition the log also holds every compute op (`ops`) and the `summary`
// (docs/report.md); --report prints that summary to stderr.
// LOG:      "summary": {
// LOG-NEXT:   "ops": 6,
// LOG-NEXT:   "flops": 1280,
// LOG:        "ops_offloaded": 5,
// LOG-NEXT:   "flops_offloaded": 1216,

// REPORT:      Offload summary: 6 compute op(s), 1.28 kFLOP estimated
// REPORT-EMPTY:
// REPORT-NEXT:   backend  regions        ops offloaded  FLOPs offloaded
// REPORT-NEXT:   testing  2 partitioned  5 / 6 (83.3%)  1.22 kFLOP (95.0%)
// REPORT-NEXT:   (host)   -              1 / 6 (16.7%)  64 FLOP (5.0%)
// REPORT-EMPTY:
// REPORT-NEXT: Left on the host: 1 op(s) of 1 kind(s)
// REPORT-NEXT:   kind            count  category  first location
// REPORT-NEXT:   linalg.generic      1  rejected  {{.*}}byoc-partition-decision-log.mlir:[[# @LINE - 29]]:8
// REPORT-NEXT:       testing: linalg.generic computing math.tanh is not supported
