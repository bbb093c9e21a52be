// RUN: byoc-opt %s --split-input-file --byoc-fold-broadcast-extracts | FileCheck %s

// byoc-fold-broadcast-extracts: IREE's ONNX lowering of a broadcast between dynamic
// sizes reads the small operand by tensor.extract, choosing index 0 where its size is
// 1 at run time. When the size compared with 1 is the output's own size on that dim
// (here the same index_cast repeated, as the importer writes it), the read is a plain
// broadcast through an indexing map.

// CHECK-DAG:   #[[ID:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG:   #[[ROW:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, 0)>
// CHECK-LABEL: func.func @layernorm_mean
// CHECK:       linalg.generic {indexing_maps = [#[[ROW]], #[[ID]]]
// CHECK-SAME:  ins(%arg0 : tensor<?x?x1xf32>)
// CHECK-NEXT:  ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT:    linalg.yield %[[IN]] : f32
// CHECK-NOT:   tensor.extract
func.func @layernorm_mean(%mean: tensor<?x?x1xf32>, %b: i64, %s: i64) -> tensor<?x?x256xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %nb = arith.index_cast %b : i64 to index
  %ns = arith.index_cast %s : i64 to index
  %nb2 = arith.index_cast %b : i64 to index
  %ns2 = arith.index_cast %s : i64 to index
  %e = tensor.empty(%nb2, %ns2) : tensor<?x?x256xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} outs(%e : tensor<?x?x256xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %bi = arith.cmpi eq, %nb, %c1 : index
    %si = arith.select %bi, %c0, %i : index
    %bj = arith.cmpi eq, %ns, %c1 : index
    %sj = arith.select %bj, %c0, %j : index
    %x = tensor.extract %mean[%si, %sj, %c0] : tensor<?x?x1xf32>
    linalg.yield %x : f32
  } -> tensor<?x?x256xf32>
  return %r : tensor<?x?x256xf32>
}

// -----

// A size compared with 1 that is not the output's: the select may differ from the
// index (a real runtime broadcast), so the generic stays.
// CHECK-LABEL: func.func @other_size
// CHECK:       tensor.extract
func.func @other_size(%v: tensor<?x4xf32>, %n: index, %m: index) -> tensor<?x4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %e = tensor.empty(%m) : tensor<?x4xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} outs(%e : tensor<?x4xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %b = arith.cmpi eq, %n, %c1 : index
    %s = arith.select %b, %c0, %i : index
    %x = tensor.extract %v[%s, %j] : tensor<?x4xf32>
    linalg.yield %x : f32
  } -> tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}
