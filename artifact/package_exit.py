"""The exit statuses of `python -m model.package`, the contract its callers rely on.

Standard library only, so a caller that runs the packager in a child process (the local
runtime and the batch CLI, through `machine.artifact`) reads them without loading torch.
"""

EXIT_UNUSABLE = 2
"""Unusable inputs: weights, labels, an ONNX file, preprocessing, an `--out` that cannot
be written, or an export that disagrees with torch (argparse's usage errors exit 2 too)."""
EXIT_INT8_REFUSED = 3
"""The int8 model fails its agreement check (2: any other build error), so a caller can
fall back to `--precision fp32`."""
