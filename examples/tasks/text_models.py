"""Byte-level text models: small transformer teachers and the students distilled from them.

Every model takes int32 byte tokens (`text_corpus.byte_tokens`: a
byte's value + 1, 0 for padding, 257 tokens) and outputs logits: one row per
text for language identification, one row per position for the language
model. The transformers are built from Keras layers (multi-head attention,
pre-layer-normalization blocks); a convolution after the embedding gives them
the positions, so the models hold no custom layer and load anywhere.
"""

import keras

from .text_corpus import BYTE_VOCABULARY  # 257: 256 byte values and padding


def _transformer_block(x, dim, heads, ff_dim, dropout, causal, name):
    """Pre-LN block: `x + attention(LN(x))`, then `x + MLP(LN(x))`."""
    h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln1")(x)
    h = keras.layers.MultiHeadAttention(heads, dim // heads, dropout=dropout, name=f"{name}_attention")(
        h, h, use_causal_mask=causal
    )
    x = keras.layers.Add()([x, keras.layers.Dropout(dropout)(h)])
    h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ln2")(x)
    h = keras.layers.Dense(ff_dim, activation="gelu", name=f"{name}_mlp1")(h)
    h = keras.layers.Dense(dim, name=f"{name}_mlp2")(h)
    return keras.layers.Add()([x, keras.layers.Dropout(dropout)(h)])


def _transformer_body(tokens, dim, heads, ff_dim, layers, dropout, causal, vocabulary):
    x = keras.layers.Embedding(vocabulary, dim, name="byte_embedding")(tokens)
    # Positions from a convolution over neighbouring bytes (causal for a language model).
    x = keras.layers.Conv1D(dim, 3, padding="causal" if causal else "same", name="position_conv")(x)
    for layer in range(layers):
        x = _transformer_block(x, dim, heads, ff_dim, dropout, causal, name=f"block{layer}")
    return keras.layers.LayerNormalization(epsilon=1e-6, name="final_ln")(x)


def byte_transformer_classifier(length, num_classes, dim=64, heads=4, ff_dim=128, layers=2, dropout=0.1,
                                vocabulary=BYTE_VOCABULARY, name="byte_transformer"):
    """A transformer encoder over bytes, mean-pooled, for text classification (language ID).

    Args:
        length: tokens per text.
        num_classes: number of classes.
        dim, heads, ff_dim, layers: the transformer's size.
        dropout: in attention and after each sub-layer.
        vocabulary: token ids (257 bytes with padding).
        name: model name.

    Returns:
        A `keras.Model` from `(batch, length)` int32 tokens to `(batch, num_classes)` logits.

    Example:
        >>> byte_transformer_classifier(48, 5).output.shape
        (None, 5)
    """
    tokens = keras.Input((length,), dtype="int32", name="bytes")
    x = _transformer_body(tokens, dim, heads, ff_dim, layers, dropout, False, vocabulary)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(num_classes, name="logits")(x), name=name)


def byte_cnn_classifier(length, num_classes, embedding_dim=8, filters=32, kernel_size=5,
                        vocabulary=BYTE_VOCABULARY, name="byte_cnn"):
    """A one-layer CNN over byte embeddings with max pooling: byte n-gram detectors.

    Args:
        length: tokens per text.
        num_classes: number of classes.
        embedding_dim: size of each byte's embedding.
        filters: n-gram detectors.
        kernel_size: bytes each detector spans.
        vocabulary: token ids.
        name: model name.

    Returns:
        A `keras.Model` from `(batch, length)` int32 tokens to logits.

    Example:
        >>> byte_cnn_classifier(48, 5).count_params()
        3533

    Reference:
        Tang et al., "Distilling Task-Specific Knowledge from BERT into
        Simple Neural Networks", 2019 (a small non-transformer student);
        Kim, "Convolutional Neural Networks for Sentence Classification", 2014.
    """
    tokens = keras.Input((length,), dtype="int32", name="bytes")
    x = keras.layers.Embedding(vocabulary, embedding_dim, name="byte_embedding")(tokens)
    x = keras.layers.Conv1D(filters, kernel_size, activation="relu", name="ngrams")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(num_classes, name="logits")(x), name=name)


