"""Text from Debian's manual pages: byte-level language identification and language modelling.

The pages come from the Debian packages `manpages` (English) and `manpages-de`,
`manpages-fr`, `manpages-es`, `manpages-it`; their folders also hold pages of other
packages, which are used too. Every split is made by page, never by snippet, and
text found on several pages is left out, so that test text is not seen in training.
"""

import dataclasses
import functools
import glob
import gzip
import hashlib
import json
import os
import re
import tempfile
import unicodedata
import zlib

import numpy as np

MANPAGE_LANGUAGES = ("de", "en", "es", "fr", "it")
BYTE_VOCABULARY = 257  # 0 is padding, byte b is token b + 1
MANPAGE_ROOT = "/usr/share/man"


@dataclasses.dataclass(frozen=True, eq=False)
class TextData:
    """Arrays of a text task, split by page.

    `x_*`: `int32` byte tokens, shape `(n, length)`. `y_*`: `int32` class ids,
    shape `(n,)` (language identification) or next tokens, shape `(n, length)`
    (language model). `w_*`: `float32` weights, shape `(n, length)`, 0 on
    padding (language model only). `pages_*`: the page each row was cut from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list = None
    w_train: np.ndarray = None
    w_test: np.ndarray = None
    pages_train: np.ndarray = None
    pages_test: np.ndarray = None


# ---------------------------------------------------------------- files


def manpage_files(language, root=MANPAGE_ROOT):
    """The compressed manual pages of one language, sorted.

    Args:
        language: `"en"` for `root/man[1-8]/*.gz`, or a folder name such as
            `"de"` for `root/de/man[1-8]/*.gz`.
        root: the manual's root folder.

    Returns:
        A sorted list of paths (symbolic links included).

    Raises:
        FileNotFoundError: no page found; the message names the Debian package.

    Example:
        >>> manpage_files("de")[:1]  # doctest: +SKIP
        ['/usr/share/man/de/man1/AusweisApp2.1.gz']
    """
    folder = root if language == "en" else os.path.join(root, language)
    paths = sorted(glob.glob(os.path.join(folder, "man[1-8]", "*.gz")))
    if not paths:
        package = "manpages" if language == "en" else f"manpages-{language}"
        raise FileNotFoundError(
            f"No manual pages for language={language!r} in {folder!r}/man[1-8]. "
            f"Install them with `apt-get install {package}` (Debian/Ubuntu) or pass "
            f"`root=` pointing to a folder that holds them."
        )
    return paths


# ---------------------------------------------------------------- roff to text

# Named characters, `\(xx` or `\[xx]`; accented letters are composed below.
_CHARS = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "mi": "-", "bu": "\u2022", "aq": "'",
    "dq": '"', "lq": "\u201c", "rq": "\u201d", "oq": "\u2018", "cq": "\u2019",
    "Fo": "\u00ab", "Fc": "\u00bb", "fo": "\u2039", "fc": "\u203a", "Bq": "\u201e",
    "bq": "\u201a", "ga": "`", "aa": "\u00b4", "ha": "^", "ti": "~", "rs": "\\",
    "sl": "/", "ba": "|", "bv": "|", "br": "|", "at": "@", "sh": "#", "Do": "$",
    "pl": "+", "eq": "=", "co": "\u00a9", "rg": "\u00ae", "tm": "\u2122",
    "de": "\u00b0", "ss": "\u00df", "+-": "\u00b1", "mu": "\u00d7", "di": "\u00f7",
    "<=": "\u2264", ">=": "\u2265", "!=": "\u2260", "->": "\u2192", "<-": "\u2190",
    "ua": "\u2191", "da": "\u2193", "la": "\u27e8", "ra": "\u27e9", "ci": "\u25cb",
    "pd": "\u2202", "is": "\u222b", "if": "\u221e", "sr": "\u221a", "~~": "\u2248",
    "~=": "\u2245", "12": "\u00bd", "14": "\u00bc", "34": "\u00be", "dg": "\u2020",
    "oe": "\u0153", "OE": "\u0152", "ae": "\u00e6", "AE": "\u00c6", "/l": "\u0142",
    "/o": "\u00f8", "/O": "\u00d8", "ul": "_", "ru": "_", "or": "|", "ap": "~",
    "Eu": "\u20ac", "eu": "\u20ac", "ct": "\u00a2", "Po": "\u00a3", "Ye": "\u00a5",
    "S1": "\u00b9", "S2": "\u00b2", "S3": "\u00b3", "r!": "\u00a1", "r?": "\u00bf",
    "sc": "\u00a7", "ps": "\u00b6", "md": "\u00b7", "char46": ".", "shc": "-",
}
_ACCENTS = {":": "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303",
            ",": "\u0327", "v": "\u030c", "o": "\u030a"}
_GREEK = dict(zip("abgdezyhiklmnxoprstufcqw", "\u03b1\u03b2\u03b3\u03b4\u03b5\u03b6\u03b7"
                  "\u03b8\u03b9\u03ba\u03bb\u03bc\u03bd\u03be\u03bf\u03c0\u03c1\u03c3\u03c4"
                  "\u03c5\u03c6\u03c7\u03c8\u03c9"))
# Strings, `\*(xx` or `\*[xx]`: those of man(7), pod2man and DocBook that hold text.
_STRINGS = {"lq": "\u201c", "rq": "\u201d", "Aq": "'", "C'": '"', "C`": '"', "L\"": '"',
            "R\"": '"', "--": "\u2014", "PI": "\u03c0", "C+": "C++", "Tm": "\u2122",
            "R": "\u00ae", "Gt": ">", "Lt": "<", "Am": "&", "Ba": "|", "q": '"'}


def _named_char(name):
    """The character of a roff name (`em`, `'e`, `*a`, `u00E9`, `char233`), or ''."""
    if name in _CHARS:
        return _CHARS[name]
    if re.fullmatch(r"u[0-9A-F]{4,6}(_[0-9A-F]{4,6})*", name):
        return unicodedata.normalize("NFC", "".join(chr(int(c, 16)) for c in name[1:].split("_")))
    if re.fullmatch(r"char\d+", name):
        return chr(int(name[4:]))
    if len(name) == 2 and name[0] in _ACCENTS and name[1].isalpha():
        return unicodedata.normalize("NFC", name[1] + _ACCENTS[name[0]])
    if len(name) == 2 and name[0] == "*" and name[1].lower() in _GREEK:
        greek = _GREEK[name[1].lower()]
        return greek.upper() if name[1].isupper() else greek
    return ""


_ESCAPE = re.compile(
    r"""\\(?:
      (?P<comment>["\#].*)                                   # \" and \# comments
    | (?P<char>\((?P<c2>..)|\[(?P<cl>[^\]]*)\])              # \(xx \[name]
    | \*(?:\((?P<s2>..)|\[(?P<sl>[^\]\s]*)[^\]]*\]|(?P<s1>.))  # \*(xx \*[name args] \*x
    | [fFgkmMnVY$](?:\(..|\[[^\]]*\]|[+-]?.)                 # fonts, registers, colours
    | s(?:[+-]?\d|[+-]?\(\d\d|[+-]?\[[^\]]*\]|'[^']*')       # sizes
    | [hvwlLoXDZbxRABNSH](?P<q>.).*?(?P=q)                   # escapes with a quoted argument
    | (?P<one>.)                                             # everything else
    )""",
    re.VERBOSE,
)
_ONE = {"-": "-", "e": "\\", "E": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "t": " ", "'": "\u00b4",
        "`": "`", ".": ".", "_": "_"}


def _unescape(text):
    """`text` with roff's inline escapes replaced by the characters they stand for."""

    def replace(match):
        if match.group("comment") is not None:
            return ""
        if match.group("char") is not None:
            return _named_char(match.group("c2") or match.group("cl"))
        string = match.group("s2") or match.group("sl") or match.group("s1")
        if string is not None:
            return _STRINGS.get(string, "")
        one = match.group("one")
        if one is not None:
            return _ONE.get(one, "" if one in "&%:/,|^){}cdprzu!?\n" else one)
        return ""

    return _ESCAPE.sub(replace, text)


_ARGUMENT = re.compile(r'"((?:[^"]|"")*)"?|((?:\\.|[^\s\\])+)')
_FONT_JOINED = {"BR", "BI", "IB", "IR", "RI", "RB"}  # arguments alternate fonts, no space between
_FONT_SPACED = {"B", "I", "SM", "SB", "SH", "SS", "SY", "OP", "Sh", "Ss", "Nd"}
_BLOCKS = {"de", "de1", "am", "am1", "dei", "ami", "ig"}  # skipped up to `..` (or their end macro)
# mdoc macros whose arguments are text; macro names among those arguments are dropped.
_MDOC = {"Nm", "Ar", "Fl", "Op", "It", "Xr", "Pa", "Dq", "Ql", "Qo", "Qc", "Em", "Sy", "Cm",
         "Li", "Va", "Ev", "Fn", "Fa", "Ft", "Fd", "Dv", "Er", "Tn", "Ic", "Lk", "Mt", "Sx",
         "Aq", "Pq", "Bq", "Sq", "Qq", "Dl", "An", "Cd", "Vt", "Ad", "Ms", "Ot", "St", "Ux",
         "Bx", "Ox", "Nx", "Fx", "At", "Oo", "Oc", "Ao", "Ac", "Po", "Pc", "Ns", "No", "Pf",
         "Ta", "%T", "%A", "%B", "%J"}


def _arguments(line):
    """The arguments of a roff request line, quotes removed (`""` in quotes is one `"`)."""
    return [
        m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
        for m in _ARGUMENT.finditer(line)
    ]


def _request_text(name, arguments):
    """The text that the request `.name arguments` prints, or None for none."""
    if name in _FONT_JOINED:
        return "".join(arguments)
    if name in _FONT_SPACED:
        return " ".join(arguments)
    if name == "IP" and arguments and re.search(r"\w", _unescape(arguments[0])):
        return arguments[0]  # an option or a number as tag; a bullet alone is dropped
    if name in _MDOC:  # `.Op Fl v Ar file` -> `-v file`
        words = [name] + arguments
        return " ".join(
            ("-" if before == "Fl" else "") + word
            for before, word in zip(words, words[1:])
            if word not in _MDOC
        )
    return None


def _table_format_lines(lines, i):
    """The index after a tbl(1) header (options ending in `;`, format ending in `.`), and its tab."""
    tab = "\t"
    if i < len(lines) and lines[i].rstrip().endswith(";"):
        found = re.search(r"tab\s*\((.)\)", lines[i])
        tab = found.group(1) if found else tab
        i += 1
    while i < len(lines) and not lines[i].rstrip().endswith("."):
        i += 1
    return i + 1, tab


def roff_to_text(source):
    """Plain text of a man(7) or mdoc(7) page's roff source, whitespace collapsed.

    Comments, requests without text (`.TH`, `.PP`, `.sp`, `.so`, ...), macro
    definitions and conditionals are dropped; the text of font and heading macros
    (`.B`, `.BR`, `.SH`, ...) is kept without quotes; inline escapes become the
    characters they stand for (`\\(em` -> an em dash, `\\-` -> `-`) or nothing
    (`\\fB`, `\\&`).

    Args:
        source: the page's roff source, a string.

    Returns:
        The text, one line, single spaces; `''` for a page that is only `.so other`.

    Example:
        >>> roff_to_text('.TH LS 1\\n.SH NAME\\nls \\\\- list\\n.BR dir (1)')
        'NAME ls - list dir(1)'
    """
    lines = re.sub(r"(?<!\\)((?:\\\\)*)\\\n", r"\1", source).split("\n")  # `\` + newline joins
    pieces, i, table_tab, page_name = [], 0, None, []
    while i < len(lines):
        line, i = lines[i], i + 1
        if table_tab is not None:
            if re.match(r"[.']\s*TE\b", line):
                table_tab = None
                continue
            if re.match(r"[.']\s*T&", line):
                i, table_tab = _table_format_lines(lines, i)
                continue
            if re.fullmatch(r"\s*[_=]?\s*", line):
                continue
            line = " ".join(re.sub(r"^T\}|T\{$", "", cell) for cell in line.split(table_tab))
        if line[:1] in (".", "'"):
            request = re.match(r"[.']\s*(\S*)\s*(.*)", line)
            name, rest = request.group(1), request.group(2)
            if name in _BLOCKS:  # `.de NAME [END]` or `.ig [END]`, up to `..` or `.END`
                ends = _arguments(rest)[0 if name == "ig" else 1 :][:1] or ["."]
                end = re.compile(r"[.']\s*" + re.escape(ends[0]) + r"\s*$")
                while i < len(lines) and not end.match(lines[i]):
                    i += 1
                i += 1
                continue
            if name == "TS":
                i, table_tab = _table_format_lines(lines, i)
                continue
            arguments = _arguments(rest)
            if name == "Nm":  # mdoc: a bare `.Nm` repeats the page's name
                page_name = page_name or arguments[:1]
                arguments = arguments or page_name
            text = _request_text(name, arguments)
            if text is None:
                continue
            line = text
        pieces.append(_unescape(line))
        if re.search(r"(?<!\\)(?:\\\\)*\\c\s*$", line) and pieces:
            pieces[-1] += "\0"  # `\c`: the next line continues this word
    text = " ".join(pieces).replace("\0 ", "").replace("\0", "")
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())  # control characters too


