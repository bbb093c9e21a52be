# lit configuration for the example backend's own test (lit + FileCheck from PyPI).
import os
import shutil

import lit.formats

config.name = "mynpu"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.test_source_root, "Output")
filecheck = shutil.which("filecheck") or shutil.which("FileCheck")
if filecheck is None:
    lit_config.fatal("filecheck not found: pip install filecheck")
config.substitutions.append(("FileCheck", filecheck))
for tool in ("byoc-opt", "byoc-compile", "byoc-run"):
    path = shutil.which(tool)
    if path is None:
        lit_config.fatal(f"{tool} not found: pip install -e . (byoc_mlir)")
    config.substitutions.append((tool, path))
config.environment["PATH"] = os.environ.get("PATH", "")
