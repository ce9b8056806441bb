"""What the teacher gives the student, parsed once: `split_batch` and `TeacherOutputs`."""

import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import teacher_outputs
from tfdistill.teacher_outputs import (
    CLASSES_KEY,
    FEATURES_KEY,
    LOGITS_KEY,
    TEMPERATURE_KEY,
    TeacherOutputs,
    split_batch,
)


def test_a_plain_batch_goes_to_both_models_with_nothing_cached():
    x = tf.ones((2, 3))
    student_x, teacher_x, cached = split_batch(x)
    assert student_x is x and teacher_x is x and cached is None


def test_cached_dense_logits_are_read_as_float32_and_removed_from_the_input():
    x = {"x": tf.ones((2, 3)), LOGITS_KEY: tf.constant([[1.0, 2.0], [3.0, 4.0]], tf.float16)}
    student_x, teacher_x, cached = split_batch(x)
    assert student_x.shape == (2, 3) and teacher_x is student_x
    assert cached.cached and not cached.is_top_k and cached.features is None
    assert cached.logits.dtype == tf.float32
    np.testing.assert_array_equal(cached.for_soft_loss().numpy(), [[1, 2], [3, 4]])


def test_a_top_k_cache_gives_the_soft_loss_values_and_classes():
    values = tf.constant([[3.0, 1.0, -2.0]])
    classes = tf.constant([[2, 0]], tf.int32)
    x = {"x": tf.ones((1, 3)), LOGITS_KEY: values, CLASSES_KEY: classes, TEMPERATURE_KEY: tf.constant([4.0])}
    _, _, cached = split_batch(x)
    assert cached.is_top_k
    soft = cached.for_soft_loss()
    assert set(soft) == {"values", "classes"}
    np.testing.assert_array_equal(soft["classes"].numpy(), [[2, 0]])


def test_a_top_k_cache_without_its_temperature_is_refused():
    x = {"x": tf.ones((1, 3)), LOGITS_KEY: tf.ones((1, 3)), CLASSES_KEY: tf.constant([[0, 1]])}
    with pytest.raises(ValueError, match="teacher_temperature"):
        split_batch(x)


def test_cached_features_keep_their_layer_names_and_other_inputs_stay_a_dict():
    x = {"image": tf.ones((2, 3)), "mask": tf.ones((2,)), LOGITS_KEY: tf.ones((2, 4)),
         FEATURES_KEY: {"block1": tf.ones((2, 5), tf.float16)}}
    student_x, _, cached = split_batch(x)
    assert set(student_x) == {"image", "mask"}
    assert list(cached.features) == ["block1"] and cached.features["block1"].dtype == tf.float32


def test_separate_inputs_need_exactly_a_student_and_a_teacher_input():
    x = {"student": tf.ones((2, 3)), "teacher": tf.ones((2, 6))}
    student_x, teacher_x, _ = split_batch(x, separate_inputs=True)
    assert student_x.shape == (2, 3) and teacher_x.shape == (2, 6)
    with pytest.raises(ValueError, match="exactly the keys 'student' and 'teacher'"):
        split_batch({"student": tf.ones((2, 3))}, separate_inputs=True)


def test_the_soft_loss_must_read_top_k_exactly():
    teacher_outputs.check_soft_loss_reads_top_k(tfdistill.KnowledgeDistillation(4.0))
    with pytest.raises(ValueError, match="only the KD loss"):
        teacher_outputs.check_soft_loss_reads_top_k(tfdistill.DIST())
    with pytest.raises(ValueError, match="cannot follow a schedule"):
        schedule = tfdistill.schedules.LinearWarmup(1.0, 10, initial=4.0)
        teacher_outputs.check_soft_loss_reads_top_k(tfdistill.KnowledgeDistillation(schedule))


def test_the_in_graph_check_refuses_another_temperature_and_out_of_range_classes():
    outputs = TeacherOutputs(tf.ones((1, 3)), classes=tf.constant([[0, 1]]), temperature=tf.constant([4.0]))
    checked = teacher_outputs.assert_top_k_cache(outputs, 4.0, num_classes=5)
    np.testing.assert_array_equal(checked.classes.numpy(), [[0, 1]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="another temperature"):
        teacher_outputs.assert_top_k_cache(outputs, 2.0, num_classes=5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="class ids outside"):
        teacher_outputs.assert_top_k_cache(outputs, 4.0, num_classes=1)


def test_top_k_arguments_are_checked_before_the_teacher_runs():
    assert teacher_outputs.check_top_k_arguments(None, None) == (None, None)
    assert teacher_outputs.check_top_k_arguments(3, 2) == (3, 2.0)
    with pytest.raises(ValueError, match=r"Expected an int in \[1, 10\]"):
        teacher_outputs.check_top_k_arguments(11, 2.0, num_classes=10)
    with pytest.raises(ValueError, match="needs the temperature"):
        teacher_outputs.check_top_k_arguments(3, None)
