"""One sigmoid neuron with hand-picked weights computes AND: sigmoid(-30 + 20 x1 + 20 x2).

    python examples/and_gate.py           # also writes and_gate.png (needs matplotlib)
"""

import chainrule.demos as demos
from chainrule.demos import logic_neuron, truth_table

AND = logic_neuron(20, 20, -30)
OR = logic_neuron(20, 20, -10)
for (x1, x2), a, o in zip([(0, 0), (0, 1), (1, 0), (1, 1)], truth_table(AND), truth_table(OR), strict=True):
    print(f"x = ({x1}, {x2}):  AND {a:.2e}  OR {o:.5f}")

# the full demo: the same numbers plus a picture of both neurons over [0, 1]^2
demos.run("and-gate")
