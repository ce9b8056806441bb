"""A synthetic keyword-spotting corpus (espeak-ng speech, sox noise) and log-mel features.

The speech is synthetic: every clip is spoken by the `espeak-ng` formant
synthesizer, not recorded from a person, so a model trained on it learns
espeak-ng's voices and should not be expected to match one trained on real
speech (e.g. Speech Commands). What it offers is a keyword-spotting task
that is built here, with no download, deterministic from a seed (the
labels, voices and every random choice exactly; the sound as exactly as
espeak-ng and sox give it: twice, in the test suite, one clip of a second
synthesis differed by 0.024 at most), and with a test split of held-out
voices.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import tensorflow as tf

from tfdistill.data.arrays import load_npz
from tfdistill.export import atomic

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SAMPLE_RATE = 16000

# espeak-ng's English accents (`espeak-ng --voices=en`, its own voices, not MBROLA's)
# and voice variants (`espeak-ng --voices=variant`); one voice is `accent+variant`.
ACCENTS = ("en", "en-us", "en-us-nyc", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "croak", "whisper", "whisperf", "klatt", "klatt4", "grandma", "grandpa",
)  # fmt: skip
VOICES = tuple(f"{accent}+{variant}" for accent in ACCENTS for variant in VARIANTS)
NOISES = ("whitenoise", "pinknoise", "brownnoise")  # sox `synth` noise colours

# Ranges each clip's settings are drawn from, uniformly.
SPEED_WPM = (120, 220)  # espeak-ng -s
PITCH = (20, 80)  # espeak-ng -p
AMPLITUDE = (50, 120)  # espeak-ng -a (100 is espeak-ng's default)
SNR_DB = (5.0, 30.0)  # word to background noise
REVERB_PROBABILITY = 0.25  # sox `reverb` with a small random room

_FORMAT = "tfdistill-speech-1"  # Part of the cache key: change it when the clips change.
_NOISE_SECONDS = 30
_MARGIN = SAMPLE_RATE // 100  # 10 ms kept either side of the word when trimming silence


@dataclasses.dataclass(frozen=True, eq=False)
class SpeechData:
    """A keyword corpus: `x_*` float32 waveforms `(n, 16000)` in [-1, 1], `y_*` int32 labels `(n,)`.

    `voices_*` hold each clip's voice (`"accent+variant"`, shape `(n,)`); the
    train and test splits share none. `class_names[label]` is the word.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    voices_train: np.ndarray
    voices_test: np.ndarray


def split_voices(test_voices=0.2, seed=0):
    """Splits `VOICES` into `(train_voices, test_voices)`, two disjoint tuples.

    Args:
        test_voices: the fraction of voices held out for testing, in `[0, 1)`.
        seed: the seed of the (shuffled) split.

    Returns:
        Two tuples of voice names; the second holds `round(test_voices * len(VOICES))`.
    """
    held_out = round(test_voices * len(VOICES)) if 0 <= test_voices < 1 else -1
    if held_out < 0 or (test_voices > 0 and held_out in (0, len(VOICES))):
        raise ValueError(
            f"Invalid value for argument `test_voices`. Expected a fraction in [0, 1) that holds out at least one "
            f"of the {len(VOICES)} voices and keeps one for training. Received: test_voices={test_voices!r}"
        )
    order = np.random.default_rng([seed, 1]).permutation(len(VOICES))
    return tuple(VOICES[i] for i in sorted(order[held_out:])), tuple(VOICES[i] for i in sorted(order[:held_out]))


