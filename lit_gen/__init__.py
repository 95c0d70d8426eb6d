"""lit_gen: energy-based and diffusion models as PyTorch Lightning modules, driven by the ``lit-gen`` CLI."""
