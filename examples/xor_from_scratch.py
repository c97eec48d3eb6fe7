"""XOR from scratch: the plain PyTorch-style training loop, written out with chainrule.

Nothing hidden: a model, a loss, an optimizer, and the four lines of every training step
(zero the gradients, forward, backward, update).  Change `import chainrule as cr` to
`import torch as cr` (and `cr.nn` / `cr.optim` to `torch.nn` / `torch.optim`) and it runs on PyTorch.

    python examples/xor_from_scratch.py
"""

import chainrule as cr
from chainrule import nn, optim

cr.manual_seed(0)

# the four points of the truth table and their labels, as float columns for BCE
X = cr.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y = cr.tensor([[0.0], [1.0], [1.0], [0.0]])

# no straight line separates XOR's classes, so we need a hidden layer: 2 -> 4 (tanh) -> 1 (sigmoid)
model = nn.Sequential(
    nn.Linear(2, 4),
    nn.Tanh(),
    nn.Linear(4, 1),
    nn.Sigmoid(),
)
loss_fn = nn.BCELoss()                                   # -[y log p + (1 - y) log(1 - p)], averaged
optimizer = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

for step in range(1, 1001):
    optimizer.zero_grad()                                # 1. forget the previous step's gradients
    p = model(X)                                         # 2. forward pass: records the graph
    loss = loss_fn(p, y)
    loss.backward()                                      # 3. backward pass: dL/dw for every parameter
    optimizer.step()                                     # 4. w <- w - lr * (momentum-averaged) dL/dw
    if step % 200 == 0:
        accuracy = ((p > 0.5).float() == y).float().mean().item()
        print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {accuracy:.0%}")

with cr.no_grad():                                       # no graph needed to just look at the answers
    for (x1, x2), prob in zip(X.tolist(), model(X).flatten().tolist(), strict=True):
        print(f"{int(x1)} XOR {int(x2)} = {prob:.3f}  -> {int(prob > 0.5)}")
