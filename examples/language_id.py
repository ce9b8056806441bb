"""Language identification from 48 bytes of text: a byte-level transformer distilled into a 27x smaller CNN.

    python examples/language_id.py [--output runs/language_id] [--snippets-per-language 4000]

The text is Debian's manual pages in German, English, Spanish, French and
Italian (`apt-get install manpages manpages-de manpages-es manpages-fr
manpages-it`), cut into snippets of 48 bytes (`tasks.text_corpus`); the
test snippets come from pages that no training snippet comes from. The models
take the snippet's UTF-8 bytes + 1 as int32 tokens (0 pads), which is also
the exported `student_int8.tflite`'s input: `tasks.text_corpus.byte_tokens`.
"""

import argparse
import time

from tasks.comparison import check_output_dir, compare_alone_and_distilled, task_recipe
from tasks.text_corpus import language_id_data
from tasks.text_models import byte_cnn_classifier, byte_transformer_classifier

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--output", default="runs/language_id", help="folder of the teacher, students and export")
parser.add_argument("--snippets-per-language", type=int, default=4000, help="snippets per language")
parser.add_argument("--length", type=int, default=48, help="bytes per snippet")
parser.add_argument("--epochs", type=int, default=20, help="epochs of each student run")
parser.add_argument("--teacher-epochs", type=int, default=20, help="epochs of the teacher (when not reused)")
parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's students and export")
args = parser.parse_args()

check_output_dir(args.output, args.overwrite)  # before the data is read
start = time.perf_counter()
text = language_id_data(length=args.length, snippets_per_language=args.snippets_per_language, seed=0)
data = {"x_train": text.x_train, "y_train": text.y_train, "x_test": text.x_test, "y_test": text.y_test}
print(f"Data: {len(text.x_train):,} training and {len(text.x_test):,} test snippets of {args.length} bytes in "
      f"{', '.join(text.class_names)}, {time.perf_counter() - start:.0f} s")

num_classes = len(text.class_names)
compare_alone_and_distilled(
    "language identification (manual pages)",
    data,
    make_teacher=lambda: byte_transformer_classifier(args.length, num_classes),
    make_student=lambda name: byte_cnn_classifier(args.length, num_classes, name=name),
    recipe=task_recipe(epochs=args.epochs, learning_rate=5e-3, batch_size=128),
    teacher_epochs=args.teacher_epochs,
    teacher_learning_rate=1e-3,
    output_dir=args.output,
    overwrite=args.overwrite,
)
