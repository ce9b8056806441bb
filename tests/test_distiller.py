import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import losses
from helpers import dense_model, loss_terms, toy_data


def make_distiller(seed=0, **compile_kwargs):
    keras.utils.set_random_seed(seed)
    teacher = dense_model(32, "teacher", batch_norm=True)
    student = dense_model(4, "student")
    distiller = tfdistill.Distiller(teacher, student)
    compile_kwargs.setdefault("optimizer", keras.optimizers.SGD(0.1))
    distiller.compile(**compile_kwargs)
    return distiller


def _hand_kd(teacher_logits, student_logits, temperature):
    p = tf.nn.softmax(teacher_logits / temperature).numpy()
    q = tf.nn.softmax(student_logits / temperature).numpy()
    return temperature**2 * np.sum(p * np.log(p / q), axis=-1)


@pytest.mark.slow
def test_evaluate_losses_equal_hand_computed_values():
    distiller = make_distiller(soft_loss="kd", hard_weight=0.3, soft_weight=0.7, metrics=["accuracy"])
    x, y = toy_data()
    t = distiller.teacher(x, training=False).numpy()
    s = distiller.student(x, training=False).numpy()
    hard = -np.log(tf.nn.softmax(s).numpy()[np.arange(len(y)), y])
    soft = _hand_kd(t, s, 4.0)
    logs = distiller.evaluate(x, y, batch_size=len(x), return_dict=True, verbose=0)
    assert logs["hard_loss"] == pytest.approx(hard.mean(), rel=1e-5)
    assert logs["soft_loss"] == pytest.approx(soft.mean(), rel=1e-5)
    assert logs["soft_loss"] > 0
    assert logs["loss"] == pytest.approx(0.3 * hard.mean() + 0.7 * soft.mean(), rel=1e-5)
    assert logs["accuracy"] == pytest.approx(np.mean(s.argmax(-1) == y))


@pytest.mark.slow
def test_kl_divergence_by_name_is_temperature_squared_kl_not_raw_logits():
    distiller = make_distiller(soft_loss="kl_divergence")
    x, y = toy_data()
    t = distiller.teacher(x, training=False).numpy()
    s = distiller.student(x, training=False).numpy()
    logs = distiller.evaluate(x, y, batch_size=len(x), return_dict=True, verbose=0)
    assert logs["soft_loss"] == pytest.approx(_hand_kd(t, s, 4.0).mean(), rel=1e-5)
    history = distiller.fit(x, y, epochs=3, batch_size=16, verbose=0).history
    assert min(history["soft_loss"]) >= 0


def test_seed_form_additive_mse_between_softened_probabilities():
    distiller = make_distiller(
        soft_loss=losses.SoftenedProbabilityMSE(temperature=2.0), hard_weight=1.0, soft_weight=5.0
    )
    x, y = toy_data()
    t = tf.nn.softmax(distiller.teacher(x, training=False) / 2.0).numpy()
    s_logits = distiller.student(x, training=False).numpy()
    s = tf.nn.softmax(s_logits / 2.0).numpy()
    hard = -np.log(tf.nn.softmax(s_logits).numpy()[np.arange(len(y)), y]).mean()
    logs = distiller.evaluate(x, y, batch_size=len(x), return_dict=True, verbose=0)
    assert logs["loss"] == pytest.approx(hard + 5.0 * np.mean((t - s) ** 2), rel=1e-5)


def test_sparse_categorical_crossentropy_by_name_reads_logits():
    distiller = make_distiller(loss="sparse_categorical_crossentropy")
    x, y = toy_data()
    s = distiller.student(x, training=False)
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, s)
    logs = distiller.evaluate(x, y, batch_size=len(x), return_dict=True, verbose=0)
    assert logs["hard_loss"] == pytest.approx(float(expected), rel=1e-5)


def test_probability_hard_loss_on_a_logits_student_is_refused():
    with pytest.raises(ValueError, match="from_logits=False"):
        make_distiller(loss=keras.losses.SparseCategoricalCrossentropy())


@pytest.mark.slow
def test_teacher_frozen_bit_identical_and_student_trains():
    distiller = make_distiller()
    x, y = toy_data()
    teacher_before = [w.copy() for w in distiller.teacher.get_weights()]
    student_before = [w.copy() for w in distiller.student.get_weights()]
    distiller.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for before, after in zip(teacher_before, distiller.teacher.get_weights()):
        np.testing.assert_array_equal(before, after)  # BN moving stats too
    changed = [not np.array_equal(b, a) for b, a in zip(student_before, distiller.student.get_weights())]
    assert all(changed)
    assert [v.path for v in distiller.trainable_variables] == [
        v.path for v in distiller.student.trainable_variables
    ]


def test_call_predict_and_evaluate_are_the_students():
    distiller = make_distiller(metrics=["accuracy"])
    x, _ = toy_data()
    np.testing.assert_allclose(
        distiller.predict(x, verbose=0), distiller.student.predict(x, verbose=0), rtol=1e-6
    )


