// RUN: byoc-opt %s --split-input-file --backend testing --byoc-annotate --byoc-composites --byoc-merge-regions | FileCheck %s
// RUN: byoc-opt %s --split-input-file --backend testing --byoc-annotate --byoc-composites --byoc-merge-regions="min-size=2" | FileCheck %s --check-prefix=MIN2
// RUN: byoc-opt %s --split-input-file --backend testing --byoc-annotate --byoc-composites --byoc-merge-regions="max-size=2" | FileCheck %s --check-prefix=MAX2
// RUN: byoc-opt %s --split-input-file --backend testing --byoc-annotate --byoc-composites --byoc-merge-regions="merge-siblings=false" | FileCheck %s --check-prefix=NOSIB
// RUN: byoc-opt %s --split-input-file --backend testing_matmul --backend testing --byoc-annotate --byoc-composites --byoc-merge-regions | FileCheck %s --check-prefix=MMFIRST
// RUN: byoc-opt %s --split-input-file --backend testing --backend testing_matmul --byoc-annotate --byoc-composites --byoc-merge-regions | FileCheck %s --check-prefix=TFIRST
// RUN: byoc-opt %s --split-input-file --backend testing --byoc-merge-regions | FileCheck %s --check-prefix=NOANN
// RUN: byoc-opt %s --split-input-file --backend testing --byoc-annotate --byoc-merge-regions="backends=testing_matmul" | FileCheck %s --check-prefix=NOTCHOSEN

// byoc-merge-regions tags every node with byoc.target/byoc.region (ids per function, in
// program order) or, for ops left on the host, byoc.reason.

// A chain of supported ops (fill -> matmul -> add -> relu) is one region.

#map = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @chain
// CHECK:       [[F:%.+]] = linalg.fill {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK-NEXT:  [[M:%.+]] = linalg.matmul {{.*}}byoc.region = 0 : i64, byoc.target = "testing"} ins(%arg0, %arg1 {{.*}} outs([[F]] :
// CHECK-NEXT:  [[A:%.+]] = linalg.generic {{.*}} ins([[M]], %arg2 : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic {{.*}} ins([[A]] : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK-NOT:   byoc.region = 1
// CHECK:       return

// NOANN-LABEL: func.func @chain
// NOANN:       linalg.fill {byoc.reason = "rejected: not annotated (run byoc-annotate first)"}
// NOANN-NOT:   byoc.region
// NOANN:       return

// NOTCHOSEN-LABEL: func.func @chain
// NOTCHOSEN:       linalg.fill {byoc.accept = ["testing"], byoc.reason = "rejected: accepted only by backends not chosen for this run"}
func.func @chain(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>, %c: tensor<4x4xf32>) -> tensor<4x4xf32> {
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

// A composite is one unit, and the ops around it join its region.

#map = affine_map<(d0, d1) -> (d0, d1)>
#bcast = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @composite_unit
// CHECK:       linalg.matmul {{.*}}name = "matmul_bias_relu"}, byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic {{.*}}name = "matmul_bias_relu"}, byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic {{.*}}name = "matmul_bias_relu"}, byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic {{.*}}attrs = {byoc.accept = ["testing"], byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       return
func.func @composite_unit(%a: tensor<4x8xf32>, %b: tensor<8x16xf32>, %bias: tensor<16xf32>, %init: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x16xf32>) outs(%init : tensor<4x16xf32>) -> tensor<4x16xf32>
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
  %sq = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%r, %r : tensor<4x16xf32>, tensor<4x16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.mulf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  return %sq : tensor<4x16xf32>
}

// -----

// Diamond a -> (b: tanh, host; c: relu) -> d. c joins a's region; d must not: a's
// region -> b -> d would leave the region and come back. d gets its own region.
// With min-size=2, d alone is dropped, and the reason says it was refused for a cycle.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @diamond
// CHECK:       [[A:%.+]] = linalg.generic {{.*}} ins(%arg0, %arg0 : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       [[B:%.+]] = linalg.generic {{.*}} ins([[A]] : {{.*}}byoc.reason = "rejected: testing: linalg.generic computing math.tanh is not supported", byoc.reject =
// CHECK:       [[C:%.+]] = linalg.generic {{.*}} ins([[A]] : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic
// CHECK-NOT:   byoc.region = 0
// CHECK-SAME:  ins([[B]], [[C]] :
// CHECK-SAME:  byoc.region = 1 : i64, byoc.target = "testing"}

