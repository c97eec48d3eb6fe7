"""Data loading: datasets, the ``DataLoader``, MNIST / Fashion-MNIST and toy datasets.

The same names as ``torch.utils.data`` (plus ``datasets`` as in torchvision and ``toy``):

>>> import chainrule as cr
>>> from chainrule.data import DataLoader, TensorDataset, toy
>>> X, y = toy.spirals(300, classes=3, seed=0)
>>> loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
>>> xb, yb = next(iter(loader))
>>> tuple(xb.shape), tuple(yb.shape)
((64, 2), (64,))

MNIST ships with chainrule (no download needed):

>>> from chainrule.data import MNIST
>>> train = MNIST(train=True, flatten=True)            # images as 784-vectors for an MLP
>>> xb, yb = next(iter(DataLoader(train, batch_size=128, shuffle=True)))
>>> tuple(xb.shape), str(xb.dtype), tuple(yb.shape), str(yb.dtype)
((128, 784), 'float32', (128,), 'int64')
"""

from . import datasets, toy
from .dataloader import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    default_collate,
    default_convert,
)
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .datasets import MNIST, FashionMNIST

__all__ = [
    "Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
    "DataLoader", "default_collate", "default_convert", "Sampler", "SequentialSampler", "RandomSampler",
    "SubsetRandomSampler", "BatchSampler",
    "MNIST", "FashionMNIST", "datasets", "toy",
]
