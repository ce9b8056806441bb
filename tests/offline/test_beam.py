"""The teacher's pass on Apache Beam: the same cache as the in-process pass, in shards that survive a dead worker."""

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfdistill
from tfdistill import offline
from tfdistill.errors import CacheIntegrityError
from tfdistill.offline import (
    ArrayExamples,
    ConcatenatedExamples,
    ImageFiles,
    TeacherModelHandler,
    read_sharded_cache,
    write_sharded_cache,
)
from tfdistill.offline.beam import ShardBatch
from tfdistill.offline.beam.fork_server import ForkServer
from helpers import REPO, SCRIPTS, image_student, image_teacher, small_images

# Shards of 32 examples in batches of 16: 100 examples make 4 shards, the last one partial, with a partial batch.
SHARDED = dict(batch_size=16, examples_per_shard=32, verbose=0)


@pytest.fixture
def teacher_file(tmp_path):
    path = str(tmp_path / "teacher.keras")
    image_teacher().save(path)
    return path


def png_folder(folder, images):
    os.makedirs(folder, exist_ok=True)
    for index, image in enumerate(images):
        with open(os.path.join(folder, f"{index:04d}.png"), "wb") as f:
            f.write(tf.io.encode_png(image[..., None]).numpy())
    return folder


def in_process(teacher_file, examples, path, **settings):
    """`write_teacher_logits`, the in-process pass, on the same examples and settings."""
    teacher = keras.models.load_model(teacher_file)
    settings = {key: value for key, value in settings.items() if key != "examples_per_shard"}
    return offline.write_teacher_logits(teacher, examples.load_example(), len(examples), str(path), **settings)


