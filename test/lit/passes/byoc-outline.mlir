// RUN: byoc-opt %s --split-input-file --backend testing --partition | FileCheck %s
// RUN: byoc-opt %s --split-input-file --backend testing --byoc-annotate --byoc-composites --byoc-merge-regions --byoc-outline="move-weights=true" | FileCheck %s --check-prefix=MOVE
// RUN: byoc-opt %s --split-input-file --backend testing --byoc-annotate --byoc-composites --byoc-merge-regions --byoc-outline="clone-limit=2" | FileCheck %s --check-prefix=LIMIT
// RUN: byoc-opt %s --split-input-file --backend testing --partition --canonicalize --cse --symbol-dce | FileCheck %s --check-prefix=CLEAN
// RUN: not byoc-opt %s --split-input-file --byoc-outline 2>&1 | FileCheck %s --check-prefix=CYCLE

// byoc-outline moves each tagged region into a private @<backend>.<function>_<region>
// function and replaces it by a call. Free ops (constants, tensor.empty) are cloned in
// when small; large weights become arguments unless move-weights is set.

// The basic case: the function's signature is what the region reads and what it
// leaves for the host; the members lose their tags, the function carries them.

// CHECK-LABEL: func.func @main(%arg0: tensor<4x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<4x4xf32> {
// CHECK:       [[R:%.+]] = call @testing.main_0(%arg0, %arg1) : (tensor<4x8xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:  return [[R]] : tensor<4x4xf32>
// CHECK-LABEL: func.func private @testing.main_0(%arg0: tensor<4x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<4x4xf32> attributes {byoc.composites = [], byoc.region = 0 : i64, byoc.target = "testing"} {
// CHECK-DAG:   [[CST:%.+]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG:   [[E:%.+]] = tensor.empty() : tensor<4x4xf32>
// CHECK:       [[F:%.+]] = linalg.fill ins([[CST]] : f32) outs([[E]] : tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:  [[M:%.+]] = linalg.matmul ins(%arg0, %arg1 : tensor<4x8xf32>, tensor<8x4xf32>) outs([[F]] : tensor<4x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:  return [[M]] : tensor<4x4xf32>
// CHECK-NEXT:  }

// After canonicalize/cse/symbol-dce the host keeps only the call; the outlined
// function is used, so symbol-dce keeps it.
// CLEAN-LABEL: func.func @main
// CLEAN-NEXT:  [[R:%.+]] = call @testing.main_0(%arg0, %arg1)
// CLEAN-NEXT:  return [[R]]
// CLEAN-LABEL: func.func private @testing.main_0
// CLEAN:       linalg.matmul
func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>) -> tensor<4x4xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x4xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<4x4xf32>) -> tensor<4x4xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%f : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %m : tensor<4x4xf32>
}

// -----

// Weights. By default (clone-limit=16) the 32-element bias is passed as an argument;
// the 4-element one and the splat are cloned in. clone-limit=2 passes the 4-element
// one too (a splat is always cloned); move-weights=true clones everything.

#map = affine_map<(d0, d1) -> (d0, d1)>
#cols = affine_map<(d0, d1) -> (d1)>
#rows = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @weights
// CHECK:       [[BIG:%.+]] = arith.constant dense<[0.000000e+00, 1.000000e+00, {{.*}}, 3.100000e+01]> : tensor<32xf32>
// CHECK:       [[R:%.+]] = call @testing.weights_0(%arg0, %arg1, [[BIG]]) : (tensor<4x8xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x32xf32>
// CHECK-NEXT:  return [[R]]
// CHECK-LABEL: func.func private @testing.weights_0(%arg0: tensor<4x8xf32>, %arg1: tensor<8x32xf32>, %arg2: tensor<32xf32>) -> tensor<4x32xf32> attributes {byoc.composites = ["matmul_bias"], byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK-NOT:   tensor<32xf32>
// CHECK-DAG:   [[SMALL:%.+]] = arith.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32>
// CHECK-DAG:   [[SPLAT:%.+]] = arith.constant dense<5.000000e-01> : tensor<4x32xf32>
// CHECK:       [[M:%.+]] = linalg.matmul
// CHECK-NEXT:  [[B:%.+]] = linalg.generic {{.*}} ins([[M]], %arg2 :
// CHECK:       [[S:%.+]] = linalg.generic {{.*}} ins([[B]], [[SPLAT]] :
// CHECK:       [[T:%.+]] = linalg.generic {{.*}} ins([[S]], [[SMALL]] :
// CHECK:       return [[T]]

