// RUN: byoc-opt %s --backend testing --partition --save-plan %t.json > %t.partitioned.mlir
// RUN: byoc-opt %s --byoc-apply-plan="plan=%t.json" | FileCheck %s
// RUN: byoc-opt %s --byoc-apply-plan="plan=%t.json" --byoc-outline | FileCheck %s --check-prefix=OUTLINED
// RUN: byoc-opt %s --plan %t.json > %t.replayed.mlir
// RUN: diff %t.partitioned.mlir %t.replayed.mlir
// RUN: sed -e '/"main#2"/s/"backend": "testing"/"backend": null/' %t.json > %t.host.json
// RUN: byoc-opt %s --byoc-apply-plan="plan=%t.host.json" | FileCheck %s --check-prefix=HOST
// RUN: sed -e '/"main#6"/s/"testing.main_1"/"testing.main_0"/' %t.json > %t.cycle.json
// RUN: not byoc-opt %s --plan %t.cycle.json 2>&1 | FileCheck %s --check-prefix=CYCLE
// RUN: sed -e '/"main#4"/s/"backend": null/"backend": "testing"/' %t.json > %t.refused.json
// RUN: not byoc-opt %s --plan %t.refused.json 2>&1 | FileCheck %s --check-prefix=REFUSED
// RUN: sed -e 's/arith.mulf/arith.divf/' %s > %t.changed.mlir
// RUN: not byoc-opt %t.changed.mlir --plan %t.json 2>&1 | FileCheck %s --check-prefix=STALE
// RUN: echo '{"version": 2}' > %t.v2.json
// RUN: not byoc-opt %s --plan %t.v2.json 2>&1 | FileCheck %s --check-prefix=VERSION
// RUN: echo '{"version": 1,' > %t.broken.json
// RUN: not byoc-opt %s --plan %t.broken.json 2>&1 | FileCheck %s --check-prefix=JSON
// RUN: not byoc-opt %s --byoc-apply-plan 2>&1 | FileCheck %s --check-prefix=NOPLAN
// RUN: not byoc-opt %s --backend testing --byoc-annotate --save-plan %t.x.json 2>&1 | FileCheck %s --check-prefix=SAVE-NOPARTITION
// RUN: not byoc-opt %s --split-input-file --backend testing --partition --save-plan %t.x.json 2>&1 | FileCheck %s --check-prefix=SAVE-SPLIT

// byoc-apply-plan replays a placement plan (written by --save-plan) in place of
// annotate + composites + merge-regions: the same tags, the same regions. `--plan FILE`
// runs it and byoc-outline over shared graphs, like --partition. Edits to the plan
// (sed here) change the partition; a plan that does not fit the model is an error.

// The saved plan replayed: regions and composites as --partition chose them.
// CHECK-LABEL: func.func @main
// CHECK:       linalg.fill {byoc.accept = ["testing"], byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK-NEXT:  linalg.matmul {{.*}}name = "matmul_bias_relu"}, byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK-NEXT:  linalg.generic {{.*}}name = "matmul_bias_relu"}, byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic {{.*}}name = "matmul_bias_relu"}, byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic {{.*}}byoc.reason = "rejected: testing: linalg.generic computing math.tanh is not supported"
// CHECK:       linalg.generic {{.*}}attrs =  {byoc.accept = ["testing"], byoc.region = 1 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic {{.*}}attrs =  {byoc.accept = ["testing"], byoc.region = 1 : i64, byoc.target = "testing"}
// CHECK:       return

// OUTLINED-LABEL: func.func @main
// OUTLINED:       [[R0:%.+]] = call @testing.main_0(%arg0, %arg1, %arg2)
// OUTLINED-NEXT:  [[T:%.+]] = linalg.generic {{.*}} ins([[R0]] : {{.*}}byoc.reason = "rejected: testing:
// OUTLINED:       call @testing.main_1([[T]], %arg3, [[R0]])
// OUTLINED-LABEL: func.func private @testing.main_0
// OUTLINED-SAME:  byoc.composites = ["matmul_bias_relu"], byoc.region = 0 : i64, byoc.target = "testing"
// OUTLINED-LABEL: func.func private @testing.main_1
// OUTLINED-SAME:  byoc.composites = [], byoc.region = 1 : i64, byoc.target = "testing"

