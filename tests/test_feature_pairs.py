"""Feature distillation through the Distiller: one student pass, adapters, errors."""

import keras
import numpy as np
import pytest

import tfdistill
from tfdistill import losses, offline


def cnn(width, name, classes=3):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(width, 3, padding="same", name=f"{name}_conv")(inputs)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name=f"{name}_logits")(pooled), name=name)


def images(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype("float32"), rng.integers(0, 3, n).astype("int32")


def feature_distiller(pairs, seed=0):
    keras.utils.set_random_seed(seed)
    distiller = tfdistill.Distiller(cnn(8, "t"), cnn(4, "s"), features=pairs)
    distiller.compile(keras.optimizers.SGD(0.05), metrics=["accuracy"])
    return distiller


@pytest.mark.slow
def test_feature_loss_is_the_weighted_hint_and_attention_losses():
    pairs = [
        tfdistill.FeaturePair("t_relu", "s_relu", "hint", weight=2.0),
        tfdistill.FeaturePair("t_conv", "s_conv", "attention", weight=50.0),
    ]
    distiller = feature_distiller(pairs)
    x, y = images()
    teacher_relu = keras.Model(distiller.teacher.input, distiller.teacher.get_layer("t_relu").output)
    teacher_conv = keras.Model(distiller.teacher.input, distiller.teacher.get_layer("t_conv").output)
    student_relu = keras.Model(distiller.student.input, distiller.student.get_layer("s_relu").output)
    student_conv = keras.Model(distiller.student.input, distiller.student.get_layer("s_conv").output)
    (adapter,) = distiller.adapters
    hint = losses.hint_loss(teacher_relu(x), adapter(student_relu(x))).numpy()
    attention = losses.attention_transfer(teacher_conv(x), student_conv(x)).numpy()
    logs = distiller.evaluate(x, y, batch_size=len(x), return_dict=True, verbose=0)
    expected = 2.0 * hint.mean() + 50.0 * attention.mean()
    assert logs["feature_loss"] == pytest.approx(expected, rel=1e-5)
    # The compile() defaults: the soft loss (KD at T=1) alone, plus the feature losses.
    assert logs["loss"] == pytest.approx(logs["soft_loss"] + expected, rel=1e-5)


@pytest.mark.slow
def test_student_runs_once_per_step_so_batch_norm_updates_once():
    x, y = images()
    moving_means = []
    for pairs in (None, [tfdistill.FeaturePair("t_relu", "s_relu", "hint", weight=0.0)]):
        distiller = feature_distiller(pairs)
        before = distiller.student.get_layer("s_bn").moving_mean.numpy().copy()
        distiller.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
        moving_means.append(distiller.student.get_layer("s_bn").moving_mean.numpy())
        assert not np.allclose(moving_means[-1], before)
    # With a zero-weight feature term the step is the same step: one student pass.
    np.testing.assert_allclose(moving_means[0], moving_means[1], rtol=1e-6)


@pytest.mark.slow
def test_adapter_trains_but_is_not_part_of_the_student(tmp_path):
    distiller = feature_distiller([tfdistill.FeaturePair("t_relu", "s_relu", "hint")])
    params = distiller.student.count_params()
    (adapter,) = distiller.adapters
    assert adapter.kernel.shape == (1, 1, 4, 8)
    before = adapter.kernel.numpy().copy()
    x, y = images()
    history = distiller.fit(x, y, batch_size=8, epochs=3, verbose=0).history
    assert history["feature_loss"][-1] < history["feature_loss"][0]
    assert not np.allclose(adapter.kernel.numpy(), before)
    assert distiller.student.count_params() == params
    distiller.student.save(tmp_path / "student.keras")
    assert keras.models.load_model(tmp_path / "student.keras").count_params() == params


@pytest.mark.slow
def test_save_load_keeps_pairs_and_adapters_and_resumes(tmp_path):
    distiller = feature_distiller([tfdistill.FeaturePair("t_relu", "s_relu", "hint", weight=3.0)])
    x, y = images()
    distiller.fit(x, y, batch_size=8, epochs=1, verbose=0)
    distiller.save(tmp_path / "d.keras")
    restored = keras.models.load_model(tmp_path / "d.keras")
    assert repr(restored.feature_pairs) == repr(distiller.feature_pairs)
    np.testing.assert_allclose(restored.adapters[0].kernel.numpy(), distiller.adapters[0].kernel.numpy())
    expected = distiller.evaluate(x, y, return_dict=True, verbose=0)
    got = restored.evaluate(x, y, return_dict=True, verbose=0)
    assert got["feature_loss"] == pytest.approx(expected["feature_loss"], rel=1e-5)
    assert "feature_loss" in restored.fit(x, y, batch_size=8, epochs=1, verbose=0).history


def test_unknown_layer_lists_the_models_layers():
    with pytest.raises(ValueError, match=r"the student has no layer 'conv9'. Its layers are: \[.*'s_conv'"):
        feature_distiller([tfdistill.FeaturePair("t_conv", "conv9")])


def test_attention_needs_the_same_spatial_size():
    with pytest.raises(ValueError, match="same height and width.*'t_conv' outputs \\(8, 8, 8\\)"):
        feature_distiller([tfdistill.FeaturePair("t_conv", "s_pool", "attention")])


def test_hint_between_a_map_and_a_vector_is_refused():
    with pytest.raises(ValueError, match="adapter can map channels"):
        feature_distiller([tfdistill.FeaturePair("t_conv", "s_pool", "hint")])


def test_subclassed_student_is_refused_with_the_reason():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (-1, 64)))

    student = Sub()
    student(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="Functional or Sequential model"):
        tfdistill.Distiller(cnn(8, "t"), student, features=[tfdistill.FeaturePair("t_conv", "dense")])


