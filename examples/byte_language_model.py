"""A byte-level language model distilled per position: a causal transformer into a causal CNN.

    python examples/byte_language_model.py [--output runs/byte_language_model] [--sequences 20000]

The text is Debian's English manual pages (`apt-get install manpages`), cut
into sequences of 64 bytes (`tasks.text_corpus.language_model_data`); the
test sequences come from other pages. Every position predicts the next byte,
and the student is distilled at every position (token-level distillation),
padding weighted out. The teacher is cached once as its 8 largest logits and
a remainder per position, on disk, and read memory-mapped
(`write_teacher_logits(top_k=8)`). The exported `student_int8.tflite` takes
int32 byte tokens (`tasks.text_corpus.byte_tokens`).
"""

import argparse
import time

from tasks.comparison import check_output_dir, compare_alone_and_distilled, task_recipe
from tasks.text_corpus import language_model_data
from tasks.text_models import byte_tcn_language_model, byte_transformer_language_model

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--output", default="runs/byte_language_model", help="folder of the teacher, students and export")
parser.add_argument("--sequences", type=int, default=20000, help="sequences of 64 bytes")
parser.add_argument("--epochs", type=int, default=15, help="epochs of each student run")
parser.add_argument("--teacher-epochs", type=int, default=15, help="epochs of the teacher (when not reused)")
parser.add_argument("--top-k", type=int, default=8, help="teacher logits cached per position")
parser.add_argument("--hard-weight", type=float, default=1.0,
                    help="weight of the labels' loss beside KD's (the top-k cache says nothing of the other bytes)")
parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's students and export")
args = parser.parse_args()

LENGTH = 64
start = time.perf_counter()
check_output_dir(args.output, args.overwrite)  # before the data is read
text = language_model_data("en", length=LENGTH, sequences=args.sequences, seed=0)
data = {"x_train": text.x_train, "y_train": text.y_train, "w_train": text.w_train,
        "x_test": text.x_test, "y_test": text.y_test, "w_test": text.w_test}
print(f"Data: {len(text.x_train):,} training and {len(text.x_test):,} test sequences of {LENGTH} bytes, "
      f"{int(text.w_train.sum()):,} training tokens, {time.perf_counter() - start:.0f} s")

compare_alone_and_distilled(
    "byte language model (manual pages), per token",
    data,
    make_teacher=lambda: byte_transformer_language_model(LENGTH),
    make_student=lambda name: byte_tcn_language_model(LENGTH, name=name),
    recipe=task_recipe(epochs=args.epochs, learning_rate=3e-3, batch_size=64, hard_weight=args.hard_weight),
    teacher_epochs=args.teacher_epochs,
    teacher_learning_rate=1e-3,
    top_k=args.top_k,
    output_dir=args.output,
    verify_examples=500,
    # Per token over 257 bytes, many top-1 choices are near-ties that int8 rounding flips
    # (accuracy moves much less); 90 % agreement still catches a broken conversion.
    min_agreement=0.90,
    overwrite=args.overwrite,
)