// The bias-add (main#2) forced to the host: the composite is gone, and its region
// splits around it (fill + matmul before, relu after); the op says why it is there.
// HOST-LABEL: func.func @main
// HOST:       linalg.fill {byoc.accept = ["testing"], byoc.region = 0 : i64, byoc.target = "testing"}
// HOST-NEXT:  linalg.matmul {byoc.accept = ["testing"], byoc.region = 0 : i64, byoc.target = "testing"}
// HOST-NEXT:  linalg.generic {{.*}}attrs =  {byoc.accept = ["testing"], byoc.reason = "placed on the host by plan {{.*}}.host.json"}
// HOST:       linalg.generic {{.*}}attrs =  {byoc.accept = ["testing"], byoc.region = 1 : i64, byoc.target = "testing"}
// HOST:       linalg.generic {{.*}}byoc.reason = "rejected: testing: linalg.generic computing math.tanh
// HOST:       linalg.generic {{.*}}attrs =  {byoc.accept = ["testing"], byoc.region = 2 : i64, byoc.target = "testing"}
// HOST:       linalg.generic {{.*}}attrs =  {byoc.accept = ["testing"], byoc.region = 2 : i64, byoc.target = "testing"}

// The sub (main#6) relabelled into region 0: region 0 -> tanh -> mul (region 1) -> sub
// (region 0) is a cycle; outlining refuses it at the region's first op.
// CYCLE: byoc-apply-plan.mlir:[[# @LINE + 22]]:8: error: tagged regions depend on each other in a cycle (testing region 0, testing region 1)
// CYCLE-NOT: Traceback

// The tanh (main#4) put on testing, which refuses it: the backend's reason, located.
// REFUSED: byoc-apply-plan.mlir:[[# @LINE + 30]]:8: error: placement plan {{.*}}.refused.json puts main#4 (linalg.generic) on testing, which refuses it: linalg.generic computing math.tanh is not supported
// REFUSED-NEXT: note: set its "backend" to null (the host) or to a backend that accepts it

// The model changed (the mul became a div): the plan is stale; the first differing op is named.
// STALE: .changed.mlir:[[# @LINE + 31]]:8: error: placement plan {{.*}}.json is stale (it does not match this model): main#5 is linalg.generic (generic:mul) -> tensor<4x16xf32> in the plan but linalg.generic (generic:div) -> tensor<4x16xf32> in the model
// STALE-NEXT: note: save a new plan for this model with --save-plan

// VERSION: .v2.json: error: placement plan version 2 is not supported (valid: 1)
// JSON:    .broken.json: error: placement plan is not valid JSON (line 2, column 1: Expecting property name enclosed in double quotes)
// NOPLAN:  error: byoc-apply-plan needs a plan file: --byoc-apply-plan="plan=FILE"
// SAVE-NOPARTITION: error: --save-plan saves the partition's placement: it needs --partition
// SAVE-SPLIT:       error: --save-plan saves one module's plan: not with --split-input-file

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %bias: tensor<16xf32>, %c: tensor<4x16xf32>) -> tensor<4x16xf32> {
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
    %z = math.tanh %x : f32
    linalg.yield %z : f32
  } -> tensor<4x16xf32>
  %p = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%t, %c : tensor<4x16xf32>, tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %z = arith.mulf %x, %y : f32
    linalg.yield %z : f32
  } -> tensor<4x16xf32>
  %q = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%p, %r : tensor<4x16xf32>, tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %z = arith.subf %x, %y : f32
    linalg.yield %z : f32
  } -> tensor<4x16xf32>
  return %q : tensor<4x16xf32>
}