// MIN2-LABEL: func.func @diamond
// MIN2:       byoc.region = 0 : i64
// MIN2:       math.tanh
// MIN2:       byoc.region = 0 : i64
// MIN2:       linalg.generic
// MIN2-NOT:   byoc.region
// MIN2-SAME:  byoc.reason = "dropped: cycle (merging into a neighbouring testing region would create a cycle; alone it has 1 op(s) < min-size 2)"
func.func @diamond(%x: tensor<16xf32>) -> tensor<16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16xf32>
  %a = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%x, %x : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.mulf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %b = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%a : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %t = math.tanh %p : f32
    linalg.yield %t : f32
  } -> tensor<16xf32>
  %c = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%a : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %z = arith.maximumf %p, %cst : f32
    linalg.yield %z : f32
  } -> tensor<16xf32>
  %d = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%b, %c : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  return %d : tensor<16xf32>
}

// -----

// Regions that would need each other's output: a1 -> h1 (host) -> b1 and
// b0 -> h2 (host) -> a2. Merging {a1, a2} and {b0, b1} passes the weak rule (no path
// leaves a region and re-enters it) but the contracted graph would have the cycle
// A -> h1 -> B -> h2 -> A. So a2 is not merged with a1: three regions.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @mutual
// CHECK:       [[A1:%.+]] = linalg.generic {{.*}} ins(%arg0, %arg0 : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       [[B0:%.+]] = linalg.generic {{.*}} ins(%arg1, %arg1 : {{.*}}byoc.region = 1 : i64, byoc.target = "testing"}
// CHECK:       [[H1:%.+]] = linalg.generic {{.*}} ins([[A1]] : {{.*}}byoc.reason = "rejected: testing: linalg.generic computing math.tanh is not supported"
// CHECK:       [[H2:%.+]] = linalg.generic {{.*}} ins([[B0]] : {{.*}}byoc.reason = "rejected: testing: generic:exp is not supported"
// CHECK:       linalg.generic {{.*}} ins([[H1]], [[B0]] : {{.*}}byoc.region = 1 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic
// CHECK-NOT:   byoc.region = 0
// CHECK-SAME:  ins([[H2]], [[A1]] :
// CHECK-SAME:  byoc.region = 2 : i64, byoc.target = "testing"}
func.func @mutual(%x: tensor<16xf32>, %y: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>) {
  %e = tensor.empty() : tensor<16xf32>
  %a1 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%x, %x : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.mulf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %b0 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%y, %y : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.mulf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %h1 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%a1 : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %t = math.tanh %p : f32
    linalg.yield %t : f32
  } -> tensor<16xf32>
  %h2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%b0 : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %t = math.exp %p : f32
    linalg.yield %t : f32
  } -> tensor<16xf32>
  %b1 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%h1, %b0 : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %a2 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%h2, %a1 : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  return %b1, %a2 : tensor<16xf32>, tensor<16xf32>
}

// -----

// min-size: a one-op region between host ops goes back to the host; the two-op region
// after it is kept and renumbered from 0.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @min_size
// CHECK:       byoc.region = 0 : i64
// CHECK:       math.tanh
// CHECK:       byoc.region = 1 : i64
// CHECK:       byoc.region = 1 : i64

// MIN2-LABEL: func.func @min_size
// MIN2:       [[R:%.+]] = linalg.generic
// MIN2-NOT:   byoc.region
// MIN2-SAME:  ins(%arg0 : {{.*}}byoc.reason = "dropped: region too small (1 op(s) < min-size 2)"
// MIN2:       [[T:%.+]] = linalg.generic {{.*}} ins([[R]] : {{.*}}byoc.reason = "rejected: testing:
// MIN2:       [[M:%.+]] = linalg.generic {{.*}} ins([[T]], [[T]] : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// MIN2:       linalg.generic {{.*}} ins([[M]], [[M]] : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
func.func @min_size(%x: tensor<16xf32>) -> tensor<16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %z = arith.maximumf %p, %cst : f32
    linalg.yield %z : f32
  } -> tensor<16xf32>
  %t = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%r : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %y = math.tanh %p : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  %m = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%t, %t : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.mulf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %s = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%m, %m : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %d = arith.subf %p, %q : f32
    linalg.yield %d : f32
  } -> tensor<16xf32>
  return %s : tensor<16xf32>
}

