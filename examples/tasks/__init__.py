"""The text and speech tasks of `keyword_spotting.py`, `language_id.py` and `byte_language_model.py`.

| module | what it holds |
| --- | --- |
| `text_corpus.py` | Debian's manual pages as text: language-ID snippets and next-byte sequences, split by page |
| `speech_corpus.py` | keywords synthesized with espeak-ng and sox noise; log-mel features |
| `text_models.py` | byte-level transformers and their CNN students |
| `speech_models.py` | a keyword-spotting CNN and the DS-CNN student |
| `comparison.py` | one task end to end: teacher, student alone and distilled, int8 export, `results.json` |

The scripts import it as `tasks` (`python examples/language_id.py` puts
`examples/` first on the path); it is not part of the installed `tfdistill`
package, which never imports it.
"""