// LIMIT-LABEL: func.func @weights
// LIMIT:       call @testing.weights_0(%arg0, %arg1, %{{.+}}, %{{.+}}) : (tensor<4x8xf32>, tensor<8x32xf32>, tensor<32xf32>, tensor<4xf32>) -> tensor<4x32xf32>
// LIMIT-LABEL: func.func private @testing.weights_0(%arg0: tensor<4x8xf32>, %arg1: tensor<8x32xf32>, %arg2: tensor<32xf32>, %arg3: tensor<4xf32>)
// LIMIT:       arith.constant dense<5.000000e-01> : tensor<4x32xf32>
// LIMIT:       linalg.generic {{.*}} ins(%{{.+}}, %arg3 :

// MOVE-LABEL: func.func @weights
// MOVE:       call @testing.weights_0(%arg0, %arg1) : (tensor<4x8xf32>, tensor<8x32xf32>) -> tensor<4x32xf32>
// MOVE-LABEL: func.func private @testing.weights_0(%arg0: tensor<4x8xf32>, %arg1: tensor<8x32xf32>) -> tensor<4x32xf32>
// MOVE-DAG:   [[BIG:%.+]] = arith.constant dense<[0.000000e+00, 1.000000e+00, {{.*}}]> : tensor<32xf32>
// MOVE-DAG:   [[SMALL:%.+]] = arith.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32>
// MOVE:       linalg.generic {{.*}} ins(%{{.+}}, [[BIG]] :
// MOVE:       linalg.generic {{.*}} ins(%{{.+}}, [[SMALL]] :

// CLEAN-LABEL: func.func @weights
// CLEAN-NEXT:  [[BIG:%.+]] = arith.constant dense<{{.*}}> : tensor<32xf32>
// CLEAN-NEXT:  [[R:%.+]] = call @testing.weights_0(%arg0, %arg1, [[BIG]])
// CLEAN-NEXT:  return [[R]]
func.func @weights(%a: tensor<4x8xf32>, %b: tensor<8x32xf32>) -> tensor<4x32xf32> {
  %zero = arith.constant 0.0 : f32
  %big = arith.constant dense<[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0, 28.0, 29.0, 30.0, 31.0]> : tensor<32xf32>
  %small = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %splat = arith.constant dense<0.5> : tensor<4x32xf32>
  %e = tensor.empty() : tensor<4x32xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x32xf32>) -> tensor<4x32xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x32xf32>) outs(%f : tensor<4x32xf32>) -> tensor<4x32xf32>
  %ba = linalg.generic {indexing_maps = [#map, #cols, #map], iterator_types = ["parallel", "parallel"]} ins(%m, %big : tensor<4x32xf32>, tensor<32xf32>) outs(%e : tensor<4x32xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x32xf32>
  %mul = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel"]} ins(%ba, %splat : tensor<4x32xf32>, tensor<4x32xf32>) outs(%e : tensor<4x32xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.mulf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x32xf32>
  %rb = linalg.generic {indexing_maps = [#map, #rows, #map], iterator_types = ["parallel", "parallel"]} ins(%mul, %small : tensor<4x32xf32>, tensor<4xf32>) outs(%e : tensor<4x32xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<4x32xf32>
  return %rb : tensor<4x32xf32>
}

// -----

// IREE's input form: util.func gets a util.func callee and a util.call.

// CHECK-LABEL: util.func public @main(%arg0: tensor<4x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<4x4xf32> {
// CHECK:       [[R:%.+]] = util.call @testing.main_0(%arg0, %arg1) : (tensor<4x8xf32>, tensor<8x4xf32>) -> tensor<4x4xf32>
// CHECK-NEXT:  util.return [[R]] : tensor<4x4xf32>
// CHECK-LABEL: util.func private @testing.main_0(%arg0: tensor<4x8xf32>, %arg1: tensor<8x4xf32>) -> tensor<4x4xf32> attributes {byoc.composites = [], byoc.region = 0 : i64, byoc.target = "testing"} {
// CHECK:       linalg.matmul ins(%arg0, %arg1
// CHECK-NEXT:  util.return
util.func public @main(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>) -> tensor<4x4xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x4xf32>
  %f = linalg.fill ins(%cst : f32) outs(%e : tensor<4x4xf32>) -> tensor<4x4xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%f : tensor<4x4xf32>) -> tensor<4x4xf32>
  util.return %m : tensor<4x4xf32>
}

// -----

// Order fix-up: the tanh (host) sits between the region's members and reads the
// region's first result. The call takes the place of the last member, so the tanh must
// move after it. Host ops keep byoc.reason and nothing else.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @fixup
// CHECK:       [[R:%.+]]:2 = call @testing.fixup_0(%arg0) : (tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>)
// CHECK-NEXT:  [[H:%.+]] = linalg.generic {{.*}} ins([[R]]#0 : tensor<16xf32>) {{.*}} attrs = {byoc.reason = "rejected: testing: linalg.generic computing math.tanh is not supported"} {
// CHECK-NEXT:  ^bb0
// CHECK-NEXT:  math.tanh
// CHECK:       return [[H]], [[R]]#1
// CHECK-LABEL: func.func private @testing.fixup_0(%arg0: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>)
// CHECK-NOT:   math.tanh
// CHECK:       [[A:%.+]] = linalg.generic {{.*}} ins(%arg0 :
// CHECK:       [[B:%.+]] = linalg.generic {{.*}} ins([[A]], [[A]] :
// CHECK-NOT:   math.tanh
// CHECK:       return [[A]], [[B]]

// The same when the passes run one by one (tags are then written to the IR): the host
// op keeps byoc.reason only, byoc.accept and byoc.reject are gone.
// MOVE-LABEL: func.func @fixup
// MOVE:       [[R:%.+]]:2 = call @testing.fixup_0(%arg0)
// MOVE-NEXT:  linalg.generic {{.*}} ins([[R]]#0 : tensor<16xf32>) {{.*}} attrs = {byoc.reason = "rejected: testing: linalg.generic computing math.tanh is not supported"} {
func.func @fixup(%x: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>) {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16xf32>
  %a = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %z = arith.maximumf %p, %cst : f32
    linalg.yield %z : f32
  } -> tensor<16xf32>
  %h = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%a : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %t = math.tanh %p : f32
    linalg.yield %t : f32
  } -> tensor<16xf32>
  %b = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%a, %a : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.mulf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  return %h, %b : tensor<16xf32>, tensor<16xf32>
}