// -----

// max-size: a chain of four supported ops is one region, or two of two ops each.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @max_size
// CHECK-COUNT-4: byoc.region = 0 : i64
// CHECK-NOT:   byoc.region = 1
// CHECK:       return

// MAX2-LABEL: func.func @max_size
// MAX2:       [[R0:%.+]] = linalg.generic {{.*}} ins(%arg0 : {{.*}}byoc.region = 0 : i64
// MAX2:       [[R1:%.+]] = linalg.generic {{.*}} ins([[R0]], [[R0]] : {{.*}}byoc.region = 0 : i64
// MAX2:       [[R2:%.+]] = linalg.generic {{.*}} ins([[R1]], %arg0 : {{.*}}byoc.region = 1 : i64
// MAX2:       linalg.generic {{.*}} ins([[R2]], [[R2]] : {{.*}}byoc.region = 1 : i64
// MAX2-NOT:   byoc.region = 2
// MAX2:       return
func.func @max_size(%x: tensor<16xf32>) -> tensor<16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16xf32>
  %r0 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %z = arith.maximumf %p, %cst : f32
    linalg.yield %z : f32
  } -> tensor<16xf32>
  %r1 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%r0, %r0 : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.mulf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %r2 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%r1, %x : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %r3 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%r2, %r2 : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.subf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  return %r3 : tensor<16xf32>
}

// -----

// Backend priority on overlapping support: a plain matmul (no bias, so no composite)
// goes to the first listed backend that accepts it. testing_matmul first: the matmul is
// its own testing_matmul region and the relu a testing region. testing first: one
// testing region.

#map = affine_map<(d0, d1) -> (d0, d1)>
// MMFIRST-LABEL: func.func @priority
// MMFIRST:       [[M:%.+]] = linalg.matmul {byoc.accept = ["testing_matmul", "testing"], byoc.region = 0 : i64, byoc.target = "testing_matmul"}
// MMFIRST:       linalg.generic
// MMFIRST-NOT:   byoc.region = 0
// MMFIRST-SAME:  ins([[M]] : {{.*}}byoc.region = 1 : i64, {{.*}}byoc.target = "testing"}

// TFIRST-LABEL: func.func @priority
// TFIRST:       [[M:%.+]] = linalg.matmul {byoc.accept = ["testing", "testing_matmul"], byoc.region = 0 : i64, byoc.target = "testing"}
// TFIRST:       linalg.generic {{.*}} ins([[M]] : {{.*}}byoc.region = 0 : i64, {{.*}}byoc.target = "testing"}
// TFIRST-NOT:   testing_matmul"}
// TFIRST:       return
func.func @priority(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>, %init: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x4xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%init : tensor<4x4xf32>) -> tensor<4x4xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]} ins(%m : tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
  ^bb0(%x: f32, %o: f32):
    %z = arith.maximumf %x, %cst : f32
    linalg.yield %z : f32
  } -> tensor<4x4xf32>
  return %r : tensor<4x4xf32>
}

// -----

// Siblings: two supported ops that share only a function argument; their consumers are
// on the host. merge-siblings (default) puts them in one region; off, two regions.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @siblings
// CHECK:       linalg.generic {{.*}} ins(%arg0 : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       linalg.generic {{.*}} ins(%arg0, %arg0 : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK-NOT:   byoc.region = 1
// CHECK:       return

// NOSIB-LABEL: func.func @siblings
// NOSIB:       linalg.generic {{.*}} ins(%arg0 : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// NOSIB:       linalg.generic
// NOSIB-NOT:   byoc.region = 0
// NOSIB-SAME:  ins(%arg0, %arg0 : {{.*}}byoc.region = 1 : i64, byoc.target = "testing"}
func.func @siblings(%x: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %z = arith.maximumf %p, %cst : f32
    linalg.yield %z : f32
  } -> tensor<16xf32>
  %m = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%x, %x : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.mulf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %t = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%r : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %y = math.tanh %p : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  %u = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%m : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %y = math.exp %p : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  return %t, %u : tensor<16xf32>, tensor<16xf32>
}

