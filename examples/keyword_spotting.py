"""Keyword spotting on synthetic speech: a CNN teacher distilled into a DS-CNN of tens of kilobytes.

    python examples/keyword_spotting.py [--output runs/keyword_spotting] [--clips-per-word 300]

The corpus is made here: ten keywords spoken by espeak-ng's voices (synthetic
speech, not recordings of people), mixed with sox noise (by default at -5 to
20 dB SNR, a noisy room; `--snr-db 5 30` is easier), with held-out voices
for the test split (`tasks.speech_corpus`; needs `apt-get install espeak-ng
sox`). The models take log-mel features, 49 frames x 40 bins per second,
computed by `tasks.speech_corpus.log_mel_features`; the exported
`student_int8.tflite` takes the same features (on a device, compute them with
the same STFT settings: 30 ms frames, 20 ms step, 512-point FFT, 40 mel bins
from 20 to 7600 Hz, log(power + 1e-6)).
"""

import argparse
import time

from tasks.comparison import check_output_dir, compare_alone_and_distilled, task_recipe
from tasks.speech_corpus import log_mel_features, synthesize_keywords
from tasks.speech_models import ds_cnn, keyword_cnn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--output", default="runs/keyword_spotting", help="folder of the teacher, students and export")
parser.add_argument("--clips-per-word", type=int, default=300, help="clips synthesized per keyword")
parser.add_argument("--snr-db", type=float, nargs=2, default=(-5.0, 20.0), metavar=("LOW", "HIGH"),
                    help="range of the word-to-noise ratio in dB (lower is harder)")
parser.add_argument("--epochs", type=int, default=20, help="epochs of each student run")
parser.add_argument("--teacher-epochs", type=int, default=15, help="epochs of the teacher (when not reused)")
parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's students and export")
args = parser.parse_args()

check_output_dir(args.output, args.overwrite)  # before the data is read
start = time.perf_counter()
speech = synthesize_keywords(clips_per_word=args.clips_per_word, seed=0, snr_db=tuple(args.snr_db),
                             cache_dir=f"{args.output}/data")
data = {
    "x_train": log_mel_features(speech.x_train), "y_train": speech.y_train,
    "x_test": log_mel_features(speech.x_test), "y_test": speech.y_test,
}
print(f"Data: {len(speech.x_train):,} training and {len(speech.x_test):,} test clips (held-out voices), "
      f"noise at {args.snr_db[0]:g} to {args.snr_db[1]:g} dB SNR, {time.perf_counter() - start:.0f} s")

num_classes = len(speech.class_names)
compare_alone_and_distilled(
    "keyword spotting (synthetic speech)",
    data,
    make_teacher=lambda: keyword_cnn(num_classes=num_classes, widths=(32, 64, 128), features=data["x_train"]),
    make_student=lambda name: ds_cnn(num_classes=num_classes, features=data["x_train"], name=name),
    recipe=task_recipe(epochs=args.epochs, learning_rate=3e-3, batch_size=64),
    teacher_epochs=args.teacher_epochs,
    teacher_learning_rate=2e-3,
    output_dir=args.output,
    overwrite=args.overwrite,
)
