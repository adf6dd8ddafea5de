"""Turn a converter's failure into an error that names the op and the module it came from."""
from __future__ import annotations

import re

from edgemod.errors import EdgemodError

# What each converter says when it meets an op it cannot lower (first match wins).
OP_PATTERNS = (
    r"convert function for op '([\w.]+)' not implemented",  # coremltools (TorchScript path)
    r"Unsupported fx node ([\w.]+)",  # coremltools (torch.export path)
    r"Lowering not found: ((?:aten|prims)\.[\w.]+)",  # litert-torch
    r"target=torch\.ops\.((?:aten|prims)\.[\w.]+)",  # torch.onnx: the node it failed to translate
    r"Unsupported FX nodes?:? \{?'?call_function'?:? \[?'([\w.]+)'",  # torch.onnx dynamo
    r"No decompositions? registered for [\w.]*?(aten\.[\w.]+)",
    r"(aten[.:]+\w+(?:\.\w+)?)[^\n]*(?:not supported|is not supported|unsupported|no lowering|not implemented)",
    r"(?:not supported|unsupported|no lowering|not implemented|failed to legalize)[^\n]*?'?((?:aten|tfl|stablehlo)\.[\w.]+)",
)


def unsupported_op(message: str) -> str | None:
    for pattern in OP_PATTERNS:
        if match := re.search(pattern, message, flags=re.IGNORECASE):
            return match.group(1)
    return None


def module_path_of(model, sample: tuple, op: str) -> str | None:
    """The module path (e.g. `inner.blocks.3.attn`) of the first graph node running `op`."""
    import torch

    parts = [p for p in op.replace("::", ".").split(".") if p not in ("aten", "prims", "default", "Tensor")]
    short = parts[0] if parts else op
    try:
        program = torch.export.export(model, sample, strict=False)
    except Exception:  # the module cannot even be exported: nothing to locate
        return None
    for node in program.graph.nodes:
        if node.op == "call_function" and short in str(node.target):
            stack = node.meta.get("nn_module_stack") or {}
            paths = [path for path, _ in stack.values() if path]
            return paths[-1] if paths else "<top level>"
    return None


def conversion_error(target: str, error: Exception, model, sample: tuple) -> EdgemodError:
    message = f"{type(error).__name__}: {error}"
    causes, cause = [message], error.__cause__
    while cause is not None:
        causes.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__
    op = unsupported_op("\n".join(causes))
    if op is None:
        return EdgemodError(f"{target} conversion failed: {message.splitlines()[0][:500]}",
                            f"check the student for ops {target} cannot convert; the full error is above")
    where = module_path_of(model, sample, op)
    located = f" in module '{where}'" if where else ""
    return EdgemodError(f"{target} cannot convert op '{op}'{located}",
                        f"replace that op in the student with a supported one, or drop the {target} "
                        f"target from the recipe's export list")
