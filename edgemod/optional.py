"""Optional heavy packages shared by several stages, imported on first use.

A missing one raises MissingDependencyError, which says how to install it.
"""
from __future__ import annotations

from edgemod.errors import MissingDependencyError


def triton_before_tensorflow() -> None:
    """Load triton (if installed) before anything imports TensorFlow: triton's .so loaded after
    TensorFlow segfaults the process (coremltools and mediapipe both import TensorFlow if present)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


def coremltools():
    """The `coremltools` module, for Core ML conversion (export) and compression (quantization).

    Raises:
        MissingDependencyError: coremltools is not installed.
    """
    triton_before_tensorflow()
    try:
        import coremltools as ct
    except ImportError:
        raise MissingDependencyError("coremltools", "Core ML export") from None
    return ct


MEDIAPIPE_PIN = "mediapipe==1.2.3"


def mediapipe_metadata_writers():
    """`mediapipe.tasks.python.metadata.metadata_writers` (its `metadata_writer`, `text_classifier`
    and `image_classifier` modules), working on the 1.2.x wheels.

    Those wheels lack the compiled `_pywrap_metadata_version` that the writers import only for
    `GetMinimumMetadataParserVersion`; `metadata_parser_version` computes the same value.

    Raises:
        MissingDependencyError: mediapipe is not installed.
    """
    import importlib
    import sys
    import types

    triton_before_tensorflow()
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    try:
        importlib.import_module(name)
    except ImportError:
        parts = name.split(".")
        for depth in range(3, len(parts)):  # mediapipe.tasks.cc... do not exist in these wheels
            sys.modules.setdefault(".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
        shim = types.ModuleType(name)
        shim.GetMinimumMetadataParserVersion = metadata_parser_version
        sys.modules[name] = shim
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import image_classifier, metadata_writer, text_classifier
    except ImportError:
        raise MissingDependencyError(MEDIAPIPE_PIN, "Tasks-ready TFLite artifacts (target mediapipe)") from None
    return types.SimpleNamespace(metadata_writer=metadata_writer, text_classifier=text_classifier,
                                 image_classifier=image_classifier)


# Schema members added after metadata 1.0.0 and the parser version that reads them: MediaPipe's
# mediapipe/tasks/cc/metadata/metadata_version.cc, ported for the members edgemod writes and reads.
_VERSIONS = {"vocabulary_file": (1, 0, 1), "process_units": (1, 1, 0), "bert_or_sentencepiece": (1, 1, 0),
             "tensor_groups": (1, 2, 0), "regex_tokenizer": (1, 2, 1), "audio": (1, 3, 0), "scann_file": (1, 4, 0),
             "file_version": (1, 4, 1), "custom_metadata": (1, 5, 0)}


def metadata_parser_version(metadata_buffer: bytes) -> str:
    """The minimum metadata parser version that understands every field of a ModelMetadata buffer."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    metadata = schema.ModelMetadataT.InitFromPackedBuf(bytearray(metadata_buffer), 0)
    found: set[str] = set()
    _files(metadata.associatedFiles, schema, found)
    for subgraph in metadata.subgraphMetadata or []:
        for tensor in [*(subgraph.inputTensorMetadata or []), *(subgraph.outputTensorMetadata or [])]:
            _files(tensor.associatedFiles, schema, found)
            _units(tensor.processUnits, schema, found)
            if tensor.content is not None and tensor.content.contentPropertiesType == \
                    schema.ContentProperties.AudioProperties:
                found.add("audio")
        _files(subgraph.associatedFiles, schema, found)
        for units in (subgraph.inputProcessUnits, subgraph.outputProcessUnits):
            if units is not None:
                found.add("process_units")
                _units(units, schema, found)
        if subgraph.inputTensorGroups is not None or subgraph.outputTensorGroups is not None:
            found.add("tensor_groups")
        if subgraph.customMetadata is not None:
            found.add("custom_metadata")
    return ".".join(map(str, max([(1, 0, 0), *(_VERSIONS[f] for f in found)])))


def _files(files, schema, found: set[str]) -> None:
    for file in files or []:
        if file.type == schema.AssociatedFileType.VOCABULARY:
            found.add("vocabulary_file")
        if file.type == schema.AssociatedFileType.SCANN_INDEX_FILE:
            found.add("scann_file")
        if file.version is not None:
            found.add("file_version")


def _units(units, schema, found: set[str]) -> None:
    options = schema.ProcessUnitOptions
    for unit in units or []:
        if unit.optionsType in (options.BertTokenizerOptions, options.SentencePieceTokenizerOptions):
            found.add("bert_or_sentencepiece")
        if unit.optionsType == options.RegexTokenizerOptions:
            found.add("regex_tokenizer")