def synthesize_keywords(
    words=KEYWORDS, clips_per_word=300, seed=0, noise=True, test_voices=0.2, cache_dir=None, workers=2,
    snr_db=SNR_DB,
):
    """Synthesizes a keyword-spotting corpus of 1 s clips with espeak-ng and sox.

    The speech is synthetic (espeak-ng), not recorded. Each clip is one word
    spoken by a random voice (`VOICES`: an English accent with a voice
    variant) at a random speed, pitch and amplitude, sometimes with a little
    reverb, converted by sox to 16 kHz mono, trimmed of silence and placed at
    a random offset in 1 s of silence (a word longer than 1 s, rare, keeps
    its middle second). With `noise`, background noise that sox synthesizes
    (white, pink or brown) is added at a random SNR in `snr_db`, measured over
    the word's own stretch of the clip; a clip whose peak then exceeds 1 is
    scaled down, never clipped. The test split is spoken only by held-out
    voices (see `split_voices`), so it measures accuracy on unseen speakers;
    each word has `round(clips_per_word * test_voices)` test clips and the
    rest train. The default corpus (3,000 clips, 192 MB as float32) takes
    about a minute on 2 CPU cores.

    Args:
        words: the words to speak; label `i` is `words[i]`.
        clips_per_word: clips of each word, train and test together.
        seed: the seed of every random choice; the same arguments give the
            same arrays.
        noise: whether to add background noise.
        test_voices: the fraction of voices held out for the test split, in `[0, 1)`.
        cache_dir: a folder to keep the corpus in, as `speech_KEY.npz` with
            `KEY` a hash of the arguments; a later call with the same
            arguments reads it back. An existing file is never overwritten.
        workers: how many espeak-ng/sox pipelines run at once.
        snr_db: `(low, high)`: the range of the word-to-noise ratio in dB,
            drawn uniformly per clip (default 5 to 30 dB; lower is harder).

    Returns:
        A `SpeechData`.

    Raises:
        FileNotFoundError: espeak-ng or sox is not installed.
        ValueError: bad arguments, or a file of the cache's name that is not
            this corpus (it is left as it is).

    Example:
        >>> data = synthesize_keywords(cache_dir="~/.cache/tfdistill")  # doctest: +SKIP
        >>> data.x_train.shape, data.x_test.shape  # doctest: +SKIP
        ((2400, 16000), (600, 16000))

    Reference:
        Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech
        Recognition", 2018 (the ten keywords and the 1 s, 16 kHz format).
    """
    words = _check_words(words)
    if isinstance(clips_per_word, bool) or not isinstance(clips_per_word, (int, np.integer)) or clips_per_word < 1:
        raise ValueError(
            "Invalid value for argument `clips_per_word`. Expected a positive integer. "
            f"Received: clips_per_word={clips_per_word!r}"
        )
    if (not isinstance(snr_db, (tuple, list)) or len(snr_db) != 2
            or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in snr_db) or snr_db[0] > snr_db[1]):
        raise ValueError(
            "Invalid value for argument `snr_db`. Expected `(low, high)` in dB with low <= high. "
            f"Received: snr_db={snr_db!r}"
        )
    train_voices, held_out = split_voices(test_voices, seed)
    arguments = {"format": _FORMAT, "words": list(words), "clips_per_word": int(clips_per_word),
                 "seed": int(seed), "noise": bool(noise), "test_voices": float(test_voices)}
    if tuple(snr_db) != SNR_DB:  # the default keeps the keys of earlier caches
        arguments["snr_db"] = [float(v) for v in snr_db]
    key = hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:20]
    path = os.path.join(os.path.expanduser(cache_dir), f"speech_{key}.npz") if cache_dir else None
    if path and os.path.exists(path):
        return _read_cache(path, key)
    _check_tools()
    test_per_word = round(clips_per_word * test_voices)
    rng = np.random.default_rng([seed, 2])
    plans = [
        _plan(rng, label, word, held_out if i < test_per_word else train_voices, snr_db)
        for label, word in enumerate(words)
        for i in range(clips_per_word)
    ]
    noises = _noise_bank() if noise else None
    with tempfile.TemporaryDirectory(prefix="tfdistill-speech-") as scratch:
        with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
            speech = list(pool.map(lambda ip: _speak(*ip, scratch), enumerate(plans)))
    clips = np.stack([_place(word, plan, noises) for word, plan in zip(speech, plans)])
    labels = np.array([plan["label"] for plan in plans], np.int32)
    voices = np.array([plan["voice"] for plan in plans])
    test = np.array([plan["voice"] in held_out for plan in plans], bool)
    data = SpeechData(clips[~test], labels[~test], clips[test], labels[test], words, voices[~test], voices[test])
    if path:
        _write_cache(path, key, data)
    return data