def manpage_text(path):
    """The plain text of one compressed manual page (see `roff_to_text`).

    Args:
        path: a `.gz` page; UTF-8, or Latin-1 where it is not valid UTF-8.

    Returns:
        The page's text, whitespace collapsed; `''` for a page that only sources
        another (`.so man1/other.1`).

    Example:
        >>> manpage_text("/usr/share/man/man1/ls.1.gz")[:27]  # doctest: +SKIP
        'NAME ls - list directory co'
    """
    with gzip.open(path, "rb") as f:
        data = f.read()
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        source = data.decode("latin-1")
    return roff_to_text(source)


# ---------------------------------------------------------------- bytes


def _check_length(length):
    if int(length) != length or length < 1:
        raise ValueError(
            f"Invalid value for argument `length`. Expected a positive integer. Received: length={length!r}"
        )


def byte_tokens(texts, length):
    """UTF-8 bytes as tokens: byte `b` is `b + 1`, 0 is padding (`BYTE_VOCABULARY = 257`).

    Args:
        texts: a list of strings.
        length: tokens per row; longer texts are cut, shorter ones padded at the right.

    Returns:
        An `int32` array, shape `(len(texts), length)`.

    Example:
        >>> byte_tokens(["hé"], 4).tolist()
        [[105, 196, 170, 0]]
    """
    _check_length(length)
    tokens = np.zeros((len(texts), int(length)), np.int32)
    for row, text in enumerate(texts):
        data = np.frombuffer(text.encode("utf-8")[:length], np.uint8)
        tokens[row, : len(data)] = data.astype(np.int32) + 1
    return tokens


