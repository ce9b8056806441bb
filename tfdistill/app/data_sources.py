"""The `Data` of a run's `data` section: labeled data in any form, split, with its unlabeled examples.

In order: the labeled data is read (`tfdistill.app.data_forms`), its training
split cut to `train_subset` (and the test split to `test_subset`), the validation split held out of it (labeled
examples only), `labels_per_class` labels kept, and the `unlabeled` pool added
(`tfdistill.app.unlabeled`). Everything is checked here, before any work.
"""

import numpy as np

from tfdistill.app import data_forms, unlabeled
from tfdistill.app.datasets import Data, concatenate


def from_config(section, input_shape=None):
    """The `Data` a `data` section describes (`tfdistill.app.sections.DataSection`).

    Args:
        section: the run's `data` section.
        input_shape: the teacher's input shape per example, which gives an
            image folder its image size and channels when `data.image_size`
            is not set.
    """
    parts = data_forms.read_labeled(section, input_shape)
    pool = None
    if section.unlabeled is not None:  # read before any split: a bad pool stops the run at once
        pool = unlabeled.read_pool(section.unlabeled, parts["raw_shape"], parts["raw_dtype"])
    train = parts.pop("train")
    if section.train_subset is not None:
        train = _subset(train, section.train_subset, section.seed)
    if section.test_subset is not None:
        parts["test"] = _subset(parts["test"], section.test_subset, section.seed)
    train, validation = data_forms.hold_out(train, section.validation_size, section.seed, "data.validation_size")
    if section.labels_per_class is not None:
        train = unlabeled.keep_labels(train, section.labels_per_class, len(parts["class_names"]), section.seed)
    if pool is not None:
        train = concatenate(train, pool)
    return Data(train=train, validation=validation, **parts)


def _subset(split, count, seed):
    """`count` examples of `split`: the first ones of arrays, as they come; files (listed class by class) drawn at random."""
    if split.in_memory:
        return split.subset(np.arange(min(count, len(split))))
    order = np.random.default_rng(seed).permutation(len(split))
    return split.subset(np.sort(order[:count]))
