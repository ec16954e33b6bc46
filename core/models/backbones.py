"""The shallow CNNs in front of the TransPose encoder: ResNet-S and HRNet-S.

Module names mirror the official TransPose code (which follows the HRNet/SimpleBaseline
repositories) so that state-dict keys are identical; the code is our own.
"""
from __future__ import annotations

from torch import Tensor, nn

BN_MOMENTUM = 0.1


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                               nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_stage(block: type[BasicBlock] | type[Bottleneck], cin: int, planes: int,
               blocks: int, stride: int = 1) -> tuple[nn.Sequential, int]:
    """A run of residual blocks; the first one projects the shortcut when shapes change."""
    cout = planes * block.expansion
    downsample = None
    if stride != 1 or cin != cout:
        downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                   nn.BatchNorm2d(cout, momentum=BN_MOMENTUM))
    layers = [block(cin, planes, stride, downsample)]
    layers += [block(cout, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers), cout


class HighResolutionModule(nn.Module):
    """Parallel branches at 1/1, 1/2, 1/4... resolution, then cross-resolution fusion.

    With multi_scale_output=False only the highest-resolution output is fused (the last
    module of TransPose-H's stage 3), so only fuse_layers.0 exists.
    """

    def __init__(self, channels: list[int], num_blocks: int, multi_scale_output: bool) -> None:
        super().__init__()
        self.num_branches = len(channels)
        self.branches = nn.ModuleList(
            make_stage(BasicBlock, c, c, num_blocks)[0] for c in channels)
        self.fuse_layers = self._make_fuse_layers(channels, multi_scale_output)
        self.relu = nn.ReLU(inplace=False)

    @staticmethod
    def _make_fuse_layers(channels: list[int], multi_scale_output: bool) -> nn.ModuleList | None:
        n = len(channels)
        if n == 1:
            return None
        fuse = nn.ModuleList()
        for i in range(n if multi_scale_output else 1):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:    # lower resolution: 1x1 conv then nearest upsampling
                    row.append(nn.Sequential(
                        nn.Conv2d(channels[j], channels[i], 1, 1, 0, bias=False),
                        nn.BatchNorm2d(channels[i]),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:        # higher resolution: strided 3x3 convs, ReLU between them
                    steps = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = channels[i] if last else channels[j]
                        step: list[nn.Module] = [nn.Conv2d(channels[j], cout, 3, 2, 1, bias=False),
                                                 nn.BatchNorm2d(cout)]
                        if not last:
                            step.append(nn.ReLU(inplace=True))
                        steps.append(nn.Sequential(*step))
                    row.append(nn.Sequential(*steps))
            fuse.append(row)
        return fuse

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(self.relu(y))
        return out


def make_transition(cin: list[int], cout: list[int]) -> nn.ModuleList:
    """Adapt channels of existing branches and spawn new, lower-resolution ones."""
    layers = nn.ModuleList()
    for i, c in enumerate(cout):
        if i < len(cin):
            layers.append(conv_bn(cin[i], c, 3) if cin[i] != c else None)
        else:
            steps = []
            for j in range(i + 1 - len(cin)):
                last = j == i - len(cin)
                src = cin[-1]
                steps.append(nn.Sequential(nn.Conv2d(src, c if last else src, 3, 2, 1, bias=False),
                                           nn.BatchNorm2d(c if last else src),
                                           nn.ReLU(inplace=True)))
            layers.append(nn.Sequential(*steps))
    return layers