def bytes_to_text(tokens):
    """The inverse of `byte_tokens`: padding dropped, bytes decoded (`errors="replace"`).

    Args:
        tokens: integer tokens, shape `(length,)` for one text or `(n, length)`.

    Returns:
        A string for one row, else a list of `n` strings.

    Example:
        >>> bytes_to_text(byte_tokens(["Größe", "é"], 8))
        ['Größe', 'é']
    """
    tokens = np.asarray(tokens)
    if tokens.ndim == 1:
        return bytes((tokens[tokens > 0] - 1).astype(np.uint8).tolist()).decode("utf-8", errors="replace")
    return [bytes_to_text(row) for row in tokens]


# ---------------------------------------------------------------- pages and splits

_SHARED_WORDS = 6  # a run of this many words found on two pages of a language is left out


def _family(path):
    """A page's family: its file name up to the first `_`, `-` or `.` (`gcloud_alpha_...` -> `gcloud`)."""
    return re.split(r"[_.-]", os.path.basename(path))[0]


def _capped(paths, max_pages_per_family):
    """`paths` with each family cut to `max_pages_per_family` pages, evenly spaced in sorted order."""
    if max_pages_per_family is None:
        return paths
    families = {}
    for path in paths:
        families.setdefault(_family(path), []).append(path)
    kept = set()
    for members in families.values():
        picks = np.linspace(0, len(members) - 1, min(len(members), max_pages_per_family))
        kept.update(members[int(round(i))] for i in picks)
    return [path for path in paths if path in kept]


