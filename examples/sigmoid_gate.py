"""Backpropagation through the lectures' sigmoid neuron, one gate at a time.

f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) at w = (2, -3, -3), x = (-1, -2): every gate multiplies the
upstream gradient by its local gradient and passes the product on (downstream = upstream x local).

    python examples/sigmoid_gate.py
"""

from chainrule.demos import sigmoid_neuron
from chainrule.explain import explain

f, leaves = sigmoid_neuron(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
print(f"f = {f.data:.2f}")                      # 0.73

trace = explain(f)                              # prints the table: gate, value, upstream, local, downstream
for record in trace[:3]:                        # the first three gates, as on the slides
    print(f"{record.op:>4} gate: upstream {record.upstream:+.2f} x local {record.local[0]:+.2f} "
          f"= downstream {record.downstream[0]:+.2f}")

# explain() also filled in .grad of every leaf, exactly like f.backward() would
print({name: round(v.grad, 2) for name, v in leaves.items()})
# {'w0': -0.2, 'x0': 0.39, 'w1': -0.39, 'x1': -0.59, 'w2': 0.2}