// -----

// One region feeds another (the diamond: a -> (tanh, relu) -> add). The second call
// takes the first call's result, not the value that moved into @testing.diamond_0.
// A scalar captured by a generic body (the relu's zero) is cloned in as well.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @diamond
// CHECK:       [[R:%.+]]:2 = call @testing.diamond_0(%arg0) : (tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>)
// CHECK-NEXT:  [[H:%.+]] = linalg.generic {{.*}} ins([[R]]#0 :
// CHECK:       [[D:%.+]] = call @testing.diamond_1([[H]], [[R]]#1) : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
// CHECK-NEXT:  return [[D]]
// CHECK-LABEL: func.func private @testing.diamond_0(%arg0: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>)
// CHECK-DAG:   [[ZERO:%.+]] = arith.constant 0.000000e+00 : f32
// CHECK-DAG:   [[A:%.+]] = linalg.generic {{.*}} ins(%arg0, %arg0 :
// CHECK:       linalg.generic {{.*}} ins([[A]] :
// CHECK:       arith.maximumf %{{.+}}, [[ZERO]] : f32
// CHECK-LABEL: func.func private @testing.diamond_1(%arg0: tensor<16xf32>, %arg1: tensor<16xf32>) -> tensor<16xf32>
// CHECK:       linalg.generic {{.*}} ins(%arg0, %arg1 :
// CHECK:       arith.addf
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

// A TOSA module end to end: conv2d + clamp (one composite) and add + mul form two
// regions around a host tanh. The zero-point constant is cloned into the conv region.

