"""explorer.generate's default: known prototypes first, network samples, random symmetric crystals in the slots
whose samples miss the space group (explorer.search)."""

import pytest

import explorer
from explorer.representation import MIN_DISTANCE
from explorer.search import meets_request


def test_generate_puts_the_prototype_first_and_every_candidate_in_the_group(tiny_data_dir):
    candidates = explorer.generate("KCl", 225, -1.5, n=4, model="cfm-uniform", steps=5, seed=0)
    assert len(candidates) == 4 and [c.index for c in candidates] == [0, 1, 2, 3]
    first = candidates[0]
    assert first.model == "prototype"
    assert first.extra["prototype"]["source_formula"] in ("NaCl", "KBr")
    assert first.spacegroup_detected == 225
    assert all(meets_request(c) for c in candidates)
    assert all(c.spacegroup_detected == 225 and c.min_distance >= MIN_DISTANCE for c in candidates)
    assert {c.model for c in candidates} <= {"prototype", "cfm-uniform", "random-symmetric"}
    replaced = [c for c in candidates if c.model == "random-symmetric"]
    assert all("cfm-uniform sample in space group" in c.extra["replaces"] for c in replaced)


def test_without_the_data_directory_no_prototypes_and_still_the_group(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "none"))
    candidates = explorer.generate("NaCl", 225, -1.5, n=3, model="cfm-uniform", steps=5, seed=0)
    assert all(c.model != "prototype" and c.spacegroup_detected == 225 for c in candidates)


def test_keep_off_group_and_network_only_return_the_samples(tiny_data_dir):
    kept = explorer.generate("KCl", 225, -1.5, n=3, model="cfm-uniform", steps=5, seed=0, prototypes=0,
                             keep_off_group=True)
    assert [c.model for c in kept] == ["cfm-uniform"] * 3
    plain = explorer.generate("KCl", 225, -1.5, n=3, model="cfm-uniform", steps=5, seed=0, network_only=True)
    assert [c.model for c in plain] == ["cfm-uniform"] * 3


def test_a_refused_condition_is_refused_before_anything_is_sampled(tiny_data_dir):
    with pytest.raises(explorer.ExplorerInputError, match="cannot"):
        explorer.generate("MgO", 62, -1.0, n=2, model="cfm-uniform", steps=5)


def test_the_prototypes_come_relaxed_in_the_group_and_say_so(tiny_data_dir):
    from explorer.relax.potentials import m3gnet_available

    if not m3gnet_available():
        pytest.skip("no M3GNet weights in the models directory")
    progress = []
    relaxed = explorer.generate("KCl", 225, -1.5, n=2, model="cfm-uniform", steps=5, seed=0,
                                relax_callback=lambda done, total: progress.append((done, total)))
    plain = explorer.generate("KCl", 225, -1.5, n=2, model="cfm-uniform", steps=5, seed=0, relax_prototypes=False)
    first, substituted = relaxed[0], plain[0]
    assert first.model == substituted.model == "prototype" and "relaxed" not in substituted.extra
    info = first.extra["relaxed"]
    assert info["potential"].startswith("M3GNet") and info["status"] in ("ok", "unconverged")
    assert "energy_per_atom" in info and first.source().endswith("relaxed (M3GNet)")
    assert meets_request(first) and first.spacegroup_detected == 225
    # rock salt KCl: M3GNet's lattice constant (~6.3 Å) differs from the radius-scaled substitution's
    assert first.structure.volume != pytest.approx(substituted.structure.volume, rel=1e-3)
    # the relaxation reports its FIRE steps (one prototype, at most 300 of them) and ends at its total
    dones = [done for done, _ in progress]
    assert dones == sorted(dones) and progress[-1] == (300, 300) and len(progress) >= 2


def test_where_the_group_has_no_template_a_distorted_parent_and_relaxed_samples_come_by_energy(tiny_data_dir,
                                                                                           monkeypatch):
    from explorer import search
    from explorer.relax.potentials import m3gnet_available
    from explorer.search import relaxed_energy

    if not m3gnet_available():
        pytest.skip("no M3GNet weights in the models directory")
    from explorer.generators.matrix.generator import MatrixGenerator

    drawn = []

    def counted(self, requests, *args, **kwargs):
        drawn.append(len(requests))
        return sample_best(self, requests, *args, **kwargs)

    sample_best = MatrixGenerator.sample_best
    monkeypatch.setattr(MatrixGenerator, "sample_best", counted)
    candidates = explorer.generate("KCl", 123, -1.5, n=4, model="cfm-uniform", steps=5, seed=0)
    assert all(meets_request(c) for c in candidates) and [c.index for c in candidates] == [0, 1, 2, 3]
    # SHORT_POOL samples drawn per slot that the distorted prototypes leave free
    parents = len(explorer.load_prototype_library().query_subgroup((19, 17), 123, k=2, seed=0))
    assert parents and drawn == [search.SHORT_POOL * (4 - parents)]
    distorted = [c for c in candidates if c.model == "prototype"]
    assert distorted and all(c.extra["prototype"]["parent_spacegroup"] in (221, 225) for c in distorted)
    assert "distorted from Pm-3m" in distorted[0].source() or "distorted from Fm-3m" in distorted[0].source()
    ranked = [c for c in candidates if c.model in ("prototype", "cfm-uniform")]
    assert all("relaxed" in c.extra for c in ranked)  # the network samples were relaxed too
    energies = [relaxed_energy(c) for c in ranked]
    assert energies == sorted(energies) and energies[0] < float("inf")
    plain = explorer.generate("KCl", 123, -1.5, n=4, model="cfm-uniform", steps=5, seed=0, relax_prototypes=False)
    assert not any("relaxed" in c.extra for c in plain)  # nothing relaxed, drawn order kept
    assert [c.model for c in plain if c.model != "random-symmetric"][-1] == "prototype"


def test_a_raising_relax_callback_stops_the_prototypes_relaxation(tiny_data_dir):
    from explorer.relax.potentials import m3gnet_available

    if not m3gnet_available():
        pytest.skip("no M3GNet weights in the models directory")

    class Stop(Exception):
        pass

    def stop(done, total):
        if done >= 3:
            raise Stop

    with pytest.raises(Stop):  # what the app's Stop button raises through its progress callback
        explorer.generate("KCl", 225, -1.5, n=2, model="cfm-uniform", steps=5, seed=0, relax_callback=stop)


def test_relax_prototypes_takes_auto_true_or_false():
    from explorer.search import _relax_wanted

    with pytest.raises(explorer.ExplorerInputError, match="relax_prototypes"):
        _relax_wanted("always")
    assert _relax_wanted(False) is False


def test_the_default_model_and_its_draws_follow_the_conditions_given(tiny_data_dir, monkeypatch):
    from explorer.generators.base import Generator

    seen, original = [], Generator.sample_best

    def spy(self, requests, draws=1, **options):
        seen.append((self.name, draws))
        return original(self, requests, draws, **options)

    monkeypatch.setattr(Generator, "sample_best", spy)
    plain = explorer.generate("KCl", 225, n=2, prototypes=0, steps=6, seed=0, relax_prototypes=False)
    with_energy = explorer.generate("KCl", 225, -1.5, n=2, prototypes=0, steps=3, seed=0, relax_prototypes=False)
    assert seen == [("langevin", 1), ("cfm-normal", 2)]  # langevin samples have the group: one draw per slot
    assert {c.model for c in plain} <= {"langevin", "random-symmetric"}
    assert {c.model for c in with_energy} <= {"cfm-normal", "random-symmetric"}
