"""The federation engine: parameter splits, clients, strategies, the simulation loop, history."""
