import numpy as np
import pytest

from edgemod.errors import EdgemodError
from edgemod.training.students import build_student
from edgemod.training.students.embedding_init import init_embeddings, project, teacher_vectors


def test_teacher_vectors_keep_word_similarity():
    vocab = ["[PAD]", "[UNK]", "idiot", "stupid", "banana", "##ing"]
    vectors = teacher_vectors(vocab, "minilm-l6")
    assert not vectors[0].any() and vectors[1].any() and vectors[5].any()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-9)
    assert unit[2] @ unit[3] > unit[2] @ unit[4]


def test_init_sets_the_student_embedding_table():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [w for w in "the a cat dog sat ran big small red blue".split()] * 3
    model = build_student("test_text_tiny", 3, vocab_size=len(vocab))
    init_embeddings(model, vocab, "minilm-l6")
    weights = model.embed.weight.detach().numpy()
    assert not weights[0].any()
    assert weights[1:].std(axis=0) == pytest.approx(np.ones(16), rel=0.2)


def test_projection_wider_than_the_data_is_an_error():
    with pytest.raises(EdgemodError, match="embedding width"):
        project(np.ones((4, 8), np.float32), 16)


def test_unknown_source_is_an_error(tmp_path):
    with pytest.raises(EdgemodError, match="minilm-l6"):
        teacher_vectors(["a"], str(tmp_path))
