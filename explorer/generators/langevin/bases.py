"""DimeNet++'s spherical basis layer without the sympy work at every model load.

torch_geometric's ``SphericalBasisLayer`` derives its radial Bessel basis symbolically (``sympy.simplify`` of
every normalised spherical Bessel function) each time it is built: about 10 s on one core, paid by every
``explorer generate`` that loads the langevin model, by the app and by every worker process. The expressions
depend only on the basis sizes, so they are derived once and kept: the package ships them for the sizes of the
shipped network (``resources/dimenet_bases.json``, written by :func:`write_shipped`), and other sizes are
derived once per process. The shipped text is sympy's own ``srepr`` of the derived expressions, so the layer is
built from the same expressions (the same functions, bit for bit) as torch_geometric's.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "dimenet_bases.json"
SHIPPED_SIZES = ((6, 6),)  # (num_spherical, num_radial) of model.DEFAULTS


def _key(num_spherical: int, num_radial: int) -> str:
    return f"{num_spherical},{num_radial}"


def derive(num_spherical: int, num_radial: int) -> dict:
    """The symbolic forms as torch_geometric derives them: {"bessel": [[expr] * k] * n, "sph_harm": [[expr]] * n}."""
    from torch_geometric.nn.models.dimenet_utils import bessel_basis, real_sph_harm

    return {"bessel": bessel_basis(num_spherical, num_radial), "sph_harm": real_sph_harm(num_spherical)}


@functools.cache
def _shipped() -> dict:
    return json.loads(SHIPPED.read_text()) if SHIPPED.is_file() else {}


@functools.cache
def forms(num_spherical: int, num_radial: int) -> dict:
    """The forms of :func:`derive`, read from the shipped text where it has these sizes."""
    import sympy

    text = _shipped().get(_key(num_spherical, num_radial))
    if text is None:
        return derive(num_spherical, num_radial)
    return {name: [[sympy.sympify(expr) for expr in row] for row in rows] for name, rows in text.items()}


def write_shipped(path: Path = SHIPPED) -> None:
    """Derive the forms of SHIPPED_SIZES and write them as the package ships them (run after a change of sizes
    or of torch_geometric's derivation; ``tests/generators/langevin/test_bases.py`` checks they agree)."""
    import sympy

    from ...fileio import atomic_write_text

    text = {_key(*sizes): {name: [[sympy.srepr(expr) for expr in row] for row in rows]
                           for name, rows in derive(*sizes).items()} for sizes in SHIPPED_SIZES}
    atomic_write_text(path, json.dumps(text, indent=1) + "\n")


@functools.cache
def _layer_class():
    """A subclass of torch_geometric's layer (made on first use: torch_geometric is imported only with a model)."""
    import sympy
    import torch
    from torch_geometric.nn.models.dimenet import Envelope, SphericalBasisLayer

    class SphericalBasis(SphericalBasisLayer):
        """torch_geometric's layer, the same attributes and forward, its forms from :func:`forms`."""

        def __init__(self, num_spherical: int, num_radial: int, cutoff: float = 5.0, envelope_exponent: int = 5):
            torch.nn.Module.__init__(self)
            self.num_spherical, self.num_radial, self.cutoff = num_spherical, num_radial, cutoff
            self.envelope = Envelope(envelope_exponent)
            derived = forms(num_spherical, num_radial)
            x, theta = sympy.symbols("x theta")
            modules = {"sin": torch.sin, "cos": torch.cos}
            constant = sympy.lambdify([theta], derived["sph_harm"][0][0], modules)(0)
            self.sph_funcs = [functools.partial(self._sph_to_tensor, constant)]
            self.sph_funcs += [sympy.lambdify([theta], derived["sph_harm"][i][0], modules)
                               for i in range(1, num_spherical)]
            self.bessel_funcs = [sympy.lambdify([x], derived["bessel"][i][j], modules)
                                 for i in range(num_spherical) for j in range(num_radial)]

    return SphericalBasis


def spherical_basis_layer(num_spherical: int, num_radial: int, cutoff: float = 5.0, envelope_exponent: int = 5):
    """torch_geometric's ``SphericalBasisLayer`` (same attributes, same forward) built from :func:`forms`."""
    return _layer_class()(num_spherical, num_radial, cutoff, envelope_exponent)
