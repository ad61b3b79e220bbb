"""Command-line interface: ``explorer generate | evaluate generation | train generation | relax | hull | screen``.

Bad input (unknown element, > 60 atoms, space group outside 1..230, NaN energy, missing file) prints a
one-line error and exits with code 2. ``relax`` and ``hull`` report structures that cannot be read or relaxed
as failed and go on with the rest; they exit with code 1 when no structure at all could be used (``screen``:
when no candidate of the grid could be placed on the hull). ``screen`` interrupted by Ctrl-C exits with 130;
rerunning the same command resumes it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad arguments in one line (exit code 2), without the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


EXPORT_FORMATS = {"cif": "cif", "poscar": "poscar"}
SCHEDULER_HELP = ("none (in this process, the default), local:N (a Dask LocalCluster of N worker processes, started "
                  "and stopped here) or a Dask scheduler address (tcp://host:8786)")
DRAWS_HELP = ("sample this many per candidate and keep the one that best meets the conditions (valid, requested "
              "space group detected); costs DRAWS times the sampling (default: the model's own for the network "
              "samples of `generate` and `evaluate generation --pipeline` — 2, 1 for langevin — else 1)")


def _parent(build) -> argparse.ArgumentParser:
    """An argparse parent parser (options shared by several subcommands) filled by ``build(parser)``."""
    parser = argparse.ArgumentParser(add_help=False)
    build(parser)
    return parser


def _sampling_options(parser) -> None:
    parser.add_argument("--model", default=None, help="registered model name (default: the task's best on "
                        "validation for the conditions given — generate: langevin for a formula and a space group, "
                        "cfm-normal with --energy too; `explorer models` lists them)")
    parser.add_argument("--steps", type=int, default=None,
                        help="sampler steps (default: the model's own; 100 for the matrix models)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--draws", type=int, default=None, help=DRAWS_HELP)


def _output_options(parser) -> None:
    parser.add_argument("--format", default="cif", choices=sorted(EXPORT_FORMATS), help="structure file format")
    parser.add_argument("--snap", action="store_true", help="refine results onto the requested space group")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line at the end")


def _csv_options(parser) -> None:
    parser.add_argument("--csv", required=True, help="CSV(.gz) with 'cif' and 'formation_energy_per_atom' columns")
    parser.add_argument("--limit", type=int, default=None, help="first N usable rows (modification: pairs)")
    parser.add_argument("--split", default=None, help="only rows whose 'split' column has this value (e.g. test)")
    parser.add_argument("--json", action="store_true", help="(default) print the metrics as one JSON line")


def _training_options(parser) -> None:
    parser.add_argument("--dim", type=int, default=128, help="transformer width / UNet base channels")
    parser.add_argument("--depth", type=int, default=4, help="transformer blocks / UNet res blocks per level")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--max-steps", type=int, default=20000)
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True, help="run directory (resumed when it holds a checkpoint)")


def _add_train(sub) -> None:
    shared = _parent(_training_options)
    train = sub.add_parser("train", help="train a model (never in CI)").add_subparsers(
        dest="task", required=True, parser_class=OneLineParser)
    gen = train.add_parser("generation", parents=[shared], help="train a conditional generation model")
    gen.add_argument("--family", default="matrix", choices=["matrix", "langevin", "descriptor", "diffcsp"],
                     help="matrix: the 64x3 matrix models (--method, --arch); langevin: the score-based model "
                          "on asymmetric units (--dim: hidden channels, --depth: interaction blocks); descriptor: "
                          "the StructRepDiff vector DDPM of --dataset (--dim: hidden width, --depth: blocks); "
                          "diffcsp: the DiffCSP peer (chemeleon-dng's CSPNet; --dim: hidden width, --depth: layers)")
    gen.add_argument("--dataset", default="mp", choices=["mp", "perov", "carbon"],
                     help="descriptor family: mp (mp_structures train, <= 20 atoms), perov (perov_5 train + val), "
                          "carbon (carbon_24 val)")
    gen.add_argument("--method", default="cfm-uniform", choices=["ddpm", "cfm-normal", "cfm-uniform"])
    gen.add_argument("--arch", default="transformer", choices=["transformer", "unet1d", "unet1d-paper"])
    gen.add_argument("--init-from", default=None, help="warm start from a shipped model name or checkpoint file")
    mod = train.add_parser("modification", parents=[shared],
                           help="train a conditional modification model (polymorph pairs)")
    mod.add_argument("--method", default="regression", choices=["regression", "palette", "cfm", "palette-cfm"])
    mod.add_argument("--arch", default="transformer", choices=["transformer", "unet1d"])
    mod.add_argument("--init-from", default=None, help="warm start from a shipped model name or checkpoint file "
                     "(palette-cfm: also from the cfm-normal generation model)")
    mod.add_argument("--warmup-steps", type=int, default=500)
    mod.add_argument("--augment", type=float, default=0.0,
                     help="share of batches that are perturbed copies of training structures (E_diff = 0)")


def _model_config(args, with_initial: bool = False) -> dict:
    extra = {"with_initial": True} if with_initial else {}
    if args.arch == "transformer":
        return {"arch": "transformer", "dim": args.dim, "depth": args.depth, "heads": args.heads, **extra}
    if args.arch == "unet1d-paper":
        return {"arch": "unet1d", "channels": 128, "num_res_blocks": 7, "attention_resolutions": [1, 2, 4, 8],
                **extra}
    return {"arch": "unet1d", "channels": args.dim, "num_res_blocks": args.depth, **extra}


def _train_langevin(args) -> int:
    from .generators.langevin.dataset import load_training_units
    from .generators.langevin.training import METHOD, train_langevin
    from .generators.training import TrainConfig

    config = TrainConfig(method=METHOD, model={"hidden": args.dim, "blocks": args.depth},
                         batch_size=args.batch_size, lr=args.lr, max_steps=args.max_steps, max_minutes=args.minutes,
                         threads=args.threads, seed=args.seed, init_from=args.init_from)
    train = load_training_units(args.data_dir, splits=("train",))
    val = load_training_units(args.data_dir, splits=("val",))
    print(json.dumps(train_langevin(config, train, val, args.out)))
    return 0


def _train_descriptor(args) -> int:
    from .generators.descriptor.training import METHOD, train_descriptor
    from .generators.training import TrainConfig

    config = TrainConfig(method=METHOD, model={"hidden": args.dim, "blocks": args.depth},
                         batch_size=args.batch_size, lr=args.lr, max_steps=args.max_steps, max_minutes=args.minutes,
                         threads=args.threads, seed=args.seed, init_from=args.init_from)
    print(json.dumps(train_descriptor(config, args.dataset, args.out, directory=args.data_dir)))
    return 0


def _train_diffcsp(args) -> int:
    from .generators.diffcsp.dataset import load_training_cells
    from .generators.diffcsp.training import METHOD, train_diffcsp
    from .generators.training import TrainConfig

    config = TrainConfig(method=METHOD, model={"hidden_dim": args.dim, "num_layers": args.depth},
                         batch_size=args.batch_size, lr=args.lr, max_steps=args.max_steps, max_minutes=args.minutes,
                         threads=args.threads, seed=args.seed, init_from=args.init_from)
    train, val = load_training_cells(args.data_dir, workers=args.threads or 1)
    print(json.dumps(train_diffcsp(config, train, val, args.out)))
    return 0


def cmd_train(args) -> int:
    from .data import load_training_data
    from .generators.matrix.training import TrainConfig, train_generation, train_modification

    if getattr(args, "family", "matrix") == "langevin":
        return _train_langevin(args)
    if getattr(args, "family", "matrix") == "descriptor":
        return _train_descriptor(args)
    if getattr(args, "family", "matrix") == "diffcsp":
        return _train_diffcsp(args)

    config = TrainConfig(method=args.method, model=_model_config(args, args.task == "modification"),
                         batch_size=args.batch_size, lr=args.lr, max_steps=args.max_steps, max_minutes=args.minutes,
                         threads=args.threads, seed=args.seed, init_from=args.init_from,
                         warmup_steps=getattr(args, "warmup_steps", 500), augment=getattr(args, "augment", 0.0))
    train = load_training_data(args.data_dir, splits=("train",))
    val = load_training_data(args.data_dir, splits=("val",))
    trainer = train_modification if args.task == "modification" else train_generation
    print(json.dumps(trainer(config, train, val, args.out)))
    return 0


def _add_models(sub) -> None:
    models = sub.add_parser("models", help="list the registered models: family, task, conditions, metrics")
    models.add_argument("--task", default=None, choices=["generation", "modification"], help="only this task")
    models.add_argument("--json", action="store_true", help="print them as one JSON list (the last line)")


def cmd_models(args) -> int:
    from .generators import default_model, list_generators

    models = list_generators(args.task)
    if args.json:
        print(json.dumps(models))
        return 0
    print(f"{'name':<20} {'family':<10} {'task':<13} {'parameters':>10}  {'val strict/loose':<17} conditions")
    for m in models:
        val = m["metrics"].get("val", {})
        rates = (f"{val['match_rate']:.3f} / {val['match_rate_loose']:.3f}"
                 if "match_rate" in val and "match_rate_loose" in val else "-")
        print(f"{m['name']:<20} {m['family']:<10} {m['task']:<13} {m['parameters'] or 0:>10,}  {rates:<17} "
              f"{', '.join(m['conditions'])}")
    if args.task in (None, "generation"):
        plain, energy = (default_model("generation", given=given) for given in
                         ({"formula", "spacegroup"}, {"formula", "spacegroup", "energy"}))
        print(f"default of generate: {plain} for a formula and a space group, {energy} with --energy too")
    if args.task in (None, "modification"):
        print(f"default of modify: {default_model('modification')}")
    return 0


def _add_generate(sub) -> None:
    gen = sub.add_parser("generate", parents=[_parent(_sampling_options), _parent(_output_options)],
                         help="sample candidate structures for a formula, space group and energy")
    gen.add_argument("--formula", required=True, help="cell contents, e.g. TaWB6 or Ta2W2B12")
    gen.add_argument("--spacegroup", default=None, help="international number 1..230")
    gen.add_argument("--energy", default=None, help="target formation energy, eV/atom")
    gen.add_argument("--wyckoff", default=None,
                     help="symmetry-inequivalent sites per element, e.g. Na:1,Cl:1 (only models that take it)")
    gen.add_argument("--n", type=int, default=16, help="number of candidates")
    gen.add_argument("--prototypes", default="auto",
                     help="how many candidates may be known prototypes of the space group with your elements "
                          "substituted in, first: auto (half of --n when the data directory is there) or a number")
    gen.add_argument("--keep-off-group", action="store_true",
                     help="keep network samples that do not have the space group (marked) instead of replacing "
                          "them with the next prototype or a random symmetric crystal of the group")
    gen.add_argument("--network-only", action="store_true",
                     help="network samples only, as sampled (no prototypes, no replacement; see --snap)")
    gen.add_argument("--no-relax-prototypes", dest="relax_prototypes", action="store_false", default="auto",
                     help="return the prototypes as substituted (default: relaxed with M3GNet when its weights "
                          "are in the models directory, and where the group has few known templates the network "
                          "samples too, ordered by energy)")


def _add_modify(sub) -> None:
    mod = sub.add_parser("modify", parents=[_parent(_sampling_options), _parent(_output_options)],
                         help="turn a structure into another polymorph (target space group, energy change)")
    mod.add_argument("--structure", required=True, help="CIF or POSCAR file of the initial structure")
    mod.add_argument("--spacegroup", required=True, help="target international number 1..230")
    mod.add_argument("--energy-delta", required=True, help="target formation-energy change, eV/atom (< 0: more stable)")
    mod.add_argument("--n", type=int, default=8)
    mod.add_argument("--prototypes", default="auto",
                     help="how many candidates may be known prototypes of the space group with your elements "
                          "substituted in: auto (half of --n when the data directory is there) or a number (0: none)")
    mod.add_argument("--relax-steps", type=int, default=300,
                     help="relax the candidates with M3GNet (at most this many FIRE steps); 0 = no")
    mod.add_argument("--relax-fmax", type=float, default=0.05, help="relaxation force criterion, eV/Å")
    mod.add_argument("--formation", default="references", choices=["references", "eform", "none"],
                     help="formation energy of the relaxed candidates: from elemental references relaxed with the "
                          "same potential (default), the M3GNet Eform model, or none")


def _reconstruction_options(parser) -> None:
    parser.add_argument("--trials", type=int, default=None, help="basin-hopping trials per structure (paper: 6)")
    parser.add_argument("--hops", type=int, default=None, help="hops per trial (paper: 7)")
    parser.add_argument("--iterations", type=int, default=None, help="Adam iterations per hop (paper: 300)")
    parser.add_argument("--starts", type=int, default=None,
                        help="random starts screened per trial (the best one kept; default 1)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of fresh trials for the structures whose loss is still above 0.01 (default: "
                             "the model's setting, else 1)")
    parser.add_argument("--templates", type=int, default=None,
                        help="trials that start from known structures (train split) of the same stoichiometry and "
                             "atom count with the most similar cell, ranked by descriptor loss (0: none)")
    parser.add_argument("--template-data", default=None, metavar="CSV",
                        help="known structures the template trials start from: a structure CSV (a path, or a file "
                             "of the data directory), instead of the prototype library (default: the model's "
                             "setting, else the library)")
    parser.add_argument("--template-splits", default=None, metavar="S[,S]",
                        help="the splits of --template-data to use (default: all its rows)")
    parser.add_argument("--swap", action=argparse.BooleanOptionalAction, default=None,
                        help="every odd hop exchanges two atoms of different elements instead of the random step "
                             "(default: the model's setting)")
    parser.add_argument("--permute", type=int, default=None,
                        help="on those hops, a cell with at most this many distinct arrangements of its elements "
                             "over its positions tries them all and takes the best (0: off; default: the model's "
                             "setting)")
    parser.add_argument("--seed", type=int, default=0)


def _reconstruction_settings(args) -> dict:
    from .errors import ExplorerInputError

    settings = {k: getattr(args, k) for k in ("trials", "hops", "iterations", "starts", "rounds")
                if getattr(args, k) is not None}
    if any(v < 1 for v in settings.values()):
        raise ExplorerInputError("--trials, --hops, --iterations, --starts and --rounds must be >= 1")
    if args.templates is not None:
        if args.templates < 0:
            raise ExplorerInputError("--templates must be >= 0")
        settings["templates"] = args.templates
    if args.template_splits is not None and args.template_data is None:
        raise ExplorerInputError("--template-splits needs --template-data")
    if args.template_data is not None:
        splits = [s.strip() for s in (args.template_splits or "").split(",") if s.strip()]
        settings["template_data"] = {"file": args.template_data, "splits": splits}
    if args.swap is not None:
        settings["swap"] = args.swap
    if args.permute is not None:
        if args.permute < 0:
            raise ExplorerInputError("--permute must be >= 0")
        settings["permute"] = args.permute
    return settings


def _add_reconstruct(sub) -> None:
    rec = sub.add_parser("reconstruct", parents=[_parent(_reconstruction_options)],
                         help="positions from a StructRepDiff vector (of a structure file or a vector file)")
    source = rec.add_mutually_exclusive_group(required=True)
    source.add_argument("--structure", help="structure file (CIF, POSCAR, ...): reconstructed from its own vector")
    source.add_argument("--vector", help="vector file (.npy, .json list or plain numbers) of --model's layout")
    rec.add_argument("--model", default=None, help="descriptor model (default descriptor-mp): EAD parameters, loss "
                     "scales, the layout of --vector")
    rec.add_argument("--out", required=True, help="output structure file (.cif or POSCAR/.vasp)")
    rec.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    rec.add_argument("--json", action="store_true", help="print one JSON summary line at the end")


def cmd_reconstruct(args) -> int:
    import torch

    from .errors import ExplorerInputError
    from .fileio import atomic_write_text
    from .reconstruction import read_vector, reconstruct
    from .structure_io import read_structure, structure_text

    if args.threads < 1:
        raise ExplorerInputError("--threads must be >= 1")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    fmt = "cif" if out.suffix.lower() == ".cif" else "poscar"
    structure = read_structure(args.structure) if args.structure else None
    vector = read_vector(args.vector) if args.vector else None

    def report(hop):
        print(f"hop {hop.hop}/{hop.hops}: loss {float(hop.loss.min()):.2e}", file=sys.stderr, flush=True)

    result, loss = reconstruct(structure, vector, model=args.model, seed=args.seed, callback=report,
                               **_reconstruction_settings(args))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, structure_text(result, fmt))
    summary = {"out": str(out), "formula": result.composition.reduced_formula, "atoms": len(result),
               "loss": round(loss, 6)}
    if structure is not None:
        from .evaluation import match_pair

        strict, loose, rms = match_pair((result.as_dict(), structure.as_dict()))
        summary.update({"match": loose, "match_strict": strict, "rms": rms})
    print(json.dumps(summary) if args.json else f"wrote {out} (loss {loss:.2e})")
    return 0


def _add_evaluate(sub) -> None:
    evaluate = sub.add_parser("evaluate", help="measure a registered model").add_subparsers(
        dest="task", required=True, parser_class=OneLineParser)
    csv, sampling = _parent(_csv_options), _parent(_sampling_options)
    gen = evaluate.add_parser("generation", parents=[csv, sampling],
                              help="match rate of one sample per CSV row against its structure")
    gen.add_argument("--max-atoms", type=int, default=None, help="skip rows with more atoms in their cell")
    gen.add_argument("--workers", type=int, default=None, help="processes for matching (default: all cores)")
    gen.add_argument("--scheduler", default="none", help=SCHEDULER_HELP + "; the structure matching, 16 pairs a task")
    gen.add_argument("--snap", action="store_true", help="refine samples onto the requested space group")
    gen.add_argument("--pipeline", action="store_true",
                     help="evaluate what `explorer generate` returns (prototypes of other formulas first, network "
                          "samples, random symmetric crystals): first-candidate and any-of---n match rates")
    gen.add_argument("--n", type=int, default=8, help="candidates per row with --pipeline (default 8)")
    gen.add_argument("--prototypes", default="auto", help="with --pipeline: auto (half of --n) or a number")
    gen.add_argument("--no-prototype-rows", action="store_true",
                     help="only the rows whose space group has no prototype in the train split (new structure "
                          "types)")
    mod = evaluate.add_parser("modification", parents=[csv, sampling],
                              help="match rate of modified polymorphs against the lowest one")
    mod.add_argument("--workers", type=int, default=None)
    mod.add_argument("--scheduler", default="none", help=SCHEDULER_HELP + "; the structure matching, 16 pairs a task")
    mod.add_argument("--no-prototypes", dest="prototypes", action="store_false",
                     help="model samples only (default: the best known prototype of the target's space group, "
                          "from other formulas, where there is one)")
    mod.add_argument("--relax-steps", type=int, default=300,
                     help="relax every structure with M3GNet (at most this many FIRE steps) before matching, as "
                          "`explorer modify` does; 0 = match them as sampled")
    fid = evaluate.add_parser("fidelity", parents=[csv, sampling, _parent(_potential_options)],
                              help="formation energy of relaxed samples (M3GNet) against the target")
    fid.add_argument("--max-atoms", type=int, default=None, help="skip rows with more atoms in their cell")
    fid.add_argument("--relax-steps", type=int, default=500, help="maximum FIRE steps per structure (default 500)")
    fid.add_argument("--fmax", type=float, default=0.05, help="force convergence, eV/Å (default 0.05)")
    fid.add_argument("--scheduler", default="none", help=SCHEDULER_HELP + "; one relaxation batch per task")
    fid.add_argument("--pipeline", action="store_true",
                     help="the first of the --n candidates `explorer generate` returns (prototypes + network), "
                          "not one network sample")
    fid.add_argument("--n", type=int, default=8, help="candidates per row with --pipeline (default 8)")
    rec = evaluate.add_parser("reconstruction", parents=[csv, _parent(_reconstruction_options)],
                              help="StructRepDiff reconstruction of the CSV's rows from their own descriptors "
                                   "(paper 001, Table 1): match rate, RMSE, seconds per structure")
    rec.add_argument("--max-atoms", type=int, default=20, help="only rows with at most this many atoms (default 20)")
    rec.add_argument("--workers", type=int, default=None, help="processes for matching (default: all cores)")
    rec.add_argument("--scheduler", default="none", help=SCHEDULER_HELP + "; the structure matching, 16 pairs a task")
    rec.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    cov = evaluate.add_parser("coverage", parents=[csv, sampling],
                              help="COV-R / COV-P / FD-CrystalNN / validity of --n samples against the CSV's rows")
    cov.add_argument("--n", type=int, default=1000, help="structures to generate (default 1000)")
    cov.add_argument("--max-atoms", type=int, default=20, help="only rows with at most this many atoms (default 20)")
    cov.add_argument("--conditions-split", default="train",
                     help="split whose random rows give the formulas and space groups to sample (default train)")
    cov.add_argument("--training-structures", action="store_true",
                     help="sanity row: those rows' own structures instead of samples (no model)")
    cov.add_argument("--struct-cutoff", type=float, default=0.6, help="structure-fingerprint threshold (0.6)")
    cov.add_argument("--comp-cutoff", type=float, default=12.0, help="composition-fingerprint threshold (12)")
    cov.add_argument("--workers", type=int, default=None, help="processes for the fingerprints (default: all)")
    cov.add_argument("--scheduler", default="none", help=SCHEDULER_HELP + "; the fingerprints, 16 structures a task")
    cov.add_argument("--unconditional", action="store_true",
                     help="sample without conditions (models that need none, e.g. the descriptor family)")


def cmd_evaluate_fidelity(args) -> int:
    import torch

    from .errors import ExplorerInputError
    from .fidelity import evaluate_fidelity

    if args.threads < 1 or args.batch_size < 1:
        raise ExplorerInputError("--threads and --batch-size must be >= 1")
    if args.draws not in (None, 1):
        raise ExplorerInputError("evaluate fidelity takes one sample per row (--draws 1)")
    from .distributed import parse_scheduler

    parse_scheduler(args.scheduler)  # a bad --scheduler is refused before anything is sampled
    torch.set_num_threads(args.threads)
    report = evaluate_fidelity(args.csv, limit=args.limit, max_atoms=args.max_atoms, model=args.model,
                               steps=args.steps, seed=args.seed, device=args.device, split=args.split,
                               relax_steps=args.relax_steps, fmax=args.fmax, potential=args.potential,
                               batch_size=args.batch_size, callback=_progress_bar("relaxing", 0),
                               scheduler=args.scheduler, pipeline=args.pipeline, n=args.n)
    print(json.dumps(report.summary()))
    return 0


def _wyckoff(text: str | None) -> dict | None:
    """'Na:1,Cl:1' -> {'Na': 1, 'Cl': 1} (symmetry-inequivalent sites per element)."""
    from .errors import ExplorerInputError

    if text is None:
        return None
    out = {}
    for part in text.split(","):
        element, _, count = part.partition(":")
        try:
            out[element.strip()] = int(count)
        except ValueError:
            raise ExplorerInputError(f"--wyckoff expects ELEMENT:SITES,... (e.g. Na:1,Cl:1), got {text!r}") from None
    return out


def cmd_generate(args) -> int:
    from .generation import generate, generation_request
    from .generators import default_model, get_generator
    from .prototypes import prototype_library_available, prototype_library_ready

    request = generation_request(args.formula, args.spacegroup, args.energy, _wyckoff(args.wyckoff))
    model = args.model or default_model("generation", given=request.given())
    get_generator(model, task="generation").check(request)  # bad input fails before the long build below
    prototypes = _prototypes(args.prototypes)
    if not args.network_only and request.spacegroup and prototypes != 0 and prototype_library_available() \
            and not prototype_library_ready():
        print("explorer: building the prototype library from the data directory's structure files (once; about "
              "4 min on 2 cores)", file=sys.stderr)

    candidates = generate(args.formula, args.spacegroup, args.energy, n=args.n, model=model,
                          steps=args.steps, seed=args.seed, device=args.device, snap=args.snap,
                          draws=args.draws, callback=_progress_bar("sampling", 0, unit="step"),
                          wyckoff=request.wyckoff, network_only=args.network_only, prototypes=prototypes,
                          keep_off_group=args.keep_off_group, relax_prototypes=args.relax_prototypes)
    return _write_candidates(candidates, args)


def cmd_modify(args) -> int:
    from .modification import modify
    from .structure_io import read_structure

    structure = read_structure(args.structure)
    candidates = modify(structure, args.spacegroup, args.energy_delta, model=args.model, n=args.n,
                        steps=args.steps, seed=args.seed, device=args.device, snap=args.snap,
                        draws=_draws(args.draws),
                        prototypes=_prototypes(args.prototypes),
                        relax_steps=args.relax_steps, relax_fmax=args.relax_fmax, formation=args.formation,
                        callback=_progress_bar("sampling", 0, unit="step"))
    return _write_candidates(candidates, args)


def _prototypes(text: str):
    """--prototypes: 'auto' or a whole number."""
    return text if text == "auto" else _count(text)


def _draws(draws: int | None) -> int:
    """--draws where one draw is the default (all but generate's and the pipeline's network samples)."""
    return 1 if draws is None else draws


def _count(text: str) -> int:
    from .errors import ExplorerInputError

    try:
        return int(text)
    except ValueError:
        raise ExplorerInputError(f"expected 'auto' or a whole number, got {text!r}") from None


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """``rows`` as CSV with ``columns`` (others ignored), written atomically."""
    import csv
    import io

    from .fileio import atomic_write_text

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _write_candidates(candidates, args) -> int:
    """Structure files + candidates.csv in ``args.out``; a summary line (JSON with --json)."""
    from .fileio import atomic_write_text
    from .search import RANDOM
    from .structure_io import structure_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in candidates:
        name = f"{c.formula}_sg{c.spacegroup_requested}_{c.index:03d}"
        filename = f"{name}.cif" if args.format == "cif" else f"{name}.vasp"
        atomic_write_text(out / filename, structure_text(c.structure, args.format))
        relaxation = c.extra.get("relaxation") or {}
        rows.append({"file": filename, **c.summary(), "relax_status": relaxation.get("status", ""),
                     "energy_per_atom": relaxation.get("energy_per_atom"),
                     "formation_energy_per_atom": relaxation.get("formation_energy_per_atom"),
                     "note": relaxation.get("warning", "")})
    _write_csv(out / "candidates.csv", rows, list(rows[0]))
    valid = sum(r["valid"] for r in rows)
    same_sg = sum(r["spacegroup_detected"] == r["spacegroup_requested"] for r in rows)
    prototypes = sum(c.model == "prototype" for c in candidates)
    network = next((c.model for c in candidates if c.model != "prototype"), "prototype")

    summary = {"n": len(rows), "valid": valid, "spacegroup_kept": same_sg, "out": str(out),
               "model": network, "steps": next((c.steps for c in candidates if c.model not in ("prototype", RANDOM)),
                                               args.steps)}
    if prototypes:
        summary["prototypes"] = prototypes
    if args.json:
        print(json.dumps(summary))
    else:
        known = f", {prototypes} from known prototypes" if prototypes else ""
        print(f"wrote {len(rows)} structures to {out} ({valid} valid, {same_sg} keep space group "
              f"{candidates[0].spacegroup_requested}{known}); see candidates.csv")
    return 0


def cmd_evaluate(args) -> int:
    from .distributed import parse_scheduler
    from .evaluation import evaluate_generation

    if args.task == "fidelity":
        return cmd_evaluate_fidelity(args)
    if parse_scheduler(getattr(args, "scheduler", None)).distributed:
        args.workers = args.scheduler  # the structure matching goes to Dask; sampling stays here
    if args.task == "reconstruction":
        import torch

        from .errors import ExplorerInputError
        from .reconstruction import evaluate_reconstruction

        if args.threads < 1:
            raise ExplorerInputError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
        metrics = evaluate_reconstruction(args.csv, split=args.split, limit=args.limit, max_atoms=args.max_atoms,
                                          seed=args.seed, workers=args.workers,
                                          callback=_progress_bar("reconstructing", 0),
                                          **_reconstruction_settings(args))
        print(json.dumps(metrics))
        return 0
    if args.task == "coverage":
        from .coverage import evaluate_coverage
        from .errors import ExplorerInputError

        if args.n < 2:
            raise ExplorerInputError(f"--n must be >= 2, got {args.n}")
        metrics = evaluate_coverage(args.csv, model=args.model, n=args.n, split=args.split, max_atoms=args.max_atoms,
                                    conditions_split=args.conditions_split, limit=args.limit, steps=args.steps,
                                    seed=args.seed, device=args.device, workers=args.workers,
                                    struct_cutoff=args.struct_cutoff, comp_cutoff=args.comp_cutoff,
                                    training_structures=args.training_structures,
                                    unconditional=args.unconditional,
                                    callback=_progress_bar("sampling", 0, unit="step"))
        print(json.dumps(metrics))
        return 0
    if args.task == "modification":
        from .modification import evaluate_modification

        metrics = evaluate_modification(args.csv, limit=args.limit, model=args.model, steps=args.steps,
                                        seed=args.seed, device=args.device, workers=args.workers, split=args.split,
                                        draws=_draws(args.draws), prototypes=args.prototypes,
                                        relax_steps=args.relax_steps)
        print(json.dumps(metrics))
        return 0
    metrics = evaluate_generation(args.csv, limit=args.limit, max_atoms=args.max_atoms, model=args.model,
                                  steps=args.steps, seed=args.seed, device=args.device, workers=args.workers,
                                  split=args.split, snap=args.snap, draws=args.draws, pipeline=args.pipeline,
                                  n=args.n, no_prototype_rows=args.no_prototype_rows,
                                  prototypes=_prototypes(args.prototypes))
    print(json.dumps(metrics))
    return 0


def _progress_bar(desc: str, total: int, unit: str = "structure"):
    """Progress callback ``(done, total)``; the bar is created on the first update, so that input errors raised
    before sampling starts leave stderr with nothing but the one-line error message."""
    from tqdm import tqdm

    bars = []

    def update(done, _total):
        if not bars:
            bars.append(tqdm(total=total or _total, desc=desc, unit=unit, leave=False))
        bar = bars[0]
        bar.update(done - bar.n)
        if done >= _total:
            bar.close()

    return update


def _add_relax(sub) -> None:
    relax = sub.add_parser("relax", parents=[_parent(_potential_options)],
                           help="relax structures with an interatomic potential (M3GNet by default)")
    relax.add_argument("files", nargs="+", metavar="FILE", help="structure files (CIF, POSCAR, ...)")
    relax.add_argument("--out", required=True, help="output directory for the relaxed CIFs and results.csv")
    relax.add_argument("--fmax", type=float, default=0.05, help="force convergence, eV/Å (default 0.05)")
    relax.add_argument("--steps", type=int, default=500, help="maximum FIRE steps per structure (default 500)")
    relax.add_argument("--workers", type=int, default=1, help="processes relaxing in parallel (default 1)")
    relax.add_argument("--formation", default="references", choices=["references", "eform", "none"],
                       help="formation energy from elemental references relaxed with the same potential "
                            "(default), from the M3GNet Eform model, or none")
    relax.add_argument("--corrections", default=None, choices=["mp2020", "none"],
                       help="with --formation references: MP's MaterialsProject2020Compatibility corrections on the "
                            "formation energies (default: mp2020, as MP's own carry them) or none (the potential's "
                            "raw energies, e.g. to compare with uncorrected DFT)")
    relax.add_argument("--scheduler", default="none", help=SCHEDULER_HELP + "; one batch (--batch-size) per task")
    relax.add_argument("--device", default="auto",
                       help="auto (CUDA when present, for the batched relaxer), cpu or cuda")
    relax.add_argument("--json", action="store_true", help="print one JSON summary line at the end")


def _add_hull(sub) -> None:
    hull = sub.add_parser("hull", parents=[_parent(_potential_options)],
                          help="energy above the convex hull of candidate structures")
    hull.add_argument("files", nargs="+", metavar="FILE", help="candidate structure files (CIF, POSCAR, ...)")
    hull.add_argument("--chemsys", required=True, help="chemical system, e.g. Ta-W-B")
    hull.add_argument("--reference", default="mp", metavar="mp|elements|ml|aflow|FILE",
                      help="hull references: Materials Project entries + elements (default), elements only, "
                           "ml: the system's MP and WBM structures relaxed with --potential (cached), aflow: "
                           "AFLOW's entries from its AFLUX API (needs the network once per system; cached), or "
                           "a CSV of composition,formation_energy_per_atom")
    hull.add_argument("--out", required=True, help="output directory for hull.csv and hull.html")
    hull.add_argument("--formation", default="references", choices=["references", "eform"],
                      help="candidate formation energy: potential energy minus elemental references "
                           "(default) or the M3GNet Eform model")
    hull.add_argument("--relax", action="store_true", help="relax the candidates first (default: as given)")
    hull.add_argument("--fmax", type=float, default=0.05, help="with --relax: force convergence, eV/Å")
    hull.add_argument("--steps", type=int, default=500,
                      help="with --relax (and for the --reference ml relaxations): maximum FIRE steps")
    hull.add_argument("--max-structures", type=int, default=200,
                      help="--reference ml: refuse systems with more MP/WBM structures than this (default 200)")
    hull.add_argument("--data-dir", default=None, help="directory holding mp_formation_energies.csv.gz")
    hull.add_argument("--json", action="store_true", help="print one JSON summary line at the end")


def _potential_options(parser) -> None:
    parser.add_argument("--potential", default="m3gnet",
                        help="m3gnet (default; CHGNet when no M3GNet weights are found), chgnet, a matgl model "
                             "directory or a matgl model name")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per process (default 1: fastest for crystal-sized graphs)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="structures relaxed in lockstep with one batched M3GNet evaluation per step "
                             "(default 32; 1 = one after the other)")


def _check_relax_args(args) -> None:
    from .errors import ExplorerInputError

    for name in args.files:
        if not Path(name).is_file():
            raise ExplorerInputError(f"file not found: {name}")
    if not args.fmax > 0:
        raise ExplorerInputError(f"--fmax must be > 0, got {args.fmax}")
    if args.steps < 0:
        raise ExplorerInputError(f"--steps must be >= 0, got {args.steps}")
    if getattr(args, "workers", 1) < 1:
        raise ExplorerInputError(f"--workers must be >= 1, got {args.workers}")
    if args.threads < 1:
        raise ExplorerInputError(f"--threads must be >= 1, got {args.threads}")
    if args.batch_size < 1:
        raise ExplorerInputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if getattr(args, "corrections", None) is not None and args.formation != "references":
        raise ExplorerInputError("--corrections applies to --formation references only")


def _output_names(files: list[str]) -> list[str]:
    """``<stem>_relaxed.cif`` per input; inputs sharing a stem get their position as a prefix."""
    stems = [Path(name).name.split(".")[0] or "structure" for name in files]
    return [f"{stem}_relaxed.cif" if stems.count(stem) == 1 else f"{i:03d}_{stem}_relaxed.cif"
            for i, stem in enumerate(stems)]


def _relax_references(args, potential):
    """The elemental references of ``explorer relax --corrections none`` with the loaded ``potential`` (None:
    the potential's default ones, MP2020-corrected)."""
    from .relax import ElementalReferences

    if args.corrections in (None, "mp2020"):  # _check_relax_args: only with --formation references
        return None
    return ElementalReferences(potential, corrections=args.corrections)


def _run_relaxations(items, labels, args, formation: str, steps: int, workers: int = 1) -> list:
    """RelaxResults of ``items`` (input order) with a progress bar on stderr."""
    import torch

    from .relax import RelaxDone, irelax, load_potential

    torch.set_num_threads(args.threads)
    potential = load_potential(args.potential)
    show, close = _relaxation_progress(len(items))
    results = {}
    try:
        for event in irelax(items, potential=potential, fmax=args.fmax, steps=steps, workers=workers,
                            formation=formation, labels=labels, batch_size=args.batch_size,
                            device=getattr(args, "device", "cpu"),
                            references=_relax_references(args, potential)):
            show(event)
            if isinstance(event, RelaxDone):
                results[event.index] = event.result
    finally:
        close()
    return [results[i] for i in sorted(results)]


def cmd_relax(args) -> int:
    import time

    from .distributed import parse_scheduler, relax_distributed
    from .fileio import atomic_write_text
    from .structure_io import structure_text

    start = time.perf_counter()
    _check_relax_args(args)
    out = Path(args.out)
    if parse_scheduler(args.scheduler).distributed:
        from .relax.potentials import shared_potential
        from .structure_io import read_structure

        structures = [read_structure(path) for path in args.files]  # unreadable files fail here, in one line
        out.mkdir(parents=True, exist_ok=True)
        results = relax_distributed(structures, args.scheduler, potential=args.potential, fmax=args.fmax,
                                    steps=args.steps, formation=args.formation, labels=list(args.files),
                                    batch_size=args.batch_size, callback=_progress_bar("relaxing", len(structures)),
                                    references=_relax_references(args, shared_potential(args.potential)))
    else:
        out.mkdir(parents=True, exist_ok=True)
        results = _run_relaxations(args.files, list(args.files), args, args.formation, args.steps, args.workers)
    rows = []
    for result, name in zip(results, _output_names(args.files)):
        row = result.summary()
        if result.structure is not None:
            atomic_write_text(out / name, structure_text(result.structure, "cif"))
            row["output"] = name
        rows.append(row)
    columns = ["file", "status", "energy_per_atom", "formation_energy_per_atom", "steps", "a", "b", "c", "volume",
               "output", "error", "warning"]
    _write_csv(out / "results.csv", rows, columns)
    summary = {"results": rows, "seconds": round(time.perf_counter() - start, 2)}
    if args.json:
        print(json.dumps(summary))
    else:
        for row in rows:
            energy = row["energy_per_atom"]
            detail = f"{energy:.4f} eV/atom, {row['steps']} steps" if energy is not None else row.get("error", "")
            print(f"{row['file']}: {row['status']} ({detail})" + (f"; warning: {row['warning']}"
                                                                  if row.get("warning") else ""))
        print(f"wrote {sum('output' in r for r in rows)} relaxed structures to {out}; see results.csv")
    return 0 if any(r["status"] != "failed" for r in rows) else 1


def _relaxation_progress(total: int | None = None):
    """``(show(event), close())``: :func:`~explorer.relax.irelax` events on a progress bar on stderr (created at
    the first event); ``total``: structures to relax (default: from the first finished one)."""
    from tqdm import tqdm

    from .relax import ReferenceDone, RelaxDone, RelaxStep

    bars = []

    def bar():
        if not bars:
            bars.append(tqdm(total=total, desc="relaxing", unit="structure", leave=False))
        return bars[0]

    def show(event) -> None:
        if isinstance(event, RelaxStep):
            bar().set_postfix_str(f"{Path(event.label).name} step {event.step} "
                                  f"E {event.energy_per_atom:.4f} eV/atom fmax {event.fmax:.3f}")
        elif isinstance(event, ReferenceDone):
            bar().set_postfix_str(f"elemental reference {event.element}: {event.energy_per_atom:.4f} eV/atom")
        elif isinstance(event, RelaxDone):
            if bar().total != event.total:
                bar().total = event.total
            bar().update(1)

    def close() -> None:
        if bars:
            bars[0].close()

    return show, close


def cmd_hull(args) -> int:
    import time

    import torch

    from .elements import parse_chemsys
    from .errors import ExplorerInputError
    from .relax import hull_figure, place_on_hull, save_plot

    start = time.perf_counter()
    parse_chemsys(args.chemsys)
    _check_relax_args(args)
    if args.reference == "ml" and args.formation != "references":
        raise ExplorerInputError("--reference ml needs --formation references (candidates and references "
                                 "from the same potential)")
    torch.set_num_threads(args.threads)
    show, close = _relaxation_progress()
    try:
        report = place_on_hull(args.files, args.chemsys, reference=args.reference, data=args.data_dir,
                               potential=args.potential, formation=args.formation, relax=args.relax,
                               fmax=args.fmax, steps=args.steps, batch_size=args.batch_size,
                               max_structures=args.max_structures, callback=show,
                               reference_callback=_progress_bar("relaxing hull references", 0))
    finally:
        close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report.write_csv(out / "hull.csv")
    save_plot(hull_figure(report.analysis), out / "hull.html")
    summary = {**report.summary(), "csv": str(out / "hull.csv"), "html": str(out / "hull.html"),
               "seconds": round(time.perf_counter() - start, 2)}
    if args.json:
        print(json.dumps(summary))
    else:
        for row in report.rows:
            if row["status"] == "failed":
                print(f"{row['label']}: failed ({row['error']})")
            else:
                print(f"{row['label']}: {row['formula']} E_f {row['formation_energy_per_atom']:.4f} eV/atom, "
                      f"{row['e_above_hull']:.4f} eV/atom above hull ({row['decomposition']})")
        print(f"wrote {out / 'hull.csv'} and {out / 'hull.html'}")
    return 0 if report.placed else 1


def _add_screen(sub) -> None:
    scr = sub.add_parser("screen", parents=[_parent(_potential_options)],
                         help="screen a grid of formulas x space groups x energies: generate, pre-relax, rank by "
                              "energy above hull (resumable)")
    # let values such as -0.6:-0.4:0.05 or -0.5,-0.4 through as values, not as options
    scr._negative_number_matcher = re.compile(r"^-\d*\.?\d+(?:[:,]-?\d*\.?\d+)*$")
    scr.add_argument("--formula", action="append", required=True, help="cell contents, e.g. TaWB6 (repeatable)")
    scr.add_argument("--spacegroups", default="common",
                     help="'common' (the common space groups that fit each formula) or a comma list, e.g. 191,187")
    scr.add_argument("--energies", required=True,
                     help="target formation energies, eV/atom: start:stop:step (stop included) or a comma list")
    scr.add_argument("--n", type=int, default=4, help="candidates per condition (default 4)")
    scr.add_argument("--model", default=None, help="shipped generation model (default: best on validation)")
    scr.add_argument("--steps", type=int, default=100, help="sampling steps (default 100)")
    scr.add_argument("--draws", type=int, default=1, help=DRAWS_HELP)
    scr.add_argument("--seed", type=int, default=0)
    scr.add_argument("--relax-steps", type=int, default=100, help="pre-relaxation FIRE steps at most (default 100)")
    scr.add_argument("--fmax", type=float, default=0.1, help="pre-relaxation force convergence, eV/Å (default 0.1)")
    scr.add_argument("--formation", default="references", choices=["references", "eform"],
                     help="formation energy from elemental references relaxed with the same potential (default) "
                          "or the M3GNet Eform model")
    scr.add_argument("--reference", default="mp", metavar="mp|elements|ml|aflow|FILE",
                     help="hull references: Materials Project entries + elements (default; needs the data "
                          "directory), elements only, ml (the system's MP/WBM structures relaxed with the "
                          "same potential), aflow (AFLOW's AFLUX API, cached per system) or a CSV of "
                          "composition,formation_energy_per_atom")
    scr.add_argument("--chemsys", default=None, help="hull chemical system (default: the formulas' elements)")
    scr.add_argument("--data-dir", default=None, help="data directory (MP formation energies and structures)")
    scr.add_argument("--keep-incompatible", action="store_true",
                     help="also run listed space groups whose Wyckoff positions cannot hold the formula")
    scr.add_argument("--device", default="auto",
                     help="generation and batched-relaxation device: auto (CUDA when present), cpu or cuda")
    scr.add_argument("--out", required=True, help="run directory (rerun the same command to resume)")
    scr.add_argument("--scheduler", default="none", help=SCHEDULER_HELP + "; one condition per task")
    scr.add_argument("--json", action="store_true", help="print one JSON summary line at the end")


def cmd_screen(args) -> int:
    import torch

    from .distributed import parse_scheduler
    from .screening import ScreenConfig, iscreen

    torch.set_num_threads(args.threads)
    config = ScreenConfig(formulas=args.formula, spacegroups=args.spacegroups, energies=args.energies,
                          out=args.out, n=args.n, model=args.model, steps=args.steps, seed=args.seed,
                          relax_steps=args.relax_steps, fmax=args.fmax, potential=args.potential,
                          formation=args.formation, reference=args.reference, chemsys=args.chemsys,
                          data_dir=args.data_dir, device=args.device, keep_incompatible=args.keep_incompatible,
                          draws=_draws(args.draws), scheduler=args.scheduler)
    parse_scheduler(args.scheduler)  # a bad --scheduler is refused before anything runs
    events = iscreen(config)
    done = [0]
    try:
        result = _follow_screen(events, args, done)
    except KeyboardInterrupt:
        events.close()
        print(f"explorer: interrupted; {done[0]} conditions of this run are saved in {args.out}; rerun the same "
              "command to resume", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result.summary()))
    else:
        for c in result.best(5):
            print(f"#{c.rank} {c.formula} sg {c.spacegroup_requested} (detected {c.spacegroup_detected}) target "
                  f"{c.target_energy:+.3f}: E_f {c.formation_energy_per_atom:.4f} eV/atom, {c.e_above_hull:.4f} "
                  f"eV/atom above hull ({c.relax_status}) {c.file}")
        print(f"{result.conditions} conditions ({result.done} run, {result.skipped} skipped), "
              f"{len(result.candidates)} candidates in {result.seconds:.0f} s; wrote {result.csv} and {result.html}")
    return 0 if result.best(1) else 1