def byte_ngram_cnn_classifier(length, num_classes, embedding_dim=32, filters=128, kernel_sizes=(2, 3, 4, 5),
                              dropout=0.5, vocabulary=BYTE_VOCABULARY, name="byte_ngram_cnn"):
    """A wide CNN over byte embeddings: n-gram detectors of several widths, max pooled, with dropout.

    A teacher for few labels: on 100 labelled snippets per language it beats
    the byte transformer, which needs more data than that (see
    `benchmarks/few_labels.py --semi-teacher ngram_cnn`).

    Args:
        length: tokens per text.
        num_classes: number of classes.
        embedding_dim: size of each byte's embedding.
        filters: n-gram detectors per width.
        kernel_sizes: the widths, in bytes.
        dropout: dropout rate on the pooled detectors.
        vocabulary: token ids.
        name: model name.

    Returns:
        A `keras.Model` from `(batch, length)` int32 tokens to logits.

    Example:
        >>> byte_ngram_cnn_classifier(48, 5).count_params()
        68645

    Reference:
        Kim, "Convolutional Neural Networks for Sentence Classification", 2014
        (filters of several widths, max-over-time pooling, dropout).
    """
    tokens = keras.Input((length,), dtype="int32", name="bytes")
    x = keras.layers.Embedding(vocabulary, embedding_dim, name="byte_embedding")(tokens)
    pooled = [keras.layers.GlobalMaxPooling1D(name=f"max_{width}")(
        keras.layers.Conv1D(filters, width, activation="relu", name=f"ngrams_{width}")(x)) for width in kernel_sizes]
    x = keras.layers.Concatenate(name="ngrams")(pooled) if len(pooled) > 1 else pooled[0]
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(tokens, keras.layers.Dense(num_classes, name="logits")(x), name=name)


def byte_transformer_language_model(length, dim=128, heads=4, ff_dim=256, layers=2, dropout=0.1,
                                    vocabulary=BYTE_VOCABULARY, name="byte_transformer_lm"):
    """A causal transformer that predicts the next byte at every position.

    Returns:
        A `keras.Model` from `(batch, length)` int32 tokens to `(batch,
        length, vocabulary)` logits; position `t` sees tokens `0..t` only.

    Example:
        >>> byte_transformer_language_model(64).output.shape
        (None, 64, 257)
    """
    tokens = keras.Input((length,), dtype="int32", name="bytes")
    x = _transformer_body(tokens, dim, heads, ff_dim, layers, dropout, True, vocabulary)
    return keras.Model(tokens, keras.layers.Dense(vocabulary, name="next_byte")(x), name=name)


def byte_gru_language_model(length, embedding_dim=16, units=64, vocabulary=BYTE_VOCABULARY,
                            name="byte_gru_lm"):
    """A one-layer GRU that predicts the next byte at every position.

    Returns:
        A `keras.Model` from `(batch, length)` int32 tokens to `(batch,
        length, vocabulary)` logits.

    Example:
        >>> byte_gru_language_model(64).output.shape
        (None, 64, 257)
    """
    tokens = keras.Input((length,), dtype="int32", name="bytes")
    x = keras.layers.Embedding(vocabulary, embedding_dim, name="byte_embedding")(tokens)
    x = keras.layers.GRU(units, return_sequences=True, name="gru")(x)
    return keras.Model(tokens, keras.layers.Dense(vocabulary, name="next_byte")(x), name=name)


def byte_tcn_language_model(length, embedding_dim=16, filters=64, kernel_size=3, dilations=(1, 2, 4, 8),
                            vocabulary=BYTE_VOCABULARY, name="byte_tcn_lm"):
    """Dilated causal convolutions that predict the next byte at every position.

    Each layer sees `kernel_size` positions spaced by its dilation, so four
    layers with dilations 1, 2, 4, 8 see the last 31 bytes. Unlike a GRU, it
    converts to full-integer TFLite (TensorFlow 2.21's converter crashes on a
    GRU's loop under int8 calibration).

    Returns:
        A `keras.Model` from `(batch, length)` int32 tokens to `(batch,
        length, vocabulary)` logits; position `t` sees tokens `0..t` only.

    Example:
        >>> byte_tcn_language_model(64).output.shape
        (None, 64, 257)

    Reference:
        Bai, Kolter and Koltun, "An Empirical Evaluation of Generic
        Convolutional and Recurrent Networks for Sequence Modeling", 2018.
    """
    tokens = keras.Input((length,), dtype="int32", name="bytes")
    x = keras.layers.Embedding(vocabulary, embedding_dim, name="byte_embedding")(tokens)
    x = keras.layers.Conv1D(filters, 1, name="project")(x)
    for dilation in dilations:
        h = keras.layers.Conv1D(filters, kernel_size, padding="causal", dilation_rate=dilation,
                                activation="relu", name=f"causal_conv_d{dilation}")(x)
        x = keras.layers.Add()([x, h])
    return keras.Model(tokens, keras.layers.Dense(vocabulary, name="next_byte")(x), name=name)