// -----

// IREE's input-phase form: util.func / util.return is partitioned like func.func.

// CHECK-LABEL: util.func public @main
// CHECK:       linalg.fill {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK-NEXT:  linalg.matmul {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK-NEXT:  util.return
util.func public @main(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>) -> tensor<4x4xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x4xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<4x4xf32>) -> tensor<4x4xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%f : tensor<4x4xf32>) -> tensor<4x4xf32>
  util.return %m : tensor<4x4xf32>
}

// -----

// A region of nothing but linalg.fill that only host ops read stays on the host (here
// the init of a max-pooling nobody accepts): offloading it buys a boundary crossing,
// and IREE cannot always distribute a dispatch whose init arrives from outside. A fill
// read by another region still forms its own region (with testing_matmul first, the
// matmul goes there and the fill to testing: the crossing happens either way).

// CHECK-LABEL: func.func @fill_for_the_host
// CHECK:       linalg.fill {{.*}}byoc.reason = "dropped: region only fills a tensor the host reads (the host fills it in place)"
// CHECK-NEXT:  linalg.pooling_nchw_max {{.*}}byoc.reason = "rejected: testing: linalg.pooling_nchw_max is not supported"
// CHECK:       linalg.fill {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK-NEXT:  linalg.matmul {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// MMFIRST-LABEL: func.func @fill_for_the_host
// MMFIRST:       linalg.fill {{.*}}byoc.reason = "dropped: region only fills
// MMFIRST:       linalg.fill {{.*}}byoc.region = 0 : i64, {{.*}}byoc.target = "testing"}
// MMFIRST-NEXT:  linalg.matmul {{.*}}byoc.region = 1 : i64, byoc.target = "testing_matmul"}
func.func @fill_for_the_host(%x: tensor<1x1x4x4xf32>, %a: tensor<4x8xf32>, %b: tensor<8x4xf32>) -> (tensor<1x1x2x2xf32>, tensor<4x4xf32>) {
  %ninf = arith.constant 0xFF800000 : f32
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x1x2x2xf32>
  %w = tensor.empty() : tensor<2x2xf32>
  %init = linalg.fill ins(%ninf : f32) outs(%e : tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  %p = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x1x4x4xf32>, tensor<2x2xf32>) outs(%init : tensor<1x1x2x2xf32>) -> tensor<1x1x2x2xf32>
  %e2 = tensor.empty() : tensor<4x4xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e2 : tensor<4x4xf32>) -> tensor<4x4xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%f : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %p, %m : tensor<1x1x2x2xf32>, tensor<4x4xf32>
}

// -----

// Tied weights: one argument read by every layer, the layers ordered by a path through
// the host (tanh). Sibling merging tries each sibling against the latest one a path
// ordered it after (never every earlier one again: that was quadratic in the layers), so
// the last, independent sibling joins the second layer, not the first.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @tied
// CHECK:       linalg.generic {{.*}} ins(%arg0, %arg1 : {{.*}}byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       math.tanh
// CHECK:       linalg.generic {{.*}} ins(%arg0, {{.*}}byoc.region = 1 : i64, byoc.target = "testing"}
// CHECK:       math.tanh
// CHECK:       linalg.generic {{.*}} ins(%arg0, %arg0 : {{.*}}byoc.region = 1 : i64, byoc.target = "testing"}
// CHECK-NOT:   byoc.region = 2
// CHECK:       return
func.func @tied(%w: tensor<16xf32>, %x: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>) {
  %e = tensor.empty() : tensor<16xf32>
  %s0 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%w, %x : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %y = arith.mulf %p, %q : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  %t0 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%s0 : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %y = math.tanh %p : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  %s1 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%w, %t0 : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %y = arith.mulf %p, %q : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  %t1 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%s1 : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %y = math.tanh %p : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  %s2 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%w, %w : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %y = arith.mulf %p, %q : f32
    linalg.yield %y : f32
  } -> tensor<16xf32>
  return %t1, %s2 : tensor<16xf32>, tensor<16xf32>
}
