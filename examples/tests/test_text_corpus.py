"""Manual pages as text: roff stripped exactly, bytes round-trip, splits by page and balanced."""

import gzip
import os

import numpy as np
import pytest

from tasks import text_corpus
from tasks.text_corpus import (
    BYTE_VOCABULARY,
    _own_text,
    byte_tokens,
    bytes_to_text,
    language_id_data,
    language_model_data,
    manpage_files,
    manpage_text,
    roff_to_text,
)


@pytest.mark.parametrize("source, expected", [
    ('.TH LS 1 2024 "GNU"\n.SH NAME\nls \\- list\n.SH "SEE ALSO"\n.BR dir (1),\n.IR file .',
     "NAME ls - list SEE ALSO dir(1), file."),
    ('.\\" a comment\n\'\\" another\n.PP\nSome \\fBbold\\fR, \\fIitalic\\fP and \\f[CW]code\\f[].\n'
     '.sp\n.br\n.RS 4\n.nf\n.B "two words"\n.fi\n.RE\nend \\" trailing comment',
     "Some bold, italic and code. two words end"),
    ("\\(em \\[em] \\(aq \\(:a \\('e \\[u00E9] \\*(lqq\\*(rq \\&.x \\e \\%word a\\ b \\-v \\s-1s\\s0",
     "\u2014 \u2014 ' \u00e4 \u00e9 \u00e9 \u201cq\u201d .x \\ word a b -v s"),
    (".IP \\(bu 2\nbullet\n.IP \"\\-v\" 4\nverbose\n.TP\n\\fB\\-q\\fR\nquiet", "bullet -v verbose -q quiet"),
    (".de XX\nhidden\n..\nshown\n.ig\nignored\n..\n.if n \\{\\\n.RS 4\n.\\}\n.ie t .sp\n.el .sp 2\nafter",
     "shown after"),
    ('.B "say ""hi"""\nfoo\\c\nbar', 'say "hi" foobar'),
    (".TS\ntab(@);\nl l.\nA@B\n_\nT{\nlong cell\nT}@C\n.TE\nnext", "A B long cell C next"),
    (".Sh NAME\n.Nm ls\n.Nd list files\n.Sh SYNOPSIS\n.Nm\n.Op Fl a Ar file", "NAME ls list files SYNOPSIS ls -a file"),
    (".so man1/other.1\n", ""),
], ids=["man", "fonts", "escapes", "tags", "definitions", "quotes", "table", "mdoc", "so"])
def test_roff_is_stripped_to_its_text(source, expected):
    assert roff_to_text(source) == expected


def test_manpage_text_reads_gzip_in_utf8_or_latin1(tmp_path):
    for name, data in (("u.1.gz", "Größe\n".encode("utf-8")), ("l.1.gz", "Größe\n".encode("latin-1"))):
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(b'.TH X 1\n.SH NAME\n' + data)
        assert manpage_text(str(tmp_path / name)) == "NAME Größe"


def test_byte_tokens_round_trip_pad_and_cut():
    texts = ["Größe", "é", ""]
    tokens = byte_tokens(texts, 8)
    assert tokens.dtype == np.int32 and tokens.shape == (3, 8)
    np.testing.assert_array_equal(tokens[1], [0xC3 + 1, 0xA9 + 1, 0, 0, 0, 0, 0, 0])
    assert tokens.max() < BYTE_VOCABULARY
    assert bytes_to_text(tokens) == texts
    np.testing.assert_array_equal(byte_tokens(["abcdef"], 3), [[98, 99, 100]])
    assert bytes_to_text(byte_tokens(["é"], 1)[0]) == "\ufffd"  # a cut character is replaced
    with pytest.raises(ValueError, match=r"argument `length`.*Received: length=0"):
        byte_tokens(["a"], 0)


def test_missing_language_names_the_debian_package(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"apt-get install manpages-it"):
        manpage_files("it", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"apt-get install manpages`"):
        language_model_data("en", root=str(tmp_path))


def _page(rng, words=120):
    """A page of random lower-case words (no 6-word phrase repeats across pages)."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    text = [
        "".join(rng.choice(letters, rng.integers(2, 9))) + ("." if i % 9 == 8 else "")
        for i in range(words)
    ]
    lines = [" ".join(text[i : i + 10]) for i in range(0, words, 10)]
    return ".TH P 1\n.SH NAME\n" + "\n.PP\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A manual with 12 pages of English (`man1`) and 8 of German (`de/man1`), plus a link and a `.so` page."""
    root = tmp_path_factory.mktemp("man")
    rng = np.random.default_rng(0)
    for folder, count in (("man1", 12), (os.path.join("de", "man1"), 8)):
        os.makedirs(root / folder)
        for k in range(count):
            with gzip.open(root / folder / f"page{k:02d}.1.gz", "wt", encoding="utf-8") as f:
                f.write(_page(rng))
        os.symlink("page00.1.gz", root / folder / "zlink.1.gz")
        with gzip.open(root / folder / "zso.1.gz", "wt") as f:
            f.write(".so man1/page01.1\n")
    return str(root)


def test_manpage_files_lists_each_layout_sorted(root):
    english, german = manpage_files("en", root), manpage_files("de", root)
    assert len(english) == 14 and len(german) == 10 and english == sorted(english)
    assert all(os.sep + "de" + os.sep not in path for path in english)


