"""Differential fuzzing: random graphs (`graphs`), written as linalg, TOSA or ONNX
(`emit`), built host-only and with every backend set and compared (`run`)."""