@pytest.mark.slow
def test_zero_sample_weights_leave_student_unchanged():
    distiller = make_distiller(optimizer=keras.optimizers.Adam(0.1))
    x, y = toy_data()
    before = [w.copy() for w in distiller.student.get_weights()]
    logs = distiller.fit(
        x, y, sample_weight=np.zeros(len(x)), epochs=1, batch_size=16, verbose=0
    ).history
    for b, a in zip(before, distiller.student.get_weights()):
        np.testing.assert_array_equal(b, a)
    assert logs["hard_loss"][0] == 0 and logs["soft_loss"][0] == 0


def test_sample_weights_scale_both_loss_terms():
    distiller = make_distiller(soft_loss="kd")
    x, y = toy_data()
    weights = np.where(np.arange(len(x)) % 2 == 0, 2.0, 0.0).astype("float32")
    t = distiller.teacher(x, training=False).numpy()
    s = distiller.student(x, training=False).numpy()
    hard = -np.log(tf.nn.softmax(s).numpy()[np.arange(len(y)), y])
    soft = _hand_kd(t, s, 4.0)
    logs = distiller.evaluate(
        x, y, sample_weight=weights, batch_size=len(x), return_dict=True, verbose=0
    )
    assert logs["hard_loss"] == pytest.approx(np.mean(weights * hard), rel=1e-5)
    assert logs["soft_loss"] == pytest.approx(np.mean(weights * soft), rel=1e-5)


@pytest.mark.slow
def test_fit_logs_all_loss_terms_and_metrics():
    distiller = make_distiller(metrics=["accuracy"])
    x, y = toy_data()
    history = distiller.fit(x, y, epochs=1, batch_size=16, verbose=0, validation_data=(x, y))
    assert set(history.history) == {
        "loss", "hard_loss", "soft_loss", "teacher_agreement", "accuracy",
        "val_loss", "val_hard_loss", "val_soft_loss", "val_teacher_agreement", "val_accuracy",
    }