// CHECK-LABEL: func.func @tosa_net
// CHECK:       [[C:%.+]] = call @testing.tosa_net_0(%arg0, %arg1, %arg2) : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x6x6x4xf32>
// CHECK-NEXT:  [[T:%.+]] = tosa.tanh [[C]] {byoc.reason = "rejected: testing: tosa.tanh is not supported"}
// CHECK-NEXT:  [[S:%.+]] = call @testing.tosa_net_1([[T]], %arg3) : (tensor<1x6x6x4xf32>, tensor<1x6x6x4xf32>) -> tensor<1x6x6x4xf32>
// CHECK-NEXT:  return [[S]]
// CHECK-LABEL: func.func private @testing.tosa_net_0({{.*}}) -> tensor<1x6x6x4xf32> attributes {byoc.composites = ["tosa_conv2d_clamp"], byoc.region = 0 : i64, byoc.target = "testing"}
// CHECK:       [[ZP:%.+]] = tosa.const values(dense<0.000000e+00> : tensor<1xf32>)
// CHECK:       [[CV:%.+]] = tosa.conv2d %arg0, %arg1, %arg2, [[ZP]], [[ZP]]
// CHECK-NEXT:  [[CL:%.+]] = tosa.clamp [[CV]]
// CHECK-NEXT:  return [[CL]]
// CHECK-LABEL: func.func private @testing.tosa_net_1({{.*}}) -> tensor<1x6x6x4xf32> attributes {byoc.composites = [], byoc.region = 1 : i64, byoc.target = "testing"}
// CHECK:       [[A:%.+]] = tosa.add %arg0, %arg1 :
// CHECK-NEXT:  [[M:%.+]] = tosa.mul [[A]], [[A]], %{{.+}} :
// CHECK-NEXT:  return [[M]]
func.func @tosa_net(%x: tensor<1x8x8x3xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>, %y: tensor<1x6x6x4xf32>) -> tensor<1x6x6x4xf32> {
  %zp = "tosa.const"() <{values = dense<0.0> : tensor<1xf32>}> : () -> tensor<1xf32>
  %shift = "tosa.const"() <{values = dense<0> : tensor<1xi8>}> : () -> tensor<1xi8>
  %c = tosa.conv2d %x, %w, %b, %zp, %zp pad([0, 0, 0, 0]) stride([1, 1]) dilation([1, 1]) acc_type(f32) : (tensor<1x8x8x3xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x6x6x4xf32>
  %r = tosa.clamp %c min_val(0.0 : f32) max_val(3.4e38 : f32) : (tensor<1x6x6x4xf32>) -> tensor<1x6x6x4xf32>
  %t = tosa.tanh %r : (tensor<1x6x6x4xf32>) -> tensor<1x6x6x4xf32>
  %s = tosa.add %t, %y : (tensor<1x6x6x4xf32>, tensor<1x6x6x4xf32>) -> tensor<1x6x6x4xf32>
  %m = tosa.mul %s, %s, %shift : (tensor<1x6x6x4xf32>, tensor<1x6x6x4xf32>, tensor<1xi8>) -> tensor<1x6x6x4xf32>
  return %m : tensor<1x6x6x4xf32>
}

// -----

// Names: the function name is sanitised into a C identifier, and a name already
// taken in the module gets a suffix.

#map = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @"my-net.v2"
// CHECK:       call @testing.my_net_v2_0(%arg0)
// CHECK-LABEL: func.func @main
// CHECK:       call @testing.main_0_1(%arg0)
// CHECK-LABEL: func.func private @testing.main_0(
// CHECK-NEXT:  return %arg0
// CHECK-LABEL: func.func private @testing.my_net_v2_0(
// CHECK-LABEL: func.func private @testing.main_0_1(
func.func @"my-net.v2"(%x: tensor<16xf32>) -> tensor<16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %z = arith.maximumf %p, %cst : f32
    linalg.yield %z : f32
  } -> tensor<16xf32>
  return %r : tensor<16xf32>
}
func.func @main(%x: tensor<16xf32>) -> tensor<16xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<16xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%x : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %z = arith.maximumf %p, %cst : f32
    linalg.yield %z : f32
  } -> tensor<16xf32>
  return %r : tensor<16xf32>
}
func.func private @testing.main_0(%x: tensor<16xf32>) -> tensor<16xf32> {
  return %x : tensor<16xf32>
}

// -----

// Guard: tags that make two parts of one region depend on each other through a host
// op (a -> tanh -> b, a and b both region 0) are refused with a located error, never
// outlined into invalid IR. (--partition re-plans the regions, so it is fine there.)

#map = affine_map<(d0) -> (d0)>
// CYCLE: byoc-outline.mlir:[[# @LINE + 6]]:{{[0-9]+}}: error: tagged regions depend on each other in a cycle (testing region 0); re-run byoc-merge-regions to form valid regions
// CHECK-LABEL: func.func @stale_tags
// CHECK:       call @testing.stale_tags_0(%arg0)
// CHECK:       call @testing.stale_tags_1(
func.func @stale_tags(%x: tensor<16xf32>) -> tensor<16xf32> {
  %e = tensor.empty() : tensor<16xf32>
  %a = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%x, %x : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) attrs = {byoc.region = 0 : i64, byoc.target = "testing"} {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.mulf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  %h = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]} ins(%a : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%p: f32, %o: f32):
    %t = math.tanh %p : f32
    linalg.yield %t : f32
  } -> tensor<16xf32>
  %b = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel"]} ins(%h, %h : tensor<16xf32>, tensor<16xf32>) outs(%e : tensor<16xf32>) attrs = {byoc.region = 0 : i64, byoc.target = "testing"} {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  return %b : tensor<16xf32>
}
