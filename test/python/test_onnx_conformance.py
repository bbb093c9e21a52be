"""ONNX's own backend tests through byoc_mlir: each case a regression found by the runner.

``bench/onnx_conformance.py`` runs the whole material (about 1350 cases) and prints the
README's table; these are the cases behind each of its fixes, small enough for every
test run: crashes that became clean refusals, answers that were wrong, dtypes that were
lost, ops that were refused. The slow test runs a broader slice through the runner's
worker pool on every target and asserts its headline: no crash, no error, no WRONG.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from iree.compiler import ir

import byoc_mlir
from byoc_mlir import _compat, frontends, normalise
from byoc_mlir.host_compile import iree
from byoc_mlir.options import BEST_CPU_FLAGS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import onnx_conformance as oc  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    oc.NODE_CASES.update(oc.node_testcases())

PASSING = {
    # dtypes and ranks kept
    "node/test_add_uint8": "uint8 results came back as int8",
    # batched QLinearMatMul: IREE multiplied it wrongly; now integer MatMul + requantize
    "node/test_qlinearmatmul_3D_uint8_float32": "refused (IREE off by up to 134 steps)",
    "node/test_qlinearmatmul_3D_int8_float16": "refused (IREE off by up to 27 steps)",
    "node/test_cast_FLOAT_to_DOUBLE": "f64 was demoted to f32",
    "node/test_clip_default_inbounds": "rank-0 min/max inputs were refused",
    "node/test_pow_types_float32_int32": "mixed-type Pow",
    # our passes left invalid IR (fold-constants made rank 0 rank 1)
    "node/test_gelu_default_1_expanded": "invalid IR from byoc-fold-constants",
    # ops IREE lacks, expanded to their ONNX function bodies
    "node/test_attention_3d": "onnx.Attention did not lower",
    "node/test_rms_normalization_2d_axis0": "onnx.RMSNormalization did not lower",
    # shape arithmetic folded to constants before import
    "node/test_rms_normalization_2d_axis0_expanded": "ReduceMean's computed axes",
    # a decomposition where IREE divided by a zero norm
    "node/test_l2normalization_axis_0": "NaN where ONNX gives 0",
    # an old-opset model the opset upgrade used to break
    "pytorch-converted/test_ConstantPad2d": "initializer but not in graph input",
    # crashed IREE's importer (SIGSEGV); its shape arithmetic now folds first
    "node/test_rotary_embedding_3d_input_expanded": "the process died",
    # shape inputs bound as constants (the runner's retry)
    "node/test_reduce_max_do_not_keepdims_example": "axes as a graph input",
    # Resize configurations rewritten as per-axis linear maps (onnx_resize)
    "node/test_resize_upsample_scales_cubic_align_corners": "IREE computed it wrongly",
    "node/test_resize_downsample_scales_linear_antialias": "onnx.Resize did not lower",
    "node/test_resize_tf_crop_and_resize_extrapolation_value": "crop + extrapolation",
    "node/test_resize_upsample_sizes_nearest_axes_3_2": "axes attribute (a Gather)",
    # onnx_decompose: wrong or missing in IREE's lowering, rewritten as ONNX it lowers
    "node/test_bitshift_right_int32_negative_input": "signed shifted as unsigned",
    "node/test_bitshift_left_int8_shift_ge_width": "shift count past the width",
    "node/test_cumprod_1d_reverse_exclusive": "onnx.CumProd did not lower",
    "node/test_lppool_2d_dilations": "onnx.LpPool with dilations did not lower",
    "node/test_matmul_4d_1d": "aten.matmul of rank 4 by rank 1 did not lower",
    # a torch op left unlowered, traced back to the ONNX op that made it (expanded)
    "node/test_sce_mean_3d": "torch.constant.float left by SoftmaxCrossEntropyLoss",
    "node/test_sce_NCd1_mean_weight_negative_ii_expanded": "aten.nll_loss_forward",
    # a Loop over constant bounds folded by the reference
    "node/test_range_float_type_positive_delta_expanded": "onnx.Loop did not lower",
}

REFUSED = {
    "node/test_reshape_allowzero_reordered": "crashed (SIGFPE)",  # was: the process died
    "node/test_lstm_with_peepholes": "peephole weights",  # was: a wrong answer
    "node/test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True": (
        "count_include_pad=1"
    ),
}


@pytest.mark.parametrize("case_id", sorted(PASSING))
def test_case_passes_host_only(case_id: str, tmp_path: Path) -> None:
    result = oc.run_byoc(oc.load_case(case_id), [], tmp_path)
    assert result["outcome"] == "PASS", f"{PASSING[case_id]}: {result['reason']}"


@pytest.mark.parametrize(
    "case_id",
    ["node/test_add_uint8", "node/test_attention_3d", "node/test_clip_default_inbounds"],
)
@pytest.mark.parametrize("backend", ["ccompiler", "dnnl"])
def test_case_passes_with_a_backend(case_id: str, backend: str, tmp_path: Path) -> None:
    result = oc.run_byoc(oc.load_case(case_id), [backend], tmp_path)
    assert result["outcome"] == "PASS", result["reason"]


@pytest.mark.parametrize("case_id", sorted(REFUSED))
def test_case_is_refused_cleanly(case_id: str, tmp_path: Path) -> None:
    result = oc.run_byoc(oc.load_case(case_id), [], tmp_path)
    assert result["outcome"] == "REFUSED" and REFUSED[case_id] in result["reason"], result


def test_bound_inputs_leave_the_signature(tmp_path: Path) -> None:
    case = oc.load_case("node/test_reduce_max_do_not_keepdims_example")
    (data, axes), (want,) = case.data_sets[0]
    with pytest.raises(byoc_mlir.ByocError):  # axes unknown: refused, not wrong
        byoc_mlir.compile(case.model, [], out_dir=tmp_path / "a")
    options = byoc_mlir.CompileOptions(cache_dir=None, bind_inputs={"axes": axes})
    compiled = byoc_mlir.compile(case.model, [], out_dir=tmp_path / "b", options=options)
    assert len(compiled.inputs) == 1
    np.testing.assert_allclose(compiled(data)[0], want, rtol=1e-6)
    with pytest.raises(byoc_mlir.ByocError, match="does not take"):
        bad = byoc_mlir.CompileOptions(cache_dir=None, bind_inputs={"nope": axes})
        byoc_mlir.compile(case.model, [], out_dir=tmp_path / "c", options=bad)


def test_expansions_are_noted_in_the_report(tmp_path: Path) -> None:
    case = oc.load_case("node/test_attention_3d")
    compiled = byoc_mlir.compile(case.model, [], out_dir=tmp_path / "b")
    assert any("Attention expanded" in n for n in compiled.report["notes"])


VERIFIED = [
    "node/test_gelu_default_1_expanded",
    "node/test_batchnorm_example",
    "node/test_reduce_mean_keepdims_example",
    "node/test_layer_normalization_2d_axis0",
    "node/test_softmax_axis_1_expanded",
    "node/test_conv_with_strides_padding",
    "node/test_gemm_all_attributes",
    "node/test_clip_default_int8_min",
    "pytorch-converted/test_BatchNorm2d_eval",
    "pytorch-operator/test_operator_addmm",
]


@pytest.mark.parametrize("case_id", VERIFIED)
def test_every_normalisation_pass_leaves_a_module_that_verifies(case_id: str) -> None:
    """The driver would skip a breaking pass and note it; here a break fails the test."""
    case = oc.load_case(case_id)
    source = frontends.load(case.model)
    text = iree(source.data, ["--compile-to=input", *BEST_CPU_FLAGS], "import").decode()
    context = _compat.new_context()
    module = _compat.parse_module(text, context, case_id)
    with context:
        for step in normalise.steps():
            step.apply(module.operation)
            try:
                module.operation.verify()
            except ir.MLIRError as err:
                pytest.fail(f"{step.NAME} left invalid IR on {case_id}: {err}")


@pytest.mark.slow
def test_conformance_slice_has_no_crash_error_or_wrong(tmp_path: Path) -> None:
    out = tmp_path / "conf.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "onnx_conformance.py"), "--targets",
         "host,dnnl,ccompiler", "--sample-every", "8", "--ops",
         "Conv,Gemm,MatMul,Relu,Clip,Add,Softmax,Attention,Reshape,Cast,ReduceSum,"
         "AveragePool,MaxPool,LSTM,pytorch-converted", "--json", str(out)],
        capture_output=True, text=True, timeout=3000,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(out.read_text())["summary"]
    for target in ("host", "dnnl", "ccompiler"):
        counts = summary[target]
        assert counts.get("CRASH", 0) == counts.get("ERROR", 0) == counts.get("WRONG", 0) == 0, (
            target,
            counts,
        )


def test_resize_rewrite_leaves_what_it_cannot_reproduce() -> None:
    """keep_aspect_ratio_policy with a rounded size cannot be probed one axis at a time:
    the node stays (and is refused), never rewritten into something else."""
    from byoc_mlir.frontends import onnx_decompose, onnx_rewrite
    from byoc_mlir.frontends.from_onnx import _checked

    case = oc.load_case("node/test_resize_downsample_sizes_nearest_not_smaller")
    model = _checked(onnx_rewrite.bind_inputs(case.model, oc.shape_inputs(case), "m"), "m")
    rewritten, ops = onnx_decompose.rewrite(model, onnx_decompose.ON_FAILURE)
    assert ops == [] and rewritten is model
    case = oc.load_case("node/test_resize_upsample_sizes_nearest_not_smaller")
    model = _checked(onnx_rewrite.bind_inputs(case.model, oc.shape_inputs(case), "m"), "m")
    rewritten, ops = onnx_decompose.rewrite(model, onnx_decompose.ON_FAILURE)
    assert ops == ["Resize"]
    assert [n.op_type for n in rewritten.graph.node] == ["Gather", "Gather", "Identity"]