def _train_logs_and_weights(strategy):
    x, y = toy_data(n=64)
    with strategy.scope():
        distiller = make_distiller(metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    history = distiller.fit(dataset, epochs=3, verbose=0).history
    return history, distiller.student.get_weights()


@pytest.mark.slow
def test_mirrored_strategy_matches_single_device():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2
    single_logs, single_weights = _train_logs_and_weights(tf.distribute.OneDeviceStrategy(devices[0]))
    mirrored_logs, mirrored_weights = _train_logs_and_weights(tf.distribute.MirroredStrategy(devices))
    for key in ("loss", "hard_loss", "soft_loss", "accuracy"):
        np.testing.assert_allclose(mirrored_logs[key], single_logs[key], rtol=1e-5)
    for single, mirrored in zip(single_weights, mirrored_weights):
        np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_save_load_round_trip_and_continued_training(tmp_path):
    x, y = toy_data()
    distiller = make_distiller(soft_loss=losses.KnowledgeDistillation(2.5), hard_weight=0.2, soft_weight=0.8, metrics=["accuracy"])
    distiller.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), distiller.predict(x, verbose=0))
    assert restored.soft_loss.temperature == 2.5 and restored.soft_weight == 0.8
    # Both continue from the same state (weights and optimizer) without compile.
    distiller.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    restored.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(distiller.student.get_weights(), restored.student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_get_config_from_config_round_trip():
    distiller = make_distiller()
    clone = tfdistill.Distiller.from_config(distiller.get_config())
    assert clone.get_config()["separate_inputs"] is False
    assert clone.student.count_params() == distiller.student.count_params()


@pytest.mark.slow
def test_dict_inputs_and_separate_teacher_view():
    keras.utils.set_random_seed(0)
    t_in = keras.Input((16,), name="wide")
    teacher = keras.Model(t_in, keras.layers.Dense(3)(t_in), name="teacher")
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    student = keras.Model(
        {"a": a, "b": b},
        keras.layers.Dense(3)(keras.layers.Concatenate()([a, b])),
        name="student",
    )
    distiller = tfdistill.Distiller(teacher, student, separate_inputs=True)
    distiller.compile(keras.optimizers.SGD(0.1))
    rng = np.random.default_rng(0)
    x_teacher = rng.normal(size=(32, 16)).astype("float32")
    x_student = {"a": x_teacher[:, :4], "b": x_teacher[:, 4:8]}
    y = rng.integers(0, 3, 32)
    data = tf.data.Dataset.from_tensor_slices(
        ({"student": x_student, "teacher": x_teacher}, y)
    ).batch(8)
    history = distiller.fit(data, epochs=2, verbose=0).history
    assert history["soft_loss"][1] < history["soft_loss"][0]
    np.testing.assert_allclose(
        distiller.predict(x_student, verbose=0), student.predict(x_student, verbose=0), rtol=1e-6
    )


def test_strip_softmax_gives_the_same_model_as_logits():
    keras.utils.set_random_seed(0)
    model = dense_model(8, "softmax_teacher", activation="softmax")
    logits_model = tfdistill.strip_softmax(model)
    x, _ = toy_data()
    np.testing.assert_allclose(
        tf.nn.softmax(logits_model(x)).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-7
    )
    tfdistill.Distiller(logits_model, dense_model(4, "student"))


@pytest.mark.slow
def test_mixed_bfloat16_student_with_float32_teacher():
    keras.utils.set_random_seed(0)
    teacher = dense_model(32, "teacher")
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        student = dense_model(4, "student")
        distiller = tfdistill.Distiller(teacher, student)
        distiller.compile(keras.optimizers.SGD(0.1))
        x, y = toy_data()
        assert student(x).dtype == "bfloat16" and teacher(x).dtype == "float32"
        total, terms = loss_terms(distiller, y, teacher(x), student(x))
        assert total.dtype == terms["hard_loss"].dtype == terms["soft_loss"].dtype == tf.float32
        history = distiller.fit(x, y, epochs=2, batch_size=16, verbose=0).history
        assert np.all(np.isfinite(history["loss"]))
        assert student.trainable_weights[0].dtype == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.slow
def test_float32_student_with_mixed_bfloat16_teacher():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        teacher = dense_model(32, "teacher")
    finally:
        keras.config.set_dtype_policy("float32")
    student = dense_model(4, "student")
    distiller = tfdistill.Distiller(teacher, student)
    distiller.compile(keras.optimizers.SGD(0.1))
    x, y = toy_data()
    assert teacher(x).dtype == "bfloat16" and student(x).dtype == "float32"
    total, terms = loss_terms(distiller, y, tf.cast(teacher(x), "float32"), student(x))
    assert terms["soft_loss"].dtype == tf.float32
    assert np.all(np.isfinite(distiller.fit(x, y, epochs=2, batch_size=16, verbose=0).history["loss"]))


@pytest.mark.slow
def test_mixed_float16_student_gets_loss_scaling_and_the_float32_update():
    # Loss weights of 1e-6 make gradients below float16's smallest number:
    # without loss scaling the float16 student does not move at all.
    x, y = toy_data()
    keras.utils.set_random_seed(0)
    teacher = dense_model(32, "teacher")
    updates = {}
    for policy, auto_scale_loss in (("float32", True), ("mixed_float16", True), ("mixed_float16", False)):
        keras.utils.set_random_seed(1)
        keras.config.set_dtype_policy(policy)
        try:
            student = dense_model(4, "student")
        finally:
            keras.config.set_dtype_policy("float32")
        distiller = tfdistill.Distiller(teacher, student)  # the Distiller itself is float32
        distiller.compile(
            keras.optimizers.SGD(1e6), hard_weight=1e-6, soft_weight=1e-6, auto_scale_loss=auto_scale_loss
        )
        scaled = isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16" and auto_scale_loss)
        before = [w.numpy().copy() for w in student.trainable_weights]
        distiller.fit(x, y, epochs=1, batch_size=len(x), verbose=0)
        updates[policy, auto_scale_loss] = [w.numpy() - b for w, b in zip(student.trainable_weights, before)]
    assert all(np.all(u == 0) for u in updates["mixed_float16", False])  # underflowed
    # With scaling, the float16 student moves as the float32 one does (scale undone).
    for full, half in zip(updates["float32", True], updates["mixed_float16", True]):
        assert np.abs(full).max() > 0.1
        np.testing.assert_allclose(half, full, rtol=0.05, atol=1e-3)


def test_compile_defaults_are_kd_at_t1_on_the_teachers_probabilities_alone():
    keras.utils.set_random_seed(0)
    distiller = tfdistill.Distiller(dense_model(32, "teacher", batch_norm=True), dense_model(4, "student"))
    distiller.compile("sgd")
    assert isinstance(distiller.soft_loss, losses.KnowledgeDistillation)
    assert distiller.soft_loss.temperature == 1.0
    assert (distiller.hard_weight, distiller.soft_weight) == (0.0, 1.0)
    x, y = toy_data()
    t = distiller.teacher(x, training=False).numpy()
    s = distiller.student(x, training=False).numpy()
    logs = distiller.evaluate(x, y, batch_size=len(x), return_dict=True, verbose=0)
    assert logs["loss"] == pytest.approx(_hand_kd(t, s, 1.0).mean(), rel=1e-5)


@pytest.mark.slow
def test_fit_on_a_dataset_keeps_its_order_without_keras_shuffle_warning():
    import warnings

    x, y = toy_data()
    distiller = tfdistill.Distiller(dense_model(8, "teacher"), dense_model(4, "student"))
    distiller.compile("adam")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distiller.fit(data, epochs=1, verbose=0)
    assert not [w for w in caught if "shuffle" in str(w.message)], [str(w.message) for w in caught]
