"""Distil the shipped Fashion-MNIST teacher into a small student with `fit`.

    python examples/distill_fit.py
"""

import keras

import tfdistill
from tfdistill.app.models import build_student
from tfdistill.data import load_fashion_mnist, make_dataset
from tfdistill.export import KERAS_COPY, latest_version_dir

keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = load_fashion_mnist()
train = make_dataset(x_train, y_train, batch_size=128, shuffle=True, seed=0)
test = make_dataset(x_test, y_test, batch_size=1024)

teacher_dir = latest_version_dir("saved_models/fashion_mnist_teacher")
teacher = keras.models.load_model(f"{teacher_dir}/{KERAS_COPY}")
student = build_student()

distiller = tfdistill.Distiller(teacher, student)
distiller.compile(
    optimizer=keras.optimizers.Adam(2e-3),
    # The recipe chosen on a validation split (docs/results/gains.md): KD at T=1 on the
    # teacher's probabilities alone.
    soft_loss=tfdistill.KnowledgeDistillation(temperature=1.0),
    hard_weight=0.0,
    soft_weight=1.0,
    metrics=["accuracy"],
)
distiller.fit(train, epochs=3, validation_data=test)
distiller.student.save("student.keras")
print("Student saved to student.keras")