def _own_text(texts, n=_SHARED_WORDS):
    """Each text's runs of words that lie in no `n`-word phrase found in another text."""
    words = [text.split(" ") for text in texts]
    # Python's string hash: equal phrases, equal hashes; 64 bits make collisions negligible.
    hashes = [np.array([hash(g) for g in zip(*(w[i:] for i in range(n)))], np.int64) for w in words]
    none = [np.zeros(0, np.int64)]
    phrases, pages = np.unique(np.concatenate([np.unique(h) for h in hashes] + none), return_counts=True)
    shared = np.split(np.isin(np.concatenate(hashes + none), phrases[pages > 1]),
                      np.cumsum([len(h) for h in hashes])[:-1])
    runs = []
    for w, starts in zip(words, shared):
        covered = np.zeros(len(w), bool)  # word i lies in the phrases starting at i-n+1..i
        for i in range(n):
            covered[i : i + len(starts)] |= starts
        edges = np.flatnonzero(np.diff(np.concatenate([[True], covered, [True]])))
        runs.append(tuple(" ".join(w[start:end]) for start, end in zip(edges[::2], edges[1::2])))
    return runs


CACHE_ENV = "TFDISTILL_EXAMPLES_CACHE"
_CACHE_VERSION = 1  # bump when the text a page gives changes


