"""The real `edgemod` CLI plus one test command, `noise`, that makes the libraries' usual chatter.

    python tests/noisy_cli.py [--verbose] noise FOLDER

Real sources, cheap: importing transformers (torch's pytree deprecation warnings, via torchao),
loading a tiny BERT checkpoint into a classifier (transformers' LOAD REPORT of missing keys) and
running a one-op LiteRT model (XNNPACK's line, written by C++ straight to fd 2). It also writes one
native error line that must always reach the user, and ends with "noise: done".
"""
import os
import sys
from pathlib import Path

from edgemod.cli import app, console, main

NATIVE_ERROR = b"E0000 00:00:1796025106.751696   42 test.cc:1] a native error the user must see\n"


@app.command("noise")
def noise(folder: Path) -> None:
    """Make the noise (a test command)."""
    _load_report(folder)
    _xnnpack_line()
    os.write(2, NATIVE_ERROR)
    console.print("noise: done")


def _load_report(folder: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    config = BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, vocab_size=32)
    BertModel(config).save_pretrained(folder)
    BertForSequenceClassification.from_pretrained(folder, num_labels=2)  # classifier.* missing


def _xnnpack_line() -> None:
    """A one-op model (y = x + x), built with LiteRT's own flatbuffer schema: no converter needed."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    def tensor(name: str):
        spec = schema.TensorT()
        spec.shape, spec.type, spec.buffer, spec.name = [1], schema.TensorType.FLOAT32, 0, name
        return spec

    add = schema.OperatorT()
    add.opcodeIndex, add.inputs, add.outputs = 0, [0, 0], [1]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = [tensor("x"), tensor("y")], [0], [1], [add]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], [schema.BufferT()]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    interpreter = Interpreter(model_content=bytes(builder.Output()))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.ones(1, np.float32))
    interpreter.invoke()


if __name__ == "__main__":
    sys.exit(main())
