"""A small numpy deep-learning library: layers with backward passes, a sequential model, losses,
optimizers, learning-rate schedules and augmentation."""

from digits.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from digits.nn.augment import RandomAffine, warp_affine
from digits.nn.checkpoint import load_checkpoint, save_checkpoint
from digits.nn.conv import Conv2d
from digits.nn.layers import Dropout, Flatten, Layer, Linear
from digits.nn.losses import softmax, softmax_cross_entropy
from digits.nn.model import Sequential, build, load, save
from digits.nn.norm import BatchNorm1d, BatchNorm2d
from digits.nn.optim import SGD, Adam, AdamW
from digits.nn.pooling import AvgPool2d, MaxPool2d
from digits.nn.schedules import CosineLR, OneCycleLR, StepLR
from digits.nn.train import predict_proba, train_epoch

__all__ = [
    "Adam", "AdamW", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "CosineLR", "Dropout", "Flatten", "Layer",
    "LeakyReLU", "Linear", "MaxPool2d", "OneCycleLR", "RandomAffine", "ReLU", "SGD", "Sequential", "Sigmoid",
    "StepLR", "Tanh", "build", "load", "load_checkpoint", "predict_proba", "save", "save_checkpoint", "softmax",
    "softmax_cross_entropy", "train_epoch", "warp_affine",
]