def corpus_cache_dir():
    """Where parsed manual pages are kept between runs: `$TFDISTILL_EXAMPLES_CACHE`,
    else `~/.cache/tfdistill/examples`."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tfdistill", "examples")


@functools.lru_cache(maxsize=None)
def _corpus(language, root, max_pages_per_family):
    """`(paths, segments)`: each page's runs of text found on no other page of `language`.

    Links, hard links and identical pages count once; pages with no text of
    their own are left out. All English pages take tens of seconds, so the
    result is kept in memory and on disk (`corpus_cache_dir()`), under a key
    made of the arguments and every page's path, size and modification time:
    an installed or removed page makes a new entry.
    """
    paths, files, fingerprint = [], set(), []
    for path in manpage_files(language, root):
        stat = os.stat(path)
        if (stat.st_dev, stat.st_ino) not in files:
            files.add((stat.st_dev, stat.st_ino))
            paths.append(path)
            fingerprint.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    key = hashlib.sha256("\n".join([str(_CACHE_VERSION), language, str(max_pages_per_family), *fingerprint])
                         .encode()).hexdigest()[:24]
    cache_path = os.path.join(corpus_cache_dir(), f"manpages_{language}_{key}.json.gz")
    try:
        with gzip.open(cache_path, "rt", encoding="utf-8") as f:
            kept = json.load(f)
        return tuple(path for path, _ in kept), tuple(tuple(runs) for _, runs in kept)
    except (OSError, ValueError, EOFError):
        pass  # not cached yet, or unreadable: parse the pages again
    pages = {}  # text -> path, the first of identical pages
    for path in _capped(paths, max_pages_per_family):
        pages.setdefault(manpage_text(path), path)
    pages.pop("", None)
    kept = [(path, runs) for path, runs in zip(pages.values(), _own_text(list(pages))) if runs]
    _write_atomically(cache_path, kept)
    return tuple(path for path, _ in kept), tuple(runs for _, runs in kept)


def _write_atomically(path, value):
    """Writes `value` as gzipped JSON under a temporary name, then renames it into place, so
    that concurrent runs never read half a file. A folder that cannot be written is skipped."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as f:
            json.dump(value, f)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _rng(seed, language, part):
    """A generator that depends on the seed, the language and the use, not on Python's hash."""
    return np.random.default_rng([seed, zlib.crc32(language.encode()), part])


def _split_pages(count, test_fraction, rng):
    """Page indices `(train, test)`, shuffled; `round(count * test_fraction)` pages for test."""
    order = rng.permutation(count)
    n_test = int(round(count * test_fraction))
    if test_fraction > 0:
        n_test = min(max(n_test, 1), count - 1)
    return order[n_test:], order[:n_test]


def _windows(text, length, min_letter_fraction):
    """Non-overlapping snippets of `text` that start at a word and fill `length` UTF-8 bytes.

    A snippet holds whole characters only (a multi-byte character that does not
    fit is left out); snippets under `min_letter_fraction` letters are dropped.
    """
    snippets, start = [], 0
    while True:
        data = text[start : start + length].encode("utf-8")
        if len(data) < length:
            return snippets
        piece = data[:length].decode("utf-8", errors="ignore")  # drops a cut character
        if sum(c.isalpha() for c in piece) >= min_letter_fraction * len(piece):
            snippets.append(piece)
        space = text.find(" ", start + len(piece) - 1)
        if space < 0:
            return snippets
        start = space + 1