@pytest.mark.slow
@pytest.mark.parametrize("views", [1, 3])
def test_the_beam_pass_gives_the_in_process_pass_float32_logits_bit_for_bit(tmp_path, teacher_file, views):
    examples = ArrayExamples(small_images(100)[0])
    settings = dict(views=views, seed=5, dtype="float32", **SHARDED)
    cache = write_sharded_cache(teacher_file, examples, str(tmp_path / "cache"), **settings)
    expected = np.load(in_process(teacher_file, examples, tmp_path / "logits.npy", **settings))
    logits = read_sharded_cache(cache)
    assert logits.shape == (views, 100, 4) and logits.dtype == np.float32
    assert np.max(np.abs(np.asarray(logits) - expected)) == 0
    assert sorted(os.listdir(cache)) == ["manifest.json"] + [f"shard-0000{i}-of-00004" for i in range(4)]
    with open(os.path.join(cache, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["complete"] and [s["start"] for s in manifest["shards"]] == [0, 32, 64, 96]


@pytest.mark.slow
def test_image_files_and_top_k_shards_equal_the_in_process_top_k_directory(tmp_path, teacher_file):
    folder = png_folder(str(tmp_path / "png"), small_images(70)[0])
    examples = ImageFiles([os.path.join(folder, name) for name in sorted(os.listdir(folder))], (6, 6), channels=1)
    settings = dict(views=2, seed=1, top_k=2, temperature=2.0, **SHARDED)
    cache = read_sharded_cache(write_sharded_cache(teacher_file, examples, str(tmp_path / "cache"), **settings))
    expected = offline.read_top_k_cache(in_process(teacher_file, examples, tmp_path / "top2", **settings))
    assert cache.temperature == expected.temperature == 2.0
    np.testing.assert_array_equal(np.asarray(cache.values), expected.values)
    np.testing.assert_array_equal(np.asarray(cache.classes), expected.classes)
    assert cache.classes.dtype == np.uint16 and cache.values.dtype == np.float16


def test_concatenated_examples_read_each_part_in_turn_and_key_them_in_order(tmp_path):
    images = small_images(10)[0]
    folder = png_folder(str(tmp_path / "png"), images[:4])
    files = ImageFiles([os.path.join(folder, name) for name in sorted(os.listdir(folder))], (6, 6), channels=1)
    both = ConcatenatedExamples([ArrayExamples(images[4:]), files])
    load = both.load_example()
    read = np.stack([load(tf.constant(index, tf.int64)).numpy() for index in range(len(both))])
    np.testing.assert_array_equal(read[..., 0], np.concatenate([images[4:], images[:4]]) / np.float32(255))
    assert both.describe() == "6 arrays of shape (6, 6) and dtype uint8, then 4 image files read at 6x6x1"
    identities = [examples.identity().tobytes() for examples in (
        both, ConcatenatedExamples([ArrayExamples(images[4:])]), ConcatenatedExamples([files, ArrayExamples(images[4:])]),
        ConcatenatedExamples([ArrayExamples(images[4:]), files]))]
    assert len(set(identities[:3])) == 3 and identities[3] == identities[0]


@pytest.mark.slow
def test_labeled_arrays_then_unlabeled_image_files_give_the_in_process_pass_bit_for_bit(tmp_path, teacher_file):
    images = small_images(70)[0]
    folder = png_folder(str(tmp_path / "png"), images[40:])
    files = ImageFiles([os.path.join(folder, name) for name in sorted(os.listdir(folder))], (6, 6), channels=1)
    examples = ConcatenatedExamples([ArrayExamples(images[:40]), files])  # shard 1 holds arrays and files
    settings = dict(views=2, seed=3, dtype="float32", **SHARDED)
    cache = read_sharded_cache(write_sharded_cache(teacher_file, examples, str(tmp_path / "cache"), **settings))
    expected = np.load(in_process(teacher_file, examples, tmp_path / "logits.npy", **settings))
    single = np.load(in_process(teacher_file, ArrayExamples(images), tmp_path / "arrays.npy", **settings))
    assert cache.shape == (2, 70, 4)
    np.testing.assert_array_equal(np.asarray(cache), expected)
    np.testing.assert_array_equal(expected, single)  # the same images as arrays: the same outputs


@pytest.mark.slow
def test_top_k_shards_of_token_logits_equal_the_in_process_top_k_directory(tmp_path):
    """Logits with positions, (views, n, time, k + 1) values and (views, n, time, k) classes, as for a language model."""
    tokens = keras.Input((12,), dtype="int32")
    keras.Model(tokens, keras.layers.Dense(50)(keras.layers.Embedding(50, 8)(tokens))).save(tmp_path / "lm.keras")
    examples = ArrayExamples(np.random.default_rng(0).integers(0, 50, size=(40, 12), dtype=np.int32))
    settings = dict(top_k=4, temperature=1.0, **SHARDED)
    cache = read_sharded_cache(write_sharded_cache(str(tmp_path / "lm.keras"), examples, str(tmp_path / "c"), **settings))
    expected = offline.read_top_k_cache(in_process(str(tmp_path / "lm.keras"), examples, tmp_path / "top4", **settings))
    assert cache.values.shape == (1, 40, 12, 5) and cache.classes.shape == (1, 40, 12, 4)
    np.testing.assert_array_equal(np.asarray(cache.values), expected.values)
    np.testing.assert_array_equal(np.asarray(cache.classes), expected.classes)


@pytest.mark.slow
def test_distilling_on_either_cache_gives_identical_student_weights(tmp_path, teacher_file):
    images, labels = small_images(100)
    examples = ArrayExamples(images)
    settings = dict(views=3, seed=2, **SHARDED)
    caches = [write_sharded_cache(teacher_file, examples, str(tmp_path / "cache"), **settings),
              in_process(teacher_file, examples, tmp_path / "logits.npy", **settings)]
    keras.utils.set_random_seed(0)
    initial = image_student().get_weights()
    weights = []
    for cache in caches:
        train = offline.streaming_offline_dataset(examples.load_example(), labels, cache, batch_size=16, seed=4,
                                                  view_seed=2)
        student = image_student()
        student.set_weights(initial)
        distiller = tfdistill.Distiller(keras.models.load_model(teacher_file), student)
        distiller.compile(keras.optimizers.SGD(0.1))
        distiller.fit(train, epochs=2, verbose=0)
        weights.append(student.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(initial, weights[0]))  # it trained
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_in_memory_batches_from_a_sharded_cache_equal_those_from_the_single_file(tmp_path, teacher_file):
    images, labels = small_images(100)
    settings = dict(views=2, seed=0, **SHARDED)
    sharded = read_sharded_cache(write_sharded_cache(teacher_file, ArrayExamples(images), str(tmp_path / "c"), **settings))
    single = np.load(in_process(teacher_file, ArrayExamples(images), tmp_path / "l.npy", **settings))
    rows = np.random.default_rng(0).integers(0, [[2], [100]], size=(2, 50))
    np.testing.assert_array_equal(sharded[rows[0], rows[1]], single[rows[0], rows[1]])
    np.testing.assert_array_equal(sharded[1], single[1])
    for a, b in zip(offline.offline_dataset(images, labels, np.asarray(sharded), seed=3),
                    offline.offline_dataset(images, labels, single, seed=3)):
        np.testing.assert_array_equal(a[0]["teacher_logits"], b[0]["teacher_logits"])
        np.testing.assert_array_equal(a[0]["x"], b[0]["x"])


def _files(path):
    """Every file under `path` and its inode and modification time."""
    return {os.path.relpath(os.path.join(root, name), path): (os.stat(os.path.join(root, name)).st_ino,
                                                               os.stat(os.path.join(root, name)).st_mtime_ns)
            for root, _, names in os.walk(path) for name in names}


@pytest.mark.slow
def test_a_rerun_keeps_complete_shards_and_computes_missing_damaged_and_half_written_ones(tmp_path, teacher_file, capsys):
    examples = ArrayExamples(small_images(100)[0])
    settings = dict(views=2, seed=0, **SHARDED)
    cache = write_sharded_cache(teacher_file, examples, str(tmp_path / "cache"), **settings)
    before = np.asarray(read_sharded_cache(cache))
    with open(os.path.join(cache, "shard-00002-of-00004", "logits.npy"), "r+b") as f:  # damaged
        f.seek(200)
        f.write(b"\x00\x01")
    with pytest.raises(CacheIntegrityError, match="shard-00002-of-00004/logits.npy' is damaged"):
        read_sharded_cache(cache)
    shutil.rmtree(os.path.join(cache, "shard-00001-of-00004"))  # missing
    os.remove(os.path.join(cache, "shard-00003-of-00004", "integrity.json"))  # its writer died before the record
    with pytest.raises(CacheIntegrityError, match="shard-00001-of-00004' has no integrity record"):
        read_sharded_cache(cache)
    kept = {name: stat for name, stat in _files(cache).items() if name.startswith("shard-00000")}
    write_sharded_cache(teacher_file, examples, cache, **{**settings, "verbose": 1})
    assert "4 of 4 shards complete (3 computed now, 1 reused)" in capsys.readouterr().out
    assert {name: stat for name, stat in _files(cache).items() if name.startswith("shard-00000")} == kept
    np.testing.assert_array_equal(np.asarray(read_sharded_cache(cache)), before)


@pytest.mark.slow
def test_an_incomplete_cache_is_refused_naming_its_missing_shards(tmp_path, teacher_file):
    images, labels = small_images(100)
    cache = write_sharded_cache(teacher_file, ArrayExamples(images), str(tmp_path / "cache"), **SHARDED)
    with open(os.path.join(cache, "manifest.json")) as f:
        manifest = json.load(f)
    manifest["shards"] = [entry for entry in manifest["shards"] if entry["index"] != 2]
    manifest["complete"] = False
    with open(os.path.join(cache, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    message = r"is incomplete: 1 of 4 shards missing \(\[2\]\)\. Run the same pass again"
    with pytest.raises(CacheIntegrityError, match=message):
        read_sharded_cache(cache)
    with pytest.raises(CacheIntegrityError, match=message):
        offline.streaming_offline_dataset(ArrayExamples(images).load_example(), labels, cache)
    with pytest.raises(CacheIntegrityError, match="was written for another teacher, data or settings"):
        read_sharded_cache(cache, key="another")


@pytest.mark.slow
def test_a_killed_worker_leaves_no_shard_and_the_rerun_completes_the_cache(tmp_path, teacher_file):
    """Two worker processes; the one computing shard 3 is killed while it writes it (its second batch blocks)."""
    folder = png_folder(str(tmp_path / "png"), small_images(160)[0])  # 5 shards of 32, 2 batches per view
    blocked = os.path.join(folder, f"{3 * 32 + 20:04d}.png")
    os.rename(blocked, blocked + ".kept")
    os.mkfifo(blocked)  # reading it waits for a writer that never comes
    cache = str(tmp_path / "cache")
    command = [sys.executable, os.path.join(SCRIPTS, "sharded_pass.py"), teacher_file, folder, cache,
               "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        shard = os.path.join(cache, "shard-00003-of-00005")
        worker, deadline = None, time.time() + 400
        while worker is None and time.time() < deadline and driver.poll() is None:
            names = os.listdir(shard) if os.path.isdir(shard) else []
            found = [re.search(r"-(\d+)-[0-9a-f]{8}\.partial", name) for name in names]
            worker = next((int(match.group(1)) for match in found if match), None)
            time.sleep(0.1)
        assert worker is not None, (tmp_path / "driver.log").read_text()[-3000:]
        with open(f"/proc/{worker}/stat") as f:
            server = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{server}/cmdline", "rb") as f:
            assert b"tfdistill_command.beam_fork_server" in f.read()  # forked from the server, TensorFlow imported
        os.kill(worker, signal.SIGKILL)  # mid-shard: its first batch is written, its second never comes
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert driver.returncode != 0
    with open(os.path.join(cache, "manifest.json")) as f:
        assert 3 not in [entry["index"] for entry in json.load(f)["shards"]]
    assert not os.path.exists(os.path.join(shard, "integrity.json"))
    complete = [name for name in os.listdir(cache)
                if os.path.isfile(os.path.join(cache, name, "integrity.json"))]
    kept = {name: stat for name, stat in _files(cache).items() if name.split("/")[0] in complete}

    os.remove(blocked)
    os.rename(blocked + ".kept", blocked)
    script = _script("sharded_pass")
    write_sharded_cache(teacher_file, script.examples(folder), cache, **script.SETTINGS)  # the re-run
    assert {name: stat for name, stat in _files(cache).items() if name.split("/")[0] in complete} == kept
    assert sorted(os.listdir(shard)) == ["integrity.json", "logits.npy"]  # the dead worker's temporary is gone
    uninterrupted = write_sharded_cache(teacher_file, script.examples(folder), str(tmp_path / "whole"), **script.SETTINGS)
    np.testing.assert_array_equal(np.asarray(read_sharded_cache(cache)), np.asarray(read_sharded_cache(uninterrupted)))
    # The shards the two worker processes wrote hold the in-process pass's float32 logits, bit for bit.
    expected = np.load(in_process(teacher_file, script.examples(folder), tmp_path / "logits.npy", **script.SETTINGS))
    assert np.max(np.abs(np.asarray(read_sharded_cache(cache)) - expected)) == 0


def _script(name):
    """A module of `tests/scripts/`, imported (its `main` not run)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _variable_length_teacher(path):
    inputs = keras.Input((None, 3))
    keras.Model(inputs, keras.layers.Dense(4)(inputs)).save(path)
    return path


@pytest.mark.parametrize("arguments", [
    dict(views=0), dict(batch_size=0), dict(dtype="int8"), dict(top_k=9, temperature=1.0), dict(top_k=2),
    dict(teacher="variable"), dict(path="file"),
], ids=lambda arguments: ",".join(arguments))
def test_bad_arguments_get_the_errors_of_the_in_process_pass(tmp_path, teacher_file, arguments):
    arguments = dict(arguments)
    if arguments.get("teacher") == "variable":
        arguments["teacher"] = _variable_length_teacher(str(tmp_path / "variable.keras"))
    if arguments.get("path") == "file":
        arguments["path"] = str(tmp_path / "taken")
        open(arguments["path"], "w").close()
    teacher = arguments.pop("teacher", teacher_file)
    path = arguments.pop("path", str(tmp_path / "new"))
    examples = ArrayExamples(small_images(8)[0])
    errors = []
    for write in (in_process, write_sharded_cache):
        with pytest.raises((ValueError, FileExistsError)) as error:
            write(teacher, examples, path, verbose=0, **arguments)
        errors.append((type(error.value), str(error.value)))
    assert errors[0] == errors[1]
    assert not os.path.exists(str(tmp_path / "new"))


def test_the_direct_runner_runs_on_beams_python_engine_with_its_options():
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from tfdistill.offline.beam.pipeline import _local_runner

    for options in ([], ["--runner=DirectRunner", "--direct_num_workers=2"]):
        assert isinstance(_local_runner(PipelineOptions(options)), FnApiRunner)  # not the Prism binary it downloads
    assert _local_runner(PipelineOptions(["--runner=PrismRunner"])) is None
    assert _local_runner(PipelineOptions(["--runner=DataflowRunner"])) is None


def test_shards_must_hold_whole_batches(tmp_path, teacher_file):
    with pytest.raises(ValueError, match=r"`examples_per_shard`\. Expected a multiple of `batch_size` \(16\)"):
        write_sharded_cache(teacher_file, ArrayExamples(small_images(8)[0]), str(tmp_path / "c"), batch_size=16,
                            examples_per_shard=40)


@pytest.mark.slow
def test_a_folder_of_anything_else_is_never_written_to(tmp_path, teacher_file):
    examples = ArrayExamples(small_images(40)[0])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("kept")
    with pytest.raises(FileExistsError, match="holds no sharded teacher cache; nothing was written"):
        write_sharded_cache(teacher_file, examples, str(mine), **SHARDED)
    assert os.listdir(mine) == ["notes.txt"]
    cache = write_sharded_cache(teacher_file, examples, str(tmp_path / "cache"), seed=0, **SHARDED)
    before = _files(cache)
    with pytest.raises(FileExistsError, match="holds a teacher cache made with other settings, teacher or data"):
        write_sharded_cache(teacher_file, examples, cache, views=2, seed=1, **SHARDED)
    assert _files(cache) == before


@pytest.mark.slow
@pytest.mark.parametrize("form", ["keras", "exported", "foreign_saved_model"])
def test_the_handler_loads_keras_files_and_saved_models_as_the_project_does(tmp_path, form):
    from tfdistill.app.model_sources import load_teacher
    from tfdistill.export import export_saved_model

    teacher = image_teacher()
    load = None
    if form == "keras":
        path = str(tmp_path / "teacher.keras")
        teacher.save(path)
    elif form == "exported":
        path = os.path.dirname(export_saved_model(teacher, str(tmp_path / "served"), raw_shape=(None, 6, 6, 1)))
    else:
        path = str(tmp_path / "saved_model")
        teacher.export(path, verbose=False)
        load = load_teacher  # the command line's loader: any SavedModel, through its serving signature
    images = small_images(16)[0][..., None].astype("float32") / 255.0
    handler = TeacherModelHandler(path, load=load)
    assert handler.should_skip_batching()
    (result,) = handler.run_inference(ShardBatch(2, 1, 32, images), handler.load_model())
    assert result.example == (2, 1, 32)
    np.testing.assert_allclose(result.inference["logits"], teacher(images).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_the_library_works_without_apache_beam_and_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['apache_beam'] = None\n"
        "import tfdistill, tfdistill.offline as offline\n"
        "offline.read_sharded_cache, offline.ImageFiles\n"
        "try:\n"
        "    offline.write_sharded_cache\n"
        "except ImportError as error:\n"
        "    print('refused:', error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=REPO), cwd=str(tmp_path)).stdout
    assert "refused: The teacher's pass on Apache Beam needs the `apache-beam` package: pip install 'tfdistill[beam]'" in out


@pytest.mark.slow
def test_local_worker_processes_run_tfdistills_worker_which_reports_and_exits_at_once(tmp_path, teacher_file):
    """The local runner starts its workers through `tfdistill_command.beam_worker`; other commands are untouched."""
    import apache_beam as beam
    from apache_beam.transforms.environments import SubprocessSDKEnvironment
    from tfdistill.offline.beam import pipeline as beam_pipeline

    def environments(command, fork_server=None):
        p = beam.Pipeline()  # built, never run
        p | beam.Create([1])
        proto = p.to_runner_api(default_environment=SubprocessSDKEnvironment.from_command_string(command))
        beam_pipeline._fast_exit_workers(proto, fork_server)
        return [e.payload.decode() for e in proto.components.environments.values()
                if e.urn == "beam:env:harness_subprocess_python:v1"]

    beams = f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main"
    assert environments(beams) == [f'{sys.executable} -c "import tfdistill_command; tfdistill_command.beam_worker()"']
    with ForkServer() as server:
        assert environments(beams, server) == [
            f'{sys.executable} -c "import tfdistill_command; tfdistill_command.beam_worker({server.path!r})"']
        assert environments("my_worker --flag", server) == ["my_worker --flag"]  # a command of the user's own is kept
