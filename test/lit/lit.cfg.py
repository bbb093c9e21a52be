# lit configuration for byoc_mlir's IR-transformation tests (lit + FileCheck from PyPI).
import os
import shutil

import lit.formats

config.name = "byoc_mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.test_source_root, "Output")
config.excludes = ["Inputs", "Output"]

# The PyPI `filecheck` package installs `filecheck`; tests spell it FileCheck.
filecheck = shutil.which("filecheck") or shutil.which("FileCheck")
if filecheck is None:
    lit_config.fatal("filecheck not found: pip install filecheck")
config.substitutions.append(("FileCheck", filecheck))
byoc_opt = shutil.which("byoc-opt")
if byoc_opt is None:
    lit_config.fatal("byoc-opt not found: pip install -e .")
config.substitutions.append(("byoc-opt", byoc_opt))
config.environment["PATH"] = os.environ.get("PATH", "")
