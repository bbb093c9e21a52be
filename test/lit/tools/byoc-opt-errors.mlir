// RUN: not byoc-opt %s 2>&1 | FileCheck %s --check-prefix=WHOLE
// RUN: not byoc-opt %s --split-input-file 2>&1 | FileCheck %s --check-prefix=SPLIT
// RUN: not byoc-opt %s --split-input-file --backend nope --partition 2>&1 | FileCheck %s --check-prefix=BACKEND
// RUN: not byoc-opt %s --split-input-file --backend testing --backend testing --partition 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not byoc-opt %s --split-input-file --partition 2>&1 | FileCheck %s --check-prefix=NOBACKEND
// RUN: not byoc-opt %s --split-input-file --byoc-composites 2>&1 | FileCheck %s --check-prefix=NOBACKEND-COMPOSITES
// RUN: not byoc-opt %s --split-input-file --backend testing --byoc-merge-regions="min-size=2 bogus=1" 2>&1 | FileCheck %s --check-prefix=OPTION
// RUN: not byoc-opt %s --split-input-file --backend testing --byoc-merge-regions="backends=testing,nope" 2>&1 | FileCheck %s --check-prefix=OPTBACKEND
// RUN: not byoc-opt %s --split-input-file --backend testing --byoc-merge-regions="min-size=two" 2>&1 | FileCheck %s --check-prefix=VALUE
// RUN: not byoc-opt %s --split-input-file --backend testing --byoc-merge-regions="min-size" 2>&1 | FileCheck %s --check-prefix=NOVALUE
// RUN: not byoc-opt %s --split-input-file --backend testing --byoc-outline="move-weights=maybe" 2>&1 | FileCheck %s --check-prefix=BOOL
// RUN: not byoc-opt %s --split-input-file --pass-pipeline=bogus 2>&1 | FileCheck %s --check-prefix=PIPELINE
// RUN: not byoc-opt %s --byoc-bogus 2>&1 | FileCheck %s --check-prefix=FLAG
// RUN: not byoc-opt %S/does-not-exist.mlir --backend testing --partition 2>&1 | FileCheck %s --check-prefix=MISSING

// Every error is one located diagnostic (`FILE:line:col: error: ...` when there is a
// place to point at), never a Python traceback; the exit code is non-zero.

// A valid chunk: in split mode its result is still printed (after the errors, which
// go to stderr as they happen; hence DAG).

// SPLIT-DAG:   func.func @valid(%arg0: tensor<4x8xf32>

// Guards that fire before any input is read, or once per chunk, all without a trace.
// BACKEND:     error: unknown backend 'nope'; known backends: ccompiler, dnnl, jsonrt, {{(mynpu, )?}}testing, testing_matmul
// BACKEND-NOT: Traceback
// TWICE:       error: backend 'testing' is given twice
// TWICE-NOT:   Traceback
// NOBACKEND:   error: --partition needs at least one --backend NAME
// NOBACKEND-NOT: Traceback
// NOBACKEND-COMPOSITES: error: byoc-composites needs at least one backend (--backend NAME)
// OPTION:      error: pass byoc-merge-regions has no option 'bogus'; options: backends, min-size, max-size, merge-siblings
// OPTION-NOT:  Traceback
// OPTBACKEND:  error: unknown backend 'nope'; known backends: ccompiler, dnnl, jsonrt, {{(mynpu, )?}}testing, testing_matmul
// VALUE:       error: pass byoc-merge-regions: option 'min-size' expects an integer, got 'two'
// NOVALUE:     error: pass byoc-merge-regions: option 'min-size' needs a value (min-size=...)
// BOOL:        error: pass byoc-outline: option 'move-weights' expects true/false, got 'maybe'
// PIPELINE:    error: invalid --pass-pipeline 'bogus': {{.*}}'bogus' does not refer to a registered pass or pass pipeline
// PIPELINE-NOT: Traceback
// FLAG:        byoc-opt: error: unrecognized arguments: --byoc-bogus
// MISSING:     error: cannot read {{.*}}does-not-exist.mlir: No such file or directory
// MISSING-NOT: Traceback
func.func @valid(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>, %c: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%c : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %m : tensor<4x4xf32>
}

// -----

// A syntax error (undeclared value): the first error of the whole file, so the
// whole-file run reports it too.

// WHOLE:       byoc-opt-errors.mlir:[[# @LINE + 4]]:10: error: use of undeclared SSA value name
// WHOLE-NOT:   Traceback
// SPLIT-DAG:   byoc-opt-errors.mlir:[[# @LINE + 2]]:10: error: use of undeclared SSA value name
func.func @undeclared(%a: tensor<4xf32>) -> tensor<4xf32> {
  return %nope : tensor<4xf32>
}

// -----

// A verifier error: the return type does not match the function type.

// SPLIT-DAG:   byoc-opt-errors.mlir:[[# @LINE + 5]]:3: error: type of return operand 0 ('tensor<4xf32>') doesn't match function result type ('tensor<8xf32>') in function @wrong_return
// SPLIT-NOT:   Traceback
// SPLIT-NOT:   func.func @undeclared
// SPLIT-NOT:   func.func @wrong_return
func.func @wrong_return(%a: tensor<4xf32>) -> tensor<8xf32> {
  return %a : tensor<4xf32>
}