def _draw(pages, count, candidates, segments, rng, what):
    """`count` picks `(page, candidate)` from `pages`, round robin: one per page per pass.

    Pages are visited in the order given (shuffled by the caller);
    `candidates(segments[page])` lists what a page offers, taken in random
    order. Only the pages needed are looked at.
    """
    pools, picks = {}, []
    while len(picks) < count:
        before = len(picks)
        for page in pages:
            if page not in pools:
                offered = candidates(segments[page])
                pools[page] = [offered[j] for j in rng.permutation(len(offered))]
            if pools[page]:
                picks.append((page, pools[page].pop()))
                if len(picks) == count:
                    break
        if len(picks) == before:
            raise ValueError(
                f"Not enough text for {what}: its {len(pages)} pages hold {len(picks)}. "
                "Ask for fewer or shorter rows, or another `test_fraction`."
            )
    return picks


def _check(test_fraction, length):
    _check_length(length)
    if not 0 <= test_fraction < 1:
        raise ValueError(
            "Invalid value for argument `test_fraction`. Expected a number in [0, 1). "
            f"Received: test_fraction={test_fraction!r}"
        )


# ---------------------------------------------------------------- tasks

def language_id_data(languages=MANPAGE_LANGUAGES, length=48, snippets_per_language=4000,
                     test_fraction=0.2, seed=0, root=MANPAGE_ROOT, min_letter_fraction=0.6,
                     max_pages_per_family=200):
    """Byte snippets of manual pages labelled with their language.

    Each snippet starts at a word of one page and fills `length` UTF-8 bytes
    (rarely 1-3 bytes of padding where a multi-byte character does not fit);
    snippets under `min_letter_fraction` letters, such as option tables, are
    skipped. Snippets are drawn round robin, one per page per pass, so many
    pages contribute; small languages give several per page.

    Pages are split into train and test pages (deterministically from `seed`,
    the same split as `language_model_data`) before any text is cut: a test
    snippet never comes from a page seen in training, since memorised pages
    would inflate the accuracy. For the same reason text repeated across pages
    (licence and translator notices, `--help` lines, templated reference pages:
    any run of 6 words found on two pages of a language) is left out, and
    each family of pages (file name up to its first `_`, `-` or `.`) is cut to
    `max_pages_per_family` pages, evenly spaced: the 16,000 near-identical
    `gcloud_*` pages would otherwise make up most of English. Translations
    are incomplete: some snippets of the translated folders are English
    paragraphs left untranslated (up to about a fifth for `it`), label noise
    that caps the accuracy.

    Args:
        languages: language folders (`"en"` is the top-level `man1`-`man8`).
        length: bytes per snippet.
        snippets_per_language: snippets per language, train and test together;
            every language has the same number in each split.
        test_fraction: share of each language's pages, and of its snippets,
            kept for test.
        seed: the page split and the snippets.
        root: the manual's root folder.
        min_letter_fraction: smallest share of letters in a snippet.
        max_pages_per_family: pages kept per family, or None for all.

    Returns:
        A `TextData`: `x_*` `int32` tokens of shape `(n, length)` (see
        `byte_tokens`), `y_*` `int32` class ids of shape `(n,)` in the order
        of `languages`, `class_names = list(languages)`, and `pages_*` the page
        of each row.

    Raises:
        FileNotFoundError: a language with no pages (the message names its package).
        ValueError: a language whose pages hold too few snippets.

    Example:
        >>> data = language_id_data(snippets_per_language=1000)  # doctest: +SKIP
        >>> data.x_train.shape, data.x_test.shape  # doctest: +SKIP
        ((4000, 48), (1000, 48))
    """
    _check(test_fraction, length)
    if not languages or len(set(languages)) != len(languages):
        raise ValueError(
            "Invalid value for argument `languages`. Expected distinct language folders, "
            f"such as {MANPAGE_LANGUAGES}. Received: languages={languages!r}"
        )
    n_test = int(round(snippets_per_language * test_fraction))
    parts = {"train": snippets_per_language - n_test, "test": n_test}
    x, y, pages = ({"train": [], "test": []} for _ in range(3))
    for label, language in enumerate(languages):
        paths, segments = _corpus(language, root, max_pages_per_family)
        split = dict(zip(parts, _split_pages(len(paths), test_fraction, _rng(seed, language, 0))))
        for number, (part, count) in enumerate(parts.items(), start=1):
            picks = _draw(
                split[part], count,
                lambda page: [w for text in page for w in _windows(text, length, min_letter_fraction)],
                segments, _rng(seed, language, number),
                f"{count} {part} snippets of {length} bytes in language {language!r}",
            )
            x[part].append(byte_tokens([snippet for _, snippet in picks], length))
            y[part].append(np.full(count, label, np.int32))
            pages[part].append(np.array([paths[page] for page, _ in picks], dtype=object))
    x, y, pages = ({part: np.concatenate(arrays[part]) for part in parts} for arrays in (x, y, pages))
    return TextData(x["train"], y["train"], x["test"], y["test"], list(languages),
                    pages_train=pages["train"], pages_test=pages["test"])