def test_features_with_cached_logits_are_refused():
    distiller = feature_distiller([tfdistill.FeaturePair("t_relu", "s_relu")])
    x, y = images()
    logits = offline.compute_teacher_logits(distiller.teacher, x, verbose=0)
    data = offline.offline_dataset(x, y, logits, batch_size=8)
    with pytest.raises(ValueError, match="cached teacher logits only"):
        distiller.fit(data, epochs=1, verbose=0)


@pytest.mark.parametrize("value", ["hint", [("t", "s")]])
def test_features_must_be_a_list_of_pairs(value):
    with pytest.raises(ValueError, match="`features`. Expected a list of `tfdistill.FeaturePair`"):
        tfdistill.Distiller(cnn(8, "t"), cnn(4, "s"), features=value)


@pytest.mark.slow
def test_offline_feature_distillation_equals_online_without_calling_the_teacher():
    from tfdistill.data import make_dataset

    pairs = [
        tfdistill.FeaturePair("t_relu", "s_relu", "hint", weight=2.0),
        tfdistill.FeaturePair("t_conv", "s_conv", "attention", weight=50.0),
    ]
    x, y = images()
    teacher = feature_distiller(pairs).teacher
    logits, maps = offline.compute_teacher_outputs(teacher, x, ["t_relu", "t_conv"], dtype="float32", verbose=0)
    assert maps["t_relu"].shape == (1, 32, 8, 8, 8)
    histories = []
    for data in (make_dataset(x, y, batch_size=8, shuffle=True, seed=2),
                 offline.offline_dataset(x, y, logits, batch_size=8, seed=2, teacher_features=maps)):
        distiller = feature_distiller(pairs)
        distiller.teacher.set_weights(teacher.get_weights())
        if isinstance(data.element_spec[0], dict):
            distiller.teacher.call = None  # any teacher call from here on would fail
        histories.append(distiller.fit(data, epochs=2, verbose=0).history)
    for key in ("loss", "soft_loss", "feature_loss"):
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5)


@pytest.mark.slow
def test_cached_features_of_augmented_views_stay_paired_with_their_images():
    x, y = images()
    teacher = cnn(8, "t")
    logits, maps = offline.compute_teacher_outputs(teacher, x, ["t_relu"], views=3, dtype="float32", verbose=0)
    model = tfdistill.feature_pairs.with_features(teacher, ["t_relu"], "teacher")
    for batch_x, _ in offline.offline_dataset(x, y, logits, batch_size=8, teacher_features=maps):
        recomputed_logits, recomputed = model(batch_x["x"], training=False)
        np.testing.assert_allclose(batch_x["teacher_features"]["t_relu"], recomputed, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(batch_x["teacher_logits"], recomputed_logits, rtol=1e-4, atol=1e-5)


def test_cached_features_must_hold_every_pairs_teacher_layer():
    distiller = feature_distiller([tfdistill.FeaturePair("t_relu", "s_relu")])
    x, y = images()
    logits, maps = offline.compute_teacher_outputs(distiller.teacher, x, ["t_conv"], verbose=0)
    with pytest.raises(ValueError, match="teacher layer 't_relu'.*hold only \\['t_conv'\\]"):
        distiller.fit(offline.offline_dataset(x, y, logits, teacher_features=maps), verbose=0)
    with pytest.raises(ValueError, match="`features`. Expected a non-empty list"):
        offline.compute_teacher_outputs(distiller.teacher, x, "t_relu")


@pytest.mark.slow
def test_cached_features_without_feature_pairs_train_on_the_cached_logits():
    from tfdistill.data import make_dataset

    x, y = images()
    teacher = cnn(8, "t")
    logits, maps = offline.compute_teacher_outputs(teacher, x, ["t_relu"], dtype="float32", verbose=0)
    histories = []
    for data in (make_dataset(x, y, batch_size=8, shuffle=True, seed=2),
                 offline.offline_dataset(x, y, logits, batch_size=8, seed=2, teacher_features=maps)):
        distiller = feature_distiller([])
        distiller.teacher.set_weights(teacher.get_weights())
        histories.append(distiller.fit(data, epochs=1, verbose=0).history)
    np.testing.assert_allclose(histories[0]["soft_loss"], histories[1]["soft_loss"], rtol=1e-5)
