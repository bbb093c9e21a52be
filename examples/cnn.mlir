// A small CNN as linalg-on-tensors: conv+bias+relu, max-pool (left on the host by every
// reference backend), conv+bias+relu, then a flatten-free global sum head (host).
#nchw = affine_map<(n, c, h, w) -> (n, c, h, w)>
#chan = affine_map<(n, c, h, w) -> (c)>
func.func @main(%x: tensor<1x3x34x34xf32>, %w0: tensor<16x3x3x3xf32>, %b0: tensor<16xf32>,
                %w1: tensor<32x16x3x3xf32>, %b1: tensor<32xf32>) -> tensor<1x32x14x14xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant -3.40282347E+38 : f32
  %e0 = tensor.empty() : tensor<1x16x32x32xf32>
  %f0 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<1x16x32x32xf32>) -> tensor<1x16x32x32xf32>
  %c0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w0 : tensor<1x3x34x34xf32>, tensor<16x3x3x3xf32>) outs(%f0 : tensor<1x16x32x32xf32>) -> tensor<1x16x32x32xf32>
  %a0 = linalg.generic {indexing_maps = [#nchw, #chan, #nchw], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c0, %b0 : tensor<1x16x32x32xf32>, tensor<16xf32>) outs(%e0 : tensor<1x16x32x32xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<1x16x32x32xf32>
  %r0 = linalg.generic {indexing_maps = [#nchw, #nchw], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%a0 : tensor<1x16x32x32xf32>) outs(%e0 : tensor<1x16x32x32xf32>) {
  ^bb0(%p: f32, %o: f32):
    %s = arith.maximumf %p, %zero : f32
    linalg.yield %s : f32
  } -> tensor<1x16x32x32xf32>
  %ep = tensor.empty() : tensor<1x16x16x16xf32>
  %fp = linalg.fill ins(%ninf : f32) outs(%ep : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %win = tensor.empty() : tensor<2x2xf32>
  %p0 = linalg.pooling_nchw_max {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
      ins(%r0, %win : tensor<1x16x32x32xf32>, tensor<2x2xf32>) outs(%fp : tensor<1x16x16x16xf32>) -> tensor<1x16x16x16xf32>
  %e1 = tensor.empty() : tensor<1x32x14x14xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x32x14x14xf32>) -> tensor<1x32x14x14xf32>
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%p0, %w1 : tensor<1x16x16x16xf32>, tensor<32x16x3x3xf32>) outs(%f1 : tensor<1x32x14x14xf32>) -> tensor<1x32x14x14xf32>
  %a1 = linalg.generic {indexing_maps = [#nchw, #chan, #nchw], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c1, %b1 : tensor<1x32x14x14xf32>, tensor<32xf32>) outs(%e1 : tensor<1x32x14x14xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<1x32x14x14xf32>
  %r1 = linalg.generic {indexing_maps = [#nchw, #nchw], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%a1 : tensor<1x32x14x14xf32>) outs(%e1 : tensor<1x32x14x14xf32>) {
  ^bb0(%p: f32, %o: f32):
    %s = arith.maximumf %p, %zero : f32
    linalg.yield %s : f32
  } -> tensor<1x32x14x14xf32>
  return %r1 : tensor<1x32x14x14xf32>
}
