module {
  util.func public @main(%arg0: tensor<4x8xf32>, %arg1: tensor<8x16xf32>, %arg2: tensor<16xf32>, %arg3: tensor<16x16xf32>, %arg4: tensor<16xf32>) -> tensor<4x16xf32> {
    %cst = arith.constant 0.000000e+00 : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":8:11)
    %0 = tensor.empty() : tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":9:8)
    %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<4x16xf32>) -> tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":10:9)
    %2 = linalg.matmul ins(%arg0, %arg1 : tensor<4x8xf32>, tensor<8x16xf32>) outs(%1 : tensor<4x16xf32>) -> tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":11:9)
    %3 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%2, %arg2 : tensor<4x16xf32>, tensor<16xf32>) outs(%0 : tensor<4x16xf32>) {
    ^bb0(%in: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":14:8), %in_0: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":14:17), %out: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":14:26)):
      %10 = arith.addf %in, %in_0 : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":15:10)
      linalg.yield %10 : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":16:5)
    } -> tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":12:9)
    %4 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%3 : tensor<4x16xf32>) outs(%0 : tensor<4x16xf32>) {
    ^bb0(%in: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":20:8), %out: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":20:17)):
      %10 = arith.maximumf %in, %cst : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":21:10)
      linalg.yield %10 : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":22:5)
    } -> tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":18:9)
    %5 = linalg.fill ins(%cst : f32) outs(%0 : tensor<4x16xf32>) -> tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":24:9)
    %6 = linalg.matmul ins(%4, %arg3 : tensor<4x16xf32>, tensor<16x16xf32>) outs(%5 : tensor<4x16xf32>) -> tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":25:9)
    %7 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%6, %arg4 : tensor<4x16xf32>, tensor<16xf32>) outs(%0 : tensor<4x16xf32>) {
    ^bb0(%in: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":28:8), %in_0: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":28:17), %out: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":28:26)):
      %10 = arith.addf %in, %in_0 : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":29:10)
      linalg.yield %10 : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":30:5)
    } -> tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":26:9)
    %8 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%7 : tensor<4x16xf32>) outs(%0 : tensor<4x16xf32>) {
    ^bb0(%in: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":34:8), %out: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":34:17)):
      %10 = arith.maximumf %in, %cst : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":35:10)
      linalg.yield %10 : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":36:5)
    } -> tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":32:9)
    %9 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%8 : tensor<4x16xf32>) outs(%0 : tensor<4x16xf32>) {
    ^bb0(%in: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":40:8), %out: f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":40:17)):
      %10 = math.tanh %in : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":41:10)
      linalg.yield %10 : f32 loc("/work/main/examples/mynpu/test/../../mlp.mlir":42:5)
    } -> tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":38:8)
    util.return %9 : tensor<4x16xf32> loc("/work/main/examples/mynpu/test/../../mlp.mlir":44:3)
  } loc("/work/main/examples/mynpu/test/../../mlp.mlir":6:1)
} loc("/work/main/examples/mynpu/test/../../mlp.mlir":0:0)