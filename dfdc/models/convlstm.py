"""A convolutional LSTM (Shi et al. 2015): an LSTM whose gates are convolutions over feature maps."""

from __future__ import annotations

import torch
import torch.nn as nn

State = tuple[torch.Tensor, torch.Tensor]


class ConvLSTMCell(nn.Module):
    """One time step. Gates in nn.LSTM's order (input, forget, cell, output) from one convolution
    over [x, h]; a 1x1 kernel on 1x1 maps is exactly an nn.LSTMCell."""

    def __init__(self, input_dim: int, hidden_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the map size, got {kernel_size}")
        self.hidden_dim = hidden_dim
        self.conv = nn.Conv2d(input_dim + hidden_dim, 4 * hidden_dim, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, state: State) -> State:
        h, c = state
        i, f, g, o = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTM(nn.Module):
    """The cell run over a sequence (B, T, C, H, W); returns every hidden map and the last (h, c)."""

    def __init__(self, input_dim: int, hidden_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.cell = ConvLSTMCell(input_dim, hidden_dim, kernel_size)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        b, t, _, height, width = x.shape
        if state is None:
            zeros = x.new_zeros(b, self.cell.hidden_dim, height, width)
            state = (zeros, zeros)
        hidden = []
        for step in range(t):
            state = self.cell(x[:, step], state)
            hidden.append(state[0])
        return torch.stack(hidden, dim=1), state
