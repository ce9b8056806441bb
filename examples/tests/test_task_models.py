"""The task models: sizes, causality of the language models, and what they take."""

import keras
import numpy as np
import pytest

from tasks import speech_models, text_models


def test_the_language_id_student_is_over_20_times_smaller_than_its_teacher():
    teacher = text_models.byte_transformer_classifier(48, 5)
    student = text_models.byte_cnn_classifier(48, 5)
    assert teacher.count_params() / student.count_params() >= 20


def test_the_few_labels_language_id_teacher_maps_bytes_to_logits_with_a_detector_bank_per_width():
    teacher = text_models.byte_ngram_cnn_classifier(48, 5)
    # 257 x 32 embedding, 128 detectors of each width 2..5 over 32 channels, a dense layer over 512.
    assert teacher.count_params() == 257 * 32 + sum(128 * (32 * w + 1) for w in (2, 3, 4, 5)) + 512 * 5 + 5
    tokens = np.random.default_rng(0).integers(1, 257, size=(3, 48)).astype("int32")
    assert teacher(tokens).shape == (3, 5)


def test_the_keyword_student_has_microcontroller_size():
    student = speech_models.ds_cnn(num_classes=10)
    assert 20_000 < student.count_params() < 30_000
    assert any(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in student.layers)


@pytest.mark.parametrize(
    "build", [text_models.byte_transformer_language_model, text_models.byte_tcn_language_model,
              text_models.byte_gru_language_model]
)
def test_language_models_never_see_the_future(build):
    """Changing the byte at position 5 changes no prediction before it, and the one at 5."""
    keras.utils.set_random_seed(0)
    model = build(12)
    tokens = np.random.default_rng(0).integers(1, 257, size=(1, 12)).astype("int32")
    changed = tokens.copy()
    changed[0, 5] = (changed[0, 5] % 256) + 1
    before, after = model(tokens).numpy(), model(changed).numpy()
    np.testing.assert_allclose(before[0, :5], after[0, :5], atol=1e-5)
    assert not np.allclose(before[0, 5], after[0, 5], atol=1e-5)


def test_the_keyword_models_normalize_their_log_mel_input():
    features = np.random.default_rng(0).normal(-4.0, 3.0, size=(64, 49, 40, 1)).astype("float32")
    student = speech_models.ds_cnn(features=features)
    normalization = student.get_layer("ds_cnn_normalization")
    normalized = normalization(features).numpy()
    assert abs(normalized.mean()) < 1e-3 and abs(normalized.std() - 1.0) < 1e-2