def log_mel_spectrogram(waveforms, sample_rate=SAMPLE_RATE, frame_length=480, frame_step=320, fft_length=512,
                        num_mel_bins=40, lower_hz=20.0, upper_hz=7600.0):
    """Log-mel spectrogram `log(mel power + 1e-6)` of waveforms, in TensorFlow (works inside `tf.data`).

    The defaults are 30 ms Hann windows every 20 ms at 16 kHz, so a 1 s clip
    gives 49 frames of 40 mel bands (the HTK mel scale of
    `tf.signal.linear_to_mel_weight_matrix`).

    Args:
        waveforms: float waveforms, shape `(samples,)` or `(n, samples)`, a
            numpy array or a tensor.
        sample_rate: the waveforms' sample rate in Hz.
        frame_length, frame_step, fft_length: the STFT's window, hop and FFT size, in samples.
        num_mel_bins: the number of mel bands.
        lower_hz, upper_hz: the edges of the lowest and highest band.

    Returns:
        A float32 tensor, shape `(frames, num_mel_bins)` or `(n, frames, num_mel_bins)`,
        with `frames = 1 + (samples - frame_length) // frame_step`.

    Example:
        >>> log_mel_spectrogram(np.zeros(16000, "float32")).shape
        TensorShape([49, 40])

    Reference:
        Zhang et al., "Hello Edge: Keyword Spotting on Microcontrollers", 2017
        (49 x 40 log-mel inputs).
    """
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    spectrum = tf.signal.stft(waveforms, frame_length, frame_step, fft_length)
    weights = tf.signal.linear_to_mel_weight_matrix(num_mel_bins, fft_length // 2 + 1, sample_rate, lower_hz, upper_hz)
    mel = tf.tensordot(tf.square(tf.abs(spectrum)), weights, 1)
    return tf.math.log(mel + 1e-6)


def log_mel_features(waveforms, batch_size=512, **kwargs):
    """`log_mel_spectrogram` of many clips, in batches, with a channel axis for a CNN.

    Args:
        waveforms: float waveforms, shape `(n, samples)`.
        batch_size: clips per batch.
        **kwargs: passed to `log_mel_spectrogram`.

    Returns:
        A float32 numpy array, shape `(n, frames, num_mel_bins, 1)`: `(n, 49, 40, 1)` by default.

    Example:
        >>> log_mel_features(np.zeros((3, 16000), "float32")).shape
        (3, 49, 40, 1)
    """
    waveforms = np.asarray(waveforms, np.float32)
    if waveforms.ndim != 2:
        raise ValueError(
            f"Invalid value for argument `waveforms`. Expected shape (n, samples). Received: shape={waveforms.shape}"
        )
    if len(waveforms) == 0:  # The FFT refuses an empty batch: take one clip's shape, keep none.
        return log_mel_features(np.zeros((1, waveforms.shape[1]), np.float32), **kwargs)[:0]
    starts = range(0, len(waveforms), batch_size)
    batches = [log_mel_spectrogram(waveforms[i : i + batch_size], **kwargs).numpy() for i in starts]
    return np.concatenate(batches)[..., None]


def _check_words(words):
    if isinstance(words, str) or not all(isinstance(word, str) and word.strip() for word in words) or not len(words):
        raise ValueError(
            f"Invalid value for argument `words`. Expected a sequence of non-empty strings, e.g. ('yes', 'no'). "
            f"Received: words={words!r}"
        )
    words = tuple(words)
    if len(set(words)) != len(words):
        raise ValueError(f"Invalid value for argument `words`. Expected distinct words. Received: words={words!r}")
    return words


def _check_tools():
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise FileNotFoundError(
            f"synthesize_keywords needs the programs {missing}, which are not on PATH. "
            "Install them with `apt-get install espeak-ng sox` (Debian/Ubuntu)."
        )


def _plan(rng, label, word, voices, snr_db=SNR_DB):
    """Every random choice of one clip, drawn up front so the result does not depend on thread order.

    The noise is drawn even without `noise`, so that the clips with and without it hold the same words.
    """
    reverb = rng.random() < REVERB_PROBABILITY
    return {
        "label": label,
        "word": word,
        "voice": voices[rng.integers(len(voices))],
        "speed": int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)),
        "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
        "amplitude": int(rng.integers(AMPLITUDE[0], AMPLITUDE[1] + 1)),
        "reverb": [str(rng.integers(10, 51)), "50", str(rng.integers(10, 61))] if reverb else [],
        "offset": rng.random(),
        "noise": int(rng.integers(len(NOISES))),
        "noise_start": int(rng.integers(SAMPLE_RATE * (_NOISE_SECONDS - 1))),
        "snr_db": float(rng.uniform(*snr_db)),
    }


