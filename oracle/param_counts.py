"""PyTorch oracle for the student nets' parameter counts (and state-dict keys).

Defines ConvNet-D (DC/DSA/DM code), ResNetAP-10 (IDC/Minimax `resnet_ap.py`, 'large'
IntroBlock for 224 px) and ResNet-18 (torchvision layout with instance norm) the way those
repositories do, and prints `name input classes count` lines. crates/student's test
`param_counts_match_pytorch` holds these numbers.

    ${PYTHON:-python3} oracle/param_counts.py
"""
import torch.nn as nn
import torch.nn.functional as F


def norm(c, kind):
    return nn.GroupNorm(c, c, affine=True) if kind == "instance" else nn.BatchNorm2d(c)


class ConvNet(nn.Module):
    def __init__(self, channel, classes, depth, im_size, kind="instance", width=128):
        super().__init__()
        layers, c, size = [], channel, (32 if im_size == 28 else im_size)
        for d in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=3 if (im_size == 28 and d == 0) else 1),
                       norm(width, kind), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
            c, size = width, size // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * size * size, classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class BlockAP(nn.Module):
    def __init__(self, cin, planes, kind, stride=1):
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, planes, 3, 1, 1, bias=False)
        self.bn1 = norm(planes, kind)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes, kind)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, 1, bias=False),
                                            nn.AvgPool2d(stride, stride), norm(planes, kind))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        if self.stride != 1:
            out = F.avg_pool2d(out, self.stride, self.stride)
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Intro(nn.Module):
    def __init__(self, nch, kind):
        super().__init__()
        self.conv1 = nn.Conv2d(nch, 64, 7, 1, 3, bias=False)
        self.bn1 = norm(64, kind)

    def forward(self, x):
        return F.avg_pool2d(F.relu(self.bn1(self.conv1(x))), 4)


class ResNetAP10(nn.Module):
    def __init__(self, nch, classes, kind="instance"):
        super().__init__()
        self.layer0 = Intro(nch, kind)
        cin, stages = 64, []
        for i, planes in enumerate([64, 128, 256, 512]):
            stages.append(nn.Sequential(BlockAP(cin, planes, kind, 1 if i == 0 else 2)))
            cin = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.layer0(x)))))
        return self.fc(x.mean((2, 3)))


class Block(nn.Module):
    def __init__(self, cin, planes, kind, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = norm(planes, kind)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes, kind)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), norm(planes, kind))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet18(nn.Module):
    def __init__(self, nch, classes, kind="instance"):
        super().__init__()
        self.conv1 = nn.Conv2d(nch, 64, 7, 2, 3, bias=False)
        self.bn1 = norm(64, kind)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = 64, []
        for i, planes in enumerate([64, 128, 256, 512]):
            stages.append(nn.Sequential(Block(cin, planes, kind, 1 if i == 0 else 2), Block(planes, planes, kind)))
            cin = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean((2, 3)))


def count(net):
    return sum(p.numel() for p in net.parameters())


if __name__ == "__main__":
    cases = [
        ("convnet3", ConvNet(1, 10, 3, 28), "1x28x28", 10),
        ("convnet3", ConvNet(3, 10, 3, 32), "3x32x32", 10),
        ("convnet6", ConvNet(3, 10, 6, 224), "3x224x224", 10),
        ("resnetap10", ResNetAP10(3, 10), "3x224x224", 10),
        ("resnet18", ResNet18(3, 10), "3x224x224", 10),
        ("resnet18-batch", ResNet18(3, 1000, "batch"), "3x224x224", 1000),
    ]
    for name, net, shape, classes in cases:
        print(name, shape, classes, count(net))
    # State-dict keys of the smallest nets, for the key-naming test.
    print(" ".join(sorted(ConvNet(1, 10, 3, 28).state_dict().keys())))
    print(" ".join(sorted(ResNetAP10(3, 10).state_dict().keys())))
