"""A small numpy deep-learning library: layers with backward passes, a sequential model, losses, optimizers."""

from digits.nn.layers import Conv2d, Dropout, Flatten, Layer, Linear, MaxPool2d, ReLU
from digits.nn.losses import softmax, softmax_cross_entropy
from digits.nn.model import Sequential, build, load, save
from digits.nn.optim import SGD, Adam, StepLR
from digits.nn.train import predict_proba, train_epoch

__all__ = [
    "Adam", "Conv2d", "Dropout", "Flatten", "Layer", "Linear", "MaxPool2d", "ReLU", "SGD", "Sequential", "StepLR",
    "build", "load", "predict_proba", "save", "softmax", "softmax_cross_entropy", "train_epoch",
]
