"""Edits to a written LiteRT (.tflite) flatbuffer that both the float export and int8 quantization need."""
from __future__ import annotations

from pathlib import Path

from edgemod.fsutil import atomic_path


def _short_name(name: str) -> str:
    """`pkg.Class_attr/pkg.Sub_0/...;alias` -> `attr.0...`: the module path without class names."""
    name = name.split(";")[0]
    if "/" not in name:  # not a litert-torch module path (or already shortened)
        return name[-64:]
    parts = [segment.rsplit(".", 1)[-1].split("_", 1) for segment in name.split("/")]
    return ".".join(part[1] for part in parts if len(part) == 2)[-64:]


def _signature_names(model) -> dict[tuple[int, int], str]:
    """(subgraph, tensor index) -> the signature's name for that input or output tensor."""
    names = {}
    for signature in model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
            names[signature.subgraphIndex, entry.tensorIndex] = name
    return names


def shorten_tensor_names(path: Path) -> None:
    """Replace litert-torch's internal tensor names by the module path alone, in place.

    The names are full Python class paths (3 % of an int8 Lite0 model). Input and output tensors
    take their signature names (`serving_default_input_ids` -> `input_ids`, `serving_default_scores_output`
    -> `scores`), so apps that look tensors up by name find the README's names; the signature is untouched.

    Args:
        path: a .tflite file; rewritten atomically.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    raw = path.read_bytes()
    model = schema.ModelT.InitFromPackedBuf(bytearray(raw), 0)
    for buffer in model.buffers:  # constants stored after the flatbuffer move inside it
        if buffer.offset > 1:
            buffer.data, buffer.offset, buffer.size = raw[buffer.offset:buffer.offset + buffer.size], 0, 0
    signature_names = _signature_names(model)
    for subgraph_index, subgraph in enumerate(model.subgraphs):
        interface = {*subgraph.inputs, *subgraph.outputs}
        names = [t.name.decode() if isinstance(t.name, bytes) else t.name for t in subgraph.tensors]
        for index in interface:
            names[index] = signature_names.get((subgraph_index, index), names[index])
            subgraph.tensors[index].name = names[index]
        taken = {names[i] for i in interface}
        for index, tensor in enumerate(subgraph.tensors):
            if index in interface:
                continue
            name = _short_name(names[index]) or "t"
            tensor.name = name if name not in taken else f"{name}:{index}"  # ai-edge-quantizer needs unique names
            taken.add(tensor.name)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with atomic_path(path) as tmp:
        tmp.write_bytes(builder.Output())


def op_outputs(path: Path, op_types: tuple[str, ...]) -> list[str]:
    """Output tensor names of the main graph's ops of `op_types`, in execution order."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    code_names = {value: key for key, value in vars(schema.BuiltinOperator).items() if key.isupper()}
    graph, outputs = model.subgraphs[0], []
    for operator in graph.operators:
        code = model.operatorCodes[operator.opcodeIndex]
        if code_names.get(max(code.builtinCode, code.deprecatedBuiltinCode)) in op_types:
            name = graph.tensors[operator.outputs[0]].name
            outputs.append(name.decode() if isinstance(name, bytes) else name)
    return outputs