def _run(command, **kwargs):
    try:
        return subprocess.run(command, check=True, capture_output=True, **kwargs).stdout
    except subprocess.CalledProcessError as error:
        message = error.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{command[0]} failed ({' '.join(command)}): {message}") from error


def _raw_float(*effects):
    """sox arguments writing 16 kHz mono float32 samples to stdout (float: no dither, so deterministic)."""
    return ["-t", "raw", "-e", "floating-point", "-b", "32", "-r", str(SAMPLE_RATE), "-c", "1", "-", *effects]


def _speak(index, plan, scratch):
    """The word of `plan`, spoken by espeak-ng and converted by sox, trimmed of silence."""
    wav = os.path.join(scratch, f"{index}.wav")
    _run(["espeak-ng", "--stdin", "-v", plan["voice"], "-s", str(plan["speed"]), "-p", str(plan["pitch"]),
          "-a", str(plan["amplitude"]), "-w", wav], input=plan["word"].encode())  # stdin: a word is never an option
    effects = ["reverb", *plan["reverb"]] if plan["reverb"] else []
    samples = np.frombuffer(_run(["sox", wav, *_raw_float(*effects)]), "<f4")
    os.remove(wav)
    loud = np.flatnonzero(np.abs(samples) > 0.01 * np.abs(samples).max(initial=0))
    if len(loud) == 0:
        raise RuntimeError(f"espeak-ng spoke silence for word {plan['word']!r} with voice {plan['voice']!r}.")
    return samples[max(loud[0] - _MARGIN, 0) : loud[-1] + _MARGIN]


def _noise_bank():
    """`_NOISE_SECONDS` of each sox noise colour, zero mean, shape `(len(NOISES), samples)`.

    `sox -R` seeds sox's generator with a fixed number, so the bank is the same
    every time; each clip takes a window of it at a seeded offset.
    """
    bank = []
    for colour in NOISES:
        samples = np.frombuffer(_run(["sox", "-R", "-n", *_raw_float("synth", str(_NOISE_SECONDS), colour)]), "<f4")
        bank.append(samples - samples.mean())
    return np.stack(bank)


def _rms(x):
    return np.sqrt(np.mean(np.square(x, dtype=np.float64)))


def _place(word, plan, noises):
    """The 1 s clip: `word` at its offset, plus scaled noise; peak at most 1."""
    if len(word) > SAMPLE_RATE:
        start = (len(word) - SAMPLE_RATE) // 2
        word = word[start : start + SAMPLE_RATE]
    clip = np.zeros(SAMPLE_RATE, np.float32)
    offset = int(plan["offset"] * (SAMPLE_RATE - len(word) + 1))
    clip[offset : offset + len(word)] = word
    if noises is not None:
        noise = noises[plan["noise"], plan["noise_start"] : plan["noise_start"] + SAMPLE_RATE]
        level = _rms(word) / _rms(noise[offset : offset + len(word)]) / 10 ** (plan["snr_db"] / 20)
        clip += (level * noise).astype(np.float32)
    peak = np.abs(clip).max()
    return clip / peak if peak > 1 else clip


_SPLITS = (("x_train", "y_train", "voices_train"), ("x_test", "y_test", "voices_test"))


def _write_cache(path, key, data):
    """Writes `data` to `path` under a temporary name, then links it into place; an existing `path` is kept."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    atomic.remove_stale_temporaries(directory)
    temporary = atomic.temporary_path(path, suffix=".npz")
    arrays = {name: getattr(data, name) for split in _SPLITS for name in split}
    try:
        with open(temporary, "wb") as f:
            np.savez(f, key=np.array([key]), class_names=np.array(data.class_names), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.link(temporary, path)  # Unlike a rename, fails if `path` exists (another process wrote it meanwhile).
    except FileExistsError:
        pass
    except OSError:  # A file system without hard links: rename, if the name is still free.
        if not os.path.exists(path):
            os.rename(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _read_cache(path, key):
    (stored,) = load_npz(path, ("key",))
    if stored.tolist() != [key]:
        raise ValueError(
            f"File {path!r} exists but is not the speech corpus of these arguments (its key is "
            f"{stored.tolist()}, expected [{key!r}]). It is left as it is: remove it or pass another `cache_dir`."
        )
    (class_names,) = load_npz(path, ("class_names",))
    train, test = (load_npz(path, split) for split in _SPLITS)
    return SpeechData(*train[:2], *test[:2], tuple(class_names.tolist()), train[2], test[2])