def test_language_id_is_balanced_split_by_page_and_deterministic(root):
    data = language_id_data(("de", "en"), length=24, snippets_per_language=50, test_fraction=0.25,
                            seed=3, root=root)
    assert data.x_train.shape == (76, 24) and data.x_test.shape == (24, 24)
    assert data.x_train.dtype == data.y_train.dtype == np.int32 and data.class_names == ["de", "en"]
    np.testing.assert_array_equal(np.bincount(data.y_train), [38, 38])
    np.testing.assert_array_equal(np.bincount(data.y_test), [12, 12])
    assert not set(data.pages_train) & set(data.pages_test)
    assert len(set(data.pages_test[data.y_test == 0])) == 2  # 25% of German's 8 pages
    pages = set(data.pages_train) | set(data.pages_test)
    assert not any(path.endswith(("zlink.1.gz", "zso.1.gz")) for path in pages)  # a link or `.so` is no page
    for x, path in zip(data.x_test, data.pages_test):
        snippet = bytes_to_text(x)
        assert len(snippet.encode()) == 24 and snippet in manpage_text(path)  # a real piece of its page
    again = language_id_data(("de", "en"), length=24, snippets_per_language=50, test_fraction=0.25,
                             seed=3, root=root)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.pages_test, data.pages_test)
    other = language_id_data(("de", "en"), length=24, snippets_per_language=50, test_fraction=0.25,
                             seed=4, root=root)
    assert not np.array_equal(other.x_train, data.x_train)


def test_too_little_text_is_refused(root):
    with pytest.raises(ValueError, match=r"Not enough text for 4000 train snippets of 24 bytes in language 'de'"):
        language_id_data(("de",), length=24, snippets_per_language=5000, root=root)
    with pytest.raises(ValueError, match=r"argument `test_fraction`.*Received: test_fraction=1"):
        language_id_data(("de",), test_fraction=1, root=root)


def test_language_model_targets_are_the_next_bytes(root):
    data = language_model_data("de", length=32, sequences=100, test_fraction=0.2, seed=1, root=root)
    assert data.x_train.shape == data.y_train.shape == data.w_train.shape == (80, 32)
    assert data.x_test.shape == (20, 32) and data.w_test.dtype == np.float32
    assert not set(data.pages_train) & set(data.pages_test)
    for x, y, w, path in ((data.x_train, data.y_train, data.w_train, data.pages_train),
                          (data.x_test, data.y_test, data.w_test, data.pages_test)):
        np.testing.assert_array_equal(w, (x > 0).astype(np.float32))  # 0 exactly on padding
        np.testing.assert_array_equal(y > 0, x > 0)
        both = (w[:, :-1] > 0) & (w[:, 1:] > 0)
        np.testing.assert_array_equal(y[:, :-1][both], x[:, 1:][both])  # y is x shifted by one
        for row in range(0, len(x), 7):  # x plus the last target is a piece of the page
            real = int(w[row].sum())
            piece = bytes(list(x[row, :real] - 1) + [y[row, real - 1] - 1]).decode()
            assert piece in manpage_text(path[row])
    assert (data.w_train == 0).any()  # a page's last window is padded


def test_text_found_on_two_pages_is_left_out():
    shared = "one two three four five six"
    runs = _own_text([f"a b {shared} c", f"{shared} d e", "f g h"])
    assert runs == [("a b", "c"), ("d e",), ("f g h",)]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/usr/share/man/it/man1"), reason="needs manpages-es and manpages-it")
def test_language_id_on_the_installed_pages():
    data = language_id_data(("es", "it"), length=32, snippets_per_language=100)
    assert data.x_train.shape == (160, 32) and data.x_test.shape == (40, 32)
    np.testing.assert_array_equal(np.bincount(data.y_test), [20, 20])
    assert not set(data.pages_train) & set(data.pages_test)
    assert all("/it/" in path for path in data.pages_test[data.y_test == 1])


def test_parsed_pages_are_read_back_from_disk_until_a_page_changes(root, tmp_path, monkeypatch):
    monkeypatch.setenv(text_corpus.CACHE_ENV, str(tmp_path / "cache"))
    text_corpus._corpus.cache_clear()
    first = text_corpus._corpus("de", root, 200)
    assert len(os.listdir(tmp_path / "cache")) == 1 and first[0]

    def never(path):
        raise AssertionError(f"parsed {path} again")

    text_corpus._corpus.cache_clear()
    with monkeypatch.context() as patch:
        patch.setattr(text_corpus, "manpage_text", never)
        assert text_corpus._corpus("de", root, 200) == first  # from the file, not the pages
    parsed = []
    monkeypatch.setattr(text_corpus, "manpage_text", lambda path: parsed.append(path) or "")
    with gzip.open(os.path.join(root, "de", "man1", "znew.1.gz"), "wt") as f:
        f.write(".TH P 1\n")
    try:
        text_corpus._corpus.cache_clear()
        text_corpus._corpus("de", root, 200)
    finally:
        os.remove(os.path.join(root, "de", "man1", "znew.1.gz"))
        text_corpus._corpus.cache_clear()
    assert len(parsed) == 10 and len(os.listdir(tmp_path / "cache")) == 2  # a new page: parsed anew
