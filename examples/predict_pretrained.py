import torch
import acezoo

model = acezoo.load("egnn-nbody-ace")            # pruned (exactly E(3)-equivariant), eval mode, CPU
print(type(model).__name__, "training:", model.training, "params:", sum(p.numel() for p in model.parameters()))

# your own system: 2 configurations of 5 charged particles
g = torch.Generator().manual_seed(0)
pos = torch.randn(2, 5, 3, generator=g)
vel = 0.5 * torch.randn(2, 5, 3, generator=g)
charge = torch.tensor([[1., -1., 1., -1., 1.], [1., 1., -1., -1., 1.]])

x = acezoo.point_cloud(pos, vel, charge=charge)
with torch.no_grad():
    future = x.unstack(model(x))                  # (2, 5, 3): positions 1000 steps later
print(future.shape)
print(future[0])

# rotate the input: the prediction rotates with it
q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g))
with torch.no_grad():
    rotated = x.unstack(model(acezoo.point_cloud(pos @ q.T, vel @ q.T, charge=charge)))
print("max |f(Rx) - R f(x)|:", (rotated - future @ q.T).abs().max().item())