def _sequence(data, start, length):
    """Next-byte row `(x, y, w)` of `data` (bytes) from `start`, padded to `length`.

    `y` is `x` shifted by one byte; the last window of `data` is shorter, and
    its last real position predicts the last byte of `data`.
    """
    real = min(length, len(data) - 1 - start)
    tokens = np.frombuffer(data[start : start + real + 1], np.uint8).astype(np.int32) + 1
    x, y, w = np.zeros((3, length), np.int32)
    x[:real], y[:real], w[:real] = tokens[:-1], tokens[1:], 1
    return x, y, w


def language_model_data(language="en", length=64, sequences=20000, test_fraction=0.1, seed=0,
                        root=MANPAGE_ROOT, max_pages_per_family=200):
    """Byte sequences of manual pages for next-byte prediction.

    A page's text is cut into windows of `length` bytes at stride `length`;
    `y` is `x` shifted by one byte within the text, so `y[:, t]` is the byte
    after `x[:, t]`. Windows at the end of a page, or of a stretch of text
    found on no other page, are shorter: padded with 0, weight 0. Windows are
    drawn round robin over pages in random order, one per page per pass.

    Pages are split into train and test pages, text repeated across pages is
    left out and families of pages are cut to `max_pages_per_family`, as in
    `language_id_data` (the same page split for a language and seed): test
    text never comes from a page seen in training.

    Args:
        language: a language folder (`"en"` is the top-level `man1`-`man8`).
        length: tokens per sequence.
        sequences: sequences, train and test together.
        test_fraction: share of the pages, and of the sequences, kept for test.
        seed: the page split and the draw.
        root: the manual's root folder.
        max_pages_per_family: pages kept per family, or None for all.

    Returns:
        A `TextData`: `x_*` and `y_*` `int32` tokens of shape `(n, length)`
        (see `byte_tokens`; `BYTE_VOCABULARY` classes), `w_*` `float32` weights
        of the same shape, 1 on real positions and 0 on padding,
        `class_names=None`, and `pages_*` the page of each row.

    Example:
        >>> data = language_model_data(sequences=2000)  # doctest: +SKIP
        >>> data.x_train.shape, data.w_test.shape  # doctest: +SKIP
        ((1800, 64), (200, 64))
    """
    _check(test_fraction, length)
    paths, segments = _corpus(language, root, max_pages_per_family)
    n_test = int(round(sequences * test_fraction))
    arrays = []
    split = _split_pages(len(paths), test_fraction, _rng(seed, language, 0))
    for number, (part, pages, count) in enumerate(zip(("train", "test"), split, (sequences - n_test, n_test))):
        picks = _draw(  # (segment, byte offset) of a page's windows
            pages, count,
            lambda page: [(k, start) for k, text in enumerate(page)
                          for start in range(0, len(text.encode("utf-8")) - 1, length)],
            segments, _rng(seed, language, 3 + number),
            f"{count} {part} sequences of {length} bytes in language {language!r}",
        )
        rows = np.zeros((3, count, length), np.int32)
        for row, (page, (k, start)) in enumerate(picks):
            rows[:, row] = _sequence(segments[page][k].encode("utf-8"), start, length)
        x, y, w = rows
        arrays += [x, y, w.astype(np.float32), np.array([paths[page] for page, _ in picks], dtype=object)]
    x_train, y_train, w_train, p_train, x_test, y_test, w_test, p_test = arrays
    return TextData(x_train, y_train, x_test, y_test, None, w_train, w_test, p_train, p_test)

