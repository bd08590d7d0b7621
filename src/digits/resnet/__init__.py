"""torchvision ResNets for one-channel 28x28 digits, one concern per module:

    network    build_resnet (stems for 28x28), the input convention
    weights    load_weights: ImageNet's or a .pth state dict, summed to one channel
    device     pick_device, distributed (torchrun), bf16_autocast
    training   train: the loop, one process or data-parallel, checkpoint and resume
    inference  predict_proba, test-time shifts
    files      save / load of models/resnet.pt
    member     ResNet: the ensemble member (digits.member) built on the above
"""
from digits.resnet.device import bf16_autocast, distributed, pick_device
from digits.resnet.files import load, save
from digits.resnet.inference import predict_proba
from digits.resnet.member import ResNet
from digits.resnet.network import ARCHS, STEMS, build_resnet
from digits.resnet.training import train
from digits.resnet.weights import load_weights

__all__ = ["ARCHS", "STEMS", "ResNet", "bf16_autocast", "build_resnet", "distributed", "load", "load_weights",
           "pick_device", "predict_proba", "save", "train"]