def _follow_screen(events, args, done: list):
    """Drive ``iscreen`` with a progress bar on stderr; returns the ScreenResult."""
    from tqdm import tqdm

    from .relax import ReferenceDone, RelaxStep
    from .screening import ConditionDone, ConditionFailed, ConditionStarted, ScreenFinished, ScreenStarted

    bar = None
    try:
        for event in events:
            if isinstance(event, ScreenStarted):
                _report_plan(event, args)
                if event.pending:
                    bar = tqdm(total=event.pending, desc="screening", unit="condition", leave=False)
            elif isinstance(event, ReferenceDone) and bar is not None:
                bar.set_postfix_str(f"elemental reference {event.element}: {event.energy_per_atom:.4f} eV/atom")
            elif isinstance(event, ConditionStarted) and bar is not None:
                bar.set_postfix_str(f"{event.condition.key} generating")
            elif isinstance(event, RelaxStep) and bar is not None:
                bar.set_postfix_str(f"{event.label} relax step {event.step}", refresh=False)
            elif isinstance(event, ConditionDone):
                done[0] = event.done
                if bar is not None:
                    bar.update(1)
            elif isinstance(event, ConditionFailed):
                print(f"explorer: condition {event.condition.key} failed ({event.error}); rerun to try it again",
                      file=sys.stderr)
                if bar is not None:
                    bar.update(1)
            elif isinstance(event, ScreenFinished):
                return event.result
    finally:
        if bar is not None:
            bar.close()
    raise AssertionError("screen ended without a result")


def _report_plan(event, args) -> None:
    if event.skipped:
        print(f"skipping {event.skipped} of {event.total} conditions already done in {event.out}",
              file=sys.stderr if args.json else sys.stdout, flush=True)
    for formula, number in event.incompatible:
        print(f"skipping {formula} in space group {number}: its Wyckoff positions cannot hold the formula",
              file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="explorer", description="Conditional design of inorganic crystals.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_models(sub)
    _add_generate(sub)
    _add_modify(sub)
    _add_evaluate(sub)
    _add_reconstruct(sub)
    _add_train(sub)
    _add_relax(sub)
    _add_hull(sub)
    _add_screen(sub)
    _add_benchmark(sub)
    _add_app(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """What reaches the terminal is the project's own words: explorer's warnings as one line, the libraries'
    (pymatgen, torch, matgl, ...) not at all."""
    if str(filename).startswith(str(Path(__file__).parent)):
        print(f"explorer: warning: {message}", file=sys.stderr)


def _add_benchmark(sub) -> None:
    bench = sub.add_parser("benchmark", help="every registered generator and the peers (random symmetric search, "
                           "ion exchange, DiffCSP trained here) on the same rows: one table, Markdown and a plot")
    bench.add_argument("task", choices=["csp", "dng"],
                       help="csp: formula + space group given, k candidates per row matched against the row; dng: "
                            "coverage metrics of unconditional samples")
    bench.add_argument("--csv", required=True, help="structure CSV(.gz) with 'cif' and 'formation_energy_per_atom'")
    bench.add_argument("--split", default="test", help="rows of this split (default test; val for choices)")
    bench.add_argument("--limit", type=int, default=None, help="csp: the first N rows (default all); dng: the "
                       "first N reference rows (default 1000)")
    bench.add_argument("--max-atoms", type=int, default=20, help="only rows with at most this many atoms (20)")
    bench.add_argument("--k", type=int, default=8, help="csp: candidates per row; the table has k = 1 and this k")
    bench.add_argument("--n", type=int, default=1000, help="dng: structures per row of the table (default 1000)")
    bench.add_argument("--models", default=None,
                       help="comma-separated rows: registered model names and peers (explorer, pyxtal-random, "
                            "pyxtal-random-relaxed, ion-exchange, ion-exchange-relaxed, test-structures; dng: "
                            "train-structures); default every one")
    bench.add_argument("--relax-steps", type=int, default=300, help="csp: FIRE steps of the relaxed peers (300)")
    bench.add_argument("--fmax", type=float, default=0.05, help="csp: force convergence of the relaxed peers")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    bench.add_argument("--workers", type=int, default=None, help="processes for matching / fingerprints")
    bench.add_argument("--out", default="benchmarks/results",
                       help="folder of the table files and of the per-row records a stopped run resumes from")
    bench.add_argument("--json", action="store_true", help="(default) print the table as one JSON line at the end")


def cmd_benchmark(args) -> int:
    from .benchmark import CspSettings, run_csp, run_dng, write_outputs
    from .config import data_dir
    from .errors import ExplorerInputError

    if not Path(args.csv).is_file():
        raise ExplorerInputError(f"file not found: {args.csv}")
    if args.limit is not None and args.limit < 1:
        raise ExplorerInputError(f"--limit must be >= 1, got {args.limit}")
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    bars = {}

    def progress(name, done, total):
        from tqdm import tqdm

        if name not in bars:
            bars[name] = tqdm(total=total, desc=f"benchmark {name}", unit="chunk", leave=False)
        bars[name].update(done - bars[name].n)

    if args.task == "csp":
        settings = CspSettings(args.csv, args.split, args.max_atoms, args.k, args.seed, args.relax_steps, args.fmax,
                               args.device)
        table = run_csp(settings, args.out, args.limit, models, args.workers, callback=progress)
    else:
        if args.n < 2:
            raise ExplorerInputError(f"--n must be >= 2, got {args.n}")
        table = run_dng(args.csv, args.out, args.split, args.max_atoms, args.n, args.limit or 1000, models,
                        args.seed, args.device, workers=args.workers, callback=progress)
    for bar in bars.values():
        bar.close()
    command = "explorer benchmark " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["benchmark"] else None
    meta = {"command": command, "task": args.task, "csv": Path(args.csv).name, "split": args.split,
            "limit": args.limit, "max_atoms": args.max_atoms, "k": args.k if args.task == "csp" else None,
            "seed": args.seed, "data_dir": str(data_dir())}
    for path in write_outputs(table, args.out, args.task, args.split, meta):
        print(f"wrote {path}", file=sys.stderr)
    print(json.dumps(table))
    return 0


def _add_app(sub) -> None:
    app = sub.add_parser("app", help="serve the app in the browser (this machine only unless --address says so)")
    app.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    app.add_argument("--address", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves every "
                          "network, for other machines: an explicit choice)")
    app.add_argument("--allow-origin", action="append", default=[], metavar="HOST:PORT",
                     help="a further page origin the app accepts (e.g. myhost.lab:5006), when serving others")
    app.add_argument("--show", action="store_true", help="open the page in the browser")


def cmd_app(args) -> int:
    from .ui.serving import serve

    serve(args.address, args.port, args.allow_origin, args.show)
    return 0


def main(argv: list[str] | None = None) -> int:
    import warnings

    from .errors import ExplorerInputError

    warnings.showwarning = _show_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"app": cmd_app, "models": cmd_models, "generate": cmd_generate, "modify": cmd_modify,
                "evaluate": cmd_evaluate, "train": cmd_train, "reconstruct": cmd_reconstruct, "relax": cmd_relax,
                "hull": cmd_hull, "screen": cmd_screen, "benchmark": cmd_benchmark}
    try:
        return handlers[args.command](args)
    except ExplorerInputError as exc:
        print(f"explorer: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"explorer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("explorer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
